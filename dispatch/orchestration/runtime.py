"""The process's settings and engine, for code that Prefect calls by name (flows).

Flow parameters must be plain JSON, so a flow cannot be handed an engine. A process that
owns one (``dispatch serve``, a test) installs it; a Prefect worker process builds it once
from the ``DISPATCH_*`` environment on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from dispatch.channels import ChannelSet
from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.settings import DispatchSettings, load_settings
from dispatch.store.engine import make_engine


@dataclass(frozen=True)
class Runtime:
    """What flows run with in this process. ``make_dispatcher`` builds each run's
    :class:`Dispatcher` from the run's channels (tests pass one that wraps channels or
    claims; the product uses the plain class)."""

    settings: DispatchSettings
    engine: Engine
    make_dispatcher: Callable[..., Dispatcher] = Dispatcher

    def dispatcher(self, channels: ChannelSet) -> Dispatcher:
        return self.make_dispatcher(self.engine, self.settings, channels)


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
