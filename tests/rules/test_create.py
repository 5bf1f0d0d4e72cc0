"""Create's business rules (SPEC 3) on plain values: every rule as a case, no database."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dispatch.erp.schemas import CreateRequest
from dispatch.rules import status as st
from dispatch.rules.create import initial_effects, options_of, validate_create
from dispatch.rules.send_options import parse_send_options
from dispatch.rules.types import ItemRef, ItemVendorRef, RefSnapshot, VendorRef
from dispatch.vocabulary import DispatchKind

REF = RefSnapshot(
    vendors={
        "ACME": VendorRef("ACME", email={"to": ["orders@acme.test"]},
                          ftp={"url": "sftp://acme.test/in"}, b2b={"url": "http://acme.test"}),
        "BOLT": VendorRef("BOLT", email={"to": ["po@bolt.test"]}),
    },
    stocks=frozenset({"Main", "Plant7"}),
    devices={"DEV-1": "Main", "DEV-2": "Main", "DEV-7": "Plant7"},
    items={
        "DRILL-5": ItemRef("DRILL-5", {"ACME": ItemVendorRef(atelier_code=5)}),
        "GLOVE-L": ItemRef("GLOVE-L", {"ACME": ItemVendorRef()}),
        "NUT-M8": ItemRef("NUT-M8", {"BOLT": ItemVendorRef(atelier_code=8)}),
    },
    templates={"std-pdf": "PDF", "std-excel": "Excel"},
)


def body(**overrides: Any) -> dict[str, Any]:
    """A valid Create for ACME: email XML + PDF, one line on the order's device."""
    b: dict[str, Any] = {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1",
        "SendOptions": {"Channel": {"IsEmail": True},
                        "Email": {"IsXml": True, "IsPdf": True, "PdfTemplate": "std-pdf"}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 3}],
    }
    b.update(overrides)
    return b


def at(path: str, value: Any) -> dict[str, Any]:
    """body() with one nested key set (path like 'SendOptions.Email.PdfTemplate')."""
    b = copy.deepcopy(body())
    *parents, last = path.split(".")
    node: Any = b
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[last] = value
    return b


def custom(**overrides: Any) -> dict[str, Any]:
    line = {"CustomItemId": "C1", "CustomItemQuantity": 2, "CustomItemPricePerPiece": 1.5}
    return {**line, **overrides}


def errors_of(b: dict[str, Any]) -> list[str]:
    return validate_create(CreateRequest.model_validate(b), REF).all_errors()


VALID = [
    ("email XML and PDF", body()),
    ("no send options", body(SendOptions=None)),
    ("device on the lines", body(DeviceId=None, PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-2"},
        {"ItemId": "GLOVE-L", "TotalQuantity": 1}])),
    ("custom item", body(PurchaseOrderItems=[custom()])),
    ("custom item, zero price", body(PurchaseOrderItems=[custom(CustomItemPricePerPiece=0)])),
    ("custom item, total equal to its quantity", body(PurchaseOrderItems=[
        custom(TotalQuantity=2)])),
    ("B2B with atelier codes", body(SendOptions={"Channel": {"IsB2B": True}})),
    ("FTP excel", body(SendOptions={"Channel": {"IsFtp": True}, "FTP": {
        "IsExcel": True, "ExcelTemplateName": "std-excel"}})),
    ("a section of a channel not chosen is not required to choose", at(
        "SendOptions.FTP", {"IsXml": False})),
    ("a chosen PDF of a channel not chosen needs no template", at(
        "SendOptions.FTP", {"IsPdf": True})),
    ("every status at creation", body(Status="Cancelled")),
]


@pytest.mark.parametrize(("case", "b"), VALID, ids=[c[0] for c in VALID])
def test_valid_requests_have_no_errors(case: str, b: dict[str, Any]) -> None:
    out = validate_create(CreateRequest.model_validate(b), REF)
    assert not out.failed, out.all_errors()
    assert out.transactions == [] and out.dispatches == []  # validation decides no effects


