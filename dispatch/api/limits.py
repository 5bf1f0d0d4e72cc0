"""Request limits (SPEC 9): what a hostile or careless client cannot make the service do.

:class:`RequestLimits` is a raw ASGI middleware that sits inside the API-key check (so a
wrong key is 401 before anything else) and before any endpoint:

- a body larger than ``DISPATCH_MAX_BODY_BYTES`` is refused with 413 *before* it is read:
  by its ``Content-Length``, or as soon as a chunked body passes the limit;
- a POST whose ``Content-Type`` is not what the path takes (JSON under ``/ERP/``, XML
  under ``/vendor/``) gets 415;
- a body that is not in within ``DISPATCH_CLIENT_TIMEOUT`` gets 408 and the connection is
  closed; a client that goes away is let go without a traceback;
- a JSON object with a duplicate key gets 422 naming the key (JSON allows it, and a parser
  silently keeping the last value hides a client bug);
- ``PurchaseOrderItems`` longer than ``DISPATCH_MAX_LINES`` gets 422 naming the limit.

Refusals close the connection (``Connection: close``): the unread rest of the body is never
read. The endpoint then gets the body already buffered (at most the limit).

Headers are below ASGI: :func:`server_options` gives uvicorn a protocol class that closes a
connection whose request headers are not complete within the timeout, or grow past
:data:`MAX_HEADER_BYTES` (httptools, unlike h11, sets no bound of its own).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch.settings import DispatchSettings

log = logging.getLogger("dispatch.api.limits")

MAX_HEADER_BYTES = 64 * 1024
JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")
# Path prefix -> media types a POST there may carry (first match wins).
MEDIA_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/ERP/", JSON_TYPES),
    ("/vendor/", XML_TYPES),
)
LINE_KEY = "PurchaseOrderItems"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def answer(status: int, *messages: str, close: bool = True) -> tuple[Message, Message]:
    """The two ASGI messages of a JSON error answer in the API's shape."""
    body = json.dumps({"Message": messages[0], "Errors": list(messages)}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


def media_type(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The ``Content-Type`` without parameters, lower case; None when absent."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return None


def _accepted(kind: str | None, allowed: tuple[str, ...]) -> bool:
    if kind is None:
        return False
    if kind in allowed:
        return True
    # RFC 6839 structured syntax suffixes: application/problem+json is JSON too.
    return any(kind.endswith("+" + a.split("/", 1)[1]) for a in allowed if "/" in a)


class DuplicateKey(ValueError):
    def __init__(self, path: str, key: str) -> None:
        super().__init__(f"{path}: duplicate key {json.dumps(key)}")
        self.path, self.key = path, key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DuplicateKey("", "")  # located by _locate_duplicate (the rare, slow path)
    return result


def _locate_duplicate(body: bytes) -> DuplicateKey:
    """Where the first duplicate key is, as a field path (``PurchaseOrderItems[3]``)."""

    class Pairs(list[tuple[str, Any]]):
        pass

    def walk(value: Any, path: str) -> DuplicateKey | None:
        if isinstance(value, Pairs):
            seen: set[str] = set()
            for key, item in value:
                if key in seen:
                    return DuplicateKey(path or "body", key)
                seen.add(key)
                found = walk(item, f"{path}.{key}" if path else key)
                if found is not None:
                    return found
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{path}[{index}]")
                if found is not None:
                    return found
        return None

    parsed = json.loads(body, object_pairs_hook=Pairs)
    return walk(parsed, "") or DuplicateKey("body", "?")


def json_problem(body: bytes, *, max_lines: int) -> tuple[int, str] | None:
    """(status, message) when a JSON body has a duplicate key or too many lines; else None.

    Malformed JSON is left to the endpoint, whose shape errors say what is wrong.
    """
    try:
        value = json.loads(body, object_pairs_hook=_unique_object)
    except DuplicateKey:
        found = _locate_duplicate(body)
        return 422, (f"{found.path}: duplicate key {json.dumps(found.key)} in a JSON object; "
                     "send each key once")
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict):
        lines = value.get(LINE_KEY)
        if isinstance(lines, list) and len(lines) > max_lines:
            return 422, (f"{LINE_KEY}: {len(lines)} entries; at most {max_lines} per request "
                         "(DISPATCH_MAX_LINES); split it into several requests")
    return None


class RequestLimits:
    """ASGI middleware enforcing body size, media type, body time, duplicate keys and lines."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_lines: int,
                 client_timeout: float,
                 media_types: tuple[tuple[str, tuple[str, ...]], ...] = MEDIA_TYPES) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_lines = max_lines
        self.timeout = client_timeout
        self.media_types = media_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        path: str = scope["path"]
        allowed = None
        if scope["method"] == "POST":  # other methods have no endpoint here: 405 says so
            allowed = next((types for prefix, types in self.media_types
                            if path.startswith(prefix)), None)
        kind = media_type(headers)
        if allowed is not None and not _accepted(kind, allowed):
            shown = f"Content-Type {kind}" if kind else "no Content-Type"
            await self._refuse(send, 415, f"body: {shown}; send {' or '.join(allowed)} "
                               f"(Content-Type: {allowed[0]}) to {path}")
            return
        length = _content_length(headers)
        if length is not None and length > self.max_body:
            await self._refuse(send, 413, self._too_large(length))
            return
        body = await self._read_body(receive, send)
        if body is None:
            return
        if allowed == JSON_TYPES and body:
            problem = json_problem(body, max_lines=self.max_lines)
            if problem is not None:
                await self._refuse(send, *problem)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering (too large, too slow) or a disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                log.info("request body not received within %.0f s "
                         "(DISPATCH_CLIENT_TIMEOUT); disconnecting", self.timeout)
                await self._refuse(send, 408, f"body: not received within {self.timeout:g} s "
                                   "(DISPATCH_CLIENT_TIMEOUT); send it at once")
                return None
            if message["type"] == "http.disconnect":
                log.info("client went away before its request body was complete")
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(send, 413, self._too_large(None))
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, length: int | None) -> str:
        got = f"{length} bytes" if length is not None else "more"
        return (f"body: {got}, at most {self.max_body} bytes (DISPATCH_MAX_BODY_BYTES); "
                "split the request")

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        start, body = answer(status, message)
        await send(start)
        await send(body)


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before us
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving the buffered body once, then the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# --- below ASGI: request headers ---------------------------------------------------------


def timed_protocol(base: type[asyncio.Protocol], *, header_timeout: float,
                   max_header_bytes: int = MAX_HEADER_BYTES) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol ``base`` (httptools or h11) that answers 408
    and closes a connection whose request headers are not complete within
    ``header_timeout`` seconds of its first byte (or of connecting), and 431 when they pass
    ``max_header_bytes``. Quietly: one log line, no traceback."""

    class TimedProtocol(base):  # type: ignore[valid-type,misc]
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _timed_cycle: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            waiting = self._header_timer is not None
            if waiting:
                self._header_bytes += len(data)
            super().data_received(data)
            cycle = getattr(self, "cycle", None)
            if waiting and cycle is not self._timed_cycle:
                self._disarm()  # this request's headers are complete
            elif waiting and self._header_bytes > max_header_bytes:
                self._give_up(431, "Request Header Fields Too Large",
                              f"request headers passed {max_header_bytes} bytes")
            elif not waiting and (cycle is None or cycle.response_complete):
                self._arm()  # a new request started arriving on a kept-alive connection
                self._header_bytes = len(data)

        def _arm(self) -> None:
            self._disarm()
            self._timed_cycle = getattr(self, "cycle", None)
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            self._header_bytes = 0

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            self._give_up(408, "Request Timeout", f"request headers not complete within "
                          f"{header_timeout:g} s (DISPATCH_CLIENT_TIMEOUT)")

        def _give_up(self, status: int, reason: str, why: str) -> None:
            self._disarm()
            transport = getattr(self, "transport", None)
            if transport is None or transport.is_closing():
                return
            log.info("%s: %s; disconnecting", _peer(transport), why)
            transport.write(f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n"
                            "connection: close\r\n\r\n".encode())
            transport.close()

    TimedProtocol.__name__ = TimedProtocol.__qualname__ = f"Timed{base.__name__}"
    return TimedProtocol


def _peer(transport: Any) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "client"


def http_protocol_base() -> type[asyncio.Protocol]:
    """uvicorn's fastest available HTTP protocol: httptools when installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def server_options(settings: DispatchSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that enforce the header part
    of ``DISPATCH_CLIENT_TIMEOUT`` and bound header size (the body part is
    :class:`RequestLimits`, installed by ``create_app``)."""
    return {
        "http": timed_protocol(http_protocol_base(), header_timeout=settings.client_timeout),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
