"""API-key check as a raw ASGI middleware, so a request without a valid key is refused
(401) before its body is even read or parsed."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/health"})
UNAUTHORIZED = json.dumps({
    "Message": "Authorization: missing or wrong API key",
    "Errors": ["Authorization: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>' "
               "with a key listed in DISPATCH_API_KEYS"],
}).encode()


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, keys: Iterable[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]

    def _valid(self, presented: bytes) -> bool:
        if not presented:
            return False
        ok = False
        for key in self.keys:  # compare against all: no timing hint of which key matched
            ok |= hmac.compare_digest(presented, key)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] in PUBLIC_PATHS
                or scope["path"].startswith("/docs/assets/")):
            await self.app(scope, receive, send)
            return
        # Every credential sent counts (not just the last header): a valid bearer token next
        # to an empty X-Api-Key is accepted whatever the header order.
        presented = []
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                presented.append(value.strip())
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                presented.append(value[7:].strip())
        if any([self._valid(candidate) for candidate in presented]):
            await self.app(scope, receive, send)
            return
        await send_unauthorized(scope, send, UNAUTHORIZED)


async def send_unauthorized(scope: Scope, send: Send, body: bytes) -> None:
    """The 401 answer, without reading the request body: a request that has one is closed
    rather than read and discarded (a 300 MB POST)."""
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"www-authenticate", b"Bearer")]
    if _has_body(scope["headers"]):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
