"""The order detail's JSON, shaped from a stored record: keys, timestamps, numbers, enums."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from dispatch.api.order_detail import iso, order_detail
from dispatch.erp.schemas import DeliveryOut, OrderDetail, OrderItemOut, TransactionOut
from dispatch.store.order_reads import (
    OrderDelivery,
    OrderHeader,
    OrderLine,
    OrderRecord,
    OrderTransaction,
)
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind, DocumentFormat

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)

RECORD = OrderRecord(
    order=OrderHeader(
        id="PO1", vendor_id="ACME", stock_name="Main", device_id=None, status="Active",
        is_consignment=None, reference="R", notes=None, custom_id_prefix=None,
        custom_ship_to_id=None, send_options={"Channel": {"IsB2B": True}}, shipping_date=None,
        received_by_vendor_date=T0, tracking_number=None, dispatch_count=1, created_at=T0,
        updated_at=T0),
    lines=(OrderLine(id="POI1", position=0, item_id=None, custom_item_id="C1",
                     custom_item_price_per_piece=Decimal("12.5000"), device_id="DEV-1",
                     total_quantity=3, received_quantity=1, cancelled_quantity=0,
                     expected_date=None, note=None, line_reference="L1"),),
    transactions=(OrderTransaction(kind="Purchase", order_item_id="POI1", quantity=3, at=T0,
                                   request_guid="g"),),
    deliveries=(OrderDelivery(
        dispatch_number=1, kind=DispatchKind.PURCHASE, channel=Channel.B2B, format=None,
        status=DeliveryStatus.PENDING, attempts=1, error="503", target="http://v/orders",
        sha256=None, delivered_at=None, next_attempt_at=T0, document_name=None,
        order_item_id="POI1", evidence=None),
        OrderDelivery(
        dispatch_number=1, kind=DispatchKind.PURCHASE, channel=Channel.EMAIL,
        format=DocumentFormat.EXCEL, status=DeliveryStatus.DELIVERED, attempts=1, error=None,
        target="a@v.test", sha256="00" * 32, delivered_at=T0, next_attempt_at=None,
        document_name="PO1-1.xlsx", order_item_id=None, evidence={"message_id": "<m>"})),
)


def test_keys_are_exactly_the_documented_ones() -> None:
    detail = order_detail(RECORD)
    assert list(detail) == list(OrderDetail.model_fields)
    assert list(detail["PurchaseOrderItems"][0]) == list(OrderItemOut.model_fields)
    assert list(detail["Transactions"][0]) == list(TransactionOut.model_fields)
    assert all(list(d) == list(DeliveryOut.model_fields) for d in detail["Deliveries"])
    OrderDetail.model_validate(detail)


def test_values_on_the_wire() -> None:
    wire = json.loads(json.dumps(order_detail(RECORD)))
    assert wire["ReceivedByVendorDate"] == "2024-05-06T07:08:09.123Z"
    assert wire["ShippingDate"] is None
    assert wire["PurchaseOrderItems"][0]["CustomItemPricePerPiece"] == 12.5
    assert [(d["Kind"], d["Channel"], d["Format"], d["Status"]) for d in wire["Deliveries"]] \
        == [("purchase", "B2B", None, "Pending"), ("purchase", "Email", "Excel", "Delivered")]
    assert wire["Deliveries"][0]["NextAttemptAt"] == "2024-05-06T07:08:09.123Z"


def test_iso_is_utc_with_milliseconds_and_z() -> None:
    assert iso(None) is None
    assert iso(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05.000Z"
    aware = dt.datetime(2024, 1, 2, 5, 4, 5, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso(aware) == "2024-01-02T03:04:05.999Z"
