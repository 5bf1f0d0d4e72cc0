"""Reference data in the store: all-or-nothing upsert, typed reads, the cached snapshot."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from dispatch.errors import ReferenceDataError, TemplateError
from dispatch.reference_data import parse_reference_text
from dispatch.rules.types import ItemVendorRef, VendorRef
from dispatch.store import reference as store
from dispatch.store.engine import reading
from tests.conftest import SAMPLE, TEMPLATES_DIR

SAMPLE_DATA: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())


def _load(engine: Engine, data: dict[str, Any], templates_dir: Path = TEMPLATES_DIR
          ) -> dict[str, int]:
    parsed = parse_reference_text(yaml.safe_dump(data), "test.yaml")
    return store.upsert_reference_data(engine, parsed, source="test.yaml",
                                       templates_dir=templates_dir)


def _sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_DATA)


def _version(engine: Engine) -> int:
    with reading(engine) as conn:
        return store.refdata_version(conn)


def test_the_sample_round_trips_into_the_snapshot(engine: Engine) -> None:
    counts = _load(engine, _sample())
    assert counts == {"vendors": 3, "stocks": 2, "devices": 3, "items": 4, "templates": 2,
                      "locations": 1}
    snapshot = store.load_snapshot(engine)
    assert set(snapshot.vendors) == {"ACME", "BOLT", "CRANE"}
    assert snapshot.vendors["BOLT"] == VendorRef(
        "BOLT", allow_overstock=True, send_changes=True,
        email={"to": ["sales@bolt.test"], "cc": []}, ftp=None, b2b=None)
    assert snapshot.stocks == {"Main", "Plant7"}
    assert snapshot.devices == {"DEV-1": "Main", "DEV-2": "Main", "DEV-7": "Plant7"}
    assert snapshot.items["DRILL-5"].vendors == {
        "ACME": ItemVendorRef(quoted=True, atelier_code=120045, price=Decimal("12.5")),
        "BOLT": ItemVendorRef(quoted=False, atelier_code=None, price=Decimal("13.1"))}
    assert snapshot.templates == {"standard-pdf": "PDF", "standard-excel": "Excel"}
    assert snapshot.locations == {"SITE-7"}


def test_loading_again_updates_by_key_and_replaces_an_items_vendors(engine: Engine) -> None:
    _load(engine, _sample())
    data = {"vendors": [{"id": "ACME", "name": "ACME Renamed", "allow_overstock": True}],
            "items": [{"id": "DRILL-5", "name": "Drill", "unit": "box",
                       "vendors": {"BOLT": {"quoted": True}}}]}
    assert _load(engine, data)["vendors"] == 1
    snapshot = store.load_snapshot(engine)
    assert snapshot.vendors["ACME"].allow_overstock is True
    assert snapshot.vendors["ACME"].email is None  # a vendor is replaced whole, not merged
    assert set(snapshot.vendors) == {"ACME", "BOLT", "CRANE"}  # others stay
    assert snapshot.items["DRILL-5"].vendors == {"BOLT": ItemVendorRef(quoted=True)}
    assert set(snapshot.items["GLOVE-L"].vendors) == {"ACME", "CRANE"}
    with reading(engine) as conn:
        names = {v.id: v.name for v in store.read_vendors(conn)}
    assert names == {"ACME": "ACME Renamed", "BOLT": "Bolt & Nut Supply Co.",
                     "CRANE": "Crane Industrial GmbH"}


def test_loading_the_same_file_twice_changes_nothing_but_the_version(engine: Engine) -> None:
    before = _version(engine)
    _load(engine, _sample())
    first = store.load_snapshot(engine)
    _load(engine, _sample())
    assert store.load_snapshot(engine) == first
    assert _version(engine) == before + 2


def test_one_bad_entry_writes_nothing(engine: Engine) -> None:
    _load(engine, {"stocks": [{"name": "Main"}]})
    version, before = _version(engine), store.load_snapshot(engine)
    data = _sample()
    data["devices"].append({"id": "DEV-9", "stock": "Atlantis"})
    data["items"][0]["vendors"]["NOBODY"] = {}
    with pytest.raises(ReferenceDataError) as err:
        _load(engine, data)
    assert err.value.problems == [
        "devices[3] (DEV-9).stock: stock 'Atlantis' does not exist (add it under stocks:)",
        "items[0] (DRILL-5).vendors.NOBODY: vendor 'NOBODY' does not exist "
        "(add it under vendors:)"]
    assert store.load_snapshot(engine) == before
    assert _version(engine) == version


def test_references_may_name_what_is_already_stored(engine: Engine) -> None:
    _load(engine, {"stocks": [{"name": "S1"}], "vendors": [{"id": "V1", "name": "V"}]})
    with reading(engine) as conn:
        assert store.read_keys(conn) == store.StoredKeys(stocks=frozenset({"S1"}),
                                                         vendors=frozenset({"V1"}))
    _load(engine, {"devices": [{"id": "D1", "stock": "S1"}],
                   "items": [{"id": "I1", "name": "i", "unit": "pc", "vendors": {"V1": {}}}]})
    snapshot = store.load_snapshot(engine)
    assert snapshot.devices == {"D1": "S1"} and set(snapshot.items["I1"].vendors) == {"V1"}


def test_vendors_read_back_typed_with_their_extra_keys(engine: Engine) -> None:
    _load(engine, {"vendors": [
        {"id": "B", "name": "Bee", "b2b": {"url": "http://127.0.0.1:1", "api_key_env": "K"},
         "region": "north"},
        {"id": "A", "name": "Ay"}]})
    with reading(engine) as conn:
        vendors = store.read_vendors(conn)
    assert vendors == [
        store.StoredVendor(id="A", name="Ay", allow_overstock=False, send_changes=False,
                           email=None, ftp=None, b2b=None, extra=None),
        store.StoredVendor(id="B", name="Bee", allow_overstock=False, send_changes=False,
                           email=None, ftp=None,
                           b2b={"url": "http://127.0.0.1:1", "api_key_env": "K"},
                           extra={"region": "north"})]


def test_template_file_by_name(engine: Engine) -> None:
    _load(engine, _sample())
    with reading(engine) as conn:
        assert store.template_file_of(conn, name="standard-pdf") == "pdf/standard.yaml"
        assert store.template_file_of(conn, name="nope") is None


def test_the_cached_snapshot_is_reread_only_after_a_load(engine: Engine) -> None:
    cache = store.SnapshotCache()
    with reading(engine) as conn:
        empty = cache.get(conn)
        assert cache.get(conn) is empty and empty.vendors == {}
    _load(engine, {"vendors": [{"id": "V1", "name": "V"}]})
    with reading(engine) as conn:
        loaded = cache.get(conn)
        assert set(loaded.vendors) == {"V1"}
        assert cache.get(conn) is loaded


def test_a_failed_load_keeps_the_cached_snapshot(engine: Engine) -> None:
    _load(engine, {"vendors": [{"id": "V1", "name": "V"}]})
    cache = store.SnapshotCache()
    with reading(engine) as conn:
        loaded = cache.get(conn)
    with pytest.raises(ReferenceDataError):
        _load(engine, {"devices": [{"id": "D1", "stock": "Nowhere"}]})
    with reading(engine) as conn:
        assert cache.get(conn) is loaded


def test_template_problems_name_the_entry(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("x: 1")
    data = parse_reference_text(yaml.safe_dump({"templates": [
        {"name": "ok", "format": "PDF", "file": "ok.yaml"},
        {"name": "gone", "format": "PDF", "file": "gone.yaml"},
        {"name": "bad", "format": "Excel", "file": "ok.yaml"}]}), "t.yaml")
    seen = []

    def check(root: Path, *, name: str, format: str, file: str) -> None:
        seen.append(name)
        if name == "bad":
            raise TemplateError("not an xlsx workbook")

    problems = store.reference_problems(
        data, stored=store.StoredKeys(frozenset(), frozenset()), templates_dir=tmp_path,
        check_template=check)
    assert problems == [
        f"templates[1] (gone).file: 'gone.yaml' does not exist under {tmp_path.resolve()}",
        "templates[2] (bad).file: not an xlsx workbook"]
    assert seen == ["ok", "bad"]
