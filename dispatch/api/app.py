"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.api.docs_page import add_offline_docs
from dispatch.api.error_answers import describe
from dispatch.api.limits import LINE_KEY, RequestLimits
from dispatch.api.order_responses import router as order_responses
from dispatch.api.purchase_orders import router as purchase_orders
from dispatch.api.vendor_keys import KeyRouting
from dispatch.erp.executor import RequestExecutor
from dispatch.erp.schemas import REQUEST_MODELS
from dispatch.errors import SettingsError
from dispatch.reference_data import vendor_secret_problems
from dispatch.settings import DispatchSettings
from dispatch.store.engine import reading
from dispatch.store.reference import read_vendors


def create_app(
    settings: DispatchSettings,
    *,
    engine: Engine,
    executor: RequestExecutor,
    run_executor: bool = True,
    extra_lifespan: Any = None,
    secrets: Callable[[str], str | None] | None = os.environ.get,
) -> FastAPI:
    """Build the ERP API. ``run_executor`` starts the request executor with the app.

    Raises:
        SettingsError: a stored vendor names a secret variable (``*_env``) that is set to a
            value no protocol can carry (SPEC 9: refused at start-up, naming the variable).
            ``secrets`` reads the variables (None skips the check).
    """
    if engine is not None and secrets is not None:
        check_vendor_secrets(engine, secrets)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_executor:
            executor.start()
        try:
            if extra_lifespan is not None:
                async with extra_lifespan(_app):
                    yield
            else:
                yield
        finally:
            if run_executor:
                executor.stop()
            executor.close_files()

    app = FastAPI(
        title="dispatch ERP PurchaseOrder API",
        version="1.0",
        description="Seed 004 ERP interface. Every endpoint needs an API key: "
        "`Authorization: Bearer <key>` or `X-Api-Key: <key>`.",
        lifespan=lifespan,
        docs_url=None,  # served from local files: add_offline_docs
    )
    add_offline_docs(app)
    app.state.engine = engine
    app.state.executor = executor
    app.state.settings = settings
    app.include_router(purchase_orders)
    app.include_router(order_responses)  # SPEC 8: /vendor/, vendor keys (KeyRouting)

    @app.exception_handler(RequestValidationError)
    async def _shape(_request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = describe(exc.errors(), located=True)
        return JSONResponse({"Message": messages[0] if messages else "invalid request",
                             "Errors": messages}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (unknown path, wrong method) in the same shape as every other 4xx.
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = (f"method: {request.method} is not allowed on {request.url.path}"
                       + (f"; use {allowed}" if allowed else ""))
        elif exc.status_code == 404:
            message = f"path: no endpoint {request.url.path}; see /openapi.json"
        else:
            message = f"request: {exc.detail}"
        return JSONResponse({"Message": message, "Errors": [message]},
                            status_code=exc.status_code, headers=exc.headers)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"Status": "ok"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in REQUEST_MODELS.values():
                _add_schema(components, model)
            for name in ("CreateRequest", "UpdateQuantityRequest"):
                items = components.get(name, {}).get("properties", {}).get(LINE_KEY)
                if items is not None:  # DISPATCH_MAX_LINES, documented where clients look
                    items["maxItems"] = settings.max_lines
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Added first, so it runs inside the key check: a wrong key is 401 before any limit.
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes,
                       max_lines=settings.max_lines, client_timeout=settings.client_timeout)
    app.add_middleware(KeyRouting, keys=settings.api_key_values(), engine=engine,
                       secrets=secrets)  # ERP keys; under /vendor/ a vendor's own key
    return app


def check_vendor_secrets(engine: Engine, secrets: Callable[[str], str | None]) -> None:
    """Refuse to start when a stored vendor's secret variable holds an uncarriable value."""
    with reading(engine) as conn:
        rows = read_vendors(conn)
    problems: list[str] = []
    for row in rows:
        vendor = {**(row.extra or {}), "b2b": row.b2b, "ftp": row.ftp, "email": row.email}
        problems += vendor_secret_problems(f"vendor {row.id}", vendor, secrets)
    if problems:
        raise SettingsError("secrets no protocol can carry; fix these variables and start "
                            "again:\n  " + "\n  ".join(problems))


def _add_schema(components: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = schema
