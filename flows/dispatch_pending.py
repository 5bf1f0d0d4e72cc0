"""Flow ``dispatch-pending``: claim every due dispatch job and send them.

Safe with several workers at once (jobs are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL); retries failed deliveries whose retry is due. One task per order (a task run
costs about as much as rendering a PDF, so per-send tasks would halve throughput), orders
run concurrently up to ``concurrency``; each task's name says the order and kinds, and the
run's table artifact lists every send with its outcome and evidence.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from dispatch import runtime
from dispatch.channels import ChannelSet
from dispatch.dispatching import Dispatcher, Outcome
from dispatch.errors import DeliveryError
from dispatch.reporting import artifact_key, outcome_rows
from dispatch.store import jobs as job_store
from dispatch.store.engine import reading


@task(name="dispatch-order-jobs", cache_policy=NO_CACHE)
async def dispatch_order_jobs(dispatcher: Dispatcher, order_id: str, job_ids: list[int]
                              ) -> list[Outcome]:
    """One order's claimed jobs, in order. Fails (visibly) when a send failed; the retry,
    when one can help, is scheduled in the database for a later run."""
    outcomes = await dispatcher.run_order_jobs(job_ids)
    logger = get_run_logger()
    for outcome in outcomes:
        (logger.error if outcome.status == "Failed" else logger.info)(outcome.summary())
    failed = [o for o in outcomes if o.status == "Failed"]
    if failed:
        raise DeliveryError("; ".join(o.summary() for o in failed),
                            retryable=any(o.next_attempt_at for o in failed))
    return outcomes


@flow(name="dispatch-pending", log_prints=True)
async def dispatch_pending(limit: int = 1000, concurrency: int = 8,
                           dry_run: bool = False) -> dict[str, int]:
    """Claim due jobs (and due retries), send them; returns counts by outcome."""
    rt = runtime.current()
    logger = get_run_logger()
    outcomes: list[Outcome] = []
    async with ChannelSet(settings=rt.settings) as channels:
        dispatcher = Dispatcher(rt.engine, rt.settings, channels=channels)
        if dry_run:
            outcomes = await dispatcher.dry_run(limit=limit)
            for outcome in outcomes:
                logger.info("would send: %s", outcome.summary())
        else:
            gate = asyncio.Semaphore(concurrency)
            while True:
                by_order = dispatcher.claim_by_order(limit=limit)
                if not by_order:
                    break
                logger.info("claimed %d job(s) of %d order(s)",
                            sum(map(len, by_order.values())), len(by_order))
                batches = await asyncio.gather(*(
                    _bounded(gate, dispatcher, order_id, ids)
                    for order_id, ids in by_order.items()))
                outcomes += [o for batch in batches for o in batch]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    if outcomes:
        await acreate_table_artifact(
            key=artifact_key("dispatch-pending"), table=outcome_rows(outcomes),
            description="Sends of this run: " + (", ".join(
                f"{n} {s}" for s, n in sorted(counts.items()))))
    logger.info("dispatch-pending done: %s", counts or "nothing due")
    failed = [o for o in outcomes if o.status == "Failed"]
    if failed:
        raise DeliveryError(f"{len(failed)} send(s) failed: "
                            + "; ".join(o.summary() for o in failed[:20]),
                            retryable=any(o.next_attempt_at for o in failed))
    return counts


async def _bounded(gate: asyncio.Semaphore, dispatcher: Dispatcher, order_id: str,
                   job_ids: list[int]) -> list[Outcome]:
    async with gate:
        name = f"{order_id} " + "+".join(str(i) for i in job_ids)
        state = await dispatch_order_jobs.with_options(  # type: ignore[misc]
            task_run_name=name)(
            dispatcher, order_id, job_ids, return_state=True)
        result: Any = await state.result(raise_on_failure=False)
        if isinstance(result, list):
            return result
        # the task failed: its outcomes are recorded in the database; report them from there
        return _recorded(dispatcher, order_id, job_ids, result)


def _recorded(dispatcher: Dispatcher, order_id: str, job_ids: list[int], exc: Any
              ) -> list[Outcome]:
    outcomes = []
    with reading(dispatcher.engine) as conn:
        for row in job_store.list_deliveries(conn, order_id=order_id):
            if row.job_id in job_ids:
                outcomes.append(Outcome(
                    order_id, row.vendor_id, row.kind, row.number, row.channel,
                    row.format or "line", row.target, row.status, row.attempts,
                    error=row.error, next_attempt_at=row.next_attempt_at, sha256=row.sha256,
                    evidence=row.evidence))
    return outcomes
