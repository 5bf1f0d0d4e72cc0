"""The context of a dispatch run: database, settings, channels, this worker's name, lease and
clock, and its claim on the outbox. The work is done by ``send.send_group`` (one send) and
``run.run_due`` (the one run loop)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from dispatch.channels import ChannelSet
from dispatch.models import utcnow
from dispatch.settings import DispatchSettings
from dispatch.store import outbox
from dispatch.store.engine import transaction
from dispatch.vocabulary import JobStatus

P = ParamSpec("P")
R = TypeVar("R")

# The run loop's database steps run here, off the event loop: a commit waits for its round
# trip (on PostgreSQL, for the WAL flush), and while one send's commit waits the other sends
# go on. Their own threads, so they never queue behind renders in the default executor.
_DATABASE_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dispatch-db")


async def off_loop(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` (a blocking database step) on the database threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_DATABASE_THREADS, functools.partial(fn, *args, **kwargs))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def default_lease(settings: DispatchSettings) -> dt.timedelta:
    """Long enough for any one send (the lease is renewed before each attempt)."""
    return dt.timedelta(seconds=max(600.0, sum(settings.retry_delays) + 300.0))


@dataclass(frozen=True)
class OrderJobs:
    """One order's claimed jobs, in dispatch order (they are sent in that order)."""

    order_id: str
    job_ids: tuple[int, ...]


@dataclass
class Dispatcher:
    """Who dispatches, with what. ``channels`` belong to one event loop: whoever makes the
    Dispatcher closes them (``async with ChannelSet(...)``)."""

    engine: Engine
    settings: DispatchSettings
    channels: ChannelSet
    worker: str = field(default_factory=worker_name)
    lease: dt.timedelta | None = None
    clock: Callable[[], dt.datetime] = utcnow  # naive UTC; tests pass a controllable one

    def __post_init__(self) -> None:
        if self.lease is None:
            self.lease = default_lease(self.settings)

    @property
    def lease_length(self) -> dt.timedelta:
        assert self.lease is not None
        return self.lease

    def claim(self, *, limit: int, order_id: str | None = None) -> list[OrderJobs]:
        """Claim up to ``limit`` due jobs for this worker, grouped by order."""
        with transaction(self.engine) as conn:
            claimed = outbox.claim_jobs(conn, worker=self.worker, now=self.clock(),
                                        lease=self.lease_length, limit=limit,
                                        order_id=order_id)
        by_order: dict[str, list[int]] = {}
        for job_id, order in claimed:  # oldest job first
            by_order.setdefault(order, []).append(job_id)
        return [OrderJobs(order, tuple(ids)) for order, ids in by_order.items()]

    def release(self, job_id: int) -> JobStatus:
        """Give a job's claim back (Done, or due at its next attempt)."""
        with transaction(self.engine) as conn:
            return outbox.release_job(conn, job_id=job_id, worker=self.worker,
                                      now=self.clock())
