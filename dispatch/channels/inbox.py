"""A vendor's response inbox (SPEC 8 "Files"): list, read and move files over SFTP or FTP(S).

The inbox is the folder of the vendor's ``responses.inbox`` URL, reached with the
credentials, host key and CA file of its ``ftp:`` entry. Connecting is the channels' own
code (:class:`~dispatch.channels.sftp.SftpChannel` and
:class:`~dispatch.channels.ftp.FtpChannel` ``_connect``: host key checked with
``RejectPolicy`` semantics, certificates verified, TCP_NODELAY, session reuse for vsftpd),
and library errors are mapped by the same functions, so an inbox fails with the words a
delivery would (``host key mismatch…``, ``login rejected…``), never quoting a password.

Only plain, visible files directly in the folder are listed (a vendor's hidden
``.name.part`` upload is not finished yet). A file leaves the folder by a rename into
``processed/`` or ``failed/`` beside it (created when missing); the caller picks a final
name that is not taken (:meth:`Inbox.exists`), so no earlier file is overwritten.
"""

from __future__ import annotations

import ftplib
import io
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import paramiko

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    SecretResolver,
    default_secrets,
    resolve_secret,
)
from dispatch.channels.ftp import BLOCK_SIZE, FtpChannel, FtpTarget, _size_or_none
from dispatch.channels.ftp import _mapped as ftp_mapped
from dispatch.channels.sftp import SftpChannel, SftpTarget, _stat_or_none
from dispatch.channels.sftp import _mapped as sftp_mapped
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp

PROCESSED = "processed"
FAILED = "failed"


@dataclass(frozen=True)
class InboxFile:
    name: str
    size: int | None  # None: the server did not say


class TooLarge(Exception):
    """The file is larger than the limit; nothing past the limit was read."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class Inbox(Protocol):
    """One open inbox folder (blocking calls: run them in a worker thread)."""

    display: str

    def files(self) -> list[InboxFile]: ...

    def read(self, name: str, *, limit: int) -> bytes:
        """The file's bytes; :class:`TooLarge` past ``limit`` bytes."""
        ...

    def put(self, folder: str, name: str, data: bytes) -> str:
        """Write ``data`` as ``folder/name`` (replacing it); returns the path."""
        ...

    def exists(self, folder: str, name: str) -> bool:
        """Whether ``folder/name`` is taken."""
        ...

    def move(self, name: str, folder: str, final: str) -> str:
        """Rename ``name`` to ``folder/final`` (``folder`` created when missing)."""
        ...


def inbox_target(ftp: VendorFtp, inbox_url: str) -> VendorFtp:
    """The inbox URL with the ``ftp:`` entry's credentials, host key and extra keys."""
    fields: dict[str, Any] = ftp.model_dump(exclude_none=True)
    fields["url"] = inbox_url
    return VendorFtp(**fields)


@contextmanager
def open_inbox(ftp: VendorFtp, inbox_url: str, *, secrets: SecretResolver | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Iterator[Inbox]:
    """Connect to the vendor's inbox folder; DeliveryError (mapped, redacted) on failure."""
    vendor = inbox_target(ftp, inbox_url)
    resolver = secrets or default_secrets()
    if vendor.scheme == "sftp":
        sftp_target = SftpTarget.from_vendor(vendor)
        password = resolve_secret(resolver, sftp_target.password_env,
                                  f"SFTP {sftp_target.hostport}")
        sftp_channel = SftpChannel(secrets=resolver, timeout=timeout)
        try:
            connection = sftp_channel._connect(sftp_target, password)
        except DeliveryError:
            raise
        except Exception as exc:
            error = sftp_mapped(exc, sftp_target, "", password)
        else:
            try:
                yield _Guarded(SftpInbox(connection.sftp, sftp_target), sftp_mapped,
                               sftp_target, password)
            finally:
                connection.client.close()
            return
        raise error
    ftp_target = FtpTarget.from_vendor(vendor)
    password = resolve_secret(resolver, ftp_target.password_env, f"FTP {ftp_target.hostport}")
    ftp_channel = FtpChannel(secrets=resolver, timeout=timeout)
    try:
        client = ftp_channel._connect(ftp_target, password)
    except Exception as exc:
        ftp_error = ftp_mapped(exc, ftp_target, "", password)
    else:
        try:
            yield _Guarded(FtpInbox(client, ftp_target), ftp_mapped, ftp_target, password)
        finally:
            client.close()
        return
    raise ftp_error


class _Guarded:
    """An inbox whose library errors become the channel's DeliveryError (redacted)."""

    def __init__(self, inner: Any, mapped: Any, target: Any, password: str | None) -> None:
        self._inner, self._mapped, self._target, self._password = inner, mapped, target, password
        self.display = inner.display

    def _call(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._inner, method)(*args, **kwargs)
        except (DeliveryError, TooLarge):
            raise
        except Exception as exc:
            error = self._mapped(exc, self._target, name, self._password)
        raise error

    def files(self) -> list[InboxFile]:
        return self._call("files", "")  # type: ignore[no-any-return]

    def read(self, name: str, *, limit: int) -> bytes:
        return self._call("read", name, name, limit=limit)  # type: ignore[no-any-return]

    def put(self, folder: str, name: str, data: bytes) -> str:
        return self._call("put", name, folder, name, data)  # type: ignore[no-any-return]

    def exists(self, folder: str, name: str) -> bool:
        return self._call("exists", name, folder, name)  # type: ignore[no-any-return]

    def move(self, name: str, folder: str, final: str) -> str:
        return self._call("move", name, name, folder, final)  # type: ignore[no-any-return]


def _visible(name: str) -> bool:
    return bool(name) and not name.startswith(".") and "/" not in name


class SftpInbox:
    def __init__(self, sftp: paramiko.SFTPClient, target: SftpTarget) -> None:
        self._sftp, self._target = sftp, target
        self.display = target.display()

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._target.directory, *parts)

    def files(self) -> list[InboxFile]:
        entries = self._sftp.listdir_attr(self._target.directory)
        return sorted((InboxFile(e.filename, e.st_size) for e in entries
                       if _visible(e.filename) and e.st_mode is not None
                       and stat.S_ISREG(e.st_mode)), key=lambda f: f.name)

    def read(self, name: str, *, limit: int) -> bytes:
        path = self._path(name)
        size = self._sftp.stat(path).st_size or 0
        if size > limit:
            raise TooLarge(size)
        out = io.BytesIO()
        with self._sftp.open(path, "rb") as remote:
            remote.prefetch(size)
            while chunk := remote.read(BLOCK_SIZE):
                out.write(chunk)
                if out.tell() > limit:  # it grew while we read
                    raise TooLarge(out.tell())
        return out.getvalue()

    def _folder(self, folder: str) -> str:
        path = self._path(folder)
        if _stat_or_none(self._sftp, path) is None:
            self._sftp.mkdir(path)
        return path

    def put(self, folder: str, name: str, data: bytes) -> str:
        path = posixpath.join(self._folder(folder), name)
        temporary = posixpath.join(self._path(folder), f".{name}.part")
        self._sftp.putfo(io.BytesIO(data), temporary, file_size=len(data), confirm=False)
        self._sftp.posix_rename(temporary, path)
        return path

    def exists(self, folder: str, name: str) -> bool:
        return _stat_or_none(self._sftp, self._path(folder, name)) is not None

    def move(self, name: str, folder: str, final: str) -> str:
        path = posixpath.join(self._folder(folder), final)
        self._sftp.posix_rename(self._path(name), path)
        return path


