"""Orders, lines, transactions and the outbox: reads, and the writes of what rules decided."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from dispatch.rules.deliveries import OutboxEntry
from dispatch.rules.types import DispatchRecord, LineState, OrderState, TransactionPlan
from dispatch.store.prepared import Prepared
from dispatch.store.tables import COUNTERS, DELIVERIES, JOBS, LINES, ORDERS
from dispatch.store.tables import TRANSACTIONS as TXS
from dispatch.vocabulary import DeliveryStatus, DispatchKind, JobStatus

# Built once: these run for every executed request.
_ALLOCATE = (update(COUNTERS).where(COUNTERS.c.name == bindparam("b_name"))
             .values(value=COUNTERS.c.value + bindparam("b_count")).returning(COUNTERS.c.value))
_INSERT_ORDER = Prepared(ORDERS.insert())
_INSERT_LINES = Prepared(LINES.insert())
_INSERT_TXS = Prepared(TXS.insert())
_INSERT_JOB = JOBS.insert().returning(JOBS.c.id)
_INSERT_DELIVERIES = DELIVERIES.insert()
_READ_COUNTERS = (select(COUNTERS.c.name, COUNTERS.c.value)
                  .where(COUNTERS.c.name.in_(bindparam("b_names", expanding=True)))
                  .with_for_update())
_WRITE_COUNTER = (update(COUNTERS).where(COUNTERS.c.name == bindparam("b_name"))
                  .values(value=bindparam("b_value")))


def allocate(conn: Connection, *, name: str, count: int) -> range:
    """Reserve ``count`` consecutive numbers of counter ``name`` (inside the transaction)."""
    last = int(conn.execute(_ALLOCATE, {"b_name": name, "b_count": count}).scalar_one())
    return range(last - count + 1, last + 1)


class Numbers:
    """Counter numbers for one transaction with many requests (the ERP executor's batch).

    The counters are read once, locked (``FOR UPDATE`` on PostgreSQL; SQLite's write
    transaction is exclusive), handed out from memory, and written back by ``flush`` before
    the commit: two statements per batch instead of an ``UPDATE … RETURNING`` per counter
    per request. ``mark``/``reset`` give back the numbers of a request rolled back to its
    savepoint.
    """

    NAMES = ("purchase_order", "purchase_order_item")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._read = {name: int(value) for name, value in
                      conn.execute(_READ_COUNTERS, {"b_names": list(self.NAMES)})}
        self._last = dict(self._read)

    def take(self, name: str, count: int) -> range:
        """``count`` consecutive numbers of counter ``name``."""
        first = self._last[name] + 1
        self._last[name] += count
        return range(first, first + count)

    def mark(self) -> dict[str, int]:
        return dict(self._last)

    def reset(self, mark: dict[str, int]) -> None:
        self._last = dict(mark)

    def flush(self) -> None:
        """Write the counters that moved (inside the transaction, before its commit)."""
        moved = [{"b_name": name, "b_value": value} for name, value in self._last.items()
                 if value != self._read[name]]
        if moved:
            self._conn.execute(_WRITE_COUNTER, moved)
            self._read = dict(self._last)


def new_token() -> str:
    """The random part of one dispatch's idempotency keys (stored with its deliveries)."""
    return uuid.uuid4().hex[:12]


def load_order_state(conn: Connection, *, order_id: str, lock: bool = False
                     ) -> OrderState | None:
    """The order and its lines as the rules read them (``lock``: the order FOR UPDATE)."""
    stmt = select(ORDERS).where(ORDERS.c.id == order_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        return None
    lines = [
        LineState(r.id, r.position, r.item_id, r.device_id, r.custom_item_id,
                  r.total_quantity, r.received_quantity, r.cancelled_quantity, r.expected_date)
        for r in conn.execute(
            select(LINES).where(LINES.c.order_id == order_id).order_by(LINES.c.position))
    ]
    return OrderState(row.id, row.vendor_id, row.stock_name, row.device_id, row.status,
                      row.send_options, row.dispatch_count, lines)


def _record(row: Any) -> DispatchRecord:
    return DispatchRecord(int(row.id), row.number, DispatchKind(row.kind), row.replaces_number,
                          row.changes, row.created_at)


def dispatches_of(conn: Connection, *, order_id: str) -> list[DispatchRecord]:
    """Every dispatch of the order, by number (what a resend chooses from)."""
    return [_record(r) for r in conn.execute(
        select(JOBS).where(JOBS.c.order_id == order_id).order_by(JOBS.c.number))]


def latest_dispatch(conn: Connection, *, order_id: str,
                    kind: DispatchKind) -> DispatchRecord | None:
    """The order's dispatch of ``kind`` with the highest number (None: there is none)."""
    row = conn.execute(select(JOBS).where(JOBS.c.order_id == order_id, JOBS.c.kind == kind)
                       .order_by(JOBS.c.number.desc()).limit(1)).first()
    return None if row is None else _record(row)


def insert_order(conn: Connection, *, order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    _INSERT_ORDER.run(conn, [order])
    _INSERT_LINES.run(conn, lines)


def write_effects(
    conn: Connection,
    *,
    order_id: str,
    transactions: Sequence[TransactionPlan],
    entries: Sequence[OutboxEntry],
    request_guid: str,
    now: dt.datetime,
) -> list[int]:
    """A request's transactions, and its dispatches with their deliveries; returns job ids.

    Runs inside the request's transaction: the outbox row commits with the state change.
    """
    if transactions:
        _INSERT_TXS.run(conn, [
            {"order_id": order_id, "order_item_id": t.line_id, "kind": t.kind,
             "quantity": t.quantity, "at": now, "request_guid": request_guid}
            for t in transactions])
    return write_dispatches(conn, order_id=order_id, entries=entries,
                            request_guid=request_guid, now=now)


def write_dispatches(
    conn: Connection,
    *,
    order_id: str,
    entries: Sequence[OutboxEntry],
    request_guid: str | None,
    now: dt.datetime,
) -> list[int]:
    """Outbox rows with their deliveries; the order's dispatch count follows. Returns job ids."""
    job_ids = [add_dispatch(conn, order_id=order_id, entry=entry, request_guid=request_guid,
                            now=now) for entry in entries]
    if entries:
        conn.execute(update(ORDERS).where(ORDERS.c.id == order_id)
                     .values(dispatch_count=max(e.dispatch.number for e in entries)))
    return job_ids


def add_dispatch(conn: Connection, *, order_id: str, entry: OutboxEntry,
                 request_guid: str | None, now: dt.datetime) -> int:
    """One outbox row and its deliveries (each with its idempotency key, before any send).

    A dispatch with nothing to send (no rows, or only Unsupported ones) is done at once.
    """
    plan, rows = entry.dispatch, entry.deliveries
    pending = any(r.status == DeliveryStatus.PENDING for r in rows)
    job_id = int(conn.execute(_INSERT_JOB, [{
        "order_id": order_id, "vendor_id": entry.vendor_id, "number": plan.number,
        "kind": plan.kind, "replaces_number": plan.replaces_number, "changes": plan.changes,
        "status": JobStatus.PENDING if pending else JobStatus.DONE,
        "request_guid": request_guid, "created_at": now,
        "next_attempt_at": now if pending else None, "finished_at": None if pending else now,
        "resend_of_job_id": entry.resend_of_job_id,
    }]).scalar_one())
    if rows:
        conn.execute(_INSERT_DELIVERIES, [{
            "job_id": job_id, "order_id": order_id, "kind": plan.kind, "channel": r.channel,
            "format": r.format, "template_name": r.template_name,
            "order_item_id": r.order_item_id, "quantity": r.quantity,
            "document_name": r.document_name, "target": r.target,
            "idempotency_key": r.idempotency_key, "group_key": r.group_key,
            "status": r.status, "error": r.error, "created_at": now,
            "next_attempt_at": now if r.status == DeliveryStatus.PENDING else None,
        } for r in rows])
    return job_id


def update_lines(conn: Connection, *, changes: dict[str, dict[str, Any]]) -> None:
    """The changed columns of many lines: one executemany per set of columns changed
    together (a statement per line made a 2,000-entry UpdateQuantity hold the write lock
    for ~1 s)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for line_id, cols in changes.items():
        by_columns.setdefault(tuple(sorted(cols)), []).append(
            {"b_id": line_id, **{f"b_{c}": v for c, v in cols.items()}})
    for columns, rows in by_columns.items():
        stmt = (update(LINES).where(LINES.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in columns}))
        conn.execute(stmt, rows)


def update_order_row(conn: Connection, *, order_id: str, cols: dict[str, Any]) -> None:
    conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(**cols))
