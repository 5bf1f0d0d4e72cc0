"""read_order: one order with its lines, transactions and deliveries, as frozen values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from dispatch.store.engine import reading, transaction
from dispatch.store.order_reads import (
    OrderDelivery,
    OrderHeader,
    OrderLine,
    OrderRecord,
    OrderTransaction,
    read_order,
)
from dispatch.store.tables import DELIVERIES, JOBS, LINES, ORDERS, TRANSACTIONS
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind, DocumentFormat

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)


def _order(conn: Connection, order_id: str, **cols: Any) -> None:
    conn.execute(ORDERS.insert(), [{
        "id": order_id, "vendor_id": "ACME", "stock_name": "Main", "status": "Active",
        "dispatch_count": 0, "created_at": T0, "updated_at": T0, **cols}])


def _line(conn: Connection, line_id: str, order_id: str, position: int, **cols: Any) -> None:
    conn.execute(LINES.insert(), [{
        "id": line_id, "order_id": order_id, "position": position, "item_id": "DRILL-5",
        "total_quantity": 10, **cols}])


def _transaction(conn: Connection, order_id: str, line_id: str, kind: str, quantity: int,
                 ) -> None:
    conn.execute(TRANSACTIONS.insert(), [{
        "order_id": order_id, "order_item_id": line_id, "kind": kind, "quantity": quantity,
        "at": T0, "request_guid": "g-1"}])


def _job(conn: Connection, order_id: str, number: int, kind: str) -> int:
    return int(conn.execute(JOBS.insert().returning(JOBS.c.id), [{
        "order_id": order_id, "vendor_id": "ACME", "number": number, "kind": kind,
        "status": "Pending", "created_at": T0}]).scalar_one())


def _delivery(conn: Connection, job_id: int, order_id: str, key: str, **cols: Any) -> None:
    conn.execute(DELIVERIES.insert(), [{
        "job_id": job_id, "order_id": order_id, "kind": "purchase", "channel": "Email",
        "format": "PDF", "target": "orders@acme.test", "idempotency_key": key,
        "status": "Pending", "created_at": T0, **cols}])


def test_an_unknown_order_reads_as_none(engine: Engine) -> None:
    with reading(engine) as conn:
        assert read_order(conn, order_id="PurchaseOrder404") is None


def test_an_order_round_trips_field_by_field(engine: Engine) -> None:
    options = {"Channel": {"IsEmail": True}, "Email": {"IsPdf": True, "PdfTemplate": "p"}}
    with transaction(engine) as conn:
        _order(conn, "PO1", device_id="DEV-1", is_consignment=True, reference="R",
               notes="N", custom_id_prefix="PO", custom_ship_to_id="SITE-7",
               send_options=options, shipping_date=T0 + dt.timedelta(days=1),
               received_by_vendor_date=None, tracking_number="TRK", dispatch_count=2,
               updated_at=T0 + dt.timedelta(hours=1))
        _line(conn, "POI1", "PO1", 0, custom_item_price_per_piece=None, note="n",
              line_reference="L1", expected_date=T0, received_quantity=3,
              cancelled_quantity=2)
        _line(conn, "POI2", "PO1", 1, item_id=None, custom_item_id="CUSTOM-1",
              custom_item_price_per_piece=Decimal("12.5"), total_quantity=4)
    with reading(engine) as conn:
        record = read_order(conn, order_id="PO1")
    assert record == OrderRecord(
        order=OrderHeader(
            id="PO1", vendor_id="ACME", stock_name="Main", device_id="DEV-1", status="Active",
            is_consignment=True, reference="R", notes="N", custom_id_prefix="PO",
            custom_ship_to_id="SITE-7", send_options=options,
            shipping_date=T0 + dt.timedelta(days=1), received_by_vendor_date=None,
            tracking_number="TRK", dispatch_count=2, created_at=T0,
            updated_at=T0 + dt.timedelta(hours=1)),
        lines=(
            OrderLine(id="POI1", position=0, item_id="DRILL-5", custom_item_id=None,
                      custom_item_price_per_piece=None, device_id=None, total_quantity=10,
                      received_quantity=3, cancelled_quantity=2, expected_date=T0,
                      note="n", line_reference="L1"),
            OrderLine(id="POI2", position=1, item_id=None, custom_item_id="CUSTOM-1",
                      custom_item_price_per_piece=Decimal("12.5"), device_id=None,
                      total_quantity=4, received_quantity=0, cancelled_quantity=0,
                      expected_date=None, note=None, line_reference=None),
        ),
        transactions=(), deliveries=())


def test_lines_by_position_transactions_and_deliveries_in_the_order_written(
        engine: Engine) -> None:
    with transaction(engine) as conn:
        _order(conn, "PO1")
        _order(conn, "PO2")
        for line_id, position in (("POI3", 2), ("POI1", 0), ("POI2", 1)):
            _line(conn, line_id, "PO1", position)
        _line(conn, "POI9", "PO2", 0)
        _transaction(conn, "PO1", "POI3", "Purchase", 10)
        _transaction(conn, "PO2", "POI9", "Purchase", 10)
        _transaction(conn, "PO1", "POI1", "Purchase", 10)
        _transaction(conn, "PO1", "POI1", "Receive", 4)
        purchase = _job(conn, "PO1", 1, "purchase")
        change = _job(conn, "PO1", 2, "change")
        other = _job(conn, "PO2", 1, "purchase")
        _delivery(conn, change, "PO1", "k-change", kind="change", channel="B2B", format=None,
                  order_item_id="POI1", status="Failed", attempts=5, error="503")
        _delivery(conn, other, "PO2", "k-other")
        _delivery(conn, purchase, "PO1", "k-purchase", status="Delivered", attempts=1,
                  sha256="ab" * 32, delivered_at=T0, document_name="PO1-1.pdf",
                  evidence={"message_id": "<m@x>"})
    with reading(engine) as conn:
        record = read_order(conn, order_id="PO1")
    assert record is not None
    assert [line.id for line in record.lines] == ["POI1", "POI2", "POI3"]
    assert [(t.order_item_id, t.kind, t.quantity) for t in record.transactions] == [
        ("POI3", "Purchase", 10), ("POI1", "Purchase", 10), ("POI1", "Receive", 4)]
    assert record.transactions[0] == OrderTransaction(
        kind="Purchase", order_item_id="POI3", quantity=10, at=T0, request_guid="g-1")
    assert record.deliveries == (
        OrderDelivery(dispatch_number=2, kind=DispatchKind.CHANGE, channel=Channel.B2B,
                      format=None, status=DeliveryStatus.FAILED, attempts=5, error="503",
                      target="orders@acme.test", sha256=None, delivered_at=None,
                      next_attempt_at=None, document_name=None, order_item_id="POI1",
                      evidence=None),
        OrderDelivery(dispatch_number=1, kind=DispatchKind.PURCHASE, channel=Channel.EMAIL,
                      format=DocumentFormat.PDF, status=DeliveryStatus.DELIVERED, attempts=1,
                      error=None, target="orders@acme.test", sha256="ab" * 32,
                      delivered_at=T0, next_attempt_at=None, document_name="PO1-1.pdf",
                      order_item_id=None, evidence={"message_id": "<m@x>"}),
    )
    assert all(type(d.status) is DeliveryStatus and type(d.kind) is DispatchKind
               for d in record.deliveries)


def test_the_record_is_frozen(engine: Engine) -> None:
    with transaction(engine) as conn:
        _order(conn, "PO1")
        _line(conn, "POI1", "PO1", 0)
    with reading(engine) as conn:
        record = read_order(conn, order_id="PO1")
    assert record is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.order.status = "Closed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.lines[0].total_quantity = 1  # type: ignore[misc]
