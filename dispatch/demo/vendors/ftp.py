"""Stand-in FTP servers: pyftpdlib (FTP or explicit FTPS) and, when root, real vsftpd.

pyftpdlib serves ``root`` to two users: ``username``/``password`` (full rights) and
``readonly``/``password`` (listing and download only: uploads get 550). Fault:
``faults.drop_after_bytes`` closes the control and data connections mid-upload.

vsftpd (``/usr/sbin/vsftpd``, started inetd-style per connection) serves ``root`` to the
anonymous user with uploads and renames allowed, and requires TLS session reuse on the data
connection with ``tls=True``, as Debian's vsftpd does.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.demo.vendors.inetd import InetdListener
from dispatch.demo.vendors.tls import TestCertificates
from dispatch.reference_data import VendorFtp

VSFTPD = "/usr/sbin/vsftpd"


@dataclass
class FtpFaults:
    drop_after_bytes: int | None = None


class FtpStandin:
    """pyftpdlib on 127.0.0.1 in a thread; use as a context manager or call :meth:`stop`."""

    def __init__(self, root: Path, *, certificates: TestCertificates | None = None,
                 username: str = "vendor", password: str = "ftp-secret") -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.filesystems import AbstractedFS
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        pyftpdlib_log = logging.getLogger("pyftpdlib")
        if not pyftpdlib_log.handlers:  # else pyftpdlib installs a stderr handler of its own
            pyftpdlib_log.addHandler(logging.NullHandler())
        self.root = root.resolve()
        self.host = "127.0.0.1"
        self.username = username
        self.password = password
        self.certificates = certificates
        self.faults = FtpFaults()
        self.connections = 0
        authorizer = DummyAuthorizer()
        authorizer.add_user(username, password, str(self.root), perm="elradfmwMT")
        authorizer.add_user("readonly", password, str(self.root), perm="elr")
        standin = self

        class DroppingFS(AbstractedFS):
            def open(self, filename: str, mode: str) -> Any:
                handle = super().open(filename, mode)
                if "w" not in mode or standin.faults.drop_after_bytes is None:
                    return handle
                return _DroppingFile(handle, standin.faults.drop_after_bytes, self.cmd_channel)

        base: Any = TLS_FTPHandler if certificates else FTPHandler
        attributes: dict[str, Any] = {"authorizer": authorizer, "abstracted_fs": DroppingFS,
                                      "banner": "dispatch stand-in ready",
                                      "auth_failed_timeout": 0,  # no 3 s penalty in tests
                                      "on_connect": lambda handler: standin._connected()}
        if certificates is not None:
            attributes.update(certfile=str(certificates.cert_file),
                              keyfile=str(certificates.key_file),
                              tls_control_required=True, tls_data_required=True)
        handler = type("StandinHandler", (base,), attributes)
        self._server = FTPServer((self.host, 0), handler, ioloop=IOLoop())
        self.port: int = self._server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="ftp-standin")
        self._thread.start()

    def _connected(self) -> None:
        self.connections += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._server.ioloop.loop(0.05, blocking=False)

    def vendor_ftp(self, directory: str = "inbox", *, username: str | None = None,
                   password_env: str | None = None, **extra: Any) -> VendorFtp:
        scheme = "ftps" if self.certificates else "ftp"
        fields: dict[str, Any] = {
            "url": f"{scheme}://{username or self.username}@{self.host}:{self.port}/"
                   f"{directory.strip('/')}",
            "password_env": password_env,
        }
        if self.certificates is not None:
            fields["ca_file"] = str(self.certificates.ca_file)
        fields.update(extra)
        return VendorFtp(**fields)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close_all()

    def __enter__(self) -> FtpStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _DroppingFile:
    """Writes through until ``limit`` bytes, then closes the client's connections."""

    def __init__(self, handle: Any, limit: int, cmd_channel: Any) -> None:
        self._handle, self._limit, self._cmd = handle, limit, cmd_channel
        self._written = 0

    def write(self, data: bytes) -> int:
        self._written += len(data)
        if self._written > self._limit:
            self._cmd.close()
            return len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def vsftpd_usable() -> bool:
    """vsftpd runs as root and drops to the ``ftp`` user for anonymous sessions."""
    try:
        pwd.getpwnam("ftp")
    except KeyError:
        return False
    return os.path.exists(VSFTPD) and os.geteuid() == 0


class VsftpdStandin:
    """Real vsftpd, one process per connection; anonymous uploads into ``root/inbox``."""

    def __init__(self, root: Path, *, certificates: TestCertificates | None = None,
                 directories: tuple[str, ...] = ("inbox",)) -> None:
        if not vsftpd_usable():
            raise RuntimeError(f"{VSFTPD} missing, no 'ftp' user, or not root")
        self.root = root.resolve()
        self.host = "127.0.0.1"
        self.certificates = certificates
        ftp_user = pwd.getpwnam("ftp")
        os.chmod(self.root, 0o755)  # vsftpd refuses a chroot root the ftp user may write
        for directory in directories:
            path = self.root / directory
            path.mkdir(exist_ok=True)
            os.chown(path, ftp_user.pw_uid, ftp_user.pw_gid)
        self._dir = Path(tempfile.mkdtemp(prefix="vsftpd-standin-"))
        Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
        lines = [
            "listen=NO", "listen_ipv6=NO", "anonymous_enable=YES", "local_enable=NO",
            "write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=YES",
            "anon_other_write_enable=YES", "anon_umask=022", "no_anon_password=YES",
            f"anon_root={self.root}", "pasv_enable=YES", "pasv_address=127.0.0.1",
            "seccomp_sandbox=NO", "connect_from_port_20=NO", "xferlog_enable=NO",
            "secure_chroot_dir=/var/run/vsftpd/empty", "ftpd_banner=vsftpd stand-in",
        ]
        if certificates is not None:
            lines += [
                "ssl_enable=YES", "allow_anon_ssl=YES", "force_anon_data_ssl=YES",
                "force_anon_logins_ssl=YES", "require_ssl_reuse=YES",
                f"rsa_cert_file={certificates.cert_file}",
                f"rsa_private_key_file={certificates.key_file}",
            ]
        config = self._dir / "vsftpd.conf"
        config.write_text("\n".join(lines) + "\n")
        self._listener = InetdListener(lambda: [VSFTPD, str(config)])
        self.port = self._listener.port

    @property
    def connections(self) -> int:
        return self._listener.connections

    def vendor_ftp(self, directory: str = "inbox", **extra: Any) -> VendorFtp:
        scheme = "ftps" if self.certificates else "ftp"
        fields: dict[str, Any] = {"url": f"{scheme}://{self.host}:{self.port}/{directory}"}
        if self.certificates is not None:
            fields["ca_file"] = str(self.certificates.ca_file)
        fields.update(extra)
        return VendorFtp(**fields)

    def stop(self) -> None:
        self._listener.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> VsftpdStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_ftp_standin(root: Path, **kwargs: Any) -> FtpStandin:
    """Start pyftpdlib for ``root`` (FTPS when ``certificates`` is given)."""
    return FtpStandin(root, **kwargs)


def start_vsftpd_standin(root: Path, **kwargs: Any) -> VsftpdStandin:
    """Start real vsftpd for ``root`` (FTPS with session reuse when ``certificates``)."""
    return VsftpdStandin(root, **kwargs)
