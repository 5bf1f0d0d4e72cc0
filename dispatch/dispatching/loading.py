"""The DocumentContext of one dispatch, built from what the store read.

``generated_at`` is the job's creation time, so a re-render for a retry produces the same
bytes (and the same SHA-256) as the first attempt.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection

from dispatch.documents.context import Dispatch, DocumentContext, Line, Location, Order, Party
from dispatch.errors import NotFoundError
from dispatch.store.dispatch_reads import DispatchInputs, read_dispatch_inputs


def build_context(inputs: DispatchInputs, *, kind: str, number: int,
                  replaces_number: int | None, changes: list[dict[str, Any]] | None,
                  generated_at: dt.datetime, buyer_name: str) -> DocumentContext:
    order, vendor, loc = inputs.order, inputs.vendor, inputs.ship_to
    lines = [Line(
        Id=r.id, Position=r.position + 1, TotalQuantity=r.total_quantity, ItemId=r.item_id,
        CustomItemId=r.custom_item_id, ItemName=r.item_name, Unit=r.unit,
        ReceivedQuantity=r.received_quantity, CancelledQuantity=r.cancelled_quantity,
        PricePerPiece=r.price, Note=r.note, LineReference=r.line_reference,
        ExpectedDate=r.expected_date, DeviceId=r.device_id) for r in inputs.lines]
    ship_to = None
    if loc is not None:
        ship_to = Location(id=loc.id, locationName=loc.location_name,
                           addressLine1=loc.address_line1, addressLine2=loc.address_line2,
                           city=loc.city, province=loc.province,
                           countryTitle=loc.country_title, zipCode=loc.zip_code)
    email = (vendor.email or {}).get("to") if vendor is not None else None
    return DocumentContext(
        order=Order(Id=order.id, Status=order.status, VendorId=order.vendor_id,
                    StockName=order.stock_name, DeviceId=order.device_id,
                    IsConsignment=order.is_consignment, Reference=order.reference,
                    Notes=order.notes, CustomShipToId=order.custom_ship_to_id,
                    CreatedAt=order.created_at, ShippingDate=order.shipping_date,
                    ReceivedByVendorDate=order.received_by_vendor_date,
                    TrackingNumber=order.tracking_number),
        lines=lines,
        vendor=Party(name=vendor.name if vendor is not None else order.vendor_id,
                     id=order.vendor_id, email=", ".join(email) if email else None),
        buyer=Party(name=buyer_name),
        dispatch=Dispatch(kind=kind, number=number, replaces_number=replaces_number,  # type: ignore[arg-type]
                          generated_at=generated_at),
        ship_to=ship_to,
        changes=changes or (),
    )


def document_context(conn: Connection, *, order_id: str, kind: str, number: int,
                     replaces_number: int | None, changes: list[dict[str, Any]] | None,
                     generated_at: dt.datetime, buyer_name: str) -> DocumentContext:
    """Read and build in one call (``dispatch render``)."""
    inputs = read_dispatch_inputs(conn, order_id=order_id)
    if inputs is None:
        raise NotFoundError(f"orderId: no purchase order '{order_id}'")
    return build_context(inputs, kind=kind, number=number, replaces_number=replaces_number,
                         changes=changes, generated_at=generated_at, buyer_name=buyer_name)
