"""Reference data in the database: all-or-nothing upsert, and the cached snapshot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dispatch.errors import ReferenceDataError, TemplateError
from dispatch.reference_data import ReferenceData, check_duplicates
from dispatch.rules.types import ItemRef, ItemVendorRef, RefSnapshot, VendorRef
from dispatch.store.engine import reading, transaction
from dispatch.store.tables import (
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



def _existing(conn: Connection, column) -> set[str]:  # type: ignore[no-untyped-def]
    return set(conn.execute(select(column)).scalars())


def validate_against_store(
    data: ReferenceData,
    conn: Connection,
    *,
    templates_dir: Path,
    check_template: TemplateChecker | None,
) -> list[str]:
    """Cross-references (file + database) and template files; returns problems."""
    problems = check_duplicates(data)
    stocks = {s.name for s in data.stocks} | _existing(conn, STOCKS.c.name)
    vendors = {v.id for v in data.vendors} | _existing(conn, VENDORS.c.id)
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
    return problems


def _upsert(conn: Connection, table, rows: list[dict], keys: list[str]) -> None:  # type: ignore[no-untyped-def]
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
) -> dict[str, int]:
    """Validate everything, then write everything in one transaction (or nothing)."""
    with transaction(engine) as conn:
        problems = validate_against_store(
            data, conn, templates_dir=templates_dir, check_template=check_template
        )
        if problems:
            raise ReferenceDataError(source, problems)
        _upsert(conn, VENDORS, [
            {"id": v.id, "name": v.name, "allow_overstock": v.allow_overstock,
             "send_changes": v.send_changes,
             "email": v.email.model_dump(mode="json") if v.email else None,
             "ftp": v.ftp.model_dump(mode="json") if v.ftp else None,
             "b2b": v.b2b.model_dump(mode="json") if v.b2b else None,
             "extra": v.model_extra or None}
            for v in data.vendors], ["id"])
        _upsert(conn, STOCKS, [{"name": s.name} for s in data.stocks], ["name"])
        _upsert(conn, DEVICES,
                [{"id": d.id, "stock_name": d.stock} for d in data.devices], ["id"])
        _upsert(conn, ITEMS,
                [{"id": i.id, "name": i.name, "unit": i.unit} for i in data.items], ["id"])
        item_vendor = ITEM_VENDORS
        if data.items:
            conn.execute(delete(item_vendor).where(
                item_vendor.c.item_id.in_([i.id for i in data.items])))
            rows = [{"item_id": i.id, "vendor_id": vid, "quoted": iv.quoted,
                     "atelier_code": iv.atelier_code, "price": iv.price}
                    for i in data.items for vid, iv in i.vendors.items()]
            if rows:
                conn.execute(item_vendor.insert(), rows)
        _upsert(conn, TEMPLATES,
                [{"name": t.name, "format": t.format, "file": t.file} for t in data.templates],
                ["name"])
        _upsert(conn, LOCATIONS, [
            {"id": loc.id, "location_name": loc.locationName, "address_line1": loc.addressLine1,
             "address_line2": loc.addressLine2, "city": loc.city, "province": loc.province,
             "country_title": loc.countryTitle, "zip_code": loc.zipCode}
            for loc in data.locations], ["id"])
        counter = COUNTERS
        conn.execute(update(counter).where(counter.c.name == "refdata_version")
                     .values(value=counter.c.value + 1))
    return {section: len(getattr(data, section)) for section in
            ("vendors", "stocks", "devices", "items", "templates", "locations")}


def read_snapshot(conn: Connection) -> RefSnapshot:
    """The whole reference data as plain values (what the business rules read)."""
    vendors = {
        row.id: VendorRef(row.id, row.allow_overstock, row.send_changes,
                          row.email, row.ftp, row.b2b)
        for row in conn.execute(select(VENDORS))
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




def template_file_of(conn: Connection, *, name: str) -> str | None:
    table = TEMPLATES
    return conn.execute(select(table.c.file).where(table.c.name == name)).scalar()


_VERSION = select(COUNTERS.c.value).where(COUNTERS.c.name == "refdata_version")


def refdata_version(conn: Connection) -> int:
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
    with reading(engine) as conn:
        return read_snapshot(conn)
