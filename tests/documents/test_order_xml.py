"""The canonical XML document: valid against the shipped XSD, stable, escaped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path

import pytest
from lxml import etree

from dispatch.documents.context import Line
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.errors import RenderError

GOLDEN = Path(__file__).parent / "golden" / "change.xml"
NS = {"po": "urn:dispatch:purchase-order:1"}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    root = Path(__file__).resolve().parents[2]
    return etree.XMLSchema(etree.parse(str(root / "templates/xml/purchase-order.xsd")))


def _xml(ctx: object, templates_dir: Path) -> bytes:
    return render_document(ctx, format="XML", templates_dir=templates_dir).content  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["purchase", "change", "cancellation"])
@pytest.mark.parametrize("ship_to", [True, False])
def test_every_kind_is_valid(
    kind: str, ship_to: bool, schema: etree.XMLSchema, templates_dir: Path
) -> None:
    ctx = sample_context(kind, lines=8, ship_to=ship_to)  # type: ignore[arg-type]
    doc = etree.fromstring(_xml(ctx, templates_dir))
    schema.assertValid(doc)
    assert doc.findtext("po:Dispatch/po:Kind", namespaces=NS) == kind
    assert doc.findtext("po:Order/po:Id", namespaces=NS) == ctx.order.Id
    ids = doc.xpath("po:Lines/po:Line/po:Id/text()", namespaces=NS)
    assert ids == [line.Id for line in ctx.lines]
    assert (doc.find("po:ShipTo", namespaces=NS) is not None) is ship_to


def test_change_says_what_it_replaces(templates_dir: Path) -> None:
    doc = etree.fromstring(_xml(sample_context("change"), templates_dir))
    assert doc.findtext("po:Dispatch/po:ReplacesNumber", namespaces=NS) == "1"
    fields = doc.xpath("po:Changes/po:Change/po:Field/text()", namespaces=NS)
    assert fields == ["TotalQuantity", "CancelledQuantity"]


def test_matches_golden_file(templates_dir: Path) -> None:
    """Layout matters to vendors' parsers: any change to the document shows up here."""
    ctx = sample_context("change", lines=3)
    ctx = dataclasses.replace(
        ctx, dispatch=dataclasses.replace(ctx.dispatch, generated_at=dt.datetime.now())
    )
    text = _xml(ctx, templates_dir).decode()
    text = re.sub(r"<GeneratedAt>[^<]+</GeneratedAt>", "<GeneratedAt>*</GeneratedAt>", text)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


HOSTILE = "a < b & c > d ]]> \"quoted\" 'single' \x00\x07\x1b end \ud800"


def test_hostile_text_is_escaped_and_control_characters_replaced(
    schema: etree.XMLSchema, templates_dir: Path
) -> None:
    ctx = sample_context(lines=2)
    first = dataclasses.replace(ctx.lines[0], Note=HOSTILE, ItemName="<Item>&amp;</Item>")
    ctx = dataclasses.replace(
        ctx,
        lines=(first, *ctx.lines[1:]),
        order=dataclasses.replace(ctx.order, Notes="<![CDATA[x]]>"),
    )
    content = _xml(ctx, templates_dir)
    doc = etree.fromstring(content)
    schema.assertValid(doc)
    line = doc.find("po:Lines/po:Line", namespaces=NS)
    assert line.findtext("po:Note", namespaces=NS) == (
        "a < b & c > d ]]> \"quoted\" 'single' \ufffd\ufffd\ufffd end \ufffd"
    )
    assert line.findtext("po:ItemName", namespaces=NS) == "<Item>&amp;</Item>"
    assert doc.findtext("po:Order/po:Notes", namespaces=NS) == "<![CDATA[x]]>"
    assert b"<Item>" not in content and b"]]>" not in content


def test_schema_violation_is_refused_before_returning(templates_dir: Path) -> None:
    ctx = sample_context(lines=1)
    both = dataclasses.replace(ctx.lines[0], CustomItemId="ALSO-CUSTOM")  # ItemId XOR custom
    with pytest.raises(RenderError, match="not valid against purchase-order.xsd"):
        _xml(dataclasses.replace(ctx, lines=(both,)), templates_dir)


def test_too_long_id_is_refused(templates_dir: Path) -> None:
    ctx = sample_context(lines=1)
    long_line = Line(Id="L" * 51, Position=1, ItemId="A", TotalQuantity=1)
    with pytest.raises(RenderError):
        _xml(dataclasses.replace(ctx, lines=(long_line,)), templates_dir)


def test_name_and_media_type(templates_dir: Path) -> None:
    doc = render_document(sample_context("cancellation"), format="XML", templates_dir=templates_dir)
    assert doc.name == "PurchaseOrder1001_cancellation_3.xml"
    assert doc.media_type == "application/xml" and doc.format == "XML"
    assert doc.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
