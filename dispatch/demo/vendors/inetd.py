"""Run a real daemon (sshd -i, vsftpd) inetd-style behind a listening socket we own.

We bind 127.0.0.1 port 0 (the OS picks a free port: no race, no readiness polling) and hand
every accepted connection to a fresh daemon process as its stdin/stdout. Stopping closes
the listener and ends exactly the processes we started, by their id.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Sequence


class InetdListener:
    """Accepts on 127.0.0.1:0 and spawns ``command()`` per connection with the socket as stdio."""

    def __init__(self, command: Callable[[], Sequence[str]], host: str = "127.0.0.1") -> None:
        self._command = command
        self._server = socket.create_server((host, 0))
        self.host = host
        self.port: int = self._server.getsockname()[1]
        self._processes: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"inetd:{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._processes)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # listener closed
            with conn, self._lock:
                if self._stopped:
                    return
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._processes.append(subprocess.Popen(
                    list(self._command()), stdin=conn.fileno(), stdout=conn.fileno(),
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                ))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            processes = list(self._processes)
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=5)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
