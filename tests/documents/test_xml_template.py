"""XML templates: escaping, hostile text, safe parsing, schema failures, entries and needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from dispatch.documents.context import KINDS, CxmlIdentity, DocumentContext, PostalAddress
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.documents.sandbox import clean_text
from dispatch.documents.xml_spec import (
    BUILTIN_XML_TEMPLATES,
    builtin_xml_template,
    missing_reference_data,
    resolve_xml_template,
    xml_template_from_entry,
)
from dispatch.documents.xml_template import check_xml_template, parse_output
from dispatch.errors import RenderError, TemplateError
from tests.documents import standards as std

HOSTILE = "</ID><x>a & b</x> ]]> <![CDATA[ \"q\" 'a' \x00\x07\x1b\x7f\ud800\ufffe end"
LONG = (HOSTILE + " ") * (4000 // len(HOSTILE) + 1)


def hostile(ctx: DocumentContext) -> DocumentContext:
    """``ctx`` with hostile text in every text field that reaches a template (ids aside:
    reference data and the API refuse markup and control characters in ids)."""
    h = HOSTILE

    def party(p: Any) -> Any:
        return dataclasses.replace(
            p, name=h, legal_name=h, email=h, vat_id="SE" + h, address=(h, h),
            postal_address=PostalAddress(street=h, additional_street=h, city=h,
                                         postal_code=h, region=h, country="SE"),
            cxml=CxmlIdentity(domain=h, identity=h))

    lines = tuple(
        dataclasses.replace(line, ItemName=h, Note=LONG, LineReference=h, Unit=h)
        for line in ctx.lines)
    ship_to = ctx.ship_to and dataclasses.replace(
        ctx.ship_to, locationName=h, addressLine1=h, addressLine2=h, city=h, province=h,
        zipCode=h, countryTitle=h)
    order = dataclasses.replace(ctx.order, Notes=LONG, Reference=h, StockName=h)
    return dataclasses.replace(ctx, order=order, lines=lines, vendor=party(ctx.vendor),
                               buyer=party(ctx.buyer), ship_to=ship_to)


def render(name: str, ctx: DocumentContext, templates_dir: Path, **kw: Any) -> bytes:
    return render_document(ctx, format="XML", template_name=name,
                           templates_dir=templates_dir, **kw).content


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", BUILTIN_XML_TEMPLATES)
def test_hostile_text_stays_text_and_documents_stay_valid(
    name: str, kind: str, templates_dir: Path
) -> None:
    ctx = hostile(sample_context(kind, lines=3))  # type: ignore[arg-type]
    content = render(name, ctx, templates_dir)
    root = etree.fromstring(content)
    assert not root.xpath("//*[local-name()='x']")  # no injected element
    assert b"]]>" not in content and b"<x>" not in content
    texts = set(root.xpath("//text()")) | set(root.xpath("//@*"))
    cleaned = clean_text(HOSTILE)
    assert any(cleaned in t for t in texts)  # the text survives, control characters replaced
    if kind != "cancellation" or name != "peppol":  # Peppol's cancellation has no notes
        assert any(clean_text(LONG).strip() in t for t in texts)
    if name == "peppol":
        local = etree.QName(root).localname
        assert std.ubl_schema(local, "2.1").validate(root)
        assert std.peppol_failed_rules(std.PEPPOL_TRANSACTION[local], content) == []
    elif name == "cxml":
        assert std.cxml_dtd().validate(root)
    else:
        assert std.order_x_schema().validate(root)  # and render_document validated it too
        assert std.order_x_failed_rules(content) == []


# --- a template of one's own -------------------------------------------------------------

XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified"
           targetNamespace="urn:acme:po" xmlns="urn:acme:po">
  <xs:element name="Order">
    <xs:complexType><xs:sequence>
      <xs:element name="ID"><xs:simpleType><xs:restriction base="xs:string">
        <xs:maxLength value="20"/></xs:restriction></xs:simpleType></xs:element>
      <xs:element name="Kind" type="xs:string"/>
      <xs:element name="Note" type="xs:string" minOccurs="0"/>
      <xs:element name="Secret" type="xs:int" minOccurs="0"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""
TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Order xmlns="urn:acme:po">
  <ID>{{ order.Id }}</ID>
  <Kind>{{ kind_word }}</Kind>
{% if order.Notes is present %}
  <Note>{{ order.Notes }}</Note>
{% endif %}
{% if cxml_shared_secret %}
  <Secret>{{ cxml_shared_secret }}</Secret>
{% endif %}
</Order>
"""


@pytest.fixture
def acme(tmp_templates: Path) -> Path:
    folder = tmp_templates / "xml" / "acme"
    folder.mkdir()
    (folder / "order.xsd").write_text(XSD)
    for kind, word in (("purchase", "new"), ("change", "update"), ("cancellation", "cancel")):
        (folder / f"{kind}.xml.j2").write_text(
            TEMPLATE.replace("{{ kind_word }}", word), encoding="utf-8")
    return tmp_templates


