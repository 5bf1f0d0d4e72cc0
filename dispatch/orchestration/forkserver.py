"""Flow-run processes forked from a warm Python, for the process worker (server mode).

A process work pool starts a new Python for every flow run. Here that run then spends
~2.9 s importing Prefect, the flow module, the renderers and paramiko and compiling the
document templates, before it sends anything: most of the time from an order's event to its
delivery, and most of the worker's CPU (bench/RESULTS.md, "Dispatch").

``dispatch worker`` starts this fork server beside ``prefect worker start``: it imports all
of that once and renders a sample of every template (warming every cache). The
deployments' command, ``python -m dispatch.orchestration.forkserver``, is then a small launcher:
it hands its environment, working directory and standard streams (``SCM_RIGHTS``) to the
server over a Unix socket, the server forks, and the child runs ``prefect.engine`` exactly
as ``python -m prefect.engine`` would, with the flow run's environment. The launcher stays
the process the worker watches: it forwards SIGTERM/SIGINT/SIGHUP to the child and exits
with the child's status; a child whose launcher disappears (SIGKILL) is terminated.

Without a server (``DISPATCH_ENGINE_FORKSERVER`` unset, as under a plain
``prefect worker start``, or the server gone) the launcher becomes
``python -m prefect.engine`` (``exec``): the same run, only slower.

The server forks only while it has a single thread (forking a threaded process could copy a
held lock); it exits when the worker that started it exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from typing import Any

ENV_SOCKET = "DISPATCH_ENGINE_FORKSERVER"
_HEADER = struct.Struct("!I")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# -- the launcher (the deployments' command): stdlib only, starts in ~30 ms ------------------

def _exec_engine(note: str | None = None) -> None:
    """Become ``python -m prefect.engine`` (what the worker would have started itself)."""
    if note:
        print(f"dispatch engine fork server: {note}; starting python -m prefect.engine "
              "instead", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])


def launch() -> int:
    """Run this flow run's engine in a fork of the warm server, or exec a fresh one."""
    path = os.environ.get(ENV_SOCKET, "")
    if not path:
        _exec_engine()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError as exc:
        _exec_engine(f"{path} unavailable ({exc})")
    request = json.dumps({"env": dict(os.environ), "cwd": os.getcwd(),
                          "argv": sys.argv[1:]}).encode()
    try:
        socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
        conn.sendall(request)
        reader = conn.makefile("rb")
        first = reader.readline()
    except OSError as exc:  # nothing was started: run the engine here
        first, error = b"", str(exc)
    else:
        error = "it closed the connection"
    if not first:
        _exec_engine(f"{path}: {error} before starting the run")
    answer = json.loads(first)
    if "stale" in answer:  # the project's code changed since the server imported it
        _exec_engine(f"{answer['stale']} (restart `dispatch worker` to fork again)")
    child = int(answer["pid"])

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    last = reader.readline()
    if not last:
        print(f"dispatch engine fork server went away while flow-run process {child} ran",
              file=sys.stderr, flush=True)
        return 1
    code = int(json.loads(last)["exit"])
    if code < 0:  # died of a signal: die of the same one, as a plain engine process would
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


# -- the server ------------------------------------------------------------------------------

def warm_up() -> list[str]:
    """Import what every flow run needs and render a sample with every template; returns
    what was warmed (for the server's start-up line)."""
    from pathlib import Path

    import prefect.engine  # noqa: F401
    import prefect.flow_engine  # noqa: F401

    import dispatch.channels.b2b_http
    import dispatch.channels.ftp
    import dispatch.channels.sftp
    import dispatch.channels.smtp  # noqa: F401
    import flows.dispatch_order
    import flows.dispatch_pending  # noqa: F401
    from dispatch.documents import render_document, sample_context
    from dispatch.settings import DEFAULT_TEMPLATES_DIR

    root = Path(os.environ.get("DISPATCH_TEMPLATES_DIR") or DEFAULT_TEMPLATES_DIR)
    warmed = ["prefect.engine", "flows", "channels", "XML"]
    ctx = sample_context("purchase", lines=3)
    render_document(ctx, format="XML", templates_dir=root)
    for pattern, format in (("pdf/*.yaml", "PDF"), ("excel/*.xlsx", "Excel")):
        for path in sorted(root.glob(pattern)):
            try:
                render_document(ctx, format=format, template_file=str(path.relative_to(root)),
                                templates_dir=root)
                warmed.append(str(path.relative_to(root)))
            except Exception as exc:  # a broken file is the run's error to report, not ours
                print(f"fork server: not warming {path}: {exc}", file=sys.stderr)
    return warmed


