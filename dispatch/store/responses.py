"""Order responses and response deadlines (SPEC 8): typed rows in and out.

Storage only: what a response means and when one is overdue is ``rules/responses.py``.
A response row is written once per vendor and SHA-256 (``ON CONFLICT DO NOTHING``: two
identical posts at once store one row and both get its id). A deadline row is written once
per order and dispatch number, which is what makes a vendor chased once per deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dispatch.rules.responses import (
    AnsweredDispatch,
    DispatchFacts,
    OrderFacts,
    OrderLineFacts,
)
from dispatch.store.tables import DEADLINES, DELIVERIES, JOBS, LINES, ORDERS, RESPONSES, VENDORS
from dispatch.vocabulary import DeliveryStatus, DispatchKind, ResponseStatus

ANSWERABLE = [DispatchKind.PURCHASE, DispatchKind.CHANGE, DispatchKind.CANCELLATION]


@dataclass(frozen=True)
class StoredResponse:
    """One received document (without its bytes unless asked for)."""

    id: int
    vendor_id: str
    order_reference: str | None
    order_id: str | None
    dispatch_number: int | None
    document_type: str
    document_id: str | None
    code: str | None
    status: ResponseStatus | None
    matched: bool
    problem: str | None
    lines: list[dict[str, Any]] | None
    vendor_order_id: str | None
    note: str | None
    sha256: str
    size: int
    source: str
    received_at: dt.datetime


_COLUMNS = [RESPONSES.c[name] for name in StoredResponse.__dataclass_fields__]


def _response(row: Any) -> StoredResponse:
    values = dict(row._mapping)
    status = values["status"]
    values["status"] = ResponseStatus(status) if status else None
    return StoredResponse(**values)


@dataclass(frozen=True)
class VendorResponses:
    """A vendor with a ``responses:`` block (its raw dict) and its channel targets."""

    id: str
    responses: dict[str, Any]
    email: dict[str, Any] | None
    ftp: dict[str, Any] | None


def response_vendors(conn: Connection) -> list[VendorResponses]:
    """Every vendor whose reference data has a ``responses:`` block, by id."""
    rows = conn.execute(select(VENDORS.c.id, VENDORS.c.extra, VENDORS.c.email, VENDORS.c.ftp)
                        .order_by(VENDORS.c.id))
    return [VendorResponses(r.id, r.extra["responses"], r.email, r.ftp) for r in rows
            if isinstance(r.extra, dict) and isinstance(r.extra.get("responses"), dict)]


def vendor_responses(conn: Connection, *, vendor_id: str) -> dict[str, Any] | None:
    """The vendor's ``responses:`` block (None: it has none, or no such vendor)."""
    extra = conn.execute(select(VENDORS.c.extra).where(VENDORS.c.id == vendor_id)).scalar()
    block = extra.get("responses") if isinstance(extra, dict) else None
    return block if isinstance(block, dict) else None


# -- what matching reads ----------------------------------------------------------------------

def _dispatch_facts(conn: Connection, order_ids: Sequence[str]
                    ) -> dict[str, list[DispatchFacts]]:
    """Each order's dispatches (not reminders) with their first delivery's time."""
    first = (select(DELIVERIES.c.job_id, func.min(DELIVERIES.c.delivered_at).label("at"))
             .where(DELIVERIES.c.order_id.in_(order_ids),
                    DELIVERIES.c.status == DeliveryStatus.DELIVERED)
             .group_by(DELIVERIES.c.job_id).subquery())
    rows = conn.execute(
        select(JOBS.c.order_id, JOBS.c.number, JOBS.c.kind, first.c.at)
        .select_from(JOBS.outerjoin(first, first.c.job_id == JOBS.c.id))
        .where(JOBS.c.order_id.in_(order_ids), JOBS.c.kind.in_(ANSWERABLE))
        .order_by(JOBS.c.order_id, JOBS.c.number))
    facts: dict[str, list[DispatchFacts]] = {}
    for r in rows:
        facts.setdefault(r.order_id, []).append(DispatchFacts(r.number, DispatchKind(r.kind), r.at))
    return facts


def order_facts(conn: Connection, *, order_id: str) -> OrderFacts | None:
    """The order a response names, with its lines and dispatches (None: no such order)."""
    vendor_id = conn.execute(select(ORDERS.c.vendor_id).where(ORDERS.c.id == order_id)).scalar()
    if vendor_id is None:
        return None
    lines = tuple(OrderLineFacts(r.id, r.position + 1, r.total_quantity - r.cancelled_quantity)
                  for r in conn.execute(select(LINES).where(LINES.c.order_id == order_id)
                                        .order_by(LINES.c.position)))
    return OrderFacts(order_id, vendor_id, lines,
                      tuple(_dispatch_facts(conn, [order_id]).get(order_id, [])))


