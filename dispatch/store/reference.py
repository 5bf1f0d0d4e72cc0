"""Reference data in the database: all-or-nothing upsert, and the cached snapshot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dispatch.documents.xml_spec import (
    BUILTIN_XML_TEMPLATES,
    XmlTemplateSpec,
    missing_reference_data,
    resolve_xml_template,
    xml_template_from_entry,
)
from dispatch.errors import ReferenceDataError, TemplateError
from dispatch.reference_data import ReferenceData, TemplateEntry, check_duplicates
from dispatch.rules.types import ItemRef, ItemVendorRef, RefSnapshot, VendorRef
from dispatch.store.engine import reading, transaction
from dispatch.store.tables import (
    BUYER,
    COUNTERS,
    DEVICES,
    ITEM_VENDORS,
    ITEMS,
    LOCATIONS,
    STOCKS,
    TEMPLATES,
    VENDORS,
)

TemplateChecker = Callable[..., None]
# (templates_dir, spec): compile an XML template and render sample orders through it
XmlTemplateChecker = Callable[[Path, XmlTemplateSpec], None]


@dataclass(frozen=True, slots=True)
class StoredKeys:
    """The stock names and vendor ids already stored (a file may refer to them), and what
    the XML template checks read of the stored data (the file overrides it)."""

    stocks: frozenset[str]
    vendors: frozenset[str]
    template_formats: dict[str, str] = field(default_factory=dict)  # name -> format
    xml_entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> entry
    vendor_data: dict[str, dict[str, Any]] = field(default_factory=dict)  # id, xml_template…
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id, unit_code, vendors
    buyer: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoredVendor:
    """A vendors row as loaded: its channel targets and the file's extra keys."""

    id: str
    name: str
    allow_overstock: bool
    send_changes: bool
    email: dict[str, Any] | None
    ftp: dict[str, Any] | None
    b2b: dict[str, Any] | None
    extra: dict[str, Any] | None


def read_keys(conn: Connection) -> StoredKeys:
    """What a loaded file's cross-references may name besides its own entries."""
    formats, entries = {}, {}
    for name, format, file, xml in conn.execute(
            select(TEMPLATES.c.name, TEMPLATES.c.format, TEMPLATES.c.file, TEMPLATES.c.xml)):
        formats[name] = format
        if format == "XML":
            entries[name] = xml_entry_of(name, file, xml)
    vendor_data = {}
    for vendor_id, extra in conn.execute(select(VENDORS.c.id, VENDORS.c.extra)):
        extra = extra or {}
        vendor_data[vendor_id] = {"id": vendor_id, **{
            k: extra[k] for k in ("xml_template", "party", "cxml") if k in extra}}
    items: dict[str, dict[str, Any]] = {
        row.id: {"id": row.id, "unit_code": row.unit_code, "gtin": row.gtin, "vendors": set()}
        for row in conn.execute(select(ITEMS.c.id, ITEMS.c.unit_code, ITEMS.c.gtin))}
    for item_id, vendor_id in conn.execute(select(ITEM_VENDORS.c.item_id,
                                                  ITEM_VENDORS.c.vendor_id)):
        if item_id in items:
            items[item_id]["vendors"].add(vendor_id)
    return StoredKeys(stocks=frozenset(conn.execute(select(STOCKS.c.name)).scalars()),
                      vendors=frozenset(vendor_data), template_formats=formats,
                      xml_entries=entries, vendor_data=vendor_data, items=items,
                      buyer=read_buyer(conn))


def xml_entry_of(name: str, file: str, xml: dict[str, Any] | None) -> dict[str, Any]:
    """A stored XML template row as the ``templates:`` entry it was loaded from."""
    return {"name": name, "format": "XML", **(xml or {"file": file})}


def read_buyer(conn: Connection) -> dict[str, Any] | None:
    """The ``buyer:`` block last loaded (None: never loaded)."""
    data = conn.execute(select(BUYER.c.data).where(BUYER.c.id == 1)).scalar()
    return dict(data) if data else None


def read_vendors(conn: Connection) -> list[StoredVendor]:
    """Every stored vendor, by id."""
    columns = [VENDORS.c[field.name] for field in fields(StoredVendor)]
    return [StoredVendor(*row) for row in conn.execute(select(*columns).order_by(VENDORS.c.id))]


