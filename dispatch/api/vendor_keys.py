"""Who may call what: ERP API keys everywhere but ``/vendor/``; under ``/vendor/`` only a
vendor's own response key (SPEC 8: the key says which vendor is speaking; ERP keys are not
accepted there, and vendor keys are not accepted on the ERP API).

A raw ASGI middleware like :class:`~dispatch.api.auth.ApiKeyMiddleware`, so a wrong key is a
401 before the body is read. A vendor key is the value of the environment variable named by
the vendor's ``responses.key_env``, read at each request (a ``dispatch load`` or a changed
variable takes effect at once). The vendor found goes to the endpoint as
``request.state.vendor_id``.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable, Iterable

import anyio.to_thread
from sqlalchemy import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatch.api.auth import ApiKeyMiddleware, send_unauthorized
from dispatch.store import responses as store
from dispatch.store.engine import reading

VENDOR_PREFIX = "/vendor/"
UNAUTHORIZED = json.dumps({
    "Message": "Authorization: missing or unknown vendor key",
    "Errors": ["Authorization: send 'Authorization: Bearer <key>' with the key your buyer "
               "configured for you (the variable named by responses.key_env)"],
}).encode()


def vendor_keys(engine: Engine, secrets: Callable[[str], str | None]) -> list[tuple[bytes, str]]:
    """(key, vendor id) of every vendor whose ``responses.key_env`` variable is set."""
    with reading(engine) as conn:
        vendors = store.response_vendors(conn)
    keys = []
    for vendor in vendors:
        name = vendor.responses.get("key_env")
        value = secrets(name) if isinstance(name, str) and name else None
        if value and value.strip():
            keys.append((value.strip().encode(), vendor.id))
    return keys


def match_vendor(presented: list[bytes], keys: Iterable[tuple[bytes, str]]) -> str | None:
    """The vendor whose key was presented (each key compared in constant time)."""
    found = None
    for candidate in presented:
        for key, vendor_id in keys:
            if candidate and hmac.compare_digest(candidate, key) and found is None:
                found = vendor_id
    return found


class KeyRouting:
    """ERP API keys outside ``/vendor/``, vendor response keys inside it."""

    def __init__(self, app: ASGIApp, *, keys: Iterable[str], engine: Engine,
                 secrets: Callable[[str], str | None] | None = None) -> None:
        self.app = app
        self.erp = ApiKeyMiddleware(app, keys=keys)
        self.engine = engine
        self.secrets = secrets or os.environ.get

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(VENDOR_PREFIX):
            await self.erp(scope, receive, send)
            return
        presented = [value[7:].strip() for name, value in scope["headers"]
                     if name == b"authorization" and value[:7].lower() == b"bearer "]
        vendor_id = None
        if presented:
            keys = await anyio.to_thread.run_sync(vendor_keys, self.engine, self.secrets)
            vendor_id = match_vendor(presented, keys)
        if vendor_id is not None:
            scope.setdefault("state", {})["vendor_id"] = vendor_id
            await self.app(scope, receive, send)
            return
        await send_unauthorized(scope, send, UNAUTHORIZED)