ORDER_ERRORS = [
    ("missing vendor", body(VendorId=None), "VendorId: required"),
    ("unknown vendor", body(VendorId="NOPE"), "VendorId: vendor 'NOPE' does not exist"),
    ("missing stock", body(StockName=None, DeviceId=None), "StockName: required"),
    ("unknown stock", body(StockName="Nowhere", DeviceId=None),
     "StockName: stock 'Nowhere' does not exist"),
    ("unknown device", body(DeviceId="DEV-X"), "DeviceId: device 'DEV-X' does not exist"),
    ("device of another stock", body(DeviceId="DEV-7"),
     "DeviceId: device 'DEV-7' belongs to stock 'Plant7', not 'Main'"),
    ("no lines", body(PurchaseOrderItems=[]), "PurchaseOrderItems: at least one line"),
    ("lines missing", body(PurchaseOrderItems=None), "PurchaseOrderItems: at least one line"),
    ("channel the vendor lacks", body(VendorId="BOLT", SendOptions={"Channel": {"IsFtp": True},
                                                                   "FTP": {"IsXml": True}}),
     "SendOptions.Channel.IsFtp: vendor 'BOLT' has no ftp configured"),
    ("B2B the vendor lacks", body(VendorId="BOLT", SendOptions={"Channel": {"IsB2B": True}},
                                  PurchaseOrderItems=[{"ItemId": "NUT-M8", "TotalQuantity": 1}]),
     "SendOptions.Channel.IsB2B: vendor 'BOLT' has no b2b configured"),
    ("pdf without template", at("SendOptions.Email.PdfTemplate", None),
     "SendOptions.Email.PdfTemplate: required when IsPdf is true"),
    ("unknown template", at("SendOptions.Email.PdfTemplate", "nope"),
     "SendOptions.Email.PdfTemplate: template 'nope' does not exist"),
    ("template of the wrong format", at("SendOptions.Email.PdfTemplate", "std-excel"),
     "SendOptions.Email.PdfTemplate: template 'std-excel' is Excel, not PDF"),
    ("excel template of the wrong format", at("SendOptions.Email", {
        "IsExcel": True, "ExcelTemplate": "std-pdf"}),
     "SendOptions.Email.ExcelTemplate: template 'std-pdf' is PDF, not Excel"),
    ("a named template is checked even when its format is off", at(
        "SendOptions.FTP", {"IsXml": True, "PdfTemplateName": "nope"}),
     "SendOptions.FTP.PdfTemplateName: template 'nope' does not exist"),
    ("email chosen without a format", at("SendOptions.Email", {"IsXml": False}),
     "SendOptions.Email: Email is chosen; set at least one of IsXml, IsPdf, IsExcel"),
    ("email chosen without its section", at("SendOptions.Email", None),
     "SendOptions.Email: required when Email is chosen"),
    ("ftp chosen without its section", at("SendOptions.Channel.IsFtp", True),
     "SendOptions.FTP: required when FTP is chosen"),
    ("ftp pdf without template", body(SendOptions={"Channel": {"IsFtp": True},
                                                   "FTP": {"IsPdf": True}}),
     "SendOptions.FTP.PdfTemplateName: required when IsPdf is true"),
]


@pytest.mark.parametrize(("case", "b", "expected"), ORDER_ERRORS,
                         ids=[c[0] for c in ORDER_ERRORS])
def test_order_errors_name_their_field(case: str, b: dict[str, Any], expected: str) -> None:
    out = validate_create(CreateRequest.model_validate(b), REF)
    assert out.failed
    assert any(e.startswith(expected) for e in out.order_errors), out.order_errors
    assert not any(out.line_errors.values())


