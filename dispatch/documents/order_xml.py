"""The canonical XML order document (lxml), validated against ``xml/purchase-order.xsd``.

XML needs no named template: the document's shape is the schema. lxml escapes ``<``, ``&``
and ``>`` in text; characters XML 1.0 cannot hold (control characters) are replaced by
U+FFFD. Nothing is returned that the schema rejects.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from dispatch.documents.context import DocumentContext, Location, Party
from dispatch.documents.sandbox import clean_text
from dispatch.documents.template_files import CompiledCache
from dispatch.errors import RenderError, TemplateError

NAMESPACE = "urn:dispatch:purchase-order:1"
SCHEMA_FILE = "xml/purchase-order.xsd"
SCHEMA_VERSION = "1"
_NS = "{" + NAMESPACE + "}"


class _Tags(dict[str, str]):
    """Clark-notation tag names, computed once per local name."""

    def __missing__(self, key: str) -> str:
        value = self[key] = _NS + key
        return value


_T = _Tags()


def _utc(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _scalar(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal(value)
    return str(value)


class _Builder:
    """Builds the tree; ``clean`` replaces characters XML cannot hold (second attempt only)."""

    def __init__(self, clean: bool) -> None:
        self.clean = clean

    def text(self, parent: etree._Element, tag: str, value: Any) -> None:
        if value is None:
            return
        text = value if isinstance(value, str) else _scalar(value)
        etree.SubElement(parent, _T[tag]).text = clean_text(text) if self.clean else text

    def party(self, parent: etree._Element, tag: str, party: Party) -> None:
        el = etree.SubElement(parent, _T[tag])
        self.text(el, "Id", party.id)
        self.text(el, "Name", party.name)
        self.text(el, "Email", party.email)
        for line in party.address:
            self.text(el, "AddressLine", line)

    def location(self, parent: etree._Element, loc: Location) -> None:
        el = etree.SubElement(parent, _T["ShipTo"])
        t = self.text
        t(el, "Id", loc.id)
        t(el, "LocationName", loc.locationName)
        t(el, "AddressLine1", loc.addressLine1)
        t(el, "AddressLine2", loc.addressLine2)
        t(el, "City", loc.city)
        t(el, "Province", loc.province)
        t(el, "CountryTitle", loc.countryTitle)
        t(el, "ZipCode", loc.zipCode)

    def build(self, ctx: DocumentContext) -> etree._Element:
        t = self.text
        root = etree.Element(_T["PurchaseOrderDocument"], nsmap={None: NAMESPACE})
        root.set("schemaVersion", SCHEMA_VERSION)

        d = ctx.dispatch
        el = etree.SubElement(root, _T["Dispatch"])
        t(el, "Kind", d.kind)
        t(el, "Number", d.number)
        t(el, "ReplacesNumber", d.replaces_number)
        t(el, "GeneratedAt", d.generated_at)

        o = ctx.order
        el = etree.SubElement(root, _T["Order"])
        t(el, "Id", o.Id)
        t(el, "Status", o.Status)
        t(el, "VendorId", o.VendorId)
        t(el, "StockName", o.StockName)
        t(el, "DeviceId", o.DeviceId)
        t(el, "IsConsignment", bool(o.IsConsignment))
        t(el, "Reference", o.Reference)
        t(el, "Notes", o.Notes)
        t(el, "CustomShipToId", o.CustomShipToId)
        t(el, "CreatedAt", o.CreatedAt)
        t(el, "ShippingDate", o.ShippingDate)
        t(el, "ReceivedByVendorDate", o.ReceivedByVendorDate)
        t(el, "TrackingNumber", o.TrackingNumber)

        self.party(root, "Buyer", ctx.buyer)
        self.party(root, "Vendor", ctx.vendor)
        if ctx.ship_to is not None:
            self.location(root, ctx.ship_to)

        lines_el = etree.SubElement(root, _T["Lines"])
        line_tag = _T["Line"]
        for line in ctx.lines:
            el = etree.SubElement(lines_el, line_tag)
            t(el, "Id", line.Id)
            t(el, "Position", line.Position)
            t(el, "ItemId", line.ItemId)
            t(el, "CustomItemId", line.CustomItemId)
            t(el, "ItemName", line.ItemName)
            t(el, "Unit", line.Unit)
            t(el, "DeviceId", line.DeviceId)
            t(el, "TotalQuantity", line.TotalQuantity)
            t(el, "ReceivedQuantity", line.ReceivedQuantity)
            t(el, "CancelledQuantity", line.CancelledQuantity)
            t(el, "PricePerPiece", line.PricePerPiece)
            t(el, "Amount", line.Amount)
            t(el, "ExpectedDate", line.ExpectedDate)
            t(el, "Note", line.Note)
            t(el, "LineReference", line.LineReference)

        if ctx.changes:
            changes_el = etree.SubElement(root, _T["Changes"])
            for change in ctx.change_list:
                el = etree.SubElement(changes_el, _T["Change"])
                t(el, "PurchaseOrderItemId", change.PurchaseOrderItemId)
                t(el, "Position", change.Position)
                t(el, "Field", change.Field)
                t(el, "Old", change.Old)
                t(el, "New", change.New)

        totals = ctx.totals
        el = etree.SubElement(root, _T["Totals"])
        t(el, "LineCount", totals.line_count)
        t(el, "Quantity", totals.quantity)
        t(el, "CancelledQuantity", totals.cancelled)
        t(el, "NetQuantity", totals.net_quantity)
        t(el, "Amount", totals.amount)
        t(el, "FullyPriced", totals.fully_priced)
        return root


class _Schema:
    """A parsed XSD with a lock: an lxml validator and its error log are not shared safely."""

    def __init__(self, path: Path) -> None:
        try:
            self.schema = etree.XMLSchema(etree.parse(str(path)))
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise TemplateError(f"XML schema {path}: does not parse: {exc}") from None
        self.path = path
        self.lock = threading.Lock()

    def check(self, root: etree._Element) -> None:
        with self.lock:
            if self.schema.validate(root):
                return
            errors = [f"line {e.line}: {e.message}" for e in self.schema.error_log]
        raise RenderError(
            f"the XML document is not valid against {self.path.name}: " + "; ".join(errors[:5])
        )


_SCHEMAS: CompiledCache[_Schema] = CompiledCache(_Schema)


def schema_path(templates_dir: Path, default_dir: Path) -> Path:
    """The XSD in ``templates_dir`` if it ships one, else the project's own."""
    own = templates_dir / SCHEMA_FILE
    return own if own.is_file() else default_dir / SCHEMA_FILE


def build_tree(ctx: DocumentContext) -> etree._Element:
    """The document tree for ``ctx`` (not yet validated)."""
    try:
        return _Builder(clean=False).build(ctx)
    except ValueError:
        # lxml refuses control characters and lone surrogates; retry replacing them.
        return _Builder(clean=True).build(ctx)


class XmlRenderer:
    """Renders the canonical XML document; the ``template`` argument is not used."""

    format = "XML"
    extension = "xml"
    media_type = "application/xml"
    needs_template = False

    def __init__(self, default_templates_dir: Path) -> None:
        self.default_templates_dir = default_templates_dir

    def render(self, ctx: DocumentContext, *, template: Path | None, templates_dir: Path) -> bytes:
        root = build_tree(ctx)
        _SCHEMAS.get(schema_path(templates_dir, self.default_templates_dir)).check(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def check(self, template: Path) -> None:
        raise TemplateError(
            f"{template}: XML documents need no template; the schema is {SCHEMA_FILE}"
        )

    def validate_bytes(self, content: bytes, templates_dir: Path) -> None:
        """Parse ``content`` and validate it against the schema (used by tests and readers)."""
        root = etree.fromstring(content)
        _SCHEMAS.get(schema_path(templates_dir, self.default_templates_dir)).check(root)