def acme_spec(**changes: Any) -> Any:
    entry = {"name": "acme-xml", "format": "XML",
             "files": {k: f"xml/acme/{k}.xml.j2" for k in KINDS},
             "schema": "xml/acme/order.xsd", **changes}
    return xml_template_from_entry(entry)


@pytest.mark.parametrize(("kind", "word"),
                         [("purchase", "new"), ("change", "update"), ("cancellation", "cancel")])
def test_one_file_per_kind_validated_against_its_schema(kind: str, word: str, acme: Path) -> None:
    ctx = dataclasses.replace(sample_context(kind, lines=1),  # type: ignore[arg-type]
                              order=dataclasses.replace(sample_context().order,
                                                        Notes="</ID><x>"))
    doc = render_document(ctx, format="XML", templates_dir=acme, xml_template=acme_spec())
    root = etree.fromstring(doc.content)
    assert root.findtext("{urn:acme:po}Kind") == word
    assert root.findtext("{urn:acme:po}Note") == "</ID><x>"
    assert b"&lt;/ID&gt;&lt;x&gt;" in doc.content


def test_schema_failure_names_the_line_and_the_rule(acme: Path) -> None:
    ctx = sample_context(lines=1)
    ctx = dataclasses.replace(ctx, order=dataclasses.replace(ctx.order, Id="X" * 21))
    with pytest.raises(RenderError) as err:
        render_document(ctx, format="XML", templates_dir=acme, xml_template=acme_spec())
    message = str(err.value)
    assert "XML template 'acme-xml' (purchase: xml/acme/purchase.xml.j2)" in message
    assert "not valid against order.xsd: line 3: SCHEMAV_CVC_MAXLENGTH_VALID: Element" in message


def test_a_dtd_schema(acme: Path) -> None:
    (acme / "xml/acme/order.dtd").write_text(
        "<!ELEMENT Order (ID, Kind, Note?)>\n<!ATTLIST Order xmlns CDATA #FIXED 'urn:acme:po'>\n"
        "<!ELEMENT ID (#PCDATA)>\n<!ELEMENT Kind (#PCDATA)>\n<!ELEMENT Note (#PCDATA)>\n")
    spec = acme_spec(schema="xml/acme/order.dtd")
    content = render_document(sample_context(), format="XML", templates_dir=acme,
                              xml_template=spec).content
    assert content.startswith(b"<?xml")
    (acme / "xml/acme/order.dtd").write_text("<!ELEMENT Order (Nothing)>\n")
    with pytest.raises(RenderError, match=r"order\.dtd: line 2: DTD_"):
        render_document(sample_context(), format="XML", templates_dir=acme, xml_template=spec)


def test_the_shared_secret_never_appears_in_an_error(
    acme: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = sample_context(lines=1)
    vendor = dataclasses.replace(ctx.vendor, cxml=CxmlIdentity("D", "I", "ACME_SECRET"))
    monkeypatch.setenv("ACME_SECRET", "not-a-number-s3cr3t")  # <Secret> must be an int
    with pytest.raises(RenderError) as err:
        render_document(dataclasses.replace(ctx, vendor=vendor), format="XML",
                        templates_dir=acme, xml_template=acme_spec())
    assert "s3cr3t" not in str(err.value) and "***" in str(err.value)


def write(root: Path, file: str, text: str) -> str:
    (root / file).parent.mkdir(parents=True, exist_ok=True)
    (root / file).write_text(text, encoding="utf-8")
    return file


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        ("<r>\n{{ order.Nope }}\n</r>", RenderError, r"line 2: UndefinedError"),
        ("<r>\n\n{{ order.__class__ }}</r>", RenderError, r"line 3: SecurityError"),
        ("<r>{% if %}</r>", TemplateError, r"line 1"),
        ("<r>{{ order.Notes | safe }}</r>", TemplateError, r"No filter named 'safe'"),
        ("<r>\n<a></b>\n</r>", RenderError, r"not well-formed XML: line 2"),
        ('<?xml version="1.0" encoding="ISO-8859-1"?><r/>', RenderError, "declare UTF-8"),
    ],
)
def test_broken_templates_are_named(
    source: str, error: type[Exception], match: str, tmp_templates: Path
) -> None:
    file = write(tmp_templates, "xml/broken.xml.j2", source)
    with pytest.raises(error, match=match):
        render_document(sample_context(), format="XML", template_file=file,
                        templates_dir=tmp_templates)


def test_output_is_parsed_without_entities_dtds_or_network(tmp_templates: Path) -> None:
    secret = tmp_templates / "secret.txt"
    secret.write_text("TOP SECRET")
    file = write(tmp_templates, "xml/xxe.xml.j2",
                 f'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/never.dtd" [\n'
                 f'  <!ENTITY e SYSTEM "file://{secret}">]>\n<r>&e;{{{{ order.Id }}}}</r>')
    content = render_document(sample_context(), format="XML", template_file=file,
                              templates_dir=tmp_templates).content
    root = parse_output(content, "test")
    assert "TOP SECRET" not in etree.tostring(root, encoding="unicode")


