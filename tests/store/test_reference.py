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
        keys = store.read_keys(conn)
    assert (keys.stocks, keys.vendors) == (frozenset({"S1"}), frozenset({"V1"}))
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


# --- vendor formats (SPEC 2 and 4): party data, XML templates, what a template needs -----

PEPPOL_VENDOR: dict[str, Any] = {
    "id": "DELTA", "name": "Delta Components AB", "xml_template": "peppol",
    "party": {"endpoint_id": "7300010000001", "endpoint_scheme": "0088",
              "legal_name": "Delta Components AB", "vat_id": "SE556677889901",
              "address": {"street": "Storgatan 1", "city": "Malmö", "postal_code": "21122",
                          "country": "SE"}},
    "cxml": {"domain": "DUNS", "identity": "123456789", "shared_secret_env": "DELTA_SECRET"}}
BUYER: dict[str, Any] = {
    "name": "Dispatch Buyer", "currency": "SEK", "email": "buyer@dispatch.test",
    "party": {"endpoint_id": "7300010000018", "endpoint_scheme": "0088",
              "legal_name": "Dispatch Buyer AB", "address": {"city": "Lund", "country": "SE"}}}


def _standards(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "buyer": copy.deepcopy(BUYER), "vendors": [copy.deepcopy(PEPPOL_VENDOR)],
        "items": [{"id": "CABLE-10", "name": "Cable 10 m", "unit": "piece", "unit_code": "C62",
                   "gtin": "07311111111116", "vendors": {"DELTA": {"price": 9.5}}}]}
    data.update(changes)
    return data


def _problems(engine: Engine, data: dict[str, Any], templates_dir: Path = TEMPLATES_DIR
              ) -> list[str]:
    with pytest.raises(ReferenceDataError) as err:
        _load(engine, data, templates_dir)
    return err.value.problems


def test_party_data_and_the_xml_template_are_stored(engine: Engine) -> None:
    from dispatch.store.dispatch_reads import read_dispatch_inputs  # noqa: F401 (below)

    counts = _load(engine, _standards())
    assert counts["buyer"] == 1 and counts["vendors"] == 1
    snapshot = store.load_snapshot(engine)
    assert snapshot.vendors["DELTA"].xml_template == "peppol"
    assert snapshot.template_format("peppol") == "XML"  # built in: usable with no entry
    with reading(engine) as conn:
        vendor = next(v for v in store.read_vendors(conn) if v.id == "DELTA")
        keys = store.read_keys(conn)
        assert store.read_buyer(conn) == BUYER
    assert vendor.extra == {k: PEPPOL_VENDOR[k] for k in ("xml_template", "party", "cxml")}
    assert keys.items["CABLE-10"] == {"id": "CABLE-10", "unit_code": "C62",
                                      "gtin": "07311111111116", "vendors": {"DELTA"}}


def test_a_vendor_without_the_data_its_template_needs_is_refused_by_name(
        engine: Engine) -> None:
    data = _standards()
    del data["vendors"][0]["party"]["endpoint_id"]
    del data["items"][0]["unit_code"]
    problems = _problems(engine, data)
    assert ("vendor 'DELTA': party.endpoint_id is missing; XML template 'peppol' "
            "(vendor 'DELTA''s xml_template) needs it") in problems
    assert ("item 'CABLE-10': unit_code is missing; vendor 'DELTA' gets XML template "
            "'peppol', which needs it") in problems
    assert store.load_snapshot(engine).vendors == {}  # nothing was written


def test_the_buyer_block_loaded_before_counts(engine: Engine) -> None:
    """A later file with only the vendor passes on the buyer stored earlier; without a
    buyer ever loaded, the vendor is refused naming the buyer's missing key."""
    only_vendor = {"vendors": [copy.deepcopy(PEPPOL_VENDOR)]}
    assert "buyer: party.endpoint_id is missing; XML template 'peppol' (vendor 'DELTA''s " \
        "xml_template) needs it" in _problems(engine, only_vendor)
    _load(engine, {"buyer": copy.deepcopy(BUYER)})
    _load(engine, only_vendor)
    assert store.load_snapshot(engine).vendors["DELTA"].xml_template == "peppol"
    # an item loaded later for that vendor is checked against its template too
    item = {"id": "X", "name": "x", "unit": "pc", "vendors": {"DELTA": {}}}
    assert _problems(engine, {"items": [item]}) == [
        "item 'X': unit_code is missing; vendor 'DELTA' gets XML template 'peppol', "
        "which needs it"]


