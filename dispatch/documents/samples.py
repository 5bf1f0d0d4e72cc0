"""Sample contexts: for checking templates at load time, previews, tests and the benchmark.

``check_template`` renders every template with these before accepting it, so a template
that fails on a purchase, a change or a cancellation is refused at ``dispatch load`` time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from dispatch.documents.context import (
    Change,
    CxmlIdentity,
    Dispatch,
    DispatchKind,
    DocumentContext,
    Line,
    Location,
    Order,
    Party,
    PostalAddress,
)

_NAMES = ("Drill bit 5 mm", "Hex nut M8 (100 pcs)", "Safety gloves, size L", "Cable ties 200 mm")
_UNITS = ("box", "bag", "pair", "pack")
_UNIT_CODES = ("BX", "BG", "PR", "PK")  # UN/ECE Rec 20 codes of _UNITS
_GTINS = ("07350000000115", "07350000000221", "07350000000337", "07350000000443")
_AT = dt.datetime(2025, 3, 14, 9, 30, 0)


def sample_lines(count: int) -> tuple[Line, ...]:
    """``count`` varied lines: quoted items, a custom item, notes, references, dates."""
    lines = []
    for i in range(1, count + 1):
        custom = i % 7 == 0
        lines.append(
            Line(
                Id=f"PurchaseOrderItem{1000 + i}",
                Position=i,
                ItemId=None if custom else f"ITEM-{i:04d}",
                CustomItemId=f"CUSTOM-{i:04d}" if custom else None,
                ItemName=_NAMES[i % len(_NAMES)],
                Unit=_UNITS[i % len(_UNITS)],
                TotalQuantity=10 + i,
                ReceivedQuantity=i % 3,
                CancelledQuantity=1 if i % 5 == 0 else 0,
                PricePerPiece=None if i % 11 == 0 else Decimal("12.50") + i,
                Note="Deliver to gate 3" if i % 4 == 0 else None,
                LineReference=f"REF-{i}" if i % 2 == 0 else None,
                ExpectedDate=_AT + dt.timedelta(days=7 + i) if i % 3 == 0 else None,
                DeviceId="DEV-1" if i % 6 == 0 else None,
                unit_code=None if custom else _UNIT_CODES[i % len(_UNIT_CODES)],
                gtin=None if custom or i % 2 else _GTINS[i % len(_GTINS)],
            )
        )
    return tuple(lines)


def sample_context(
    kind: DispatchKind = "purchase",
    *,
    lines: int = 3,
    ship_to: bool = True,
    order_id: str = "PurchaseOrder1001",
) -> DocumentContext:
    """A realistic order of ``lines`` lines as dispatch ``kind`` (number 1, 2 or 3)."""
    items = sample_lines(lines)
    if kind == "cancellation":  # what an Active -> Cancelled order looks like
        items = tuple(
            dataclasses.replace(line, CancelledQuantity=line.TotalQuantity - line.ReceivedQuantity)
            for line in items
        )
    number = {"purchase": 1, "change": 2, "cancellation": 3}[kind]
    changes: tuple[Change, ...] = ()
    if kind == "change" and items:
        first = items[0]
        changes = (
            Change(first.Id, "TotalQuantity", first.TotalQuantity - 5, first.TotalQuantity),
            Change(items[-1].Id, "CancelledQuantity", 0, items[-1].CancelledQuantity + 1),
        )
    location = Location(
        id="SITE-7",
        locationName="Plant 7",
        addressLine1="1 Main St",
        addressLine2="Building B",
        city="Springfield",
        province="IL",
        countryTitle="USA",
        zipCode="62701",
        countryCode="US",
    )
    return DocumentContext(
        order=Order(
            Id=order_id,
            Status="Cancelled" if kind == "cancellation" else "Active",
            VendorId="ACME",
            StockName="Main",
            IsConsignment=kind == "change",
            Reference="Maintenance shutdown week 12",
            Notes="Deliver between 7:00 and 15:00.\nCall the gate on arrival.",
            CustomShipToId="SITE-7" if ship_to else None,
            CreatedAt=_AT,
            ShippingDate=_AT + dt.timedelta(days=5),
            TrackingNumber=None,
        ),
        lines=items,
        vendor=Party(
            name="ACME Tools Ltd",
            id="ACME",
            email="orders@acme.test",
            legal_name="ACME Tools Ltd",
            endpoint_id="7300010000001",
            endpoint_scheme="0088",
            vat_id="US556677889901",
            postal_address=PostalAddress(
                street="1 Tool Road",
                city="Springfield",
                postal_code="62701",
                region="IL",
                country="US",
            ),
            cxml=CxmlIdentity(domain="DUNS", identity="123456789"),
        ),
        buyer=Party(
            name="Example Manufacturing Inc.",
            email="purchasing@example.test",
            address=("100 Industrial Way", "Springfield, IL 62702", "USA"),
            legal_name="Example Manufacturing Inc.",
            endpoint_id="7350000000108",
            endpoint_scheme="0088",
            vat_id="US123456789",
            postal_address=PostalAddress(
                street="100 Industrial Way",
                city="Springfield",
                postal_code="62702",
                region="IL",
                country="US",
            ),
            cxml=CxmlIdentity(domain="NetworkId", identity="buyer@example.test"),
        ),
        dispatch=Dispatch(
            kind=kind,
            number=number,
            replaces_number=None if number == 1 else number - 1,
            generated_at=_AT,
        ),
        ship_to=location if ship_to else None,
        changes=changes,
        currency="USD",
    )
