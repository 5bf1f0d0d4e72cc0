"""Create over HTTP: every business rule, ids, transactions, outbox rows (both databases)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.api.conftest import Api, order_body


def _lines(*lines: dict[str, Any]) -> list[dict[str, Any]]:
    return list(lines)


def _with(path: str, value: Any) -> dict[str, Any]:
    """order_body() with one nested key set (path like 'SendOptions.Email.PdfTemplate')."""
    body = copy.deepcopy(order_body())
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return body


INVALID = [
    ("unknown vendor", order_body(VendorId="NOPE"), "VendorId: vendor 'NOPE' does not exist"),
    ("missing vendor", order_body(VendorId=None), "VendorId: required"),
    ("unknown stock", order_body(StockName="Nowhere", DeviceId=None),
     "StockName: stock 'Nowhere' does not exist"),
    ("unknown device", order_body(DeviceId="DEV-X"), "DeviceId: device 'DEV-X' does not exist"),
    ("device of another stock", order_body(DeviceId="DEV-7"),
     "DeviceId: device 'DEV-7' belongs to stock 'Plant7', not 'Main'"),
    ("device on order and line", _with("PurchaseOrderItems.0.DeviceId", "DEV-2"),
     "PurchaseOrderItems[0].DeviceId: must be empty because the order has DeviceId"),
    ("line device of another stock",
     order_body(DeviceId=None, PurchaseOrderItems=[
         {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-7"}]),
     "PurchaseOrderItems[0].DeviceId: device 'DEV-7' belongs to stock 'Plant7'"),
    ("unknown item", _with("PurchaseOrderItems.1.ItemId", "GHOST"),
     "PurchaseOrderItems[1].ItemId: item 'GHOST' does not exist"),
    ("no lines", order_body(PurchaseOrderItems=[]), "PurchaseOrderItems: at least one line"),
    ("zero quantity", _with("PurchaseOrderItems.0.TotalQuantity", 0),
     "PurchaseOrderItems[0].TotalQuantity: must be > 0"),
    ("negative quantity", _with("PurchaseOrderItems.0.TotalQuantity", -3),
     "PurchaseOrderItems[0].TotalQuantity: must be > 0"),
    ("item and custom item", order_body(PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "CustomItemId": "X1", "CustomItemQuantity": 1,
         "CustomItemPricePerPiece": 1}]),
     "PurchaseOrderItems[0].ItemId: must be empty on a custom item line"),
    ("neither item nor custom", order_body(PurchaseOrderItems=[{"TotalQuantity": 1}]),
     "PurchaseOrderItems[0].ItemId: required"),
    ("custom quantity zero", order_body(PurchaseOrderItems=[
        {"CustomItemId": "X1", "CustomItemQuantity": 0, "CustomItemPricePerPiece": 1}]),
     "PurchaseOrderItems[0].CustomItemQuantity: must be > 0"),
    ("custom price negative", order_body(PurchaseOrderItems=[
        {"CustomItemId": "X1", "CustomItemQuantity": 2, "CustomItemPricePerPiece": -0.5}]),
     "PurchaseOrderItems[0].CustomItemPricePerPiece: must be >= 0"),
    ("pdf without template", _with("SendOptions.Email.PdfTemplate", None),
     "SendOptions.Email.PdfTemplate: required when IsPdf is true"),
    ("unknown template", _with("SendOptions.Email.PdfTemplate", "nope"),
     "SendOptions.Email.PdfTemplate: template 'nope' does not exist"),
    ("template of wrong format", _with("SendOptions.Email.PdfTemplate", "standard-excel"),
     "SendOptions.Email.PdfTemplate: template 'standard-excel' is Excel, not PDF"),
    ("excel template of wrong format", _with("SendOptions.Email", {
        "IsExcel": True, "ExcelTemplate": "standard-pdf"}),
     "SendOptions.Email.ExcelTemplate: template 'standard-pdf' is PDF, not Excel"),
    ("email without format", _with("SendOptions.Email", {"IsXml": False}),
     "SendOptions.Email: Email is chosen; set at least one of IsXml, IsPdf, IsExcel"),
    ("ftp chosen, no options", _with("SendOptions.Channel.IsFtp", True),
     "SendOptions.FTP: required when FTP is chosen"),
    ("ftp pdf without template", _with("SendOptions", {
        "Channel": {"IsFtp": True}, "FTP": {"IsPdf": True}}),
     "SendOptions.FTP.PdfTemplateName: required when IsPdf is true"),
    ("channel the vendor lacks", order_body(VendorId="BOLT", DeviceId="DEV-1",
                                            SendOptions={"Channel": {"IsB2B": True}},
                                            PurchaseOrderItems=[{"ItemId": "NUT-M8",
                                                                 "TotalQuantity": 1}]),
     "SendOptions.Channel.IsB2B: vendor 'BOLT' has no b2b configured"),
    ("b2b item without atelier code", order_body(
        VendorId="CRANE", SendOptions={"Channel": {"IsB2B": True}},
        PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 1}]),
     "PurchaseOrderItems[0].ItemId: item 'DRILL-5' has no atelier_code for vendor 'CRANE'"),
    ("unknown XML template", _with("SendOptions.Email.XmlTemplate", "ubl-9"),
     "SendOptions.Email.XmlTemplate: no XML template 'ubl-9'; name a template loaded with "
     "format XML, or peppol, cxml or order-x (built in)"),
    ("PDF template as XML", _with("SendOptions.Email.XmlTemplate", "standard-pdf"),
     "SendOptions.Email.XmlTemplate: template 'standard-pdf' is PDF, not XML"),
    ("b2b custom item", order_body(
        VendorId="CRANE", SendOptions={"Channel": {"IsB2B": True}},
        PurchaseOrderItems=[{"CustomItemId": "C", "CustomItemQuantity": 1,
                             "CustomItemPricePerPiece": 2}]),
     "PurchaseOrderItems[0].CustomItemId: custom items cannot be sent over B2B"),
]


@pytest.mark.parametrize(("case", "body", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_business_errors_fail_atomically(api: Api, case: str, body: dict, expected: str) -> None:
    result = api.call("Create", body)
    assert result["Status"] == "Failed", result
    po = result["PurchaseOrder"]
    assert po["Status"] == "None" and po["Id"] is None
    assert any(e.startswith(expected) for e in po["Errors"]), po["Errors"]
    assert all(item["Status"] == "None" for item in po["PurchaseOrderItems"])
    assert result["Message"].startswith("Nothing was changed")
    # nothing of it was applied: the next order still gets number 1
    ok = api.create_ok(order_body())
    assert ok["PurchaseOrder"]["Id"] == "PurchaseOrder1"


def test_line_errors_are_listed_on_the_line(api: Api) -> None:
    body = order_body(PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 1},
                                          {"ItemId": "GHOST", "TotalQuantity": 1}])
    po = api.call("Create", body)["PurchaseOrder"]
    assert po["PurchaseOrderItems"][0]["Errors"] == []
    assert po["PurchaseOrderItems"][1]["Errors"] == [
        "PurchaseOrderItems[1].ItemId: item 'GHOST' does not exist"]


def test_create_new_returns_ids_and_records_nothing_else(api: Api) -> None:
    result = api.create_ok(order_body())
    po = result["PurchaseOrder"]
    assert po["Status"] == "Created" and re.fullmatch(r"PurchaseOrder\d+", po["Id"])
    ids = [item["Id"] for item in po["PurchaseOrderItems"]]
    assert all(re.fullmatch(r"PurchaseOrderItem\d+", i) for i in ids) and len(set(ids)) == 2
    assert [item["Status"] for item in po["PurchaseOrderItems"]] == ["Created", "Created"]
    detail = api.order(po["Id"])
    assert detail["Status"] == "New"
    assert detail["Reference"] == "PO from ERP 4711"
    assert [line["Id"] for line in detail["PurchaseOrderItems"]] == ids
    assert detail["Transactions"] == [] and detail["Deliveries"] == []


def test_custom_prefix_and_unique_ids_across_orders(api: Api) -> None:
    first = api.create_ok(order_body(CustomIdPrefix="ERP_x"))["PurchaseOrder"]
    second = api.create_ok(order_body())["PurchaseOrder"]
    assert first["Id"].startswith("ERP_x") and first["Id"][5:].isdigit()
    assert first["Id"] != second["Id"]
    line_ids = {i["Id"] for i in first["PurchaseOrderItems"] + second["PurchaseOrderItems"]}
    assert len(line_ids) == 4


def test_create_active_purchases_and_writes_the_outbox(api: Api) -> None:
    po = api.create_ok(order_body(Status="Active"))["PurchaseOrder"]
    detail = api.order(po["Id"])
    assert detail["Status"] == "Active"
    assert [(t["Kind"], t["Quantity"]) for t in detail["Transactions"]] == [
        ("Purchase", 10), ("Purchase", 4)]
    rows = [(d["Kind"], d["Channel"], d["Format"], d["Status"]) for d in detail["Deliveries"]]
    assert rows == [("purchase", "Email", "XML", "Pending"),
                    ("purchase", "Email", "PDF", "Pending")]
    assert {d["DocumentName"] for d in detail["Deliveries"]} == {
        f"{po['Id']}_purchase_1.xml", f"{po['Id']}_purchase_1.pdf"}


def test_create_cancelled_purchases_then_cancels(api: Api) -> None:
    po = api.create_ok(order_body(Status="Cancelled"))["PurchaseOrder"]
    detail = api.order(po["Id"])
    assert detail["Status"] == "Cancelled"
    assert [t["Kind"] for t in detail["Transactions"]] == [
        "Purchase", "Purchase", "Cancel", "Cancel"]
    kinds = [(d["Kind"], d["DispatchNumber"]) for d in detail["Deliveries"]]
    assert kinds == [("purchase", 1), ("purchase", 1), ("cancellation", 2), ("cancellation", 2)]


def test_custom_item_line_quantity_is_its_custom_quantity(api: Api) -> None:
    body = order_body(Status="Active", PurchaseOrderItems=[
        {"CustomItemId": "SPECIAL-1", "CustomItemQuantity": 7, "CustomItemPricePerPiece": 2.25,
         "Note": "made to measure"}])
    po = api.create_ok(body)["PurchaseOrder"]
    line = api.order(po["Id"])["PurchaseOrderItems"][0]
    assert line["TotalQuantity"] == 7 and line["CustomItemId"] == "SPECIAL-1"
    assert line["CustomItemPricePerPiece"] == 2.25 and line["ItemId"] is None
    assert api.order(po["Id"])["Transactions"][0]["Quantity"] == 7


def test_b2b_order_expands_one_delivery_per_line(api: Api) -> None:
    body = order_body(Status="Active", SendOptions={"Channel": {"IsB2B": True}},
                      PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 3},
                                          {"ItemId": "GLOVE-L", "TotalQuantity": 8}])
    po = api.create_ok(body)["PurchaseOrder"]
    deliveries = api.order(po["Id"])["Deliveries"]
    assert [(d["Channel"], d["Format"], d["PurchaseOrderItemId"]) for d in deliveries] == [
        ("B2B", None, po["PurchaseOrderItems"][0]["Id"]),
        ("B2B", None, po["PurchaseOrderItems"][1]["Id"])]
    assert deliveries[0]["Target"] == "http://127.0.0.1:8081/api/external/purchaseorders/submit"


def test_stock_level_order_with_devices_on_lines(api: Api) -> None:
    body = order_body(DeviceId=None, PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-1"},
        {"ItemId": "DRILL-5", "TotalQuantity": 2, "DeviceId": "DEV-2"}])
    po = api.create_ok(body)["PurchaseOrder"]
    lines = api.order(po["Id"])["PurchaseOrderItems"]
    assert [(x["DeviceId"], x["TotalQuantity"]) for x in lines] == [("DEV-1", 1), ("DEV-2", 2)]


def test_an_xml_template_named_in_sendoptions_reaches_the_delivery(api: Api) -> None:
    """SPEC 4: a built-in XML template needs no templates: entry; the delivery row renders
    from it (without a name: the canonical XML, template None)."""
    from sqlalchemy import select

    from dispatch.store.engine import reading
    from dispatch.store.tables import DELIVERIES

    named = api.create_ok(_with("SendOptions.Email.XmlTemplate", "peppol") | {
        "Status": "Active"})["PurchaseOrder"]["Id"]
    plain = api.create_ok(order_body(Status="Active"))["PurchaseOrder"]["Id"]
    with reading(api.engine) as conn:
        rows = dict(conn.execute(select(DELIVERIES.c.order_id, DELIVERIES.c.template_name)
                                 .where(DELIVERIES.c.format == "XML")).all())
    assert rows == {named: "peppol", plain: None}


def test_an_xml_template_name_longer_than_50_is_a_shape_error(api: Api) -> None:
    response = api.post("Create", _with("SendOptions.Email.XmlTemplate", "x" * 51))
    assert response.status_code in (400, 422), response.text
    assert "XmlTemplate" in response.text