class FtpInbox:
    def __init__(self, ftp: ftplib.FTP, target: FtpTarget) -> None:
        self._ftp, self._target = ftp, target
        self.display = target.display()

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._target.directory or "/", *parts)

    def _binary(self) -> None:
        """Listing switches to TYPE A (ftplib's retrlines); SIZE needs TYPE I."""
        self._ftp.voidcmd("TYPE I")

    def files(self) -> list[InboxFile]:
        directory = self._path()
        try:
            entries = list(self._ftp.mlsd(directory, facts=["type", "size"]))
        except ftplib.error_perm as exc:  # no MLSD (vsftpd): names, then SIZE tells files
            if not str(exc).startswith(("500", "501", "502")):
                raise
            found = []
            names = self._ftp.nlst(directory)
            self._binary()
            for path in names:
                name = posixpath.basename(path)
                if _visible(name):
                    size = _size_or_none(self._ftp, self._path(name))  # 550 for a folder
                    if size is not None:
                        found.append(InboxFile(name, size))
            return sorted(found, key=lambda f: f.name)
        self._binary()
        return sorted((InboxFile(name, int(facts["size"]) if "size" in facts else None)
                       for name, facts in entries
                       if facts.get("type") == "file" and _visible(name)),
                      key=lambda f: f.name)

    def read(self, name: str, *, limit: int) -> bytes:
        path = self._path(name)
        size = self._ftp.size(path)
        if size is not None and size > limit:
            raise TooLarge(size)
        out = io.BytesIO()

        def take(chunk: bytes) -> None:
            out.write(chunk)
            if out.tell() > limit:  # it grew: stop here (the connection is dropped after)
                raise TooLarge(out.tell())

        try:
            self._ftp.retrbinary(f"RETR {path}", take, blocksize=BLOCK_SIZE)
        except TooLarge:
            try:  # the aborted transfer's reply (426 or 226), so the next command lines up
                self._ftp.getresp()
            except ftplib.Error:
                pass
            raise
        return out.getvalue()

    def _folder(self, folder: str) -> str:
        path = self._path(folder)
        try:
            self._ftp.mkd(path)
        except ftplib.error_perm as exc:
            if not str(exc).startswith("550"):  # 550: it exists (or we may not create it)
                raise
        return path

    def put(self, folder: str, name: str, data: bytes) -> str:
        path = posixpath.join(self._folder(folder), name)
        temporary = posixpath.join(self._path(folder), f".{name}.part")
        self._ftp.storbinary(f"STOR {temporary}", io.BytesIO(data), blocksize=BLOCK_SIZE)
        self._ftp.rename(temporary, path)
        return path

    def exists(self, folder: str, name: str) -> bool:
        try:
            return _size_or_none(self._ftp, self._path(folder, name)) is not None
        except ftplib.error_perm:
            return True  # SIZE refused for what is there (a folder?): treat it as taken

    def move(self, name: str, folder: str, final: str) -> str:
        path = posixpath.join(self._folder(folder), final)
        self._ftp.rename(self._path(name), path)
        return path
