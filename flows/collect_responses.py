"""Flow ``collect-responses`` (SPEC 8): the vendors' answers and the response deadlines.

Each run: collect the vendors' response inboxes (``dispatch.responses.collect``: each file
recorded, then moved to ``processed/`` or ``failed/`` with its ``.error.txt``; a newly
recorded answer announced like a posted one), sweep the deadlines
(``dispatch.responses.deadlines.sweep``: every response now overdue is flagged once and
gets one reminder dispatch in the outbox), announce ``purchase-order.response-overdue``
for each (the ``dispatch-order/on-overdue`` deployment sends the reminder in a run named
``{OrderId}-reminder``; embedded mode runs it in-process), and keep the
``vendor-responses`` table artifact current (per vendor: awaiting, overdue, accepted,
rejected, changed). Scheduled every minute in ``prefect.yaml``; embedded mode runs it
every 30 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from dispatch.models import utcnow
from dispatch.orchestration import runtime
from dispatch.responses.collect import InboxReport, collect_inboxes
from dispatch.responses.deadlines import Overdue, sweep
from dispatch.responses.listing import vendor_summary
from dispatch.rules.responses import EVENT_OVERDUE
from dispatch.store.engine import reading

ARTIFACT_KEY = "vendor-responses"


@task(name="collect-inboxes", cache_policy=NO_CACHE)
async def collect_inboxes_task() -> list[InboxReport]:
    rt = runtime.current()
    return await asyncio.to_thread(collect_inboxes, rt.engine,
                                   max_bytes=rt.settings.max_body_bytes, now=utcnow)


def announce_received(reports: list[InboxReport]) -> None:
    """``purchase-order.response-received`` (and ``.rejected``) per newly recorded file,
    as the HTTP intake announces a posted document."""
    from prefect.events import emit_event

    for report in reports:
        for item in report.files:
            if item.order_id is None:
                continue
            for event in item.events:
                emit_event(event=event,
                           resource={"prefect.resource.id": f"purchase-order.{item.order_id}",
                                     "prefect.resource.name": item.order_id},
                           payload={"order_id": item.order_id, "vendor_id": report.vendor_id,
                                    "response_id": item.response_id, "status": item.status,
                                    "source": f"file:{item.name}"})


@task(name="sweep-deadlines", cache_policy=NO_CACHE)
async def sweep_deadlines() -> list[Overdue]:
    rt = runtime.current()
    return await asyncio.to_thread(sweep, rt.engine, now=utcnow())


def announce_overdue(overdue: list[Overdue]) -> None:
    """``purchase-order.response-overdue`` per order, resource ``purchase-order.{OrderId}``."""
    from prefect.events import emit_event

    for item in overdue:
        emit_event(event=EVENT_OVERDUE,
                   resource={"prefect.resource.id": f"purchase-order.{item.order_id}",
                             "prefect.resource.name": item.order_id},
                   payload=item.event_payload)


async def publish_summary() -> list[dict[str, Any]]:
    rt = runtime.current()

    def read() -> list[dict[str, Any]]:
        with reading(rt.engine) as conn:
            return vendor_summary(conn)

    table = await asyncio.to_thread(read)
    await acreate_table_artifact(
        key=ARTIFACT_KEY, table=table or [{"vendor": "(none with responses:)"}],
        description="Order responses per vendor: awaiting an answer, overdue (reminded), "
                    "accepted, rejected, changed (accepted with changes)")
    return table


@flow(name="collect-responses", log_prints=True)
async def collect_responses() -> dict[str, Any]:
    """Collect the inboxes, sweep the response deadlines and publish the per-vendor table;
    returns the orders flagged overdue now (each with its reminder dispatch number) and
    the inbox files handled."""
    logger = get_run_logger()
    reports = await collect_inboxes_task()
    for report in reports:
        if report.error:
            logger.warning("vendor %s: inbox %s not collected: %s", report.vendor_id,
                           report.inbox, report.error)
        for collected in report.files:
            logger.info("vendor %s: %s %s -> %s%s", report.vendor_id, collected.name,
                        collected.status or "not a response", collected.folder,
                        f" ({collected.problem})" if collected.problem else "")
    announce_received(reports)
    overdue = await sweep_deadlines()
    for item in overdue:
        logger.info("order %s: no response to dispatch %s by %s UTC; reminder %s queued",
                    item.order_id, item.dispatch_number, item.due_by.strftime("%Y-%m-%d %H:%M:%S"),
                    f"#{item.reminder_number}" if item.reminder_number else "(no email)")
    announce_overdue(overdue)
    await publish_summary()
    return {"overdue": [{"order_id": o.order_id, "reminder_number": o.reminder_number}
                        for o in overdue],
            "files": [{"vendor_id": r.vendor_id, "name": f.name, "folder": f.folder,
                       "status": f.status, "order_id": f.order_id, "new": f.new}
                      for r in reports for f in r.files]}
