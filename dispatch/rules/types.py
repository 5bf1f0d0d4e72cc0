"""Plain data the rules read (reference snapshot, order state) and write (effects)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dispatch.documents.xml_spec import BUILTIN_XML_TEMPLATES
from dispatch.rules.send_options import SendPlan, parse_send_options
from dispatch.vocabulary import DispatchKind


@dataclass(frozen=True)
class VendorRef:
    id: str
    allow_overstock: bool = False
    send_changes: bool = False
    email: dict[str, Any] | None = None
    ftp: dict[str, Any] | None = None
    b2b: dict[str, Any] | None = None
    xml_template: str | None = None  # SPEC 4: the XML this vendor gets (None: canonical)


@dataclass(frozen=True)
class ItemVendorRef:
    quoted: bool = False
    atelier_code: int | None = None
    price: Decimal | None = None


@dataclass(frozen=True)
class ItemRef:
    id: str
    vendors: dict[str, ItemVendorRef] = field(default_factory=dict)


@dataclass(frozen=True)
class RefSnapshot:
    """Everything business validation needs to know about reference data."""

    vendors: dict[str, VendorRef] = field(default_factory=dict)
    stocks: frozenset[str] = frozenset()
    devices: dict[str, str] = field(default_factory=dict)  # device id -> stock name
    items: dict[str, ItemRef] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)  # name -> PDF | Excel | XML
    locations: frozenset[str] = frozenset()

    def template_format(self, name: str) -> str | None:
        """The format of template ``name``: a loaded entry's, else ``XML`` for a built-in
        XML template (``peppol``, ``cxml``, ``order-x``: usable with no entry); None: none."""
        format = self.templates.get(name)
        if format is None and name in BUILTIN_XML_TEMPLATES:
            return "XML"
        return format


@dataclass
class LineState:
    id: str
    position: int
    item_id: str | None
    device_id: str | None
    custom_item_id: str | None
    total: int
    received: int = 0
    cancelled: int = 0
    expected_date: dt.datetime | None = None

    @property
    def outstanding(self) -> int:
        return self.total - self.received - self.cancelled


@dataclass
class OrderState:
    """An order as the rules read it; ``plan`` is its stored SendOptions, parsed once."""

    id: str
    vendor_id: str
    stock_name: str
    device_id: str | None
    status: str
    send_options: dict[str, Any] | None
    dispatch_count: int
    lines: list[LineState]
    plan: SendPlan = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.plan = parse_send_options(self.send_options)


@dataclass(frozen=True)
class TransactionPlan:
    kind: str  # Purchase | Cancel | Receive
    line_id: str
    quantity: int


@dataclass(frozen=True)
class DispatchPlan:
    """A dispatch decided by a rule: its kind, its number on the order, what it replaces."""

    kind: DispatchKind
    number: int
    replaces_number: int | None
    changes: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class DispatchRecord:
    """A dispatch already stored (its job), as resend and preview read it."""

    job_id: int
    number: int
    kind: DispatchKind
    replaces_number: int | None
    changes: list[dict[str, Any]] | None
    created_at: dt.datetime


@dataclass
class Decision:
    """What one request does: errors (then nothing is applied) or its effects."""

    order_errors: list[str] = field(default_factory=list)
    line_errors: dict[int, list[str]] = field(default_factory=dict)
    order_changes: dict[str, Any] = field(default_factory=dict)  # column -> new value
    line_changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # line id -> cols
    transactions: list[TransactionPlan] = field(default_factory=list)
    dispatches: list[DispatchPlan] = field(default_factory=list)
    # For each line entry of the request (by its index): the line id it resolved to.
    resolved_lines: dict[int, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.order_errors or any(self.line_errors.values()))

    def line_error(self, index: int, message: str) -> None:
        self.line_errors.setdefault(index, []).append(message)

    def all_errors(self) -> list[str]:
        errors = list(self.order_errors)
        for index in sorted(self.line_errors):
            errors.extend(self.line_errors[index])
        return errors