# -- responses --------------------------------------------------------------------------------

def find_by_hash(conn: Connection, *, vendor_id: str, sha256: str) -> StoredResponse | None:
    row = conn.execute(select(*_COLUMNS).where(RESPONSES.c.vendor_id == vendor_id,
                                               RESPONSES.c.sha256 == sha256)).first()
    return None if row is None else _response(row)


def insert_response(conn: Connection, *, values: dict[str, Any]) -> tuple[StoredResponse, bool]:
    """Store a response once per vendor and hash: (the row, whether this call stored it)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(RESPONSES).values(**values)
            .on_conflict_do_nothing(index_elements=["vendor_id", "sha256"])
            .returning(RESPONSES.c.id))
    new_id = conn.execute(stmt).scalar()
    row = find_by_hash(conn, vendor_id=values["vendor_id"], sha256=values["sha256"])
    assert row is not None
    return row, new_id is not None


def response_content(conn: Connection, *, response_id: int) -> bytes | None:
    """The exact bytes a response arrived as."""
    value = conn.execute(select(RESPONSES.c.content)
                         .where(RESPONSES.c.id == response_id)).scalar()
    return None if value is None else bytes(value)


def list_responses(conn: Connection, *, order_id: str | None = None,
                   vendor_id: str | None = None, unmatched: bool = False,
                   limit: int = 1000) -> list[StoredResponse]:
    """Received documents in arrival order (``unmatched``: only those never applied)."""
    stmt = select(*_COLUMNS)
    if order_id:
        stmt = stmt.where(RESPONSES.c.order_id == order_id)
    if vendor_id:
        stmt = stmt.where(RESPONSES.c.vendor_id == vendor_id)
    if unmatched:
        stmt = stmt.where(RESPONSES.c.matched.is_(False))
    return [_response(r) for r in conn.execute(stmt.order_by(RESPONSES.c.id).limit(limit))]


def _answered(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[AnsweredDispatch]]:
    rows = conn.execute(
        select(RESPONSES.c.id, RESPONSES.c.order_id, RESPONSES.c.dispatch_number,
               RESPONSES.c.status, RESPONSES.c.received_at, RESPONSES.c.vendor_order_id,
               RESPONSES.c.lines)
        .where(RESPONSES.c.order_id.in_(order_ids), RESPONSES.c.matched.is_(True))
        .order_by(RESPONSES.c.id))
    answered: dict[str, list[AnsweredDispatch]] = {}
    for r in rows:
        answered.setdefault(r.order_id, []).append(AnsweredDispatch(
            r.id, r.dispatch_number, ResponseStatus(r.status), r.received_at,
            r.vendor_order_id, tuple(r.lines or ())))
    return answered


def _flagged(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[int]]:
    flagged: dict[str, list[int]] = {}
    for order_id, number in conn.execute(
            select(DEADLINES.c.order_id, DEADLINES.c.dispatch_number)
            .where(DEADLINES.c.order_id.in_(order_ids))):
        flagged.setdefault(order_id, []).append(number)
    return flagged


@dataclass(frozen=True)
class OrderResponses:
    """What the order detail's ``Response`` is computed from."""

    vendor_responses: dict[str, Any] | None
    dispatches: tuple[DispatchFacts, ...]
    responses: tuple[AnsweredDispatch, ...]
    overdue_numbers: tuple[int, ...]


def read_order_responses(conn: Connection, *, order_id: str, vendor_id: str
                         ) -> OrderResponses:
    return OrderResponses(
        vendor_responses(conn, vendor_id=vendor_id),
        tuple(_dispatch_facts(conn, [order_id]).get(order_id, [])),
        tuple(_answered(conn, [order_id]).get(order_id, [])),
        tuple(_flagged(conn, [order_id]).get(order_id, [])))


# -- the deadline sweep ------------------------------------------------------------------------

@dataclass(frozen=True)
class AwaitingOrder:
    """An Active order of a vendor with a deadline, as the sweep decides on it."""

    order_id: str
    vendor_id: str
    dispatches: tuple[DispatchFacts, ...]
    responses: tuple[AnsweredDispatch, ...]
    flagged: tuple[int, ...]