# The file checks below are not storage: they belong beside check_duplicates in
# dispatch/reference_data/. They take what the store knows as a value, so moving them is
# a cut and paste.
def reference_problems(
    data: ReferenceData,
    *,
    stored: StoredKeys,
    templates_dir: Path,
    check_template: TemplateChecker | None,
    check_xml_template: XmlTemplateChecker | None = None,
) -> list[str]:
    """Cross-references (file + stored keys) and template files; returns problems."""
    problems = check_duplicates(data)
    stocks = {s.name for s in data.stocks} | stored.stocks
    vendors = {v.id for v in data.vendors} | stored.vendors
    for index, device in enumerate(data.devices):
        if device.stock not in stocks:
            problems.append(
                f"devices[{index}] ({device.id}).stock: stock '{device.stock}' does not exist "
                "(add it under stocks:)"
            )
    for index, item in enumerate(data.items):
        for vendor_id in item.vendors:
            if vendor_id not in vendors:
                problems.append(
                    f"items[{index}] ({item.id}).vendors.{vendor_id}: vendor '{vendor_id}' "
                    "does not exist (add it under vendors:)"
                )
    root = templates_dir.resolve()
    for index, template in enumerate(data.templates):
        if template.format == "XML":
            continue  # xml_template_problems
        assert template.file is not None  # TemplateEntry: PDF and Excel have one file
        label = f"templates[{index}] ({template.name}).file"
        path = (root / template.file).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{label}: '{template.file}' is outside the templates directory")
        elif not path.is_file():
            problems.append(f"{label}: '{template.file}' does not exist under {root}")
        elif check_template is not None:
            try:
                check_template(root, name=template.name, format=template.format,
                               file=template.file)
            except TemplateError as exc:
                problems.append(f"{label}: {exc}")
    return problems + xml_template_problems(data, stored=stored, templates_dir=root,
                                            check_xml_template=check_xml_template)


def _template_files(spec: XmlTemplateSpec) -> list[tuple[str, str]]:
    """(entry field, file) of every file of an XML template entry, schema included."""
    files = [("file" if kind == "*" else f"files.{kind}", file)
             for kind, file in spec.files.items()]
    return files + ([("schema", spec.schema)] if spec.schema else [])


def xml_template_problems(
    data: ReferenceData,
    *,
    stored: StoredKeys,
    templates_dir: Path,
    check_xml_template: XmlTemplateChecker | None,
) -> list[str]:
    """SPEC 4: the file's XML templates exist (every file and the schema) and, with a
    checker, compile and render; each vendor's ``xml_template`` names an XML template (an
    entry, else a built-in), and the reference data has what that template needs (the file
    over what is stored: a vendor, its items or the buyer may come from an earlier load)."""
    problems: list[str] = []
    root = templates_dir.resolve()
    formats = dict(stored.template_formats)
    entries: dict[str, XmlTemplateSpec] = {}
    for name, raw in stored.xml_entries.items():
        try:
            entries[name] = xml_template_from_entry(raw)
        except TemplateError:
            continue  # checked when it was loaded; the send names it if it broke since
    for template in data.templates:
        formats[template.name] = template.format
        entries.pop(template.name, None)
        if template.format == "XML":
            entries[template.name] = xml_template_from_entry(template.xml_entry())
    checked: set[str] = set()
    for index, template in enumerate(data.templates):
        if template.format != "XML":
            continue
        label = f"templates[{index}] ({template.name})"
        spec = entries[template.name]
        found = True
        for key, file in _template_files(spec):
            path = (root / file).resolve()
            if not path.is_relative_to(root):
                problems.append(f"{label}.{key}: '{file}' is outside the templates directory")
                found = False
            elif not path.is_file():
                problems.append(f"{label}.{key}: '{file}' does not exist under {root}")
                found = False
        checked.add(template.name)
        if found and check_xml_template is not None:
            try:
                check_xml_template(root, spec)
            except TemplateError as exc:
                problems.append(f"{label}: {exc}")
    vendors = dict(stored.vendor_data)
    labels: dict[str, str] = {}
    for index, vendor in enumerate(data.vendors):
        vendors[vendor.id] = {"id": vendor.id, **vendor.standard_data()}
        labels[vendor.id] = f"vendors[{index}] ({vendor.id})"
    buyer = (data.buyer.model_dump(mode="json", exclude_none=True) if data.buyer is not None
             else stored.buyer)
    items = dict(stored.items)
    for item in data.items:
        items[item.id] = {"id": item.id, "unit_code": item.unit_code, "gtin": item.gtin,
                          "vendors": set(item.vendors)}
    for vendor_id, standard in sorted(vendors.items()):
        name = str(standard.get("xml_template") or "")
        if not name:
            continue
        label = labels.get(vendor_id, f"vendor {vendor_id!r} (loaded before)")
        if formats.get(name, "XML") != "XML":
            problems.append(f"{label}.xml_template: template '{name}' is {formats[name]}, "
                            "not XML; name an XML template")
            continue
        found_spec = resolve_xml_template(name, entries)
        if found_spec is None:
            problems.append(
                f"{label}.xml_template: no XML template '{name}'; add a templates: entry "
                f"with format: XML, or use a built-in one ({', '.join(BUILTIN_XML_TEMPLATES)})")
            continue
        if name not in checked and check_xml_template is not None:
            checked.add(name)
            try:
                check_xml_template(root, found_spec)
            except TemplateError as exc:
                problems.append(f"{label}.xml_template: {exc}")
        supplied = [item for item in items.values() if vendor_id in item["vendors"]]
        problems += missing_reference_data(found_spec, vendor=standard, buyer=buyer,
                                           items=supplied)
    return problems


