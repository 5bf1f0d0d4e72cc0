"""Flow ``dispatch-order``: one order's due dispatch jobs, a task per send.

Triggered by the service's events (``purchase-order.activated|changed|cancelled``, resource
``purchase-order.{OrderId}``) or run by anyone with ``run_deployment``. Retryable failures
are retried by Prefect with the delays of ``DISPATCH_RETRY_DELAYS``; permanent ones fail the
task at once. Every outcome goes to the run's log and a table artifact.
"""

from __future__ import annotations

import inspect
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from dispatch.channels import ChannelSet
from dispatch.dispatching.core import Dispatcher
from dispatch.dispatching.outcomes import Outcome
from dispatch.dispatching.reporting import artifact_key, outcome_rows
from dispatch.errors import DeliveryError
from dispatch.orchestration import runtime

EVENT_KINDS = {"purchase-order.activated": "purchase", "purchase-order.changed": "change",
               "purchase-order.cancelled": "cancellation"}


def order_id_of(value: str) -> str:
    """Accept ``PO1`` or the event resource id ``purchase-order.PO1``."""
    return value.removeprefix("purchase-order.")


def _run_name() -> str:
    params = flow_run.parameters
    kind = EVENT_KINDS.get(params.get("event") or "", "dispatch")
    return f"{order_id_of(params['order_id'])}-{kind}"


async def _retryable(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry only what a retry can help (DeliveryError.retryable)."""
    result = state.result(raise_on_failure=False)
    if inspect.isawaitable(result):
        result = await result
    return isinstance(result, DeliveryError) and result.retryable


@task(name="send-delivery", retries=0, retry_condition_fn=_retryable, cache_policy=NO_CACHE)
async def send_delivery(dispatcher: Dispatcher, job_id: int, delivery_ids: list[int]) -> Outcome:
    """Render, send and record one send; raise so Prefect retries what can be retried."""
    job = dispatcher.load(job_id, include_scheduled=True)
    send = next((s for s in job.sends if s.ids == delivery_ids), None)
    if send is None:  # already delivered by an earlier attempt: never send twice
        return Outcome(job.order_id, job.vendor_id, job.kind, job.number, "-", "-", "-",
                       "Skipped", 0, error="nothing left to send")
    outcome = await dispatcher.send(job, send)
    logger = get_run_logger()
    if outcome.status == "Failed":
        logger.error(outcome.summary())
        retryable = outcome.next_attempt_at is not None
        raise DeliveryError(outcome.error or "failed", retryable=retryable)
    logger.info(outcome.summary())
    return outcome


@flow(name="dispatch-order", flow_run_name=_run_name, log_prints=True)
async def dispatch_order(order_id: str, event: str | None = None) -> list[dict[str, Any]]:
    """Send every due dispatch of one order (purchase, change, cancellation), in order."""
    rt = runtime.current()
    order_id = order_id_of(order_id)
    logger = get_run_logger()
    delays = list(rt.settings.retry_delays)
    sender = send_delivery.with_options(retries=len(delays), retry_delay_seconds=delays or 0)
    outcomes: list[Outcome] = []
    async with ChannelSet(settings=rt.settings) as channels:
        dispatcher = Dispatcher(rt.engine, rt.settings, channels=channels)
        job_ids = dispatcher.claim(order_id=order_id, limit=100)
        if not job_ids:
            logger.info("order %s: nothing due to dispatch", order_id)
            return []
        for job_id in job_ids:
            job = dispatcher.load(job_id)
            await _label_run(job)
            try:
                for send in job.sends:
                    state = await sender.with_options(  # type: ignore[misc]
                        task_run_name=f"{job.name} {send.label}")(
                        dispatcher, job_id, send.ids, return_state=True)
                    result = await state.result(raise_on_failure=False)
                    outcomes.append(result if isinstance(result, Outcome) else
                                    _failed_outcome(job, send, result))
            finally:
                dispatcher.release(job)
    rows = outcome_rows(outcomes)
    await acreate_table_artifact(
        key=artifact_key("dispatch", order_id), table=rows,
        description=f"Deliveries of {order_id}: {_summary(outcomes)}")
    failed = [o for o in outcomes if o.status == "Failed"]
    if failed:
        raise DeliveryError(f"{len(failed)} delivery(ies) of {order_id} failed: "
                            + "; ".join(o.summary() for o in failed),
                            retryable=any(o.next_attempt_at for o in failed))
    return rows


def _failed_outcome(job: Any, send: Any, exc: Any) -> Outcome:
    return Outcome(job.order_id, job.vendor_id, job.kind, job.number, send.channel,
                   send.label, send.rows[0].target, "Failed", send.rows[0].attempts + 1,
                   error=str(exc))


def _summary(outcomes: list[Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"


async def _label_run(job: Any) -> None:
    """Name the run after the order and kind; tag it with the vendor and channels."""
    run_id = flow_run.id
    if run_id is None:
        return
    channels = sorted({s.channel for s in job.sends})
    async with get_client() as client:
        await client.update_flow_run(
            run_id, name=f"{job.order_id}-{job.kind}-{job.number}",
            tags=[f"vendor:{job.vendor_id}", *(f"channel:{c}" for c in channels)])
