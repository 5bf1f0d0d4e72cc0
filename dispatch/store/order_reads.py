"""One order as stored (header, lines, transactions, deliveries), read into frozen values.

The API shapes its JSON from these; nothing here knows the wire format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from sqlalchemy import BindParameter, Column, Connection, Table, bindparam, select

from dispatch.store.responses import OrderResponses, read_order_responses
from dispatch.store.tables import DELIVERIES, JOBS, LINES, ORDERS, TRANSACTIONS
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind, DocumentFormat


@dataclass(frozen=True, slots=True)
class OrderHeader:
    """The purchase_order row: the order's fields as last set."""

    id: str
    vendor_id: str
    stock_name: str
    device_id: str | None
    status: str
    is_consignment: bool | None
    reference: str | None
    notes: str | None
    custom_id_prefix: str | None
    custom_ship_to_id: str | None
    send_options: dict[str, Any] | None
    shipping_date: dt.datetime | None
    received_by_vendor_date: dt.datetime | None
    tracking_number: str | None
    dispatch_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One purchase_order_item row (a custom line has ``custom_item_id`` and no ``item_id``)."""

    id: str
    position: int
    item_id: str | None
    custom_item_id: str | None
    custom_item_price_per_piece: Decimal | None
    device_id: str | None
    total_quantity: int
    received_quantity: int
    cancelled_quantity: int
    expected_date: dt.datetime | None
    note: str | None
    line_reference: str | None


@dataclass(frozen=True, slots=True)
class OrderTransaction:
    """One ledger movement of a line (``kind``: Purchase, Cancel or Receive)."""

    kind: str
    order_item_id: str
    quantity: int
    at: dt.datetime
    request_guid: str | None


@dataclass(frozen=True, slots=True)
class OrderDelivery:
    """One document to one target, with the number of the dispatch it belongs to."""

    dispatch_number: int
    kind: DispatchKind
    channel: Channel
    format: DocumentFormat | None
    status: DeliveryStatus
    attempts: int
    error: str | None
    target: str
    sha256: str | None
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    document_name: str | None
    order_item_id: str | None
    evidence: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order with its lines (by position), transactions and deliveries (each by id)."""

    order: OrderHeader
    lines: tuple[OrderLine, ...]
    transactions: tuple[OrderTransaction, ...]
    deliveries: tuple[OrderDelivery, ...]
    # SPEC 8: what the vendor answered (its own read; not part of the order's equality)
    responses: OrderResponses | None = field(default=None, compare=False)


def _columns(table: Table, record: type, *, skip: int = 0) -> list[Column[Any]]:
    """The table's columns named like the record's fields, in field order (rows map 1:1)."""
    return [table.c[field.name] for field in fields(record)[skip:]]


_BY_ORDER: BindParameter[str] = bindparam("b_order_id")
_HEADER = select(*_columns(ORDERS, OrderHeader)).where(ORDERS.c.id == _BY_ORDER)
_LINES = (select(*_columns(LINES, OrderLine)).where(LINES.c.order_id == _BY_ORDER)
          .order_by(LINES.c.position))
_TRANSACTIONS = (select(*_columns(TRANSACTIONS, OrderTransaction))
                 .where(TRANSACTIONS.c.order_id == _BY_ORDER).order_by(TRANSACTIONS.c.id))
# dispatch_number comes from the job; every other field is a delivery column.
_DELIVERIES = (
    select(JOBS.c.number, *_columns(DELIVERIES, OrderDelivery, skip=1))
    .join(JOBS, JOBS.c.id == DELIVERIES.c.job_id)
    .where(DELIVERIES.c.order_id == _BY_ORDER).order_by(DELIVERIES.c.id))


def read_order(conn: Connection, *, order_id: str) -> OrderRecord | None:
    """The order ``order_id`` with everything recorded about it; None when there is none."""
    params = {"b_order_id": order_id}
    header = conn.execute(_HEADER, params).first()
    if header is None:
        return None
    return OrderRecord(
        order=OrderHeader(*header),
        lines=tuple(OrderLine(*row) for row in conn.execute(_LINES, params)),
        transactions=tuple(OrderTransaction(*row) for row in conn.execute(_TRANSACTIONS, params)),
        deliveries=tuple(_delivery(*row) for row in conn.execute(_DELIVERIES, params)),
        responses=read_order_responses(conn, order_id=order_id, vendor_id=header.vendor_id),
    )


def _delivery(number: int, kind: str, channel: str, fmt: str | None, status: str,
              *rest: Any) -> OrderDelivery:
    return OrderDelivery(number, DispatchKind(kind), Channel(channel),
                         None if fmt is None else DocumentFormat(fmt),
                         DeliveryStatus(status), *rest)