@pytest.mark.parametrize(("template", "message"), [
    ("nothing", "vendors[0] (DELTA).xml_template: no XML template 'nothing'; add a templates: "
                "entry with format: XML, or use a built-in one (peppol, cxml, order-x)"),
    ("standard-pdf", "vendors[0] (DELTA).xml_template: template 'standard-pdf' is PDF, not "
                     "XML; name an XML template"),
])
def test_xml_template_must_name_an_xml_template(engine: Engine, template: str,
                                                message: str) -> None:
    data = _standards(templates=[{"name": "standard-pdf", "format": "PDF",
                                  "file": "pdf/standard.yaml"}])
    data["vendors"][0]["xml_template"] = template
    assert _problems(engine, data) == [message]


def _xml_templates_dir(tmp_path: Path) -> Path:
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "order.xml.j2").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Order id="{{ order.Id }}" '
        'kind="{{ dispatch.kind }}"/>\n')
    (tmp_path / "xml" / "broken.xml.j2").write_text("<Order>\n{% if %}\n</Order>\n")
    (tmp_path / "xml" / "order.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:element name="Order"><xs:complexType>'
        '<xs:attribute name="id" type="xs:string" use="required"/>'
        '<xs:attribute name="kind" type="xs:string"/>'
        '</xs:complexType></xs:element></xs:schema>')
    return tmp_path


def test_xml_template_entries_are_stored_with_their_files_and_schema(
        engine: Engine, tmp_path: Path) -> None:
    from dispatch.documents.checks import check_xml

    root = _xml_templates_dir(tmp_path)
    entry = {"name": "acme-xml", "format": "XML", "schema": "xml/order.xsd",
             "files": {"purchase": "xml/order.xml.j2", "change": "xml/order.xml.j2",
                       "cancellation": "xml/order.xml.j2"}}
    parsed = parse_reference_text(yaml.safe_dump({"templates": [entry]}), "t.yaml")
    store.upsert_reference_data(engine, parsed, source="t.yaml", templates_dir=root,
                                check_xml_template=check_xml)
    assert store.load_snapshot(engine).templates == {"acme-xml": "XML"}
    with reading(engine) as conn:
        assert store.read_xml_entries(conn, names=["acme-xml", "peppol"]) == {
            "acme-xml": entry}
    # a vendor may now name it (it needs nothing)
    _load(engine, {"vendors": [{"id": "V", "name": "V", "xml_template": "acme-xml"}]}, root)


def test_xml_template_files_must_exist_and_compile(engine: Engine, tmp_path: Path) -> None:
    from dispatch.documents.checks import check_xml

    root = _xml_templates_dir(tmp_path)
    data = {"templates": [
        {"name": "gone", "format": "XML", "file": "xml/order.xml.j2", "schema": "xml/no.xsd"},
        {"name": "broken", "format": "XML", "file": "xml/broken.xml.j2"}]}
    parsed = parse_reference_text(yaml.safe_dump(data), "t.yaml")
    with pytest.raises(ReferenceDataError) as err:
        store.upsert_reference_data(engine, parsed, source="t.yaml", templates_dir=root,
                                    check_xml_template=check_xml)
    gone, broken = err.value.problems
    assert gone == f"templates[0] (gone).schema: 'xml/no.xsd' does not exist under {root}"
    assert broken.startswith("templates[1] (broken): XML template file broken.xml.j2 line 2")


def test_an_old_database_gets_the_new_columns(db_url: str) -> None:
    """create_all adds tables, not columns: init_schema adds the nullable ones (twice: no-op)."""
    from sqlalchemy import inspect, text

    from dispatch.store.engine import init_schema, make_engine

    engine = make_engine(db_url)
    with engine.begin() as conn:
        for table, column in (("item", "unit_code"), ("location", "country_code"),
                              ("template", "xml")):
            conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
    init_schema(engine)
    init_schema(engine)
    with engine.connect() as conn:
        inspector = inspect(conn)
        assert "unit_code" in {c["name"] for c in inspector.get_columns("item")}
        assert "country_code" in {c["name"] for c in inspector.get_columns("location")}
        assert "xml" in {c["name"] for c in inspector.get_columns("template")}
    _load(engine, _standards())
    engine.dispose()