@pytest.mark.parametrize("file", ["../outside.xml.j2", "/etc/passwd", "xml/missing.xml.j2"])
def test_template_files_are_confined(file: str, tmp_templates: Path) -> None:
    with pytest.raises(TemplateError):
        render_document(sample_context(), format="XML", template_file=file,
                        templates_dir=tmp_templates)


def test_schema_is_confined(acme: Path) -> None:
    with pytest.raises(TemplateError, match="must not contain '..'"):
        render_document(sample_context(), format="XML", templates_dir=acme,
                        xml_template=acme_spec(schema="../x.xsd"))


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"file": "a.j2", "files": {"purchase": "a"}}, "either file"),
        ({}, "either file"),
        ({"files": {"purchase": "a", "change": "b"}}, r"files\.cancellation: missing"),
        ({"files": {"purchase": "a", "change": "b", "cancellation": "c", "refund": "d"}},
         r"files\.refund: not a dispatch kind"),
        ({"file": "a.j2", "schema": "x.rng"}, r"\.xsd or \.dtd"),
        ({"file": "a.j2", "format": "PDF"}, "is not XML"),
        ({"file": "a.j2", "needs": ["vendor.party.endpoint_id", "secret"]}, "needs must"),
    ],
)
def test_entries_are_checked(entry: dict[str, Any], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        xml_template_from_entry({"name": "acme-xml", **entry})


def test_canonical_xml_stays_the_default(templates_dir: Path) -> None:
    doc = render_document(sample_context(), format="XML", templates_dir=templates_dir)
    assert etree.fromstring(doc.content).nsmap[None] == "urn:dispatch:purchase-order:1"
    with pytest.raises(TemplateError, match="no XML template 'acme'"):
        render_document(sample_context(), format="XML", template_name="acme",
                        templates_dir=templates_dir)


def test_an_entry_replaces_a_builtin_of_the_same_name(acme: Path) -> None:
    mine = acme_spec(name="peppol")
    assert resolve_xml_template("peppol", {"peppol": mine}) is mine
    assert resolve_xml_template("peppol") == builtin_xml_template("peppol")
    assert resolve_xml_template("acme") is None


def test_builtins_use_an_edited_copy_in_the_templates_dir(tmp_templates: Path) -> None:
    path = tmp_templates / "xml/cxml/order-request.xml.j2"
    path.write_text(path.read_text().replace("<UserAgent>dispatch</UserAgent>",
                                             "<UserAgent>edited</UserAgent>"))
    content = render("cxml", sample_context(), tmp_templates)
    assert b"<UserAgent>edited</UserAgent>" in content


def test_builtins_fall_back_to_the_project_copy(tmp_path: Path) -> None:
    content = render("peppol", sample_context(), tmp_path)
    assert b"urn:fdc:peppol.eu:poacc:trns:order:3" in content


@pytest.mark.parametrize("name", BUILTIN_XML_TEMPLATES)
def test_builtins_pass_the_load_time_check(name: str, templates_dir: Path) -> None:
    samples = {kind: sample_context(kind, lines=3) for kind in KINDS}  # type: ignore[arg-type]
    spec = builtin_xml_template(name)
    assert spec is not None and spec.builtin and spec.needs
    check_xml_template(spec, templates_dir=templates_dir, samples=samples)


def test_missing_reference_data_names_vendor_item_and_key() -> None:
    peppol = builtin_xml_template("peppol")
    assert peppol is not None
    vendor = {"id": "ACME", "party": {"endpoint_id": "7300010000001"}}
    buyer = {"name": "Us", "party": {"endpoint_id": "7350000000108", "endpoint_scheme": "0088"}}
    items = [{"id": "DRILL-5", "unit_code": "BX"}, {"id": "NUT-8"}]
    assert missing_reference_data(peppol, vendor=vendor, buyer=buyer, items=items) == [
        "vendor 'ACME': party.endpoint_scheme is missing; XML template 'peppol' "
        "(vendor 'ACME''s xml_template) needs it",
        "item 'NUT-8': unit_code is missing; vendor 'ACME' gets XML template 'peppol', "
        "which needs it",
    ]
    cxml = builtin_xml_template("cxml")
    assert cxml is not None
    gaps = missing_reference_data(cxml, vendor={"id": "ACME"}, buyer=None)
    assert [g.split(":")[0] for g in gaps] == ["buyer", "buyer", "vendor 'ACME'", "vendor 'ACME'"]
    order_x = builtin_xml_template("order-x")
    assert order_x is not None and order_x.trusted_schema is not None
    full = {"party": {"address": {"country": "SE"}}}
    assert missing_reference_data(order_x, vendor={"id": "V"}, buyer=full) == []
