"""SQLModel tables: reference data, orders, lines, transactions, requests, outbox, deliveries.

Timestamps are stored as naive UTC (``utcnow()``) so SQLite and PostgreSQL behave alike;
the API adds the ``Z`` when it serialises them. Hot paths (the request executor) use Core
statements on these tables rather than the ORM unit of work.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import (
    JSON,
    Column,
    Index,
    LargeBinary,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from dispatch.vocabulary import DeliveryStatus, JobStatus


def utcnow() -> dt.datetime:
    """Naive UTC now (what every timestamp column holds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- reference data -------------------------------------------------------------------


class Vendor(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=50)
    name: str = Field(max_length=200)
    allow_overstock: bool = False
    send_changes: bool = False
    email: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    ftp: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    b2b: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    extra: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Stock(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=50)


class Device(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=50)
    stock_name: str = Field(max_length=50, index=True)


class Item(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=50)
    name: str = Field(max_length=400)
    unit: str = Field(max_length=50)
    unit_code: str | None = Field(default=None, max_length=3)  # UN/ECE Rec 20 (SPEC 2)
    gtin: str | None = Field(default=None, max_length=14)


class ItemVendor(SQLModel, table=True):
    item_id: str = Field(primary_key=True, max_length=50)
    vendor_id: str = Field(primary_key=True, max_length=50)
    quoted: bool = False
    atelier_code: int | None = None
    price: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 4)))


class Template(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=50)
    format: str = Field(max_length=10)
    file: str = Field(max_length=400)  # XML with files per kind: the purchase file
    # XML templates (SPEC 4): {"file"|"files", "schema", "needs"} as in the entry
    xml: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class ShipToLocation(SQLModel, table=True):
    """A ship-to location (reference data ``locations:``)."""

    __tablename__ = "location"

    id: str = Field(primary_key=True, max_length=60)
    location_name: str = Field(max_length=200)
    address_line1: str = Field(max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str = Field(max_length=100)
    province: str = Field(max_length=100)
    country_title: str = Field(max_length=100)
    zip_code: str = Field(max_length=20)
    country_code: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2


class Buyer(SQLModel, table=True):
    """The reference data's ``buyer:`` block as loaded (one row, id 1): who we are in
    documents (name, currency, email, party, cxml)."""

    id: int = Field(default=1, primary_key=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Counter(SQLModel, table=True):
    """Named monotonically increasing numbers (order ids, line ids, refdata version)."""

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0


# --- orders ---------------------------------------------------------------------------


class PurchaseOrder(SQLModel, table=True):
    __tablename__ = "purchase_order"

    id: str = Field(primary_key=True, max_length=50)
    vendor_id: str = Field(max_length=50, index=True)
    stock_name: str = Field(max_length=50)
    device_id: str | None = Field(default=None, max_length=50)
    status: str = Field(max_length=20, index=True)
    is_consignment: bool | None = None
    reference: str | None = Field(default=None, sa_column=Column(Text))
    notes: str | None = Field(default=None, sa_column=Column(Text))
    custom_id_prefix: str | None = Field(default=None, max_length=10)
    custom_ship_to_id: str | None = Field(default=None, max_length=60)
    send_options: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    shipping_date: NaiveDatetime | None = None
    received_by_vendor_date: NaiveDatetime | None = None
    tracking_number: str | None = Field(default=None, max_length=50)
    dispatch_count: int = 0
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class PurchaseOrderItem(SQLModel, table=True):
    __tablename__ = "purchase_order_item"

    id: str = Field(primary_key=True, max_length=50)
    order_id: str = Field(max_length=50, index=True)
    position: int
    item_id: str | None = Field(default=None, max_length=50)
    device_id: str | None = Field(default=None, max_length=50)
    custom_item_id: str | None = Field(default=None, max_length=50)
    custom_item_price_per_piece: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(18, 4))
    )
    total_quantity: int = 0
    received_quantity: int = 0
    cancelled_quantity: int = 0
    expected_date: NaiveDatetime | None = None
    note: str | None = Field(default=None, sa_column=Column(Text))
    line_reference: str | None = Field(default=None, sa_column=Column(Text))


class LedgerTransaction(SQLModel, table=True):
    """A Purchase, Cancel or Receive movement of one order line."""

    __tablename__ = "ledger_transaction"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=50, index=True)
    order_item_id: str = Field(max_length=50)
    kind: str = Field(max_length=10)
    quantity: int
    at: NaiveDatetime = Field(default_factory=utcnow)
    request_guid: str | None = Field(default=None, max_length=36)


# --- the durable ERP request queue ------------------------------------------------------


