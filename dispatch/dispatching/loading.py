"""Build the DocumentContext of one dispatch job from the database.

``generated_at`` is the job's creation time, so a re-render for a retry produces the same
bytes (and the same SHA-256) as the first attempt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dispatch.documents.context import Dispatch, DocumentContext, Line, Location, Order, Party
from dispatch.errors import NotFoundError
from dispatch.store.orders import LINES, ORDERS
from dispatch.store.tables import ITEM_VENDORS, ITEMS, LOCATIONS, VENDORS


def document_context(conn: Connection, *, order_id: str, kind: str, number: int,
                     replaces_number: int | None, changes: list[dict[str, Any]] | None,
                     generated_at: Any, buyer_name: str) -> DocumentContext:
    order = conn.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
    if order is None:
        raise NotFoundError(f"orderId: no purchase order '{order_id}'")
    vendor = conn.execute(select(VENDORS).where(VENDORS.c.id == order.vendor_id)).first()
    rows = conn.execute(
        select(LINES, ITEMS.c.name, ITEMS.c.unit, ITEM_VENDORS.c.price)
        .select_from(LINES.outerjoin(ITEMS, ITEMS.c.id == LINES.c.item_id)
                     .outerjoin(ITEM_VENDORS, (ITEM_VENDORS.c.item_id == LINES.c.item_id)
                                & (ITEM_VENDORS.c.vendor_id == order.vendor_id)))
        .where(LINES.c.order_id == order_id).order_by(LINES.c.position)).all()
    lines = [Line(
        Id=r.id, Position=r.position + 1, TotalQuantity=r.total_quantity, ItemId=r.item_id,
        CustomItemId=r.custom_item_id, ItemName=r.name, Unit=r.unit,
        ReceivedQuantity=r.received_quantity, CancelledQuantity=r.cancelled_quantity,
        PricePerPiece=r.custom_item_price_per_piece if r.custom_item_id else r.price,
        Note=r.note, LineReference=r.line_reference, ExpectedDate=r.expected_date,
        DeviceId=r.device_id) for r in rows]
    ship_to = None
    if order.custom_ship_to_id:
        loc = conn.execute(select(LOCATIONS)
                           .where(LOCATIONS.c.id == order.custom_ship_to_id)).first()
        if loc is not None:
            ship_to = Location(id=loc.id, locationName=loc.location_name,
                               addressLine1=loc.address_line1, addressLine2=loc.address_line2,
                               city=loc.city, province=loc.province,
                               countryTitle=loc.country_title, zipCode=loc.zip_code)
    email = (vendor.email or {}).get("to") if vendor is not None else None
    return DocumentContext(
        order=Order(Id=order.id, Status=order.status, VendorId=order.vendor_id,
                    StockName=order.stock_name, DeviceId=order.device_id,
                    IsConsignment=bool(order.is_consignment), Reference=order.reference,
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


def ship_to_address(conn: Connection, *, location_id: str | None) -> dict[str, Any] | None:
    """The seed 000 address object of a ship-to location (None: vendor's default)."""
    if not location_id:
        return None
    loc = conn.execute(select(LOCATIONS).where(LOCATIONS.c.id == location_id)).first()
    if loc is None:
        return None
    return {"locationName": loc.location_name, "addressLine1": loc.address_line1,
            "addressLine2": loc.address_line2, "countryTitle": loc.country_title,
            "city": loc.city, "province": loc.province, "zipCode": loc.zip_code}


def atelier_codes(conn: Connection, *, vendor_id: str) -> dict[str, int | None]:
    rows = conn.execute(select(ITEM_VENDORS.c.item_id, ITEM_VENDORS.c.atelier_code)
                        .where(ITEM_VENDORS.c.vendor_id == vendor_id))
    return {item_id: code for item_id, code in rows}