def awaiting_orders(conn: Connection, *, vendor_ids: Iterable[str], limit: int = 5000
                    ) -> list[AwaitingOrder]:
    """Active orders of these vendors with a delivered purchase or change dispatch that no
    deadline row covers yet (the sweep's candidates; the rules pick the overdue ones)."""
    vendors = list(vendor_ids)
    if not vendors:
        return []
    covered = (select(DEADLINES.c.id).where(DEADLINES.c.order_id == JOBS.c.order_id,
                                            DEADLINES.c.dispatch_number == JOBS.c.number)
               .exists())
    delivered = (select(DELIVERIES.c.id).where(DELIVERIES.c.job_id == JOBS.c.id,
                                               DELIVERIES.c.status == DeliveryStatus.DELIVERED)
                 .exists())
    order_ids = list(conn.execute(
        select(JOBS.c.order_id).distinct()
        .join(ORDERS, ORDERS.c.id == JOBS.c.order_id)
        .where(JOBS.c.vendor_id.in_(vendors), ORDERS.c.status == "Active",
               JOBS.c.kind.in_([DispatchKind.PURCHASE, DispatchKind.CHANGE]),
               delivered, ~covered)
        .order_by(JOBS.c.order_id).limit(limit)).scalars())
    if not order_ids:
        return []
    owners = dict(conn.execute(select(ORDERS.c.id, ORDERS.c.vendor_id)
                               .where(ORDERS.c.id.in_(order_ids))).tuples().all())
    dispatches = _dispatch_facts(conn, order_ids)
    answered = _answered(conn, order_ids)
    flagged = _flagged(conn, order_ids)
    return [AwaitingOrder(o, owners[o], tuple(dispatches.get(o, [])),
                          tuple(answered.get(o, [])), tuple(flagged.get(o, [])))
            for o in order_ids]


def insert_deadline(conn: Connection, *, order_id: str, vendor_id: str, dispatch_number: int,
                    delivered_at: dt.datetime, due_by: dt.datetime, now: dt.datetime) -> bool:
    """Flag the dispatch overdue; False when it was flagged before (nothing written)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(DEADLINES).values(
        order_id=order_id, vendor_id=vendor_id, dispatch_number=dispatch_number,
        delivered_at=delivered_at, due_by=due_by, overdue_at=now)
        .on_conflict_do_nothing(index_elements=["order_id", "dispatch_number"])
        .returning(DEADLINES.c.id))
    return conn.execute(stmt).scalar() is not None


def set_reminder(conn: Connection, *, order_id: str, dispatch_number: int,
                 reminder_number: int, reminder_job_id: int) -> None:
    conn.execute(update(DEADLINES).where(DEADLINES.c.order_id == order_id,
                                         DEADLINES.c.dispatch_number == dispatch_number)
                 .values(reminder_number=reminder_number, reminder_job_id=reminder_job_id))


@dataclass(frozen=True)
class DeadlineRow:
    order_id: str
    vendor_id: str
    dispatch_number: int
    delivered_at: dt.datetime
    due_by: dt.datetime
    overdue_at: dt.datetime
    reminder_number: int | None
    reminder_job_id: int | None


_DEADLINE_COLUMNS = [DEADLINES.c[name] for name in DeadlineRow.__dataclass_fields__]


def deadline_of_reminder(conn: Connection, *, job_id: int) -> DeadlineRow | None:
    """The deadline a reminder dispatch chases."""
    row = conn.execute(select(*_DEADLINE_COLUMNS)
                       .where(DEADLINES.c.reminder_job_id == job_id)).first()
    return None if row is None else DeadlineRow(*row)


def list_deadlines(conn: Connection, *, order_id: str | None = None,
                   vendor_id: str | None = None) -> list[DeadlineRow]:
    stmt = select(*_DEADLINE_COLUMNS)
    if order_id:
        stmt = stmt.where(DEADLINES.c.order_id == order_id)
    if vendor_id:
        stmt = stmt.where(DEADLINES.c.vendor_id == vendor_id)
    return [DeadlineRow(*r) for r in conn.execute(stmt.order_by(DEADLINES.c.id))]


def vendor_orders(conn: Connection, *, vendor_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each vendor's orders that ever had a dispatch (for the per-vendor summary)."""
    vendors = list(vendor_ids)
    result: dict[str, list[str]] = {v: [] for v in vendors}
    if not vendors:
        return result
    for vendor_id, order_id in conn.execute(
            select(ORDERS.c.vendor_id, ORDERS.c.id)
            .where(ORDERS.c.vendor_id.in_(vendors), ORDERS.c.dispatch_count > 0,
                   and_(ORDERS.c.status != "New", ORDERS.c.status != "Suggested"))
            .order_by(ORDERS.c.id)):
        result[vendor_id].append(order_id)
    return result