class ErpRequest(SQLModel, table=True):
    __tablename__ = "erp_request"
    __table_args__ = (Index("ix_erp_request_status_seq", "status", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    guid: str = Field(max_length=36, unique=True)
    kind: str = Field(max_length=20)
    order_id: str | None = Field(default=None, max_length=50, index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    body_hash: str | None = Field(default=None, max_length=64)
    status: str = Field(default="Created", max_length=12)
    message: str | None = Field(default=None, sa_column=Column(Text))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    received_at: NaiveDatetime = Field(default_factory=utcnow)
    finished_at: NaiveDatetime | None = None


# --- outbox and deliveries --------------------------------------------------------------


class DispatchJob(SQLModel, table=True):
    """One numbered, versioned dispatch of an order (the outbox row)."""

    __tablename__ = "dispatch_job"
    __table_args__ = (
        UniqueConstraint("order_id", "number", name="uq_dispatch_job_order_number"),
        Index("ix_dispatch_job_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=50, index=True)
    vendor_id: str = Field(max_length=50)
    number: int
    kind: str = Field(max_length=20)
    replaces_number: int | None = None
    resend_of_job_id: int | None = None
    changes: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    status: str = Field(default=JobStatus.PENDING, max_length=12)  # JobStatus
    request_guid: str | None = Field(default=None, max_length=36)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    next_attempt_at: NaiveDatetime | None = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: NaiveDatetime | None = None
    finished_at: NaiveDatetime | None = None


class Delivery(SQLModel, table=True):
    """One document to one target (B2B: one order line), with its outcome and evidence."""

    __table_args__ = (Index("ix_delivery_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(index=True)
    order_id: str = Field(max_length=50, index=True)
    kind: str = Field(max_length=20)
    channel: str = Field(max_length=10)
    format: str | None = Field(default=None, max_length=10)
    template_name: str | None = Field(default=None, max_length=50)
    order_item_id: str | None = Field(default=None, max_length=50)
    quantity: int | None = None  # B2B: the quantity submitted for the line
    # B2B: the exact body sent on the first attempt, reused by every retry (same bytes under
    # the same Idempotency-Key, whatever changed in the reference data meanwhile).
    payload: str | None = Field(default=None, sa_column=Column(Text))
    document_name: str | None = Field(default=None, max_length=200)
    target: str = Field(sa_column=Column(Text, nullable=False))
    idempotency_key: str = Field(max_length=200, unique=True)
    # Rows sent together share it: the email Message-ID (one message, several attachments).
    group_key: str | None = Field(default=None, max_length=200, index=True)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=12)  # DeliveryStatus
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = None
    evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    last_attempt_at: NaiveDatetime | None = None
    next_attempt_at: NaiveDatetime | None = None
    delivered_at: NaiveDatetime | None = None


# --- order responses (SPEC 8) -------------------------------------------------------------


class OrderResponseRecord(SQLModel, table=True):
    """One document a vendor answered with (HTTP or inbox file), kept as received.

    ``matched`` False: an *unmatched* document (unknown order, another vendor's order, an
    unknown line or dispatch): kept and listed, never applied; ``problem`` says why.
    Idempotent per vendor by the SHA-256 of the exact bytes.
    """

    __tablename__ = "order_response"
    __table_args__ = (UniqueConstraint("vendor_id", "sha256", name="uq_order_response_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    vendor_id: str = Field(max_length=50, index=True)
    order_reference: str | None = Field(default=None, sa_column=Column(Text))
    order_id: str | None = Field(default=None, max_length=50, index=True)
    dispatch_number: int | None = None
    document_type: str = Field(max_length=40)
    document_id: str | None = Field(default=None, sa_column=Column(Text))
    code: str | None = Field(default=None, max_length=20)
    status: str | None = Field(default=None, max_length=24)  # ResponseStatus
    matched: bool = False
    problem: str | None = Field(default=None, sa_column=Column(Text))
    lines: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    vendor_order_id: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    sha256: str = Field(max_length=64)
    size: int = 0
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    received_at: NaiveDatetime = Field(default_factory=utcnow)


class ResponseDeadline(SQLModel, table=True):
    """A delivered dispatch whose response did not come in time: written once, with the
    reminder dispatch it caused, so the vendor is chased once per deadline."""

    __tablename__ = "response_deadline"
    __table_args__ = (UniqueConstraint("order_id", "dispatch_number",
                                       name="uq_response_deadline_dispatch"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=50, index=True)
    vendor_id: str = Field(max_length=50, index=True)
    dispatch_number: int
    delivered_at: NaiveDatetime
    due_by: NaiveDatetime
    overdue_at: NaiveDatetime
    reminder_number: int | None = None
    reminder_job_id: int | None = None


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class (for Core statements on hot paths)."""
    return model.__table__  # type: ignore[attr-defined, no-any-return]
