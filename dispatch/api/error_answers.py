"""Error answers: every 4xx body names the field (path) it is about."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

LOCATIONS = ("body", "query", "header", "path", "cookie")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def field_path(loc: Sequence[Any], *, located: bool = False) -> str:
    """('PurchaseOrderItems', 0, 'TotalQuantity') -> PurchaseOrderItems[0].TotalQuantity

    A key that is not an identifier is quoted, so the path stays unambiguous:
    ``SendOptions["x-odd key"]``. ``located``: ``loc`` starts with FastAPI's location
    ('body', 'query', ...), which is dropped; a field that happens to be *named* "body" is not.
    """
    parts = list(loc)
    if located and parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif IDENTIFIER.fullmatch(str(part)):
            text += ("." if text else "") + str(part)
        else:
            text += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return text or "body"


def describe(errors: Sequence[Any], *, located: bool = False) -> list[str]:
    messages = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            messages.append(f"body: not valid JSON ({err.get('msg', '')}); send a JSON object")
            continue
        path = field_path(loc, located=located)
        msg = err.get("msg", "invalid")
        if kind == "extra_forbidden":
            msg = "unknown field; remove it (see the schema at /openapi.json)"
        elif kind == "model_type" and path == "body":
            msg = "must be a JSON object"
        messages.append(f"{path}: {msg}")
    return messages


def error_response(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"Message": messages[0], "Errors": list(messages)}, status_code=status)


def shape_error_response(exc: ValidationError) -> JSONResponse:
    messages = describe(exc.errors(include_url=False, include_input=False))
    return JSONResponse(
        {"Message": f"Invalid request shape ({len(messages)} problem(s)); nothing was recorded",
         "Errors": messages},
        status_code=422)
