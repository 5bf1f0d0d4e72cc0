"""Stand-in SFTP servers: real OpenSSH ``sshd`` (when root) or asyncssh (anywhere, faults).

``start_sftp_standin(root)`` serves files under ``root``; :meth:`SftpStandin.vendor_ftp`
gives the ``VendorFtp`` target (URL, client key file, host key line) for a directory in it.

* ``sshd``: ``/usr/sbin/sshd -i`` per connection behind our own listener, key auth only,
  logged in as the current user (root), no chroot, so the URL path is the absolute path.
  ``read_only=True`` runs ``internal-sftp -R``: writes fail with permission denied.
* ``asyncssh``: in-process in its own thread, chrooted to ``root`` (URL path ``/inbox``),
  key and optional password auth, and faults: ``deny_writes``, ``drop_after_bytes``.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dispatch.demo.vendors.inetd import InetdListener
from dispatch.demo.vendors.keys import SshKey, make_ssh_key
from dispatch.reference_data import VendorFtp

SSHD = "/usr/sbin/sshd"
Prefer = Literal["auto", "sshd", "asyncssh"]


def sshd_usable() -> bool:
    """Real sshd needs its binary and root (it logs us in as root, without PAM)."""
    return os.path.exists(SSHD) and os.geteuid() == 0


@dataclass
class SftpFaults:
    """Switches for the asyncssh server; change them while it runs."""

    deny_writes: bool = False
    drop_after_bytes: int | None = None


class SftpStandin:
    """A running SFTP server; use as a context manager or call :meth:`stop`."""

    def __init__(self, root: Path, *, prefer: Prefer = "auto", password: str | None = None,
                 read_only: bool = False, username: str | None = None) -> None:
        self.root = root.resolve()
        self.host = "127.0.0.1"
        self.password = password
        self.faults = SftpFaults(deny_writes=read_only)
        self._keys_dir = Path(tempfile.mkdtemp(prefix="sftp-standin-"))
        self.host_key: SshKey = make_ssh_key(self._keys_dir / "host_ed25519")
        self.client_key: SshKey = make_ssh_key(self._keys_dir / "client_ed25519")
        use_sshd = prefer == "sshd" or (prefer == "auto" and sshd_usable() and password is None)
        if prefer == "sshd" and not sshd_usable():
            raise RuntimeError(f"{SSHD} missing or not root")
        self.kind = "sshd" if use_sshd else "asyncssh"
        self._listener: InetdListener | None = None
        self._asyncssh: _AsyncsshServer | None = None
        if use_sshd:
            self.username = username or getpass.getuser()
            config = self._write_sshd_config(read_only)
            self._listener = InetdListener(lambda: [SSHD, "-i", "-e", "-f", str(config)])
            self.port = self._listener.port
        else:
            self.username = username or "vendor"
            self._asyncssh = _AsyncsshServer(self)
            self.port = self._asyncssh.port

    def _write_sshd_config(self, read_only: bool) -> Path:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        authorized = self._keys_dir / "authorized_keys"
        authorized.write_text(self.client_key.public_line + "\n")
        sftp = "internal-sftp" + (" -R" if read_only else "")
        config = self._keys_dir / "sshd_config"
        config.write_text("\n".join([
            f"HostKey {self.host_key.private_file}", "PidFile none",
            f"AuthorizedKeysFile {authorized}", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", f"ForceCommand {sftp}",
            f"Subsystem sftp {sftp}", "AllowTcpForwarding no", "X11Forwarding no",
            "LogLevel ERROR", "",
        ]))
        return config

    def remote_path(self, directory: str) -> str:
        """The path a client uses for ``root/directory``."""
        directory = directory.strip("/")
        if self.kind == "sshd":
            return str(self.root / directory) if directory else str(self.root)
        return "/" + directory

    def vendor_ftp(self, directory: str = "inbox", **extra: Any) -> VendorFtp:
        """The vendor target for ``root/directory`` with key auth (or ``password_env``)."""
        fields: dict[str, Any] = {
            "url": f"sftp://{self.username}@{self.host}:{self.port}{self.remote_path(directory)}",
            "key_file": str(self.client_key.private_file), "host_key": self.host_key.public_line,
        }
        fields.update(extra)
        return VendorFtp(**fields)

    @property
    def connections(self) -> int:
        """Client connections accepted since start."""
        if self._listener is not None:
            return self._listener.connections
        assert self._asyncssh is not None
        return self._asyncssh.connections

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._asyncssh is not None:
            self._asyncssh.stop()
        shutil.rmtree(self._keys_dir, ignore_errors=True)

    def __enter__(self) -> SftpStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _AsyncsshServer:
    def __init__(self, standin: SftpStandin) -> None:
        import asyncssh

        self.connections = 0
        self._open: list[Any] = []
        self._standin = standin
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="asyncssh-standin")
        host_key = asyncssh.import_private_key(standin.host_key.private_file.read_bytes())
        authorized = asyncssh.import_authorized_keys(standin.client_key.public_line + "\n")
        self._listen = asyncssh.listen(
            standin.host, 0, server_host_keys=[host_key], authorized_client_keys=authorized,
            server_factory=self._server_factory, sftp_factory=self._sftp_factory,
            allow_scp=False,
        )
        self._error: BaseException | None = None
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._acceptor = self._loop.run_until_complete(self._listen)
            self.port: int = self._acceptor.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            ready.set()
            return
        ready.set()
        self._loop.run_forever()

    def _server_factory(self) -> Any:
        import asyncssh

        standin = self._standin
        self.connections += 1

        opened = self._open

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                opened.append(conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return standin.password is not None

            def validate_password(self, username: str, password: str) -> bool:
                return username == standin.username and password == standin.password

        return Server()

    def _sftp_factory(self, chan: Any) -> Any:
        import asyncssh

        faults = self._standin.faults
        written = [0]

        class Server(asyncssh.SFTPServer):
            def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
                if faults.deny_writes and pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT):
                    raise asyncssh.SFTPPermissionDenied("Permission denied")
                return super().open(path, pflags, attrs)

            def write(self, file_obj: object, offset: int, data: bytes) -> Any:
                written[0] += len(data)
                limit = faults.drop_after_bytes
                if limit is not None and written[0] > limit:
                    self.connection.abort()
                    raise asyncssh.SFTPConnectionLost("dropped by the stand-in")
                return super().write(file_obj, offset, data)

            def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
                if faults.deny_writes:
                    raise asyncssh.SFTPPermissionDenied("Permission denied")
                return super().posix_rename(oldpath, newpath)

        return Server(chan, chroot=str(self._standin.root).encode())

    def stop(self) -> None:
        async def close() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            for conn in self._open:
                conn.abort()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def start_sftp_standin(root: Path, **kwargs: Any) -> SftpStandin:
    """Start an SFTP server for ``root``; see :class:`SftpStandin` for the options."""
    return SftpStandin(root, **kwargs)
