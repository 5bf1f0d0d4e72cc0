"""What every channel shares: the Channel protocol, Envelope in, Evidence out, and helpers.

A channel delivers bytes it is given (it never renders) to one vendor target and proves it:
:class:`Evidence` carries the hash and size of the exact bytes, the target (never a secret)
and what the remote side answered. Failures raise :class:`~dispatch.errors.DeliveryError`
with ``retryable`` set; a channel never returns False and never sleeps to retry.

Secrets (passwords, API keys) are looked up by environment-variable *name* through an
injectable :data:`SecretResolver` (default ``os.environ.get``) at the moment of use, and
:func:`redact` scrubs them from any text that leaves a channel.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from dispatch.documents.base import Document
from dispatch.errors import DeliveryError

SecretResolver = Callable[[str], str | None]
"""Maps an environment-variable name to its value (None when unset)."""

DEFAULT_TIMEOUT = 30.0
REMOTE_TEXT_LIMIT = 500


def default_secrets() -> SecretResolver:
    """The process environment, read at the moment a secret is needed."""
    return os.environ.get


@dataclass(frozen=True)
class Envelope:
    """Identifies one delivery: its durable idempotency key and the dispatch it belongs to.

    ``idempotency_key`` is written before the first attempt and reused on every retry: the
    ``Idempotency-Key`` header (B2B) and the source of the email ``Message-ID``. File
    channels use the document's own name, which is stable per dispatch.
    """

    idempotency_key: str
    order_id: str = ""
    kind: str = "purchase"  # purchase | change | cancellation
    version: int = 1
    message_id: str | None = None  # email; None derives it from idempotency_key


@dataclass(frozen=True)
class DocumentProof:
    """Hash and size of one document carried by a delivery."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Evidence:
    """Proof of one delivery (SPEC 7): the caller records ``Delivered`` only with this.

    ``sha256``/``size`` describe the exact bytes sent as one unit: the file (FTP/SFTP), the
    JSON body (B2B), the whole RFC 5322 message (email). ``documents`` lists each document
    carried (one for files and B2B; every attachment for email). ``remote`` is what the
    other side said: SMTP reply and Message-ID; path and size read back; HTTP status and
    the answer body truncated to ~500 characters. ``already_present`` is True when the
    target already held the same bytes and nothing was sent.
    """

    channel: str
    target: str
    sha256: str
    size: int
    remote: Mapping[str, Any]
    documents: tuple[DocumentProof, ...] = ()
    already_present: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for a delivery row or a Prefect artifact."""
        return {
            "channel": self.channel,
            "target": self.target,
            "sha256": self.sha256,
            "size": self.size,
            "remote": dict(self.remote),
            "documents": [vars(d) for d in self.documents],
            "already_present": self.already_present,
        }


@runtime_checkable
class Channel(Protocol):
    """One delivery protocol. Implementations live one per module; see ``registry``."""

    keys: ClassVar[tuple[str, ...]]

    async def send(
        self, target: Any, documents: Sequence[Document], envelope: Envelope
    ) -> Evidence:
        """Deliver ``documents`` to ``target``; raise DeliveryError(retryable=...) on failure."""
        ...

    async def aclose(self) -> None:
        """Close every connection this channel keeps open."""
        ...


def proof(document: Document) -> DocumentProof:
    return DocumentProof(name=document.name, sha256=document.sha256, size=document.size)


def single_document(documents: Sequence[Document], channel: str) -> Document:
    """File and B2B channels deliver exactly one document per call."""
    if len(documents) != 1:
        raise ValueError(f"{channel} delivers exactly one document per send, got {len(documents)}")
    return documents[0]


def checked_file_name(name: str) -> str:
    """A document name usable as a remote file name: no path parts, not hidden."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise DeliveryError(
            f"document name {name!r} cannot be a remote file name "
            "(no '/', '\\' or leading '.'); fix the document naming",
            retryable=False,
        )
    return name


def temporary_name(name: str) -> str:
    """The hidden name a file is uploaded under before the rename.

    Deterministic, so a retry overwrites its own leftover instead of piling them up.
    """
    return f".{name}.part"


def resolve_secret(secrets: SecretResolver, env_name: str | None, what: str) -> str | None:
    """The value of ``env_name`` or None when no name is configured.

    A configured but unset variable is a permanent error naming the variable (never a value).
    """
    if not env_name:
        return None
    value = secrets(env_name)
    if value is None or value == "":
        raise DeliveryError(
            f"{what}: environment variable {env_name} is not set; set it to the secret",
            retryable=False,
        )
    return value


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret value occurring in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def truncate(text: str, limit: int = REMOTE_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def connect_tcp(host: str, port: int, timeout: float) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY (no 40 ms Nagle/delayed-ACK stalls)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock



class ThreadedFileChannel:
    """``send`` shared by the file channels, whose libraries block (ftplib, paramiko).

    One lock per target (a connection carries one transfer at a time), the blocking work in
    a thread, and any library error mapped to a DeliveryError after the (possibly broken)
    connection is dropped. Subclasses provide ``_target_of``, ``_deliver``, ``_drop`` and
    ``_mapped``.
    """

    label: ClassVar[str]
    _secrets: SecretResolver
    _locks: dict[Any, asyncio.Lock]

    def _target_of(self, vendor: Any) -> Any:
        raise NotImplementedError

    def _deliver(self, target: Any, password: str | None, document: Document,
                 name: str) -> Evidence:
        raise NotImplementedError

    def _drop(self, target: Any) -> None:
        raise NotImplementedError

    def _mapped(self, exc: Exception, target: Any, name: str,
                password: str | None) -> DeliveryError:
        raise NotImplementedError

    async def send(self, target: Any, documents: Sequence[Document], envelope: Envelope
                   ) -> Evidence:
        document = single_document(documents, self.label)
        name = checked_file_name(document.name)
        file_target = self._target_of(target)
        password = resolve_secret(self._secrets, file_target.password_env,
                                  f"{self.label} {file_target.hostport}")
        lock = self._locks.setdefault(file_target, asyncio.Lock())
        async with lock:
            try:
                return await asyncio.to_thread(self._deliver, file_target, password, document,
                                               name)
            except DeliveryError:
                raise
            except Exception as exc:
                self._drop(file_target)
                raise self._mapped(exc, file_target, name, password) from exc
