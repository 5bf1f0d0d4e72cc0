"""Wiring: settings -> engine -> request executor -> API app (the ``serve`` process)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI

from dispatch.api.app import create_app
from dispatch.erp.executor import RequestExecutor
from dispatch.orchestration import runtime
from dispatch.orchestration.embedded import EmbeddedDispatcher, EventAnnouncer
from dispatch.settings import DispatchSettings
from dispatch.store.engine import make_engine

log = logging.getLogger("dispatch.service")


def build_service(settings: DispatchSettings, *, dispatch: bool = True) -> FastAPI:
    """The ERP API with its request executor and, with ``dispatch``, the embedded
    dispatcher; without it, dispatch jobs are announced to Prefect as events."""
    engine = make_engine(settings.database_url)
    rt = runtime.Runtime(settings, engine)
    runtime.install(rt)
    embedded = EmbeddedDispatcher(rt) if dispatch else None
    if embedded is not None:
        on_jobs = embedded.notify
    elif os.environ.get("PREFECT_API_URL"):
        on_jobs = EventAnnouncer()
    else:
        log.warning("--no-dispatch without PREFECT_API_URL: dispatch jobs wait in the outbox "
                    "for `dispatch dispatch-pending` or a scheduled dispatch-pending run")
        on_jobs = None
    executor = RequestExecutor(engine, batch_size=settings.request_batch_size,
                               poll_seconds=settings.request_poll_seconds, on_jobs=on_jobs)

    @contextlib.asynccontextmanager
    async def dispatching(_app: FastAPI) -> AsyncIterator[None]:
        if embedded is not None:
            embedded.start()
        try:
            yield
        finally:
            if embedded is not None:
                embedded.stop()

    app = create_app(settings, engine=engine, executor=executor, extra_lifespan=dispatching)
    app.state.embedded = embedded
    return app
