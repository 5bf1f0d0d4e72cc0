"""The DocumentContext of one dispatch, built from what the store read.

``generated_at`` is the job's creation time, so a re-render for a retry produces the same
bytes (and the same SHA-256) as the first attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from dispatch.documents.context import (
    CxmlIdentity,
    Dispatch,
    DocumentContext,
    Line,
    Location,
    Order,
    Party,
    PostalAddress,
)
from dispatch.documents.xml_spec import (
    XmlTemplateSpec,
    builtin_xml_template,
    xml_template_from_entry,
)
from dispatch.errors import NotFoundError, TemplateError
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
        ExpectedDate=r.expected_date, DeviceId=r.device_id, unit_code=r.unit_code,
        gtin=r.gtin) for r in inputs.lines]
    ship_to = None
    if loc is not None:
        ship_to = Location(id=loc.id, locationName=loc.location_name,
                           addressLine1=loc.address_line1, addressLine2=loc.address_line2,
                           city=loc.city, province=loc.province,
                           countryTitle=loc.country_title, zipCode=loc.zip_code,
                           countryCode=loc.country_code)
    email = (vendor.email or {}).get("to") if vendor is not None else None
    extra = (vendor.extra if vendor is not None else None) or {}
    buyer = inputs.buyer
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
                     id=order.vendor_id, email=", ".join(email) if email else None,
                     **party_fields(extra)),
        buyer=Party(name=(buyer or {}).get("name") or buyer_name,
                    email=(buyer or {}).get("email"), **party_fields(buyer or {})),
        # None without a buyer: block, so documents of a setup that never gave one stay
        # as they were (PDF and Excel show no currency; the XML templates default to EUR)
        currency=((buyer or {}).get("currency") or "EUR") if buyer is not None else None,
        dispatch=Dispatch(kind=kind, number=number, replaces_number=replaces_number,  # type: ignore[arg-type]
                          generated_at=generated_at),
        ship_to=ship_to,
        changes=changes or (),
    )


def xml_templates(names: Iterable[str], entries: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, XmlTemplateSpec]:
    """The XML templates called ``names``: a loaded entry if one has the name, else a
    built-in (SPEC 4). A name that is neither, or whose stored entry no longer parses, is
    left out: its delivery fails naming it."""
    specs = {}
    for name in names:
        spec = None
        if name in entries:
            try:
                spec = xml_template_from_entry(entries[name])
            except TemplateError:
                continue
        spec = spec or builtin_xml_template(name)
        if spec is not None:
            specs[name] = spec
    return specs


def party_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A reference-data ``party:`` and ``cxml:`` (a vendor's or the buyer's) as ``Party``
    keyword arguments; absent keys stay None."""
    party = data.get("party") or {}
    address = party.get("address")
    cxml = data.get("cxml")
    return {
        "legal_name": party.get("legal_name"),
        "endpoint_id": party.get("endpoint_id"),
        "endpoint_scheme": party.get("endpoint_scheme"),
        "vat_id": party.get("vat_id"),
        "postal_address": PostalAddress(**{k: address.get(k) for k in (
            "street", "additional_street", "city", "postal_code", "region", "country")})
        if address else None,
        "cxml": CxmlIdentity(domain=cxml["domain"], identity=cxml["identity"],
                             shared_secret_env=cxml.get("shared_secret_env"))
        if cxml else None,
    }


def document_context(conn: Connection, *, order_id: str, kind: str, number: int,
                     replaces_number: int | None, changes: list[dict[str, Any]] | None,
                     generated_at: dt.datetime, buyer_name: str) -> DocumentContext:
    """Read and build in one call (``dispatch render``)."""
    inputs = read_dispatch_inputs(conn, order_id=order_id)
    if inputs is None:
        raise NotFoundError(f"orderId: no purchase order '{order_id}'")
    return build_context(inputs, kind=kind, number=number, replaces_number=replaces_number,
                         changes=changes, generated_at=generated_at, buyer_name=buyer_name)