def _template_row(template: TemplateEntry) -> dict[str, Any]:
    xml = None
    if template.format == "XML":
        xml = {k: v for k, v in template.xml_entry().items() if k not in ("name", "format")}
    return {"name": template.name, "format": template.format, "file": template.first_file,
            "xml": xml}


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
            ) -> None:
    """Insert rows, or update every non-key column of those already there."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, rows)


def upsert_reference_data(
    engine: Engine,
    data: ReferenceData,
    *,
    source: str,
    templates_dir: Path,
    check_template: TemplateChecker | None = None,
    check_xml_template: XmlTemplateChecker | None = None,
) -> dict[str, int]:
    """Validate everything, then write everything in one transaction (or nothing).

    Returns:
        How many entries of each section the file held.
    Raises:
        ReferenceDataError: naming ``source`` and every problem; nothing was written.
    """
    with transaction(engine) as conn:
        problems = reference_problems(data, stored=read_keys(conn), templates_dir=templates_dir,
                                      check_template=check_template,
                                      check_xml_template=check_xml_template)
        if problems:
            raise ReferenceDataError(source, problems)
        _upsert(conn, VENDORS, [
            {"id": v.id, "name": v.name, "allow_overstock": v.allow_overstock,
             "send_changes": v.send_changes,
             "email": v.email.model_dump(mode="json") if v.email else None,
             "ftp": v.ftp.model_dump(mode="json") if v.ftp else None,
             "b2b": v.b2b.model_dump(mode="json") if v.b2b else None,
             "extra": {**(v.model_extra or {}), **v.standard_data()} or None}
            for v in data.vendors], ["id"])
        _upsert(conn, STOCKS, [{"name": s.name} for s in data.stocks], ["name"])
        _upsert(conn, DEVICES,
                [{"id": d.id, "stock_name": d.stock} for d in data.devices], ["id"])
        _upsert(conn, ITEMS,
                [{"id": i.id, "name": i.name, "unit": i.unit, "unit_code": i.unit_code,
                  "gtin": i.gtin} for i in data.items], ["id"])
        if data.items:  # an item's vendor list is replaced, not merged
            conn.execute(delete(ITEM_VENDORS).where(
                ITEM_VENDORS.c.item_id.in_([i.id for i in data.items])))
            rows = [{"item_id": i.id, "vendor_id": vid, "quoted": iv.quoted,
                     "atelier_code": iv.atelier_code, "price": iv.price}
                    for i in data.items for vid, iv in i.vendors.items()]
            if rows:
                conn.execute(ITEM_VENDORS.insert(), rows)
        _upsert(conn, TEMPLATES, [_template_row(t) for t in data.templates], ["name"])
        _upsert(conn, LOCATIONS, [
            {"id": loc.id, "location_name": loc.locationName, "address_line1": loc.addressLine1,
             "address_line2": loc.addressLine2, "city": loc.city, "province": loc.province,
             "country_title": loc.countryTitle, "zip_code": loc.zipCode,
             "country_code": loc.countryCode}
            for loc in data.locations], ["id"])
        if data.buyer is not None:  # the block is replaced whole, like a vendor
            _upsert(conn, BUYER, [{"id": 1, "data": data.buyer.model_dump(
                mode="json", exclude_none=True)}], ["id"])
        # Executors re-read their cached snapshot when this number moves.
        conn.execute(update(COUNTERS).where(COUNTERS.c.name == "refdata_version")
                     .values(value=COUNTERS.c.value + 1))
    counts = {section: len(getattr(data, section)) for section in
              ("vendors", "stocks", "devices", "items", "templates", "locations")}
    if data.buyer is not None:
        counts["buyer"] = 1
    return counts


def read_snapshot(conn: Connection) -> RefSnapshot:
    """The whole reference data as plain values (what the business rules read)."""
    vendors = {
        row.id: _vendor_ref(row) for row in conn.execute(select(VENDORS))
    }
    item_vendors: dict[str, dict[str, ItemVendorRef]] = {}
    for row in conn.execute(select(ITEM_VENDORS)):
        item_vendors.setdefault(row.item_id, {})[row.vendor_id] = ItemVendorRef(
            row.quoted, row.atelier_code, row.price)
    items = {
        item_id: ItemRef(item_id, item_vendors.get(item_id, {}))
        for item_id in conn.execute(select(ITEMS.c.id)).scalars()
    }
    return RefSnapshot(
        vendors=vendors,
        stocks=frozenset(conn.execute(select(STOCKS.c.name)).scalars()),
        devices={row.id: row.stock_name for row in conn.execute(select(DEVICES))},
        items=items,
        templates={row.name: row.format
                   for row in conn.execute(select(TEMPLATES))},
        locations=frozenset(conn.execute(select(LOCATIONS.c.id)).scalars()),
    )

def read_xml_entries(conn: Connection, *, names: list[str]) -> dict[str, dict[str, Any]]:
    """The XML template entries among ``names`` (built-ins have no row)."""
    rows = conn.execute(select(TEMPLATES.c.name, TEMPLATES.c.file, TEMPLATES.c.xml)
                        .where(TEMPLATES.c.name.in_(names), TEMPLATES.c.format == "XML"))
    return {name: xml_entry_of(name, file, xml) for name, file, xml in rows}


def read_vendor_ref(conn: Connection, *, vendor_id: str) -> VendorRef | None:
    """One vendor as the rules see it (None: not loaded)."""
    row = conn.execute(select(VENDORS).where(VENDORS.c.id == vendor_id)).first()
    return _vendor_ref(row) if row is not None else None


def _vendor_ref(row: Any) -> VendorRef:
    return VendorRef(row.id, row.allow_overstock, row.send_changes, row.email, row.ftp,
                     row.b2b, (row.extra or {}).get("xml_template"))


def template_file_of(conn: Connection, *, name: str) -> str | None:
    """The file of template ``name`` (relative to the templates directory); None if unknown."""
    return conn.execute(select(TEMPLATES.c.file).where(TEMPLATES.c.name == name)).scalar()


_VERSION = select(COUNTERS.c.value).where(COUNTERS.c.name == "refdata_version")


def refdata_version(conn: Connection) -> int:
    """The reference data's version: it moves with every load."""
    return int(conn.execute(_VERSION).scalar_one())


class SnapshotCache:
    """The reference snapshot, re-read only when ``dispatch load`` bumped its version."""

    def __init__(self) -> None:
        self._version = -1
        self._snapshot = RefSnapshot()
        self._lock = threading.Lock()

    def get(self, conn: Connection) -> RefSnapshot:
        version = refdata_version(conn)
        with self._lock:
            if version != self._version:
                self._snapshot = read_snapshot(conn)
                self._version = version
            return self._snapshot


def load_snapshot(engine: Engine) -> RefSnapshot:
    """``read_snapshot`` in a read transaction of its own."""
    with reading(engine) as conn:
        return read_snapshot(conn)
