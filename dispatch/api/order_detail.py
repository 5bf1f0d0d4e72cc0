"""The order detail of ``GET /ERP/PurchaseOrder/Get`` (SPEC 3), in PascalCase JSON.

Shaped here from the store's typed record, so the store never knows the wire format.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dispatch.rules.responses import ResponseView, b2b_order_id, parse_within, response_view
from dispatch.store.order_reads import OrderDelivery, OrderLine, OrderRecord, OrderTransaction
from dispatch.vocabulary import Channel, DeliveryStatus


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
    view = order_response_view(record)
    return {
        "Id": o.id, "VendorId": o.vendor_id, "StockName": o.stock_name, "DeviceId": o.device_id,
        "Status": o.status, "IsConsignment": o.is_consignment, "Reference": o.reference,
        "Notes": o.notes, "CustomIdPrefix": o.custom_id_prefix,
        "CustomShipToId": o.custom_ship_to_id, "SendOptions": o.send_options,
        "ShippingDate": iso(o.shipping_date),
        "ReceivedByVendorDate": iso(o.received_by_vendor_date),
        "TrackingNumber": o.tracking_number, "CreatedAt": iso(o.created_at),
        "UpdatedAt": iso(o.updated_at),
        "PurchaseOrderItems": [_line(line) | _line_response(view, line.id)
                               for line in record.lines],
        "Transactions": [_transaction(t) for t in record.transactions],
        "Deliveries": [_delivery(d) for d in record.deliveries],
        "Response": _response(view),
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


# --- SPEC 8: the vendor's answer ----------------------------------------------------------


def order_response_view(record: OrderRecord) -> ResponseView:
    """Where the vendor's answer stands (``rules/responses.py: response_view``)."""
    stored = record.responses
    block = stored.vendor_responses if stored is not None else None
    within = None
    if block and block.get("within"):
        try:
            within = parse_within(str(block["within"]))
        except ValueError:
            within = None  # refused by `dispatch load`; an old row shows no due time
    b2b_ids = {}
    for d in record.deliveries:
        if d.channel is Channel.B2B and d.status is DeliveryStatus.DELIVERED and d.order_item_id:
            found = b2b_order_id(d.evidence)
            if found:
                b2b_ids[d.order_item_id] = found
    return response_view(
        configured=block is not None, within=within,
        dispatches=stored.dispatches if stored else (),
        responses=stored.responses if stored else (),
        overdue_numbers=stored.overdue_numbers if stored else (),
        line_ids=[line.id for line in record.lines], b2b_order_ids=b2b_ids)


def _response(view: ResponseView) -> dict[str, Any]:
    return {"Status": str(view.status), "DispatchNumber": view.dispatch_number,
            "DueBy": iso(view.due_by), "ReceivedAt": iso(view.received_at),
            "VendorOrderId": view.vendor_order_id}


def _line_response(view: ResponseView, line_id: str) -> dict[str, Any]:
    line = view.lines.get(line_id)
    if line is None:
        return {"ConfirmedQuantity": None, "PromisedDate": None, "ResponseStatus": None,
                "VendorOrderId": None}
    return {"ConfirmedQuantity": line.confirmed_quantity, "PromisedDate": line.promised_date,
            "ResponseStatus": str(line.status) if line.status else None,
            "VendorOrderId": line.vendor_order_id}
