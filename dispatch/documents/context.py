"""Everything a document template gets: the order, its lines, the parties and the dispatch.

Pure data. The store builds a ``DocumentContext`` from the database; renderers and templates
only read it. Field names follow their source so template authors see familiar words:
the ERP API's PascalCase for the order and its lines (``order.Id``, ``line.TotalQuantity``),
the reference-data file's names for the ship-to location (``ship_to.locationName``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal, cast

DispatchKind = Literal["purchase", "change", "cancellation"]
KINDS: tuple[str, ...] = ("purchase", "change", "cancellation")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PostalAddress:
    """A structured postal address (reference data ``party.address``), for standard documents."""

    street: str | None = None
    additional_street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, e.g. "SE"

    @property
    def lines(self) -> tuple[str, ...]:
        """The address as printed lines, without empty ones."""
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        parts = (
            self.street,
            self.additional_street,
            ", ".join(p for p in (city, self.region) if p),
            self.country,
        )
        return tuple(p for p in parts if p)


@dataclass(frozen=True)
class CxmlIdentity:
    """A cXML credential (reference data ``cxml:``); the shared secret only by env-var name."""

    domain: str
    identity: str
    shared_secret_env: str | None = None


@dataclass(frozen=True)
class Party:
    """A buyer or vendor block: who, and how to reach them.

    The fields after ``address`` (turn 2) are optional party data for standard documents
    (Peppol, cXML, Order-X); a party without them renders as before.
    """

    name: str
    id: str | None = None
    email: str | None = None  # addresses to show, comma-separated
    address: tuple[str, ...] = ()  # printed lines of a postal address
    legal_name: str | None = None
    endpoint_id: str | None = None  # e.g. a GLN, with its ISO 6523 ICD scheme ("0088")
    endpoint_scheme: str | None = None
    vat_id: str | None = None
    postal_address: PostalAddress | None = None
    cxml: CxmlIdentity | None = None

    @property
    def address_lines(self) -> tuple[str, ...]:
        """``address`` if given, else the lines of ``postal_address``."""
        if self.address or self.postal_address is None:
            return self.address
        return self.postal_address.lines


@dataclass(frozen=True)
class Location:
    """A ship-to location (reference data ``locations:``), named as in that file."""

    id: str
    locationName: str
    addressLine1: str
    city: str
    province: str
    countryTitle: str
    zipCode: str
    addressLine2: str | None = None
    countryCode: str | None = None  # ISO 3166-1 alpha-2, for standard documents (optional)

    @property
    def lines(self) -> tuple[str, ...]:
        """The address as printed lines, without empty ones."""
        city = " ".join(p for p in (self.zipCode, self.city) if p)
        parts = (
            self.locationName,
            self.addressLine1,
            self.addressLine2,
            ", ".join(p for p in (city, self.province) if p),
            self.countryTitle,
        )
        return tuple(p for p in parts if p)


@dataclass(frozen=True)
class Order:
    """The purchase order header, as last set through the ERP API."""

    Id: str
    Status: str = "Active"
    VendorId: str | None = None
    StockName: str | None = None
    DeviceId: str | None = None
    IsConsignment: bool = False
    Reference: str | None = None
    Notes: str | None = None
    CustomShipToId: str | None = None
    CreatedAt: dt.datetime | None = None
    ShippingDate: dt.datetime | None = None
    ReceivedByVendorDate: dt.datetime | None = None
    TrackingNumber: str | None = None


@dataclass(frozen=True)
class Line:
    """One order line. ``PricePerPiece`` is the vendor price or the custom item's price."""

    Id: str
    Position: int
    TotalQuantity: int
    ItemId: str | None = None
    CustomItemId: str | None = None
    ItemName: str | None = None
    Unit: str | None = None
    ReceivedQuantity: int = 0
    CancelledQuantity: int = 0
    PricePerPiece: Decimal | None = None
    Note: str | None = None
    LineReference: str | None = None
    ExpectedDate: dt.datetime | None = None
    DeviceId: str | None = None
    unit_code: str | None = None  # reference data item ``unit_code`` (UN/ECE Rec 20), optional
    gtin: str | None = None  # reference data item ``gtin``, optional

    @property
    def Code(self) -> str:
        """The item id shown to the vendor: ``ItemId`` or, for a custom item, ``CustomItemId``."""
        return self.ItemId or self.CustomItemId or ""

    @property
    def IsCustom(self) -> bool:
        return self.ItemId is None and self.CustomItemId is not None

    @property
    def NetQuantity(self) -> int:
        """Ordered minus cancelled: what the vendor still delivers or has delivered."""
        return self.TotalQuantity - self.CancelledQuantity

    @property
    def OpenQuantity(self) -> int:
        """Ordered minus received minus cancelled: still outstanding."""
        return self.TotalQuantity - self.ReceivedQuantity - self.CancelledQuantity

    @property
    def Amount(self) -> Decimal | None:
        """``NetQuantity × PricePerPiece``, or None when the line has no price."""
        if self.PricePerPiece is None:
            return None
        return self.PricePerPiece * self.NetQuantity


@dataclass(frozen=True)
class Change:
    """One changed field of one line in a change dispatch (``Old`` → ``New``).

    ``Position`` and ``ItemCode`` are filled from the context's lines so templates can show
    which line changed without a lookup.
    """

    PurchaseOrderItemId: str
    Field: str
    Old: Any = None
    New: Any = None
    Position: int | None = None
    ItemCode: str | None = None


