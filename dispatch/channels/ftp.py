"""FTP and FTPS (ftplib): upload-then-rename, size read back, certificate verified.

``ftps://`` is explicit TLS (AUTH TLS, then ``PROT P``): the server certificate is verified
against the vendor's optional ``ca_file`` (an extra key of the ``ftp:`` config) or the
system trust store, and the data connection resumes the control connection's TLS session,
which real vsftpd requires (``522 session reuse required`` otherwise).

Per file, as for SFTP: an identical file already at the final name counts as delivered;
else STOR to a hidden temporary name, RNFR/RNTO to the final name, SIZE to read it back.
The URL path is the directory as the server shows it after login (usually chrooted).
"""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import io
import posixpath
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    Evidence,
    SecretResolver,
    ThreadedFileChannel,
    default_secrets,
    delivery_error,
    proof,
    temporary_name,
    unexpected_error,
)
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp

BLOCK_SIZE = 64 * 1024


def _nodelay(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayFTP(ftplib.FTP):
    """ftplib.FTP with TCP_NODELAY on the control and data sockets."""

    def connect(self, *args: Any, **kwargs: Any) -> str:
        welcome = super().connect(*args, **kwargs)
        _nodelay(self.sock)
        return welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None
                     ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        _nodelay(conn)
        return conn, size


class ReusingFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 - mirrors ftplib.FTP_TLS
    """Explicit FTPS whose data connections resume the control connection's TLS session."""

    def connect(self, *args: Any, **kwargs: Any) -> str:
        welcome = super().connect(*args, **kwargs)
        _nodelay(self.sock)
        return welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None
                     ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        _nodelay(conn)
        if self._prot_p:  # type: ignore[attr-defined]
            control: Any = self.sock  # an ssl.SSLSocket once AUTH TLS succeeded
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=control.session)
        return conn, size


FtpFactory = Callable[[ssl.SSLContext | None, float], ftplib.FTP]


def default_ftp(context: ssl.SSLContext | None, timeout: float) -> ftplib.FTP:
    """An unconnected client: FTPS with session reuse when a TLS context is given."""
    if context is None:
        return NoDelayFTP(timeout=timeout)
    return ReusingFTP_TLS(context=context, timeout=timeout)


@dataclass(frozen=True)
class FtpTarget:
    """A parsed ``ftp://`` or ``ftps://`` vendor target."""

    tls: bool
    host: str
    port: int
    username: str
    directory: str
    password_env: str | None
    ca_file: str | None

    @classmethod
    def from_vendor(cls, ftp: VendorFtp) -> FtpTarget:
        parts = urlsplit(ftp.url)
        if parts.scheme not in ("ftp", "ftps"):
            raise ValueError(f"not an ftp:// or ftps:// URL: {ftp.url}")
        return cls(
            tls=parts.scheme == "ftps",
            host=parts.hostname or "",
            port=parts.port or 21,
            username=unquote(parts.username or "") or "anonymous",
            directory=unquote(parts.path),
            password_env=ftp.password_env,
            ca_file=getattr(ftp, "ca_file", None),
        )

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def display(self, name: str = "") -> str:
        scheme = "ftps" if self.tls else "ftp"
        path = posixpath.join(self.directory or "/", name)
        return f"{scheme}://{self.username}@{self.hostport}{path}"


class _Stale(Exception):
    """A reused connection died before anything was written: reconnect once."""


