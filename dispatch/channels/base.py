"""What every channel shares: the DeliveryChannel protocol, Envelope in, Evidence out, helpers.

A channel delivers bytes it is given (it never renders) to one vendor target and proves it:
:class:`Evidence` carries the hash and size of the exact bytes, the target (never a secret)
and what the remote side answered. Failures raise :class:`~dispatch.errors.DeliveryError`
with ``retryable`` set; a channel never returns False and never sleeps to retry.

Secrets (passwords, API keys) are looked up by environment-variable *name* through an
injectable :data:`SecretResolver` (default ``os.environ.get``) at the moment of use.
:func:`secret_problem` says why a value cannot be carried (control characters anywhere;
non-ASCII in an HTTP header), so it is refused naming the variable, never the value.
:func:`error_text` is the one way an exception becomes text (error messages, log lines,
delivery rows): it goes through :func:`redact`, which removes every form of each secret
(raw, stripped, ``repr``/``ascii``/bytes-repr escaped, JSON-escaped, URL-quoted).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import traceback as traceback_module
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import quote as quote_url

from dispatch.documents.base import Document
from dispatch.errors import DeliveryError, DispatchError

log = logging.getLogger("dispatch.channels")

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
class DeliveryChannel(Protocol):
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


def secret_problem(value: str, *, header: bool = False) -> str | None:
    """Why a protocol cannot carry secret ``value``, in words that never quote it; else None.

    Control characters (C0, DEL, C1) end or split a protocol line (FTP ``PASS``, an HTTP
    header, SMTP AUTH) and are refused everywhere; ``header``: the value goes into an HTTP
    header, which carries ASCII only.
    """
    for index, char in enumerate(value):
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            if index == len(value) - 1 and char in "\r\n":
                return ("ends with a line break (a secret read from a file keeps its newline?); "
                        "strip it")
            return (f"contains the control character U+{code:04X}; a protocol line cannot "
                    "carry it, set the secret without it")
        if header and code > 0x7E:
            return ("contains a non-ASCII character; an HTTP header carries ASCII only, "
                    "set an ASCII key")
    return None


def resolve_secret(secrets: SecretResolver, env_name: str | None, what: str, *,
                   header: bool = False) -> str | None:
    """The value of ``env_name`` or None when no name is configured.

    A configured but unset variable, or a value the protocol cannot carry (see
    :func:`secret_problem`; ``header``: it goes into an HTTP header), is a permanent error
    naming the variable (never the value).
    """
    if not env_name:
        return None
    value = secrets(env_name)
    if value is None or value == "":
        raise DeliveryError(
            f"{what}: environment variable {env_name} is not set; set it to the secret",
            retryable=False,
        )
    problem = secret_problem(value, header=header)
    if problem is not None:
        raise DeliveryError(f"{what}: the value of environment variable {env_name} {problem}",
                            retryable=False)
    return value


_PLAIN_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _str_escaped(text: str, quote: str, *, ascii_only: bool) -> str:
    """``text`` as inside ``repr()`` (``ascii_only``: ``ascii()``) quoted with ``quote``."""
    out = []
    for char in text:
        code = ord(char)
        if char in _PLAIN_ESCAPES:
            out.append(_PLAIN_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif (ascii_only and code > 0x7E) or not char.isprintable():
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def _bytes_escaped(data: bytes, quote: str) -> str:
    """``data`` as inside a bytes ``repr()`` (``b'...'``) quoted with ``quote``."""
    out = []
    for byte in data:
        char = chr(byte)
        if char in _PLAIN_ESCAPES:
            out.append(_PLAIN_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


@functools.lru_cache(maxsize=256)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every spelling of ``secret`` an error or log text may hold, longest first.

    The value as is and stripped of surrounding whitespace; each as inside ``repr()``,
    ``ascii()`` and the ``repr()`` of its UTF-8 and Latin-1 bytes, with either quote
    escaped; JSON-escaped (ASCII or not); percent-encoded.
    """
    forms: set[str] = set()
    for value in {secret, secret.strip()}:
        if not value:
            continue
        forms.add(value)
        for quote in ("'", '"'):
            forms.add(_str_escaped(value, quote, ascii_only=False))
            forms.add(_str_escaped(value, quote, ascii_only=True))
            for encoding in ("utf-8", "latin-1"):
                try:
                    forms.add(_bytes_escaped(value.encode(encoding), quote))
                except UnicodeEncodeError:
                    pass
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.add(quote_url(value, safe=""))
        forms.add(quote_url(value.encode("utf-8", "surrogatepass"), safe=""))
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of every secret (see :func:`secret_forms`) replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                if form in text:
                    text = text.replace(form, "***")
    return text


