"""``dispatch responses``: received documents, unmatched ones, and overdue orders, as rows
for the terminal (and ``--json``), and the per-vendor summary the Prefect artifact shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from dispatch.rules.responses import AnsweredDispatch, awaited_dispatch
from dispatch.store import responses as store
from dispatch.store.responses import StoredResponse
from dispatch.vocabulary import ResponseStatus

RESPONSE_COLUMNS = ("id", "received_at", "vendor", "order", "dispatch", "status",
                    "vendor_order_id", "lines", "source")
UNMATCHED_COLUMNS = ("id", "received_at", "vendor", "order_reference", "problem", "source")
OVERDUE_COLUMNS = ("order", "vendor", "dispatch", "due_by", "overdue_at", "reminder")
SUMMARY_COLUMNS = ("vendor", "awaiting", "overdue", "accepted", "rejected", "changed")
SUMMARY_KEYS = {ResponseStatus.AWAITING: "awaiting", ResponseStatus.OVERDUE: "overdue",
                ResponseStatus.ACCEPTED: "accepted", ResponseStatus.REJECTED: "rejected",
                ResponseStatus.CONDITIONALLY_ACCEPTED: "changed"}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _lines(response: StoredResponse) -> str:
    parts = []
    for line in response.lines or ():
        text = f"{line['PurchaseOrderItemId']}: {line['Status']}"
        if line.get("ConfirmedQuantity") is not None:
            text += f" {line['ConfirmedQuantity']}"
        if line.get("PromisedDate"):
            text += f" by {line['PromisedDate']}"
        parts.append(text)
    return "; ".join(parts)


def response_row(r: StoredResponse) -> dict[str, Any]:
    return {"id": r.id, "received_at": _iso(r.received_at), "vendor": r.vendor_id,
            "order": r.order_id, "order_reference": r.order_reference,
            "dispatch": r.dispatch_number, "document": r.document_type,
            "document_id": r.document_id, "code": r.code,
            "status": str(r.status) if r.matched and r.status else "Unmatched",
            "vendor_order_id": r.vendor_order_id, "lines": _lines(r),
            "line_answers": r.lines or [], "problem": r.problem, "sha256": r.sha256,
            "size": r.size, "source": r.source}


def overdue_rows(conn: Connection, *, order_id: str | None = None,
                 vendor_id: str | None = None) -> list[dict[str, Any]]:
    """Deadlines passed with no response yet (a late response takes the order off)."""
    rows = []
    for deadline in store.list_deadlines(conn, order_id=order_id, vendor_id=vendor_id):
        answered = [r for r in store.list_responses(conn, order_id=deadline.order_id)
                    if r.matched and (r.dispatch_number or 0) >= deadline.dispatch_number]
        if answered:
            continue
        rows.append({"order": deadline.order_id, "vendor": deadline.vendor_id,
                     "dispatch": deadline.dispatch_number, "due_by": _iso(deadline.due_by),
                     "overdue_at": _iso(deadline.overdue_at),
                     "reminder": (f"reminder #{deadline.reminder_number}"
                                  if deadline.reminder_number else "")})
    return rows


def list_rows(conn: Connection, *, order_id: str | None, vendor_id: str | None,
              overdue: bool, unmatched: bool, limit: int = 1000
              ) -> tuple[list[dict[str, Any]], Sequence[str]]:
    """The rows ``dispatch responses`` prints, and the columns of its table."""
    if overdue:
        return overdue_rows(conn, order_id=order_id, vendor_id=vendor_id), OVERDUE_COLUMNS
    rows = [response_row(r) for r in store.list_responses(
        conn, order_id=order_id, vendor_id=vendor_id, unmatched=unmatched, limit=limit)]
    return rows, UNMATCHED_COLUMNS if unmatched else RESPONSE_COLUMNS


def vendor_summary(conn: Connection) -> list[dict[str, Any]]:
    """Per vendor with ``responses:``: orders awaiting an answer, overdue, accepted,
    rejected, changed (ConditionallyAccepted), by each order's current state."""
    vendors = store.response_vendors(conn)
    orders = store.vendor_orders(conn, vendor_ids=[v.id for v in vendors])
    table = []
    for vendor in vendors:
        counts = dict.fromkeys(SUMMARY_COLUMNS[1:], 0)
        for order_id in orders.get(vendor.id, []):
            state = store.read_order_responses(conn, order_id=order_id, vendor_id=vendor.id)
            status = _current(state.dispatches, state.responses, state.overdue_numbers)
            key = SUMMARY_KEYS.get(status) if status is not None else None
            if key is not None:
                counts[key] += 1
        table.append({"vendor": vendor.id, **counts})
    return table


def _current(dispatches: Sequence[Any], responses: Sequence[AnsweredDispatch],
             overdue_numbers: Sequence[int]) -> ResponseStatus | None:
    awaited = awaited_dispatch(dispatches, responses)
    if awaited is not None:
        return ResponseStatus.OVERDUE if awaited.number in overdue_numbers \
            else ResponseStatus.AWAITING
    return responses[-1].status if responses else None