def project_sources() -> dict[str, int]:
    """mtime of every imported module of the project (dispatch, flows): a fork would run
    these, so a change on disk makes the server stale."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stamps = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and name.split(".")[0] in ("dispatch", "flows") and file.startswith(root):
            try:
                stamps[file] = os.stat(file).st_mtime_ns
            except OSError:
                stamps[file] = -1
    return stamps


def stale(stamps: dict[str, int]) -> str | None:
    for file, stamp in stamps.items():
        try:
            now = os.stat(file).st_mtime_ns
        except OSError:
            now = -1
        if now != stamp:
            return f"{file} changed since the server started"
    return None


def serve(path: str) -> int:
    """Listen on ``path`` and fork a flow-run engine per launcher; until the parent exits."""
    import selectors
    import threading

    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up the socket on the way
    warmed = warm_up()
    if threading.active_count() != 1:
        names = [t.name for t in threading.enumerate()]
        print(f"fork server: threads running after warm-up ({names}); refusing to fork, "
              "flow runs start python -m prefect.engine instead", file=sys.stderr, flush=True)
        return 1
    stamps = project_sources()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print(json.dumps({"ready": path, "pid": os.getpid(), "warmed": warmed}), flush=True)
    os.dup2(2, 1)  # whoever read the ready line may close that pipe: later output to stderr
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    try:
        while os.getppid() == parent:
            for _key, _mask in selector.select(timeout=0.1):
                conn, _ = listener.accept()
                try:
                    pid = _fork_one(conn, listener, children, stamps)
                except Exception as exc:  # a bad request must not stop the server
                    print(f"fork server: request refused: {exc}", file=sys.stderr, flush=True)
                    pid = None
                if pid is None:
                    conn.close()
                else:
                    children[pid] = conn
            _reap(children)
    finally:
        listener.close()
        try:
            os.unlink(path)
            if os.path.basename(os.path.dirname(path)).startswith("dispatch-forkserver-"):
                os.rmdir(os.path.dirname(path))  # the private folder `dispatch worker` made
        except OSError:
            pass
    return 0


def _fork_one(conn: socket.socket, listener: socket.socket,
              children: dict[int, socket.socket], stamps: dict[str, int]) -> int | None:
    """Read one launcher's request and fork its engine; None when refused (stale)."""
    conn.settimeout(10)
    data, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    if len(data) != _HEADER.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("expected a length header and three file descriptors")
    (size,) = _HEADER.unpack(data)
    raw = b""
    while len(raw) < size:
        chunk = conn.recv(size - len(raw))
        if not chunk:
            raise ValueError("request cut short")
        raw += chunk
    request = json.loads(raw)
    why = stale(stamps)
    if why is not None:
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"stale": why}).encode() + b"\n")
        return None
    conn.settimeout(None)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the flow run's process; never returns
        _child(conn, fds, request, [listener, *children.values()])
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return pid


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        try:
            code = os.waitstatus_to_exitcode(status)
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        except OSError:  # the launcher is gone; nobody to tell
            pass
        finally:
            conn.close()


def _child(conn: socket.socket, fds: list[int], request: dict[str, Any],
           inherited: list[socket.socket]) -> None:
    code: int = 1
    try:
        for sock in inherited:
            sock.close()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _watch_launcher(conn)
        import prefect.context
        import prefect.logging.configuration

        prefect.context.refresh_global_settings_context()
        prefect.logging.configuration.setup_logging()
        import runpy

        sys.argv = ["prefect.engine", *request.get("argv", [])]
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _watch_launcher(conn: socket.socket) -> None:
    """The launcher never writes again: EOF means it died; end this run as a SIGTERM would."""
    import threading

    def watch() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"] and len(args) == 2:
        return serve(args[1])
    return launch()


if __name__ == "__main__":
    sys.exit(main())
