"""SFTP (paramiko): host key verified against the configured key, upload-then-rename.

Per file: if the final name already holds the same bytes (read back and hashed) it counts
as delivered (the exactly-once guard after a crash between send and record); otherwise the
bytes go to a hidden temporary name in the target directory, ``posix_rename`` moves them to
the final name (the vendor never reads a half file) and a ``stat`` reads the size back.

The URL path is the directory on the server (``sftp://acme@host:2222/inbox`` → ``/inbox``;
vendors normally chroot SFTP users). Paramiko blocks, so each delivery runs in one worker
thread; connections are kept per target for the channel's life and rebuilt once when a
reused one turns out dead before anything was written.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hashlib
import io
import os
import posixpath
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import paramiko

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    Evidence,
    SecretResolver,
    ThreadedFileChannel,
    connect_tcp,
    default_secrets,
    delivery_error,
    proof,
    temporary_name,
    unexpected_error,
)
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp

SocketFactory = Callable[[str, int, float], socket.socket]


@dataclass(frozen=True)
class SftpTarget:
    """A parsed ``sftp://`` vendor target."""

    host: str
    port: int
    username: str
    directory: str
    host_key: str | None
    key_file: str | None
    password_env: str | None

    @classmethod
    def from_vendor(cls, ftp: VendorFtp) -> SftpTarget:
        parts = urlsplit(ftp.url)
        if parts.scheme != "sftp":
            raise ValueError(f"not an sftp:// URL: {ftp.url}")
        return cls(
            host=parts.hostname or "",
            port=parts.port or 22,
            username=unquote(parts.username or ""),
            directory=unquote(parts.path) or ".",
            host_key=ftp.host_key,
            key_file=ftp.key_file,
            password_env=ftp.password_env,
        )

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def display(self, name: str = "") -> str:
        return f"sftp://{self.username}@{self.hostport}{posixpath.join(self.directory, name)}"


@dataclass
class _Connection:
    client: paramiko.SSHClient
    sftp: paramiko.SFTPClient


class _UnknownHostKey(paramiko.SSHException):
    """The server offered a host key type we have no configured key for."""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        raise _UnknownHostKey(f"{key.get_name()} {key.fingerprint}")


class _Stale(Exception):
    """A reused connection died before anything was written: reconnect once."""


def parse_host_key(line: str) -> paramiko.PKey:
    """``"ssh-ed25519 AAAA... [comment]"`` (a known_hosts line with hosts also works)."""
    tokens = line.split()
    for index, token in enumerate(tokens[:-1]):
        if token.startswith(("ssh-", "ecdsa-", "sk-")):
            return paramiko.PKey.from_type_string(token, base64.b64decode(tokens[index + 1]))
    raise ValueError("no key type such as ssh-ed25519 found")


