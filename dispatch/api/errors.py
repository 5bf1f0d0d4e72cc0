"""Error answers: every 4xx body names the field (path) it is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError


def field_path(loc: Sequence[Any]) -> str:
    """('body', 'PurchaseOrderItems', 0, 'TotalQuantity') -> PurchaseOrderItems[0].TotalQuantity"""
    parts = [p for p in loc if p not in ("body", "query", "header", "path")]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def describe(errors: Sequence[Any]) -> list[str]:
    messages = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            messages.append(f"body: not valid JSON ({err.get('msg', '')}); send a JSON object")
            continue
        path = field_path(loc)
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
