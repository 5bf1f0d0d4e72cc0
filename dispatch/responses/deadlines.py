"""The response deadline sweep (SPEC 8): find the orders whose vendor did not answer in
time, flag each once, and put one reminder dispatch in the outbox.

:func:`sweep` asks the store for candidates (Active orders of vendors with
``responses.within`` whose delivered purchase or change dispatch no deadline row covers),
``rules/responses.py: overdue`` decides, and for each overdue one it writes, in one
transaction with the order row locked (so dispatch numbers never collide with the ERP
executor's): the deadline row (unique per order and dispatch: Overdue once) and the
reminder dispatch with its email delivery (numbered like any dispatch). The outbox and the
one run loop then send it with evidence, exactly once. Whoever calls the sweep (embedded
mode every 30 s, the ``collect-responses`` flow in server mode) announces
``purchase-order.response-overdue`` for each and has the reminder sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from dispatch.rules import responses as rules
from dispatch.rules.deliveries import reminder_entry
from dispatch.rules.types import VendorRef
from dispatch.store import orders as order_store
from dispatch.store import responses as store
from dispatch.store.engine import reading, transaction

log = logging.getLogger("dispatch.responses.deadlines")


@dataclass(frozen=True)
class Overdue:
    """An order flagged Overdue by this sweep, and the reminder dispatch it got."""

    order_id: str
    vendor_id: str
    dispatch_number: int
    due_by: dt.datetime
    reminder_number: int | None  # None: the vendor has no email address to remind
    reminder_job_id: int | None

    @property
    def event_payload(self) -> dict[str, object]:
        return {"order_id": self.order_id, "vendor_id": self.vendor_id,
                "dispatch_number": self.dispatch_number,
                "due_by": self.due_by.isoformat() + "Z",
                "reminder_number": self.reminder_number}


def sweep(engine: Engine, *, now: dt.datetime) -> list[Overdue]:
    """Flag every response now overdue (once) and queue its reminder; returns them."""
    with reading(engine) as conn:
        vendors = {v.id: v for v in store.response_vendors(conn) if v.responses.get("within")}
        windows = {}
        for vendor_id, vendor in vendors.items():
            try:
                windows[vendor_id] = rules.parse_within(str(vendor.responses["within"]))
            except ValueError:
                log.warning("vendor %s: responses.within %r is not a duration; no deadline",
                            vendor_id, vendor.responses["within"])
        candidates = store.awaiting_orders(conn, vendor_ids=windows)
    flagged = []
    for candidate in candidates:
        decision = rules.overdue(
            order_id=candidate.order_id, vendor_id=candidate.vendor_id,
            within=windows[candidate.vendor_id], dispatches=candidate.dispatches,
            responses=candidate.responses, flagged=candidate.flagged, now=now)
        if decision is not None:
            vendor = vendors[candidate.vendor_id]
            result = _flag(engine, decision, vendor=vendor, now=now)
            if result is not None:
                flagged.append(result)
    return flagged


def _flag(engine: Engine, decision: rules.OverdueDispatch, *, vendor: store.VendorResponses,
          now: dt.datetime) -> Overdue | None:
    with transaction(engine) as conn:
        state = order_store.load_order_state(conn, order_id=decision.order_id, lock=True)
        if state is None:
            return None
        if not store.insert_deadline(
                conn, order_id=decision.order_id, vendor_id=decision.vendor_id,
                dispatch_number=decision.dispatch_number, delivered_at=decision.delivered_at,
                due_by=decision.due_by, now=now):
            return None  # another sweep flagged it first
        number = state.dispatch_count + 1
        entry = reminder_entry(
            order_id=decision.order_id,
            vendor=VendorRef(vendor.id, email=vendor.email), number=number,
            template=vendor.responses.get("reminder_template"), token=order_store.new_token())
        job_id = None
        if entry is not None:
            job_id = order_store.write_dispatches(conn, order_id=decision.order_id,
                                                  entries=[entry], request_guid=None,
                                                  now=now)[0]
            store.set_reminder(conn, order_id=decision.order_id,
                               dispatch_number=decision.dispatch_number,
                               reminder_number=number, reminder_job_id=job_id)
        else:
            log.warning("order %s is overdue but vendor %s has no email address: no "
                        "reminder sent", decision.order_id, vendor.id)
    return Overdue(decision.order_id, decision.vendor_id, decision.dispatch_number,
                   decision.due_by, number if job_id is not None else None, job_id)
