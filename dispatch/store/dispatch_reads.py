"""What rendering one dispatch reads: the order, its lines with their items, the vendor,
the ship-to location, the buyer and the named templates, as typed rows in one read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from dispatch.store.reference import read_buyer, xml_entry_of
from dispatch.store.tables import ITEM_VENDORS, ITEMS, LINES, LOCATIONS, ORDERS, TEMPLATES, VENDORS


@dataclass(frozen=True)
class OrderHead:
    id: str
    vendor_id: str
    stock_name: str
    device_id: str | None
    status: str
    is_consignment: bool
    reference: str | None
    notes: str | None
    custom_ship_to_id: str | None
    send_options: dict[str, Any] | None
    dispatch_count: int
    created_at: dt.datetime
    shipping_date: dt.datetime | None
    received_by_vendor_date: dt.datetime | None
    tracking_number: str | None


@dataclass(frozen=True)
class DocumentLine:
    """An order line with its item's name, unit, the vendor's price and atelier code."""

    id: str
    position: int
    item_id: str | None
    custom_item_id: str | None
    device_id: str | None
    total_quantity: int
    received_quantity: int
    cancelled_quantity: int
    expected_date: dt.datetime | None
    note: str | None
    line_reference: str | None
    item_name: str | None
    unit: str | None
    price: Decimal | None
    atelier_code: int | None
    unit_code: str | None = None
    gtin: str | None = None


@dataclass(frozen=True)
class VendorRecord:
    id: str
    name: str
    email: dict[str, Any] | None
    ftp: dict[str, Any] | None
    b2b: dict[str, Any] | None
    extra: dict[str, Any] | None = None  # xml_template, party, cxml (SPEC 2) and more


@dataclass(frozen=True)
class LocationRecord:
    id: str
    location_name: str
    address_line1: str
    address_line2: str | None
    city: str
    province: str
    country_title: str
    zip_code: str
    country_code: str | None = None


@dataclass(frozen=True)
class DispatchInputs:
    order: OrderHead
    lines: list[DocumentLine]
    vendor: VendorRecord | None
    ship_to: LocationRecord | None
    template_files: dict[str, str]  # template name -> file, for the names asked for
    buyer: dict[str, Any] | None = None  # the buyer: block last loaded
    # XML templates among the names asked for: name -> the templates: entry
    xml_entries: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_dispatch_inputs(conn: Connection, *, order_id: str,
                         template_names: Iterable[str] = ()) -> DispatchInputs | None:
    """Everything documents of ``order_id`` are rendered from (None: no such order)."""
    o = conn.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
    if o is None:
        return None
    order = OrderHead(o.id, o.vendor_id, o.stock_name, o.device_id, o.status,
                      bool(o.is_consignment), o.reference, o.notes, o.custom_ship_to_id,
                      o.send_options, o.dispatch_count, o.created_at, o.shipping_date,
                      o.received_by_vendor_date, o.tracking_number)
    rows = conn.execute(
        select(LINES, ITEMS.c.name, ITEMS.c.unit, ITEM_VENDORS.c.price,
               ITEM_VENDORS.c.atelier_code, ITEMS.c.unit_code, ITEMS.c.gtin)
        .select_from(LINES.outerjoin(ITEMS, ITEMS.c.id == LINES.c.item_id)
                     .outerjoin(ITEM_VENDORS, (ITEM_VENDORS.c.item_id == LINES.c.item_id)
                                & (ITEM_VENDORS.c.vendor_id == o.vendor_id)))
        .where(LINES.c.order_id == order_id).order_by(LINES.c.position)).all()
    lines = [DocumentLine(
        r.id, r.position, r.item_id, r.custom_item_id, r.device_id, r.total_quantity,
        r.received_quantity, r.cancelled_quantity, r.expected_date, r.note, r.line_reference,
        r.name, r.unit, r.custom_item_price_per_piece if r.custom_item_id else r.price,
        r.atelier_code, r.unit_code, r.gtin) for r in rows]
    v = conn.execute(select(VENDORS).where(VENDORS.c.id == o.vendor_id)).first()
    vendor = (VendorRecord(v.id, v.name, v.email, v.ftp, v.b2b, v.extra)
              if v is not None else None)
    ship_to = None
    if o.custom_ship_to_id:
        loc = conn.execute(select(LOCATIONS)
                           .where(LOCATIONS.c.id == o.custom_ship_to_id)).first()
        if loc is not None:
            ship_to = LocationRecord(loc.id, loc.location_name, loc.address_line1,
                                     loc.address_line2, loc.city, loc.province,
                                     loc.country_title, loc.zip_code, loc.country_code)
    names = sorted(set(template_names))
    files: dict[str, str] = {}
    xml_entries: dict[str, dict[str, Any]] = {}
    if names:
        for name, format, file, xml in conn.execute(
                select(TEMPLATES.c.name, TEMPLATES.c.format, TEMPLATES.c.file, TEMPLATES.c.xml)
                .where(TEMPLATES.c.name.in_(names))):
            if format == "XML":
                xml_entries[name] = xml_entry_of(name, file, xml)
            else:
                files[name] = file
    return DispatchInputs(order, lines, vendor, ship_to, files, read_buyer(conn), xml_entries)