@dataclass(frozen=True)
class Totals:
    """Sums over the lines (see ``compute_totals``)."""

    line_count: int
    quantity: int  # sum of TotalQuantity
    cancelled: int  # sum of CancelledQuantity
    received: int  # sum of ReceivedQuantity
    net_quantity: int  # quantity - cancelled
    open_quantity: int  # quantity - received - cancelled
    amount: Decimal  # sum of the priced lines' Amount
    priced_lines: int  # lines with a price
    fully_priced: bool  # every line has a price, so ``amount`` is the order's value


def compute_totals(lines: Iterable[Line]) -> Totals:
    """Sum quantities and amounts over ``lines``; unpriced lines add no amount."""
    count = quantity = cancelled = received = priced = 0
    amount = Decimal(0)
    for line in lines:
        count += 1
        quantity += line.TotalQuantity
        cancelled += line.CancelledQuantity
        received += line.ReceivedQuantity
        line_amount = line.Amount
        if line_amount is not None:
            priced += 1
            amount += line_amount
    return Totals(
        line_count=count,
        quantity=quantity,
        cancelled=cancelled,
        received=received,
        net_quantity=quantity - cancelled,
        open_quantity=quantity - received - cancelled,
        amount=amount,
        priced_lines=priced,
        fully_priced=priced == count,
    )


@dataclass(frozen=True)
class Dispatch:
    """Which numbered dispatch of the order this document is (SPEC 7: versioned dispatches)."""

    kind: DispatchKind = "purchase"
    number: int = 1
    replaces_number: int | None = None
    generated_at: dt.datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"dispatch kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.number < 1:
            raise ValueError(f"dispatch number must be >= 1, got {self.number}")

    @property
    def is_purchase(self) -> bool:
        return self.kind == "purchase"

    @property
    def is_change(self) -> bool:
        return self.kind == "change"

    @property
    def is_cancellation(self) -> bool:
        return self.kind == "cancellation"


@dataclass(frozen=True)
class DocumentContext:
    """All a renderer and its template see. Build it with keyword arguments.

    ``changes`` accepts ``Change`` objects or dicts with the keys ``PurchaseOrderItemId``,
    ``Field``, ``Old``, ``New`` (as the dispatch job stores them); lines and changes are
    stored as tuples so the context cannot be modified by a template.
    """

    order: Order
    lines: Sequence[Line]
    vendor: Party
    buyer: Party = field(default_factory=lambda: Party(name="Buyer"))
    dispatch: Dispatch = field(default_factory=Dispatch)
    ship_to: Location | None = None
    changes: Sequence[Change | Mapping[str, Any]] = ()
    currency: str | None = None

    def __post_init__(self) -> None:
        lines = tuple(self.lines)
        object.__setattr__(self, "lines", lines)
        by_id = {line.Id: line for line in lines}
        changes = []
        for raw in self.changes:
            change = raw if isinstance(raw, Change) else _change_from_mapping(raw)
            line = by_id.get(change.PurchaseOrderItemId)
            if line is not None and change.Position is None:
                change = Change(
                    PurchaseOrderItemId=change.PurchaseOrderItemId,
                    Field=change.Field,
                    Old=change.Old,
                    New=change.New,
                    Position=line.Position,
                    ItemCode=line.Code,
                )
            changes.append(change)
        object.__setattr__(self, "changes", tuple(changes))

    @cached_property
    def totals(self) -> Totals:
        return compute_totals(self.lines)

    @cached_property
    def changed_line_ids(self) -> frozenset[str]:
        return frozenset(c.PurchaseOrderItemId for c in self.change_list)

    @cached_property
    def change_notes(self) -> dict[str, str]:
        """Line id → ``"Field: old → new; …"`` for the lines this change dispatch touches."""
        notes: dict[str, list[str]] = {}
        for c in self.change_list:
            notes.setdefault(c.PurchaseOrderItemId, []).append(
                f"{c.Field}: {_plain(c.Old)} → {_plain(c.New)}"
            )
        return {line_id: "; ".join(parts) for line_id, parts in notes.items()}

    @property
    def change_list(self) -> tuple[Change, ...]:
        """``changes`` as ``Change`` objects (``__post_init__`` converted them)."""
        return cast(tuple[Change, ...], self.changes)

    @property
    def stock(self) -> str | None:
        return self.order.StockName

    @property
    def device(self) -> str | None:
        return self.order.DeviceId

    def template_vars(self) -> dict[str, Any]:
        """The names a template sees (``order``, ``lines``, ``vendor`` …)."""
        return {
            "ctx": self,
            "order": self.order,
            "lines": self.lines,
            "vendor": self.vendor,
            "buyer": self.buyer,
            "dispatch": self.dispatch,
            "ship_to": self.ship_to,
            "changes": self.changes,
            "change_notes": self.change_notes,
            "totals": self.totals,
            "stock": self.order.StockName,
            "device": self.order.DeviceId,
            "currency": self.currency,
        }


def _change_from_mapping(raw: Mapping[str, Any]) -> Change:
    try:
        return Change(
            PurchaseOrderItemId=str(raw["PurchaseOrderItemId"]),
            Field=str(raw["Field"]),
            Old=raw.get("Old"),
            New=raw.get("New"),
        )
    except KeyError as exc:
        raise ValueError(
            f"a change needs PurchaseOrderItemId, Field, Old, New; {exc.args[0]!r} is missing "
            f"in {dict(raw)!r}"
        ) from None


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)
