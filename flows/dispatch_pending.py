"""Flow ``dispatch-pending``: claim every due dispatch job and send them.

Safe with several workers at once (jobs are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL); retries failed deliveries whose retry is due. Jobs are claimed in batches of
``limit``; each batch's orders are split into tasks of up to ``orders_per_task`` orders
(each order's jobs in order), up to ``concurrency`` tasks at once. A task run costs ~7 ms
of client CPU here and tens of ms on the Prefect server, against ~50 ms of work
per order: a task per order ran at 0.71x the plain loop's throughput, up to ten orders per
task at 0.82-0.93x (``bench/RESULTS.md``, "Dispatch"). What the UI shows: a task per group of
orders, named after them and Failed when one of their sends failed; a log line per order
(what went where) and one per failed send (order, vendor, channel, error); a table
artifact per batch with every delivery's outcome and evidence, read back from the
database. Memory stays flat whatever the run's size: only counts and the first failures
are carried from batch to batch.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from dispatch.channels import ChannelSet
from dispatch.dispatching.core import Dispatcher
from dispatch.dispatching.outcomes import Tally, order_summary
from dispatch.dispatching.reporting import artifact_key, delivery_row, outcome_rows
from dispatch.errors import DeliveryError
from dispatch.orchestration import runtime

ARTIFACT_COLUMNS = ("order", "vendor", "dispatch", "channel", "format", "target", "status",
                    "attempts", "error", "sha256", "remote")


@task(name="dispatch-orders", cache_policy=NO_CACHE)
async def dispatch_orders(dispatcher: Dispatcher, orders: list[tuple[str, list[int]]]
                          ) -> Any:
    """A few orders' claimed jobs, each order's in order. Failed (visibly, naming every
    failed send) when a send failed; the retry, when one can help, is scheduled in the
    database for a later run."""
    logger = get_run_logger()
    tally = Tally()
    for _order_id, job_ids in orders:
        outcomes = await dispatcher.run_order_jobs(job_ids)
        for outcome in outcomes:
            tally.add(outcome)
            if outcome.status == "Failed":
                logger.error(outcome.summary())
        if outcomes and all(o.status != "Failed" for o in outcomes):
            logger.info(order_summary(outcomes))
    if tally.failed_total:
        return Failed(message=f"{tally.failed_total} send(s) failed: {tally.failure_text()}",
                      data=tally)
    return Completed(message=tally.describe(), data=tally)


def task_name(orders: list[tuple[str, list[int]]]) -> str:
    ids = [order_id for order_id, _ in orders]
    if len(ids) <= 3:
        return ", ".join(ids)
    return f"{ids[0]}, {ids[1]} … {ids[-1]} ({len(ids)} orders)"


def split(by_order: dict[str, list[int]], *, concurrency: int, orders_per_task: int
          ) -> list[list[tuple[str, list[int]]]]:
    """Groups of up to ``orders_per_task`` orders, smaller when there are few orders, so
    that every one of the ``concurrency`` slots has work."""
    items = list(by_order.items())
    size = max(1, min(orders_per_task, math.ceil(len(items) / max(1, concurrency))))
    return [items[i:i + size] for i in range(0, len(items), size)]


@flow(name="dispatch-pending", log_prints=True)
async def dispatch_pending(limit: int = 1000, concurrency: int = 8, orders_per_task: int = 10,
                           dry_run: bool = False) -> dict[str, int]:
    """Claim due jobs (and due retries) in batches of ``limit``, send them; returns counts
    of sends by outcome."""
    for name, value in (("limit", limit), ("concurrency", concurrency),
                        ("orders_per_task", orders_per_task)):
        if value < 1:
            raise ValueError(f"dispatch-pending: {name} must be at least 1, not {value}")
    rt = runtime.current()
    logger = get_run_logger()
    tally = Tally()
    async with ChannelSet(settings=rt.settings) as channels:
        dispatcher = Dispatcher(rt.engine, rt.settings, channels=channels)
        if dry_run:
            outcomes = await dispatcher.dry_run(limit=limit)
            for outcome in outcomes:
                tally.add(outcome)
                logger.info("would send: %s", outcome.summary())
            if outcomes:
                await acreate_table_artifact(
                    key=artifact_key("dispatch-pending"), table=outcome_rows(outcomes),
                    description=f"Dry run (nothing sent): {tally.describe()}")
        else:
            await _send_batches(dispatcher, tally, limit=limit, concurrency=concurrency,
                                orders_per_task=orders_per_task)
    logger.info("dispatch-pending done: %s", tally.describe() if tally.counts
                else "nothing due")
    if tally.failed_total:
        raise DeliveryError(f"{tally.failed_total} send(s) failed: {tally.failure_text()}",
                            retryable=tally.retry_scheduled)
    return dict(tally.counts)


async def _send_batches(dispatcher: Dispatcher, tally: Tally, *, limit: int, concurrency: int,
                        orders_per_task: int) -> None:
    logger = get_run_logger()
    gate = asyncio.Semaphore(concurrency)
    started, orders_done, batch = time.monotonic(), 0, 0
    while True:
        by_order = dispatcher.claim_by_order(limit=limit)
        if not by_order:
            return
        batch += 1
        job_ids = [i for ids in by_order.values() for i in ids]
        logger.info("batch %d: claimed %d job(s) of %d order(s)", batch, len(job_ids),
                    len(by_order))
        groups = split(by_order, concurrency=concurrency, orders_per_task=orders_per_task)
        results = await asyncio.gather(*(_bounded(gate, dispatcher, group) for group in groups))
        batch_tally = Tally()
        for result in results:
            batch_tally.merge(result)
        tally.merge(batch_tally)
        orders_done += len(by_order)
        rows = [delivery_row(r) for r in dispatcher.recorded(job_ids)]
        await acreate_table_artifact(
            key=artifact_key("dispatch-pending"),
            table=[{c: r[c] for c in ARTIFACT_COLUMNS} for r in rows],
            description=f"Batch {batch}: {len(by_order)} order(s), {len(rows)} "
                        f"deliveries; sends: {batch_tally.describe()}")
        elapsed = time.monotonic() - started
        logger.info("batch %d done: %s; %d order(s) so far in %.1f s (%.1f orders/s)",
                    batch, batch_tally.describe(), orders_done, elapsed,
                    orders_done / max(elapsed, 1e-9))


async def _bounded(gate: asyncio.Semaphore, dispatcher: Dispatcher,
                   orders: list[tuple[str, list[int]]]) -> Tally:
    async with gate:
        state = await dispatch_orders.with_options(  # type: ignore[misc]
            task_run_name=task_name(orders))(dispatcher, orders, return_state=True)
        result: Any = await state.result(raise_on_failure=False)
        if isinstance(result, Tally):
            return result
        # The task crashed (a bug): what it did is recorded in the database; count that.
        tally = Tally()
        for outcome in dispatcher.recorded_outcomes([i for _, ids in orders for i in ids],
                                                    reason=f"task crashed: {result}"):
            tally.add(outcome)
        return tally
