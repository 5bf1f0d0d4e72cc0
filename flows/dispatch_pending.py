"""Flow ``dispatch-pending``: claim every due dispatch job (and due retry) and send them.

The loop is ``dispatch.dispatching.run.run_due``, the one every caller runs; this flow only
wraps its step in a Prefect task and reports. Safe with several workers at once (jobs are
claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL). A task run costs ~7 ms of client CPU
here and tens of ms on the Prefect server, against ~50 ms of work per order, so a task sends
up to ``orders_per_task`` orders (a task per order ran at 0.71x the plain loop's throughput,
ten at 0.82-0.93x: ``bench/RESULTS.md``, "Dispatch"). What the UI shows: a task per group of
orders, named after them, Failed when one of their sends failed for good; a log line per
order and one per failed send; a table artifact per batch read back from the database.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from dispatch.channels import ChannelSet
from dispatch.dispatching import run
from dispatch.dispatching.dispatcher import Dispatcher, OrderJobs
from dispatch.dispatching.outcomes import Outcome, Tally, order_summary
from dispatch.dispatching.reporting import artifact_key, delivery_row, outcome_rows
from dispatch.errors import DeliveryError
from dispatch.orchestration import runtime
from dispatch.vocabulary import SendStatus

ARTIFACT_COLUMNS = ("order", "vendor", "dispatch", "channel", "format", "target", "status",
                    "attempts", "error", "next_attempt", "sha256", "remote")


def log_order(order_id: str, outcomes: list[Outcome]) -> None:
    """A line per order saying what went where, and one per send that failed."""
    logger = get_run_logger()
    for outcome in outcomes:
        if outcome.status is SendStatus.FAILED:
            logger.error(outcome.summary())
        elif outcome.status is SendStatus.RETRYING:
            logger.warning(outcome.summary())
    if outcomes and all(o.status is SendStatus.DELIVERED for o in outcomes):
        logger.info(order_summary(outcomes))


@task(name="dispatch-orders", cache_policy=NO_CACHE)
async def dispatch_orders(d: Dispatcher, orders: list[OrderJobs]) -> Any:
    """A few orders' claimed jobs, each order's in order. Failed (naming every failed send)
    when a send failed for good; a retry, when one can help, is due later in the database."""
    tally = await run.dispatch_orders(d, orders, on_order=log_order)
    if tally.failed:
        return Failed(message=f"{tally.failed} send(s) failed: {tally.problem_text()}",
                      data=tally)
    return Completed(message=tally.describe(), data=tally)


def task_name(orders: list[OrderJobs]) -> str:
    ids = [o.order_id for o in orders]
    if len(ids) <= 3:
        return ", ".join(ids)
    return f"{ids[0]}, {ids[1]} … {ids[-1]} ({len(ids)} orders)"


async def prefect_step(d: Dispatcher, orders: list[OrderJobs]) -> Tally:
    """The run loop's step as a Prefect task run named after its orders."""
    state = await dispatch_orders.with_options(  # type: ignore[misc]
        task_run_name=task_name(orders))(d, orders, return_state=True)
    result: Any = await state.result(raise_on_failure=False)
    if isinstance(result, Tally):
        return result
    # The task crashed (a bug): what it did is recorded in the database; count that.
    return run.recorded_tally(d, orders, reason=f"task crashed: {result}")


@flow(name="dispatch-pending", log_prints=True)
async def dispatch_pending(limit: int = 1000, concurrency: int = 8, orders_per_task: int = 10,
                           dry_run: bool = False) -> dict[str, int]:
    """Claim due jobs (and due retries) in batches of ``limit``, send them; returns counts
    of sends by outcome."""
    rt = runtime.current()
    logger = get_run_logger()
    started = time.monotonic()
    orders_done = 0

    async def report(batch: int, orders: list[OrderJobs], tally: Tally) -> None:
        nonlocal orders_done
        orders_done += len(orders)
        rows = [delivery_row(r) for r in run.recorded(d, orders)]
        await acreate_table_artifact(
            key=artifact_key("dispatch-pending"),
            table=[{c: r[c] for c in ARTIFACT_COLUMNS} for r in rows],
            description=f"Batch {batch}: {len(orders)} order(s), {len(rows)} deliveries; "
                        f"sends: {tally.describe()}")
        elapsed = time.monotonic() - started
        logger.info("batch %d done: %s; %d order(s) so far in %.1f s (%.1f orders/s)",
                    batch, tally.describe(), orders_done, elapsed,
                    orders_done / max(elapsed, 1e-9))

    tally = Tally()
    async with ChannelSet(settings=rt.settings) as channels:
        d = rt.dispatcher(channels)
        if dry_run:
            outcomes = await run.dry_run(d, limit=limit)
            for outcome in outcomes:
                tally.add(outcome)
                logger.info("would send: %s", outcome.summary())
            if outcomes:
                await acreate_table_artifact(
                    key=artifact_key("dispatch-pending"), table=outcome_rows(outcomes),
                    description=f"Dry run (nothing sent): {tally.describe()}")
        else:
            tally = await run.run_due(d, limit=limit, concurrency=concurrency,
                                      orders_per_task=orders_per_task, step=prefect_step,
                                      on_batch=report)
    logger.info("dispatch-pending done: %s", tally.describe() if tally.counts
                else "nothing due")
    if tally.failed:
        raise DeliveryError(f"{tally.failed} send(s) failed: {tally.problem_text()}",
                            retryable=False)
    return {str(status): n for status, n in tally.counts.items()}
