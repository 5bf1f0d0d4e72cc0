"""The engine fork server and its launcher (the deployments' command), with real processes:
the launcher's environment, working directory and standard streams reach the forked engine,
its exit status comes back, signals are forwarded, and a killed launcher takes its engine
with it. Without a server the launcher is a plain ``python -m prefect.engine``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.orchestration.forkserver import ENV_SOCKET
from dispatch.orchestration.worker import start_fork_server, worker_environment

LAUNCHER = [sys.executable, "-m", "dispatch.orchestration.forkserver"]


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    env = worker_environment(dict(os.environ))
    env["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    proc, path, info = start_fork_server(env)
    assert info["ready"] == path and info["pid"] == proc.pid
    assert {"pdf/standard.yaml", "excel/standard.xlsx"} <= set(info["warmed"])
    yield proc.pid, path
    proc.terminate()
    proc.wait(10)
    assert not Path(path).exists()  # the server removes its socket (and private folder)


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A loopback port that accepts connections and never answers: an engine asking it for
    its flow run waits, so the test can look at (and signal) a running engine."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"


def launcher_env(fork_server: tuple[int, str] | None, tmp_path: Path, **extra: str
                 ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), DO_NOT_TRACK="1", **extra)
    env.pop(ENV_SOCKET, None)
    if fork_server is not None:
        env[ENV_SOCKET] = fork_server[1]
    return env


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_for(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)  # polling a condition, not waiting for a guess


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("served", [True, False], ids=["forked", "plain-exec"])
def test_the_engine_sees_the_launchers_environment_and_streams_and_returns_its_status(
        fork_server: tuple[int, str], tmp_path: Path, served: bool) -> None:
    env = launcher_env(fork_server if served else None, tmp_path,
                       PREFECT__FLOW_RUN_ID="not-a-flow-run-id")
    done = subprocess.run(LAUNCHER, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    # prefect.engine read the id from *this* environment and said so on *this* stderr
    assert done.returncode == 1, done.stderr
    assert "Invalid flow run id" in done.stderr
    assert "badly formed hexadecimal UUID string" in done.stderr


def test_a_running_engine_is_forked_with_the_launchers_cwd_and_gets_its_signals(
        fork_server: tuple[int, str], tmp_path: Path, silent_api: str) -> None:
    server_pid, _ = fork_server
    env = launcher_env(fork_server, tmp_path, PREFECT__FLOW_RUN_ID=str(uuid.uuid4()),
                       PREFECT_API_URL=silent_api)
    launcher = subprocess.Popen(LAUNCHER, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def engine() -> int | None:  # the fork running in this test's folder
        for pid in children_of(server_pid):
            try:
                if Path(f"/proc/{pid}/cwd").resolve() == tmp_path.resolve():
                    return pid
            except OSError:
                pass
        return None

    child = wait_for(engine)
    launcher.send_signal(signal.SIGTERM)  # what the worker does to cancel a run
    out, err = launcher.communicate(timeout=60)
    wait_for(lambda: gone(child))
    assert launcher.returncode != 0  # the engine did not finish its run; nor was it left


def test_an_engine_whose_launcher_is_killed_is_terminated(
        fork_server: tuple[int, str], tmp_path: Path, silent_api: str) -> None:
    server_pid, _ = fork_server
    before = set(children_of(server_pid))
    env = launcher_env(fork_server, tmp_path, PREFECT__FLOW_RUN_ID=str(uuid.uuid4()),
                       PREFECT_API_URL=silent_api)
    launcher = subprocess.Popen(LAUNCHER, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    (child,) = wait_for(lambda: set(children_of(server_pid)) - before)
    launcher.kill()
    launcher.wait(10)
    wait_for(lambda: gone(child))


def test_a_launcher_without_a_reachable_server_says_so_and_runs_the_engine_itself(
        tmp_path: Path) -> None:
    env = launcher_env(None, tmp_path, PREFECT__FLOW_RUN_ID="not-a-flow-run-id")
    env[ENV_SOCKET] = str(tmp_path / "no-such.sock")
    done = subprocess.run(LAUNCHER, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert "unavailable" in done.stderr and "starting python -m prefect.engine" in done.stderr
    assert done.returncode == 1 and "Invalid flow run id" in done.stderr


def test_worker_environment_puts_this_python_first_and_polls_every_second() -> None:
    env = worker_environment({"PATH": "/usr/bin", ENV_SOCKET: "/stale.sock"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["PREFECT_WORKER_QUERY_SECONDS"] == "1" and ENV_SOCKET not in env
    kept = worker_environment({"PATH": "/usr/bin", "PREFECT_WORKER_QUERY_SECONDS": "5"})
    assert kept["PREFECT_WORKER_QUERY_SECONDS"] == "5"



def test_a_stale_server_is_not_used_and_says_to_restart_the_worker(tmp_path: Path) -> None:
    """A server whose imported project code changed on disk answers "stale" (a fork would
    run the old code): the launcher runs a fresh engine and says why."""
    import threading

    path = str(tmp_path / "stale.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def answer() -> None:  # as the server does: read the request, then refuse it
        conn, _ = listener.accept()
        _data, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
        for fd in fds:
            os.close(fd)
        conn.recv(1 << 20)
        conn.sendall(b'{"stale": "dispatch/outcomes.py changed since the server started"}\n')
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    env = launcher_env(None, tmp_path, PREFECT__FLOW_RUN_ID="not-a-flow-run-id")
    env[ENV_SOCKET] = path
    done = subprocess.run(LAUNCHER, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    thread.join(10)
    listener.close()
    assert "outcomes.py changed" in done.stderr and "restart `dispatch worker`" in done.stderr
    assert done.returncode == 1 and "Invalid flow run id" in done.stderr


def test_stale_notices_a_changed_source_file(tmp_path: Path) -> None:
    from dispatch.orchestration.forkserver import project_sources, stale

    stamps = project_sources()
    assert any(f.endswith("dispatch/orchestration/forkserver.py") for f in stamps)
    assert stale(stamps) is None
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    mine = {str(source): source.stat().st_mtime_ns}
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1_000_000))
    assert stale(mine) == f"{source} changed since the server started"