LINE_ERRORS = [
    ("unknown item", at("PurchaseOrderItems.0.ItemId", "GHOST"),
     "ItemId: item 'GHOST' does not exist"),
    ("neither item nor custom item", body(PurchaseOrderItems=[{"TotalQuantity": 1}]),
     "ItemId: required"),
    ("zero quantity", at("PurchaseOrderItems.0.TotalQuantity", 0), "TotalQuantity: must be > 0"),
    ("negative quantity", at("PurchaseOrderItems.0.TotalQuantity", -3),
     "TotalQuantity: must be > 0"),
    ("no quantity", at("PurchaseOrderItems.0.TotalQuantity", None),
     "TotalQuantity: must be > 0"),
    ("custom quantity on an item line", at("PurchaseOrderItems.0.CustomItemQuantity", 2),
     "CustomItemQuantity: only for custom item lines"),
    ("custom price on an item line", at("PurchaseOrderItems.0.CustomItemPricePerPiece", 2),
     "CustomItemPricePerPiece: only for custom item lines"),
    ("item and custom item", body(PurchaseOrderItems=[custom(ItemId="DRILL-5")]),
     "ItemId: must be empty on a custom item line"),
    ("custom quantity zero", body(PurchaseOrderItems=[custom(CustomItemQuantity=0)]),
     "CustomItemQuantity: must be > 0"),
    ("custom quantity missing", body(PurchaseOrderItems=[custom(CustomItemQuantity=None)]),
     "CustomItemQuantity: must be > 0"),
    ("custom price negative", body(PurchaseOrderItems=[custom(CustomItemPricePerPiece=-0.5)]),
     "CustomItemPricePerPiece: must be >= 0"),
    ("custom price missing", body(PurchaseOrderItems=[custom(CustomItemPricePerPiece=None)]),
     "CustomItemPricePerPiece: must be >= 0"),
    ("custom total differs from its quantity", body(PurchaseOrderItems=[
        custom(TotalQuantity=5)]), "TotalQuantity: a custom line's quantity"),
    ("device on order and line", at("PurchaseOrderItems.0.DeviceId", "DEV-2"),
     "DeviceId: must be empty because the order has DeviceId 'DEV-1'"),
    ("line device of another stock", body(DeviceId=None, PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-7"}]),
     "DeviceId: device 'DEV-7' belongs to stock 'Plant7', not 'Main'"),
    ("unknown line device", body(DeviceId=None, PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-X"}]),
     "DeviceId: device 'DEV-X' does not exist"),
    ("B2B item without atelier code", body(SendOptions={"Channel": {"IsB2B": True}},
                                           PurchaseOrderItems=[{"ItemId": "GLOVE-L",
                                                                "TotalQuantity": 1}]),
     "ItemId: item 'GLOVE-L' has no atelier_code for vendor 'ACME', which B2B needs"),
    ("B2B custom item", body(SendOptions={"Channel": {"IsB2B": True}},
                             PurchaseOrderItems=[custom()]),
     "CustomItemId: custom items cannot be sent over B2B"),
]


@pytest.mark.parametrize(("case", "b", "expected"), LINE_ERRORS, ids=[c[0] for c in LINE_ERRORS])
def test_line_errors_are_listed_on_their_line(case: str, b: dict[str, Any],
                                              expected: str) -> None:
    b = copy.deepcopy(b)
    # the faulty line comes second, after a valid one: errors must land on index 1
    b["PurchaseOrderItems"].insert(0, {"ItemId": "DRILL-5", "TotalQuantity": 1})
    out = validate_create(CreateRequest.model_validate(b), REF)
    assert out.failed and out.order_errors == []
    assert list(out.line_errors) == [1]
    assert any(e.startswith(f"PurchaseOrderItems[1].{expected}") for e in out.line_errors[1]), \
        out.line_errors


def test_every_error_is_reported_not_only_the_first() -> None:
    b = body(VendorId="NOPE", StockName="Nowhere", PurchaseOrderItems=[
        {"ItemId": "GHOST", "TotalQuantity": 0}])
    errors = errors_of(b)
    # (the device is not checked against a stock that does not exist)
    assert [e.split(":")[0] for e in errors] == [
        "VendorId", "StockName", "PurchaseOrderItems[0].ItemId",
        "PurchaseOrderItems[0].TotalQuantity"]


def test_the_plan_given_is_the_one_validated() -> None:
    req = CreateRequest.model_validate(body())
    assert not validate_create(req, REF, parse_send_options(options_of(req))).failed
    b2b_plan = parse_send_options({"Channel": {"IsB2B": True}})
    req = CreateRequest.model_validate(body(PurchaseOrderItems=[custom()]))
    assert not validate_create(req, REF).failed
    assert validate_create(req, REF, b2b_plan).failed  # custom item over B2B


@pytest.mark.parametrize(("status", "kinds", "dispatches"), [
    (st.NEW, [], []),
    (st.SUGGESTED, [], []),
    (st.ACTIVE, ["Purchase", "Purchase"], [(DispatchKind.PURCHASE, 1, None)]),
    (st.CANCELLED, ["Purchase", "Purchase", "Cancel", "Cancel"],
     [(DispatchKind.PURCHASE, 1, None), (DispatchKind.CANCELLATION, 2, 1)]),
])
@pytest.mark.parametrize("has_channels", [True, False])
def test_initial_effects(status: str, kinds: list[str], dispatches: list[tuple[Any, ...]],
                         has_channels: bool) -> None:
    txs, plans = initial_effects(status, [("L1", 3), ("L2", 5)], has_channels=has_channels)
    assert [t.kind for t in txs] == kinds
    assert [(t.line_id, t.quantity) for t in txs] == [("L1", 3), ("L2", 5)] * (len(kinds) // 2)
    expected = dispatches if has_channels else []
    assert [(p.kind, p.number, p.replaces_number) for p in plans] == expected


# --- XML templates (SPEC 4): FTP.XmlTemplateName / Email.XmlTemplate, optional ---------

XML_REF = RefSnapshot(vendors=REF.vendors, stocks=REF.stocks, devices=REF.devices,
                      items=REF.items,
                      templates={**REF.templates, "acme-xml": "XML", "peppol-copy": "XML"})


@pytest.mark.parametrize("name", ["peppol", "cxml", "order-x", "acme-xml"])
@pytest.mark.parametrize("path", ["SendOptions.Email.XmlTemplate",
                                  "SendOptions.FTP.XmlTemplateName"])
def test_an_xml_template_is_a_loaded_xml_entry_or_a_built_in(path: str, name: str) -> None:
    b = at(path, name)
    b["SendOptions"]["Channel"]["IsFtp"] = True
    b["SendOptions"].setdefault("FTP", {})["IsXml"] = True
    decision = validate_create(CreateRequest.model_validate(b), XML_REF)
    assert decision.all_errors() == []


def test_xml_needs_no_template_name() -> None:
    """Without a name the vendor's xml_template, else the canonical XML, is sent."""
    b = body(SendOptions={"Channel": {"IsFtp": True}, "FTP": {"IsXml": True}})
    assert validate_create(CreateRequest.model_validate(b), REF).all_errors() == []


@pytest.mark.parametrize(("path", "name", "expected"), [
    ("SendOptions.FTP.XmlTemplateName", "nothing",
     "SendOptions.FTP.XmlTemplateName: no XML template 'nothing'; name a template loaded "
     "with format XML, or peppol, cxml or order-x (built in)"),
    ("SendOptions.Email.XmlTemplate", "std-pdf",
     "SendOptions.Email.XmlTemplate: template 'std-pdf' is PDF, not XML"),
    ("SendOptions.Email.PdfTemplate", "peppol",
     "SendOptions.Email.PdfTemplate: template 'peppol' is XML, not PDF"),
])
def test_a_wrong_xml_template_name_fails_naming_the_field(path: str, name: str,
                                                           expected: str) -> None:
    b = at(path, name)
    b["SendOptions"]["Channel"]["IsFtp"] = True
    b["SendOptions"].setdefault("FTP", {})["IsXml"] = True
    errors = validate_create(CreateRequest.model_validate(b), XML_REF).all_errors()
    assert errors == [expected]


def test_an_xml_template_name_is_at_most_50_characters() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        CreateRequest.model_validate(at("SendOptions.Email.XmlTemplate", "x" * 51))
    assert err.value.errors()[0]["loc"] == ("SendOptions", "Email", "XmlTemplate")
