"""``/docs`` that works offline: Swagger UI's files served by this service.

FastAPI's own page loads Swagger UI from a CDN, which an offline machine (or a locked-down
network) cannot reach: the page stays blank. The ``swagger-ui-bundle`` package ships the
same files; they are served under ``/docs/assets/`` (no API key needed, like ``/docs``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from local files (create the app with ``docs_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
