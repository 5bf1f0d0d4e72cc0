"""``dispatch worker``: a Prefect process worker set up for dispatch (server mode).

It is ``prefect worker start --pool …`` (the process becomes that worker, so signals and
supervision are Prefect's own), started with:

- the project's interpreter first on ``PATH``, so the deployments' ``python -m …`` command
  runs with dispatch installed;
- ``PREFECT_WORKER_QUERY_SECONDS`` 1 unless set (Prefect's default, 10 s, is 5 s of latency on
  average per order);
- the engine fork server (``dispatch.orchestration.forkserver``) beside it, so a flow run
  starts in a warm process instead of importing everything anew (``--no-fork-server`` to do
  without).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dispatch.errors import DispatchError
from dispatch.orchestration.forkserver import ENV_SOCKET
from dispatch.orchestration.prefect_defaults import quiet_prefect_defaults

READY_TIMEOUT = 120.0


def worker_environment(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + (os.pathsep + path if path else "")
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")
    quiet_prefect_defaults(env)
    env.pop(ENV_SOCKET, None)
    return env


def start_fork_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, dict]:
    """Start the fork server and wait until it answers; (process, socket path, its line)."""
    folder = tempfile.mkdtemp(prefix="dispatch-forkserver-")  # mode 0700: ours alone
    path = os.path.join(folder, "engine.sock")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "dispatch.orchestration.forkserver", "serve",
                             path], env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    while not line.endswith(b"\n"):
        left = READY_TIMEOUT - (time.monotonic() - started)
        if left <= 0 or not selector.select(timeout=left):
            proc.kill()
            raise DispatchError(f"engine fork server: not ready within {READY_TIMEOUT:.0f} s")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            proc.wait()
            raise DispatchError(f"engine fork server exited with status {proc.returncode} "
                                "before it was ready (its error is above)")
        line += chunk
    proc.stdout.close()
    info = json.loads(line.decode().strip().splitlines()[-1])
    info["seconds"] = round(time.monotonic() - started, 1)
    return proc, path, info


def run_worker(*, pool: str, limit: int | None, fork_server: bool, extra: list[str]) -> int:
    env = worker_environment(dict(os.environ))
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    if fork_server:
        try:
            proc, path, info = start_fork_server(env)
        except DispatchError as exc:
            print(f"dispatch worker: {exc}; flow runs will start a new Python each",
                  file=sys.stderr, flush=True)
        else:
            env[ENV_SOCKET] = path
            print(f"dispatch worker: engine fork server pid {proc.pid} ready in "
                  f"{info['seconds']} s (warmed: {', '.join(info.get('warmed', []))})",
                  flush=True)
    command = [prefect, "worker", "start", "--pool", pool,
               *(["--limit", str(limit)] if limit else []), *extra]
    print(f"dispatch worker: {' '.join(command[1:])} (PREFECT_WORKER_QUERY_SECONDS="
          f"{env['PREFECT_WORKER_QUERY_SECONDS']})", flush=True)
    os.execve(command[0], command, env)
    return 0  # not reached