class SftpChannel(ThreadedFileChannel):
    """Uploads one document per send to ``{url path}/{document.name}`` over SFTP."""

    keys: ClassVar[tuple[str, ...]] = ("sftp",)
    label: ClassVar[str] = "SFTP"

    def __init__(
        self,
        *,
        socket_factory: SocketFactory = connect_tcp,
        secrets: SecretResolver | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        settings: object | None = None,
    ) -> None:
        self._socket_factory = socket_factory
        self._secrets = secrets or default_secrets()
        self._timeout = timeout
        self._connections: dict[SftpTarget, _Connection] = {}
        self._locks: dict[SftpTarget, asyncio.Lock] = {}

    def _target_of(self, vendor: VendorFtp) -> SftpTarget:
        return SftpTarget.from_vendor(vendor)

    def _mapped(self, exc: Exception, target: SftpTarget, name: str,
                password: str | None) -> DeliveryError:
        return _mapped(exc, target, name, password)

    def _deliver(self, target: SftpTarget, password: str | None, document: Document,
                 name: str) -> Evidence:
        connection = self._connections.get(target)
        if connection is not None:
            transport = connection.client.get_transport()
            if transport is None or not transport.is_active():
                self._drop(target)
                connection = None
        if connection is not None:
            try:
                return self._put(connection.sftp, target, document, name, reused=True)
            except _Stale:
                self._drop(target)
        connection = self._connections[target] = self._connect(target, password)
        return self._put(connection.sftp, target, document, name, reused=False)

    def _connect(self, target: SftpTarget, password: str | None) -> _Connection:
        if not target.host_key:
            raise DeliveryError(
                f"SFTP {target.hostport}: no host_key configured; refusing to trust an unknown "
                "server. Ask the vendor for the server key and set vendors[].ftp.host_key to "
                "its 'ssh-ed25519 AAAA...' line",
                retryable=False,
            )
        try:
            key = parse_host_key(target.host_key)
        except (ValueError, binascii.Error, paramiko.SSHException) as exc:
            raise DeliveryError(
                f"SFTP {target.hostport}: vendors[].ftp.host_key is not a public key line "
                f"like 'ssh-ed25519 AAAA...' ({exc})",
                retryable=False,
            ) from exc
        if target.key_file and not os.path.isfile(target.key_file):
            raise DeliveryError(
                f"SFTP {target.hostport}: key_file {target.key_file} is not a readable file; "
                "fix vendors[].ftp.key_file", retryable=False)
        if not target.key_file and password is None:
            raise DeliveryError(
                f"SFTP {target.hostport}: configure key_file or password_env for the vendor",
                retryable=False,
            )
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RejectUnknown())
        entry = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
        client.get_host_keys().add(entry, key.get_name(), key)
        sock = self._socket_factory(target.host, target.port, self._timeout)
        try:
            client.connect(
                target.host, target.port, username=target.username, password=password,
                key_filename=target.key_file, sock=sock, timeout=self._timeout,
                banner_timeout=self._timeout, auth_timeout=self._timeout,
                channel_timeout=self._timeout, allow_agent=False, look_for_keys=False,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self._timeout)
        except BaseException:
            client.close()
            sock.close()
            raise
        return _Connection(client, sftp)

    def _put(self, sftp: paramiko.SFTPClient, target: SftpTarget, document: Document,
             name: str, *, reused: bool) -> Evidence:
        final = posixpath.join(target.directory, name)
        try:
            existing = _stat_or_none(sftp, final)
        except (TimeoutError, EOFError, paramiko.SSHException, ConnectionError) as exc:
            if reused:
                raise _Stale() from exc
            raise
        evidence_target = target.display(name)
        replaced = None
        if existing is not None and existing.st_size == document.size:
            digest = _sha256_of(sftp, final)
            if digest == document.sha256:
                return _evidence(evidence_target, document, final, existing.st_size, True)
            replaced = digest
        elif existing is not None:
            replaced = f"size {existing.st_size}"
        temporary = posixpath.join(target.directory, temporary_name(name))
        sftp.putfo(io.BytesIO(document.content), temporary, file_size=document.size,
                   confirm=False)
        sftp.posix_rename(temporary, final)
        size = sftp.stat(final).st_size
        if size != document.size:
            raise DeliveryError(
                f"SFTP {evidence_target}: size read back is {size}, sent {document.size}",
                retryable=True,
            )
        return _evidence(evidence_target, document, final, size, False, replaced)

    def _drop(self, target: SftpTarget) -> None:
        connection = self._connections.pop(target, None)
        if connection is not None:
            connection.client.close()

    async def aclose(self) -> None:
        for target in list(self._connections):
            await asyncio.to_thread(self._drop, target)


def _stat_or_none(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPAttributes | None:
    try:
        return sftp.stat(path)
    except FileNotFoundError:
        return None


def _sha256_of(sftp: paramiko.SFTPClient, path: str) -> str:
    digest = hashlib.sha256()
    with sftp.open(path, "rb") as remote:
        remote.prefetch()
        for chunk in iter(lambda: remote.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _evidence(display: str, document: Document, path: str, size: int, present: bool,
              replaced: str | None = None) -> Evidence:
    remote: dict[str, object] = {"path": path, "size": size}
    if present:
        remote["note"] = "already present with the same sha256; nothing uploaded"
    if replaced:
        remote["replaced"] = replaced
    return Evidence(channel="sftp", target=display, sha256=document.sha256, size=document.size,
                    remote=remote, documents=(proof(document),), already_present=present)


def _mapped(exc: Exception, target: SftpTarget, name: str, password: str | None) -> DeliveryError:
    where = target.display(name)
    if isinstance(exc, paramiko.BadHostKeyException):
        text = (f"SFTP {target.hostport}: host key mismatch: the server presented "
                f"{exc.key.get_name()} {exc.key.fingerprint}, the configured host_key is "
                f"{exc.expected_key.fingerprint}; verify with the vendor before changing "
                "vendors[].ftp.host_key")
        retryable = False
    elif isinstance(exc, _UnknownHostKey):
        text = (f"SFTP {target.hostport}: the server offers no key of the configured host_key's "
                f"type (it offered {exc}); verify with the vendor and fix vendors[].ftp.host_key")
        retryable = False
    elif isinstance(exc, paramiko.AuthenticationException):
        text = (f"SFTP {target.hostport}: authentication rejected for user {target.username!r}"
                " (check key_file / password_env)")
        retryable = False
    elif isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EACCES:
        text = f"SFTP {where}: permission denied on the server ({exc})"
        retryable = False
    elif isinstance(exc, FileNotFoundError):
        text = f"SFTP {where}: directory {target.directory} does not exist on the server"
        retryable = False
    elif isinstance(exc, paramiko.SSHException | OSError | EOFError):
        text = f"SFTP {where}: {type(exc).__name__}: {exc}"
        retryable = True
    else:
        return unexpected_error(exc, what=f"SFTP {where}", secrets=[password])
    return delivery_error(text, retryable=retryable, cause=exc, secrets=[password])
