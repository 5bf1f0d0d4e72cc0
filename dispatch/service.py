"""Wiring: settings -> engine -> request executor -> API app (the ``serve`` process)."""

from __future__ import annotations

from fastapi import FastAPI

from dispatch.api.app import create_app
from dispatch.executor import RequestExecutor
from dispatch.settings import DispatchSettings
from dispatch.store.engine import make_engine


def build_service(settings: DispatchSettings, *, dispatch: bool = True) -> FastAPI:
    """The ERP API with its request executor (``dispatch`` is for the embedded dispatcher)."""
    engine = make_engine(settings.database_url)
    executor = RequestExecutor(engine, batch_size=settings.request_batch_size,
                               poll_seconds=settings.request_poll_seconds)
    return create_app(settings, engine=engine, executor=executor)
