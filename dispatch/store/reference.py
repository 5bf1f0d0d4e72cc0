"""Reference data in the database: all-or-nothing upsert, and the cached snapshot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select, update
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


@dataclass(frozen=True, slots=True)
class StoredKeys:
    """The stock names and vendor ids already stored (a file may refer to them)."""

    stocks: frozenset[str]
    vendors: frozenset[str]


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
    return StoredKeys(stocks=frozenset(conn.execute(select(STOCKS.c.name)).scalars()),
                      vendors=frozenset(conn.execute(select(VENDORS.c.id)).scalars()))


def read_vendors(conn: Connection) -> list[StoredVendor]:
    """Every stored vendor, by id."""
    columns = [VENDORS.c[field.name] for field in fields(StoredVendor)]
    return [StoredVendor(*row) for row in conn.execute(select(*columns).order_by(VENDORS.c.id))]


# The file checks below are not storage: they belong beside check_duplicates in
# dispatch/reference_data.py. They take what the store knows as a value, so moving them is
# a cut and paste.
def reference_problems(
    data: ReferenceData,
    *,
    stored: StoredKeys,
    templates_dir: Path,
    check_template: TemplateChecker | None,
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
) -> dict[str, int]:
    """Validate everything, then write everything in one transaction (or nothing).

    Returns:
        How many entries of each section the file held.
    Raises:
        ReferenceDataError: naming ``source`` and every problem; nothing was written.
    """
    with transaction(engine) as conn:
        problems = reference_problems(data, stored=read_keys(conn), templates_dir=templates_dir,
                                      check_template=check_template)
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
        if data.items:  # an item's vendor list is replaced, not merged
            conn.execute(delete(ITEM_VENDORS).where(
                ITEM_VENDORS.c.item_id.in_([i.id for i in data.items])))
            rows = [{"item_id": i.id, "vendor_id": vid, "quoted": iv.quoted,
                     "atelier_code": iv.atelier_code, "price": iv.price}
                    for i in data.items for vid, iv in i.vendors.items()]
            if rows:
                conn.execute(ITEM_VENDORS.insert(), rows)
        _upsert(conn, TEMPLATES,
                [{"name": t.name, "format": t.format, "file": t.file} for t in data.templates],
                ["name"])
        _upsert(conn, LOCATIONS, [
            {"id": loc.id, "location_name": loc.locationName, "address_line1": loc.addressLine1,
             "address_line2": loc.addressLine2, "city": loc.city, "province": loc.province,
             "country_title": loc.countryTitle, "zip_code": loc.zipCode}
            for loc in data.locations], ["id"])
        # Executors re-read their cached snapshot when this number moves.
        conn.execute(update(COUNTERS).where(COUNTERS.c.name == "refdata_version")
                     .values(value=COUNTERS.c.value + 1))
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
