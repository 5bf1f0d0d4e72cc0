"""A vendor switched from the canonical XML to a standard format by one line of reference
data (SPEC 4): the documents it receives over SFTP, read back and validated against the
official schemas of ../shared/standards (skipped, naming the folder, when it is absent)."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from lxml import etree

from dispatch.documents.checks import check_xml
from dispatch.reference_data import parse_reference_text
from dispatch.store.reference import upsert_reference_data
from tests.conftest import TEMPLATES_DIR
from tests.dispatching.conftest import Env
from tests.documents.standards import need_standards, peppol_failed_rules, ubl_schema

UBL = "{urn:oasis:names:specification:ubl:schema:xsd:%s-2}%s"
CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"
CANONICAL = "{urn:dispatch:purchase-order:1}"

BUYER = {"name": "Dispatch Buyer", "currency": "EUR",
         "party": {"endpoint_id": "7300010000018", "endpoint_scheme": "0088",
                   "legal_name": "Dispatch Buyer AB",
                   "address": {"street": "Industrigatan 4", "city": "Lund",
                               "postal_code": "22100", "country": "SE"}}}
ACME_PARTY = {"endpoint_id": "7300010000001", "endpoint_scheme": "0088",
              "legal_name": "ACME Tools Ltd", "vat_id": "SE556677889901",
              "address": {"street": "1 Main St", "city": "Springfield",
                          "postal_code": "62701", "country": "US"}}
SFTP_XML = {"Channel": {"IsFtp": True}, "FTP": {"IsXml": True}}


def _load(env: Env, data: dict[str, Any]) -> None:
    parsed = parse_reference_text(yaml.safe_dump(data), "test.yaml")
    upsert_reference_data(env.engine, parsed, source="test.yaml", templates_dir=TEMPLATES_DIR,
                          check_xml_template=check_xml)


def _reference_data(env: Env, *, xml_template: str | None) -> dict[str, Any]:
    """The world's data with party data for ACME, its items and the buyer; ACME gets
    ``xml_template`` when given: the one line that switches it."""
    data = copy.deepcopy(env.world.reference_data_dict())
    data["buyer"] = BUYER
    acme = next(v for v in data["vendors"] if v["id"] == "ACME")
    acme.update(party=ACME_PARTY, send_changes=True)
    if xml_template:
        acme["xml_template"] = xml_template
    for item, code in zip(data["items"], ("BX", "BX", "H87", "PR"), strict=True):
        item["unit_code"] = code
    return data


def _order(env: Env) -> str:
    return env.order({"VendorId": "ACME", "StockName": "Main", "Status": "Active",
                      "CustomShipToId": "SITE-7", "Reference": "ERP 4711",
                      "Notes": "</cbc:Note><x>stays text</x>", "SendOptions": SFTP_XML,
                      "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10},
                                             {"ItemId": "GLOVE-L", "TotalQuantity": 4}]})


def test_a_vendor_switched_to_peppol_by_one_line_gets_peppol_orders(env: Env) -> None:
    need_standards()
    _load(env, _reference_data(env, xml_template=None))
    before = _order(env)
    _load(env, _reference_data(env, xml_template="peppol"))  # the one line
    order_id = _order(env)
    assert {o.status for o in env.run_due()} == {"Delivered"}

    # the order created before the switch got the canonical document, as before
    canonical = etree.fromstring((env.world.inbox() / f"{before}_purchase_1.xml").read_bytes())
    assert canonical.tag.startswith(CANONICAL)

    sent = (env.world.inbox() / f"{order_id}_purchase_1.xml").read_bytes()
    order = etree.fromstring(sent)
    assert order.tag == UBL % ("Order", "Order")
    ubl_schema("Order", "2.1").assertValid(order)
    assert peppol_failed_rules("T01", sent) == []
    assert order.findtext(f"{CBC}ID") == order_id
    assert order.findtext(f"{CBC}Note") == "</cbc:Note><x>stays text</x>"
    assert order.findtext(f"{CBC}DocumentCurrencyCode") == "EUR"
    assert {e.get("unitCode") for e in order.iter(f"{CBC}Quantity")} == {"BX", "PR"}
    endpoints = [e.text for e in order.iter(f"{CBC}EndpointID")]
    assert endpoints == ["7300010000018", "7300010000001"]  # buyer, then seller
    rows = {r["DocumentName"]: r for r in env.api.order(order_id)["Deliveries"]}
    assert rows[f"{order_id}_purchase_1.xml"]["Status"] == "Delivered"

    # a change of the Active order: a Peppol OrderChange numbered as the dispatch
    result = env.api.call("UpdateQuantity", {"OrderId": order_id, "PurchaseOrderItems": [
        {"ItemId": "DRILL-5", "TotalQuantity": 12}]})
    assert result["Status"] == "Completed", result
    assert {o.status for o in env.run_due()} == {"Delivered"}
    change_bytes = (env.world.inbox() / f"{order_id}_change_2.xml").read_bytes()
    change = etree.fromstring(change_bytes)
    assert change.tag == UBL % ("OrderChange", "OrderChange")
    ubl_schema("OrderChange", "2.1").assertValid(change)
    assert peppol_failed_rules("T114", change_bytes) == []
    assert change.findtext(f"{CBC}SequenceNumberID") == "2"


def test_sendoptions_name_the_xml_template_per_order(env: Env) -> None:
    """FTP.XmlTemplateName picks the template for one order; the vendor keeps its own."""
    need_standards()
    _load(env, _reference_data(env, xml_template=None))
    order_id = env.order({"VendorId": "ACME", "StockName": "Main", "Status": "Active",
                          "SendOptions": {"Channel": {"IsFtp": True},
                                          "FTP": {"IsXml": True, "XmlTemplateName": "peppol"}},
                          "PurchaseOrderItems": [{"ItemId": "DRILL-8", "TotalQuantity": 1}]})
    assert {o.status for o in env.run_due()} == {"Delivered"}
    sent = etree.fromstring((env.world.inbox() / f"{order_id}_purchase_1.xml").read_bytes())
    ubl_schema("Order", "2.1").assertValid(sent)
    result = env.api.call("Create", {
        "VendorId": "ACME", "StockName": "Main",
        "SendOptions": {"Channel": {"IsFtp": True},
                        "FTP": {"IsXml": True, "XmlTemplateName": "ubl-9"}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-8", "TotalQuantity": 1}]})
    assert result["Status"] == "Failed"
    assert "SendOptions.FTP.XmlTemplateName: no XML template 'ubl-9'" in result["Message"]


def test_an_xml_template_gone_fails_the_delivery_naming_it(env: Env) -> None:
    """A vendor's XML template that no longer exists (changed behind load's back) is a
    permanent failure naming it, never a send of some other XML."""
    from sqlalchemy import update

    from dispatch.store.engine import transaction
    from dispatch.store.tables import COUNTERS, VENDORS

    _load(env, _reference_data(env, xml_template="peppol"))
    with transaction(env.engine) as conn:
        conn.execute(update(VENDORS).where(VENDORS.c.id == "ACME")
                     .values(extra={"xml_template": "gone"}))
        conn.execute(update(COUNTERS).where(COUNTERS.c.name == "refdata_version")
                     .values(value=COUNTERS.c.value + 1))
    order_id = _order(env)
    outcomes = env.run_due()
    assert [o.status for o in outcomes] == ["Failed"], [o.summary() for o in outcomes]
    row = env.api.order(order_id)["Deliveries"][0]
    assert row["Status"] == "Failed"
    assert "XML template 'gone' no longer exists" in row["Error"]
    assert not (env.world.inbox() / f"{order_id}_purchase_1.xml").exists()