class FtpChannel(ThreadedFileChannel):
    """Uploads one document per send over FTP or explicit FTPS."""

    keys: ClassVar[tuple[str, ...]] = ("ftp", "ftps")
    label: ClassVar[str] = "FTP"

    def __init__(
        self,
        *,
        ftp_factory: FtpFactory = default_ftp,
        secrets: SecretResolver | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        settings: object | None = None,
    ) -> None:
        self._ftp_factory = ftp_factory
        self._secrets = secrets or default_secrets()
        self._timeout = timeout
        self._connections: dict[FtpTarget, ftplib.FTP] = {}
        self._locks: dict[FtpTarget, asyncio.Lock] = {}

    def _target_of(self, vendor: VendorFtp) -> FtpTarget:
        return FtpTarget.from_vendor(vendor)

    def _mapped(self, exc: Exception, target: FtpTarget, name: str,
                password: str | None) -> DeliveryError:
        return _mapped(exc, target, name, password)

    def _deliver(self, target: FtpTarget, password: str | None, document: Document,
                 name: str) -> Evidence:
        ftp = self._connections.get(target)
        if ftp is not None:
            try:
                return self._put(ftp, target, document, name, reused=True)
            except _Stale:
                self._drop(target)
        ftp = self._connections[target] = self._connect(target, password)
        return self._put(ftp, target, document, name, reused=False)

    def _connect(self, target: FtpTarget, password: str | None) -> ftplib.FTP:
        context = None
        if target.tls:
            context = ssl.create_default_context(cafile=target.ca_file)
        ftp = self._ftp_factory(context, self._timeout)
        try:
            ftp.connect(target.host, target.port, timeout=self._timeout)
            if target.username == "anonymous" and password is None:
                password = "anonymous@"
            ftp.login(target.username, password or "")  # FTP_TLS.login sends AUTH TLS first
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
        except BaseException:
            ftp.close()
            raise
        return ftp

    def _put(self, ftp: ftplib.FTP, target: FtpTarget, document: Document, name: str, *,
             reused: bool) -> Evidence:
        final = posixpath.join(target.directory, name)
        try:
            existing = _size_or_none(ftp, final)
        except (EOFError, OSError, ftplib.error_temp) as exc:
            if reused:
                raise _Stale() from exc
            raise
        display = target.display(name)
        replaced = None
        if existing == document.size:
            digest = hashlib.sha256()
            ftp.retrbinary(f"RETR {final}", digest.update, blocksize=BLOCK_SIZE)
            if digest.hexdigest() == document.sha256:
                return _evidence(display, document, final, existing, present=True)
            replaced = digest.hexdigest()
        elif existing is not None:
            replaced = f"size {existing}"
        temporary = posixpath.join(target.directory, temporary_name(name))
        ftp.storbinary(f"STOR {temporary}", io.BytesIO(document.content), blocksize=BLOCK_SIZE)
        ftp.rename(temporary, final)
        size = ftp.size(final)
        if size != document.size:
            raise DeliveryError(f"FTP {display}: size read back is {size}, sent {document.size}",
                                retryable=True)
        return _evidence(display, document, final, size, present=False, replaced=replaced)

    def _drop(self, target: FtpTarget) -> None:
        ftp = self._connections.pop(target, None)
        if ftp is not None:
            ftp.close()

    async def aclose(self) -> None:
        connections, self._connections = self._connections, {}
        for ftp in connections.values():
            await asyncio.to_thread(_quit_quietly, ftp)


def _quit_quietly(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        pass
    finally:
        ftp.close()


def _size_or_none(ftp: ftplib.FTP, path: str) -> int | None:
    try:
        return ftp.size(path)
    except ftplib.error_perm as exc:
        if str(exc).startswith("550"):
            return None  # no such file
        raise


def _evidence(display: str, document: Document, path: str, size: int | None, *, present: bool,
              replaced: str | None = None) -> Evidence:
    remote: dict[str, object] = {"path": path, "size": size}
    if present:
        remote["note"] = "already present with the same sha256; nothing uploaded"
    if replaced:
        remote["replaced"] = replaced
    return Evidence(channel="ftps" if display.startswith("ftps") else "ftp", target=display,
                    sha256=document.sha256, size=document.size, remote=remote,
                    documents=(proof(document),), already_present=present)


def _mapped(exc: Exception, target: FtpTarget, name: str, password: str | None) -> DeliveryError:
    where = target.display(name)
    try:
        reply = str(exc)
    except Exception:
        reply = type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = (f"FTPS {target.hostport}: server certificate not trusted ({exc.verify_message});"
                " set ca_file in the vendor's ftp config or fix the server certificate")
        retryable = False
    elif isinstance(exc, ftplib.error_perm) and reply.startswith("530"):
        text = (f"FTP {target.hostport}: login rejected for user {target.username!r} "
                f"(check password_env): {reply}")
        retryable = False
    elif isinstance(exc, ftplib.error_perm) and reply.startswith(("550", "553", "532")):
        text = f"FTP {where}: refused by the server (permission or path): {reply}"
        retryable = False
    elif isinstance(exc, ftplib.error_perm) and reply.startswith("534"):
        text = f"FTPS {target.hostport}: the server refused TLS: {reply}"
        retryable = False
    elif isinstance(exc, ftplib.error_perm):
        text = f"FTP {where}: {reply}"
        retryable = False
    elif isinstance(exc, ftplib.Error | OSError | EOFError):
        # 4xx replies, unexpected replies, connection and TLS transport errors
        text = f"FTP {where}: {type(exc).__name__}: {reply}"
        retryable = True
    else:
        return unexpected_error(exc, what=f"FTP {where}", secrets=[password])
    return delivery_error(text, retryable=retryable, cause=exc, secrets=[password])
