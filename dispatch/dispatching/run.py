"""The one run loop: claim due jobs, send them, until nothing is due.

Every caller runs this loop: both Prefect flows (which only wrap a step in a task and add
artifacts and logs), the embedded runner, ``dispatch dispatch-pending``, the benchmarks and
the tests. Orders run concurrently (``concurrency`` steps at once, each of up to
``orders_per_task`` orders); each order's jobs in order, so a cancellation never overtakes
its purchase. A retry is never waited for: it is due later in the database, and whatever
runs then (the scheduled sweep, embedded mode, a scheduled flow run) picks it up.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence

from dispatch.dispatching.dispatcher import Dispatcher, OrderJobs, off_loop
from dispatch.dispatching.job import Job, load_job
from dispatch.dispatching.outcomes import Outcome, Tally
from dispatch.dispatching.send import send_group
from dispatch.store import outbox
from dispatch.store.engine import reading
from dispatch.store.outbox import DeliveryRow
from dispatch.vocabulary import DeliveryStatus, SendStatus

log = logging.getLogger("dispatch.run")

OrderCallback = Callable[[str, list[Outcome]], None]
Step = Callable[[Dispatcher, list[OrderJobs]], Awaitable[Tally]]
BatchCallback = Callable[[int, list[OrderJobs], Tally], Awaitable[None]]


async def dispatch_orders(d: Dispatcher, orders: Sequence[OrderJobs], *,
                          on_order: OrderCallback | None = None) -> Tally:
    """Send a few claimed orders' jobs (each order's in order) and release each job."""
    tally = Tally()
    for order in orders:
        outcomes: list[Outcome] = []
        for job_id in order.job_ids:
            try:
                job = await off_loop(_load, d, job_id)
                if job is None:  # gone (its order deleted): nothing to send
                    continue
                for group in job.groups:
                    outcome = await send_group(d, job, group)
                    tally.add(outcome)
                    outcomes.append(outcome)
            finally:
                # Its own thread finishes the release even if this task is cancelled.
                await off_loop(d.release, job_id)
        if on_order is not None:
            on_order(order.order_id, outcomes)
    return tally


def _load(d: Dispatcher, job_id: int) -> Job | None:
    with reading(d.engine) as conn:
        return load_job(conn, job_id=job_id, now=d.clock(), buyer_name=d.settings.buyer_name)


def split(orders: list[OrderJobs], *, concurrency: int, orders_per_task: int
          ) -> list[list[OrderJobs]]:
    """Groups of up to ``orders_per_task`` orders, smaller when there are few orders, so
    that every one of the ``concurrency`` slots has work."""
    size = max(1, min(orders_per_task, math.ceil(len(orders) / max(1, concurrency))))
    return [orders[i:i + size] for i in range(0, len(orders), size)]


async def run_due(d: Dispatcher, *, limit: int = 1000, concurrency: int = 8,
                  orders_per_task: int = 10, order_id: str | None = None,
                  step: Step | None = None, on_order: OrderCallback | None = None,
                  on_batch: BatchCallback | None = None) -> Tally:
    """Claim due jobs in batches of ``limit`` and send them until none is due.

    ``step`` sends a group of claimed orders (default :func:`dispatch_orders`, which hands
    each order's outcomes to ``on_order``; flows wrap it in a Prefect task); ``on_batch``
    hears of each finished batch. Returns the run's tally (counts and the first problems:
    memory stays flat whatever the run's size).
    """
    for name, value in (("limit", limit), ("concurrency", concurrency),
                        ("orders_per_task", orders_per_task)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    send = step or (lambda disp, orders: dispatch_orders(disp, orders, on_order=on_order))
    gate = asyncio.Semaphore(concurrency)

    async def bounded(group: list[OrderJobs]) -> Tally:
        async with gate:
            try:
                return await send(d, group)
            except Exception as exc:  # a bug: what was done is recorded in the database
                log.exception("dispatching %s failed", ", ".join(o.order_id for o in group))
                return recorded_tally(d, group, reason=f"step crashed: {exc!r}")

    tally, batch = Tally(), 0
    while True:
        orders = await off_loop(d.claim, limit=limit, order_id=order_id)
        if not orders:
            return tally
        batch += 1
        groups = split(orders, concurrency=concurrency, orders_per_task=orders_per_task)
        batch_tally = Tally()
        for result in await asyncio.gather(*(bounded(g) for g in groups)):
            batch_tally.merge(result)
        tally.merge(batch_tally)
        if on_batch is not None:
            await on_batch(batch, orders, batch_tally)


def recorded(d: Dispatcher, orders: Sequence[OrderJobs]) -> list[DeliveryRow]:
    """Every delivery of these orders' claimed jobs as the database has it."""
    job_ids = sorted({j for o in orders for j in o.job_ids})
    with reading(d.engine) as conn:
        return outbox.list_deliveries(conn, job_ids=job_ids, limit=1_000_000)


def recorded_tally(d: Dispatcher, orders: Sequence[OrderJobs], *, reason: str) -> Tally:
    """The tally of sends whose outcomes were lost (a crashed step), from the record."""
    tally = Tally()
    for row in recorded(d, orders):
        if row.status is DeliveryStatus.UNSUPPORTED:
            continue
        status = {DeliveryStatus.DELIVERED: SendStatus.DELIVERED,
                  DeliveryStatus.FAILED: SendStatus.FAILED}.get(row.status, SendStatus.RETRYING)
        tally.add(Outcome(row.order_id, row.vendor_id, row.kind, row.number, row.channel,
                          row.format or "line", row.target, status, row.attempts,
                          error=row.error or reason, next_attempt_at=row.next_attempt_at))
    return tally


async def dry_run(d: Dispatcher, *, limit: int = 1000) -> list[Outcome]:
    """What would be sent where, rendered, without claiming, writing or any network I/O."""
    outcomes: list[Outcome] = []
    with reading(d.engine) as conn:
        due = outbox.due_jobs(conn, now=d.clock(), limit=limit)
    for job_id, _order in due:
        with reading(d.engine) as conn:
            job = load_job(conn, job_id=job_id, now=d.clock(), buyer_name=d.settings.buyer_name)
        if job is not None:
            for group in job.groups:
                outcomes.append(await send_group(d, job, group, dry_run=True))
    return outcomes
