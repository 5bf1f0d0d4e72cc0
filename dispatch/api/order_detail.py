"""The order detail of ``GET /ERP/PurchaseOrder/Get`` (SPEC 3), in PascalCase JSON.

Shaped here from the store's typed record, so the store never knows the wire format.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dispatch.store.order_reads import OrderDelivery, OrderLine, OrderRecord, OrderTransaction


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as ISO 8601 UTC with milliseconds and ``Z`` (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order_detail(record: OrderRecord) -> dict[str, Any]:
    """The order as last set, with its lines, transactions and deliveries."""
    o = record.order
    return {
        "Id": o.id, "VendorId": o.vendor_id, "StockName": o.stock_name, "DeviceId": o.device_id,
        "Status": o.status, "IsConsignment": o.is_consignment, "Reference": o.reference,
        "Notes": o.notes, "CustomIdPrefix": o.custom_id_prefix,
        "CustomShipToId": o.custom_ship_to_id, "SendOptions": o.send_options,
        "ShippingDate": iso(o.shipping_date),
        "ReceivedByVendorDate": iso(o.received_by_vendor_date),
        "TrackingNumber": o.tracking_number, "CreatedAt": iso(o.created_at),
        "UpdatedAt": iso(o.updated_at),
        "PurchaseOrderItems": [_line(line) for line in record.lines],
        "Transactions": [_transaction(t) for t in record.transactions],
        "Deliveries": [_delivery(d) for d in record.deliveries],
    }


def _line(r: OrderLine) -> dict[str, Any]:
    return {
        "Id": r.id, "ItemId": r.item_id, "CustomItemId": r.custom_item_id,
        "CustomItemPricePerPiece": _number(r.custom_item_price_per_piece),
        "DeviceId": r.device_id, "TotalQuantity": r.total_quantity,
        "ReceivedQuantity": r.received_quantity, "CancelledQuantity": r.cancelled_quantity,
        "ExpectedDate": iso(r.expected_date), "Note": r.note,
        "LineReference": r.line_reference,
    }


def _transaction(t: OrderTransaction) -> dict[str, Any]:
    return {
        "Kind": t.kind, "PurchaseOrderItemId": t.order_item_id, "Quantity": t.quantity,
        "At": iso(t.at), "RequestGuid": t.request_guid,
    }


def _delivery(d: OrderDelivery) -> dict[str, Any]:
    return {
        "Kind": d.kind, "Channel": d.channel, "Format": d.format, "Status": d.status,
        "Attempts": d.attempts, "Error": d.error, "Target": d.target, "Sha256": d.sha256,
        "DeliveredAt": iso(d.delivered_at), "NextAttemptAt": iso(d.next_attempt_at),
        "DispatchNumber": d.dispatch_number,
        "DocumentName": d.document_name, "PurchaseOrderItemId": d.order_item_id,
        "Evidence": d.evidence,
    }
