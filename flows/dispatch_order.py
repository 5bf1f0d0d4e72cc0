"""Flow ``dispatch-order``: one order's due dispatch jobs, through the one run loop.

Triggered by the service's events (``purchase-order.activated|changed|cancelled``, resource
``purchase-order.{OrderId}``) or run by anyone with ``run_deployment``. The loop is
``dispatch.dispatching.run.run_due`` scoped to the order; this flow wraps its step in a task
(``dispatch-pending``'s), names and tags the run, and reports. No worker slot sleeps
through a retry delay: a failed send that can be retried is due later in the database, and
a run of this deployment named ``{OrderId}-retry`` is scheduled for that time (server mode;
the scheduled ``dispatch-pending`` sweep and embedded mode pick it up too). The run fails
when a send failed for good.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run

from dispatch.channels import ChannelSet
from dispatch.dispatching import run
from dispatch.dispatching.dispatcher import OrderJobs
from dispatch.dispatching.outcomes import Tally
from dispatch.dispatching.reporting import artifact_key, delivery_row
from dispatch.errors import DeliveryError
from dispatch.orchestration import runtime
from dispatch.store import outbox
from dispatch.store.engine import reading
from dispatch.vocabulary import JobStatus
from flows.dispatch_pending import ARTIFACT_COLUMNS, prefect_step

EVENT_KINDS = {"purchase-order.activated": "purchase", "purchase-order.changed": "change",
               "purchase-order.cancelled": "cancellation"}


def order_id_of(value: str) -> str:
    """Accept ``PO1`` or the event resource id ``purchase-order.PO1``."""
    return value.removeprefix("purchase-order.")


def _run_name() -> str:
    params = flow_run.parameters
    kind = EVENT_KINDS.get(params.get("event") or "", params.get("reason") or "dispatch")
    return f"{order_id_of(params['order_id'])}-{kind}"


@flow(name="dispatch-order", flow_run_name=_run_name, log_prints=True)
async def dispatch_order(order_id: str, event: str | None = None, reason: str | None = None
                         ) -> list[dict[str, Any]]:
    """Send every due dispatch of one order (purchase, change, cancellation), in order.
    ``reason`` only names the run (``retry`` for a scheduled retry)."""
    rt = runtime.current()
    order_id = order_id_of(order_id)
    logger = get_run_logger()
    claimed: list[OrderJobs] = []

    async def remember(_batch: int, orders: list[OrderJobs], _tally: Tally) -> None:
        claimed.extend(orders)

    async with ChannelSet(settings=rt.settings) as channels:
        d = rt.dispatcher(channels)
        await _label_run(d.engine, order_id)
        tally = await run.run_due(d, order_id=order_id, limit=100, concurrency=1,
                                  orders_per_task=1, step=prefect_step, on_batch=remember)
        rows = [delivery_row(r) for r in run.recorded(d, claimed)]
    if not claimed:
        logger.info("order %s: nothing due to dispatch", order_id)
        return []
    await acreate_table_artifact(
        key=artifact_key("dispatch", order_id),
        table=[{c: r[c] for c in ARTIFACT_COLUMNS} for r in rows],
        description=f"Deliveries of {order_id}: {tally.describe()}")
    if tally.next_retry_at is not None:
        await _schedule_retry(order_id, tally.next_retry_at)
    if tally.failed:
        raise DeliveryError(f"{tally.failed} send(s) of {order_id} failed: "
                            + tally.problem_text(), retryable=False)
    return rows


async def _schedule_retry(order_id: str, due: dt.datetime) -> None:
    """Server mode: a run of this deployment at the retry's due time, named after the
    order, visible in the UI as Scheduled. In-process runs have no deployment: the
    embedded runner (or the scheduled sweep) picks the retry up when it is due."""
    name = deployment.name
    if not deployment.id or not name:
        return
    from prefect.deployments import run_deployment

    when = due.replace(tzinfo=dt.UTC)
    await run_deployment(  # type: ignore[misc]
        name=f"dispatch-order/{name}", parameters={"order_id": order_id, "reason": "retry"},
        scheduled_time=when, timeout=0, as_subflow=False,
        idempotency_key=f"{order_id}-retry-{when:%Y%m%dT%H%M%S}",
        flow_run_name=f"{order_id}-retry")
    get_run_logger().info("order %s: retry scheduled at %s UTC", order_id,
                          when.strftime("%H:%M:%S"))


async def _label_run(engine: Any, order_id: str) -> None:
    """Name the run after the order and its next dispatch; tag it with the vendor and
    channels (from the order's pending deliveries)."""
    run_id = flow_run.id
    if run_id is None:
        return
    with reading(engine) as conn:
        jobs = [j for j in outbox.list_jobs(conn, order_id=order_id)
                if j.status is JobStatus.PENDING]
        rows = outbox.list_deliveries(conn, order_id=order_id, job_ids=[j.id for j in jobs])
    if not jobs:
        return
    first = jobs[0]
    channels = sorted({r.channel for r in rows})
    async with get_client() as client:
        await client.update_flow_run(
            run_id, name=f"{order_id}-{first.kind}-{first.number}",
            tags=[f"vendor:{first.vendor_id}", *(f"channel:{c}" for c in channels)])