def error_text(exc: BaseException, *, secrets: Iterable[str | None] = (),
               traceback: bool = False) -> str:
    """The one way an exception becomes text that leaves the process, secrets redacted.

    ``"Type: message"`` (just the message for the package's own errors, which are written
    to be read); ``traceback``: the whole formatted chain instead (causes included), for a
    log. Use it wherever an unexpected exception is turned into an error, a log line or a
    record: the library's text may quote a secret in any escaping.
    """
    secrets = tuple(secrets)
    if traceback:
        text = "".join(traceback_module.format_exception(exc))
    else:
        try:
            message = str(exc)
        except Exception:  # a broken __str__ must not hide the failure it describes
            message = "(message not printable)"
        if isinstance(exc, DispatchError):
            text = message
        else:
            text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return redact(text, secrets)


def target_secrets(target: Any, *, settings: Any = None,
                   secrets: SecretResolver | None = None) -> tuple[str, ...]:
    """The secret values a send to ``target`` may carry, for :func:`error_text`: the value of
    every ``*_env`` variable the target names (``api_key_env``, ``password_env``…) and the
    SMTP password of ``settings``. Unset variables are skipped."""
    resolve = secrets or default_secrets()
    fields = target.model_dump() if hasattr(target, "model_dump") else vars(target)
    values = [resolve(name) for key, name in fields.items()
              if key.endswith("_env") and isinstance(name, str) and name]
    password = getattr(settings, "smtp_password", None)
    if password is not None:
        values.append(password.get_secret_value())
    return tuple(value for value in values if value)


class RedactedCause(Exception):
    """Stands in for a library exception whose text held a secret: its redacted text and
    its traceback, so a chained traceback (logs, Prefect) still shows where it failed."""


def delivery_error(message: str, *, retryable: bool, cause: BaseException | None = None,
                   secrets: Iterable[str | None] = ()) -> DeliveryError:
    """A DeliveryError whose message and chained cause carry no form of ``secrets``.

    The cause is kept as is when no secret appears anywhere in its formatted chain, else
    replaced by a :class:`RedactedCause`. Raise the result *outside* the ``except`` block
    that caught ``cause`` (Python would chain the raw exception as ``__context__``).
    """
    secrets = tuple(s for s in secrets if s)
    error = DeliveryError(redact(message, secrets), retryable=retryable)
    if cause is not None:
        if secrets:
            full = "".join(traceback_module.format_exception(cause))
            if redact(full, secrets) != full:
                stand_in = RedactedCause(error_text(cause, secrets=secrets))
                cause = stand_in.with_traceback(cause.__traceback__)
        error.__cause__ = cause
    return error


def unexpected_error(exc: BaseException, *, what: str,
                     secrets: Iterable[str | None] = ()) -> DeliveryError:
    """An exception no mapping foresaw (a bug, an unmapped library error) as a retryable
    DeliveryError; its redacted traceback is logged, since nobody expected it."""
    secrets = tuple(secrets)
    log.error("%s: unexpected error\n%s", what,
              error_text(exc, secrets=secrets, traceback=True))
    return delivery_error(f"{what}: unexpected {error_text(exc, secrets=secrets)}",
                          retryable=True, cause=exc, secrets=secrets)


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
    ``_mapped`` (which builds its error with :func:`delivery_error`, the password redacted).
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
                error = self._mapped(exc, file_target, name, password)
        raise error  # outside the except: the raw exception must not ride along as context
