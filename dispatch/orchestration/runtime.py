"""The process's settings and engine, for code that Prefect calls by name (flows).

Flow parameters must be plain JSON, so a flow cannot be handed an engine. A process that
owns one (``dispatch serve``, a test) installs it; a Prefect worker process builds it once
from the ``DISPATCH_*`` environment on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from dispatch.settings import DispatchSettings, load_settings
from dispatch.store.engine import make_engine


@dataclass(frozen=True)
class Runtime:
    settings: DispatchSettings
    engine: Engine


_lock = threading.Lock()
_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one flows use in this process (None: back to the environment)."""
    global _current
    with _lock:
        _current = runtime


def current() -> Runtime:
    global _current
    with _lock:
        if _current is None:
            settings = load_settings()
            _current = Runtime(settings, make_engine(settings.database_url))
        return _current
