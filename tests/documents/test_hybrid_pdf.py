"""Hybrid PDFs: a PDF template asking for ``attach_xml: order-x`` carries the Order-X XML."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree
from pypdf import PdfReader

from dispatch.documents.hybrid_pdf import embed_order_x
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.errors import TemplateError
from tests.documents import standards as std

KINDS = ("purchase", "change", "cancellation")


@pytest.fixture
def hybrid(tmp_templates: Path) -> Path:
    text = (tmp_templates / "pdf/standard.yaml").read_text(encoding="utf-8")
    (tmp_templates / "pdf/hybrid.yaml").write_text("attach_xml: order-x\n" + text,
                                                   encoding="utf-8")
    return tmp_templates


@pytest.mark.parametrize("kind", KINDS)
def test_the_pdf_carries_the_order_x_xml(kind: str, hybrid: Path) -> None:
    ctx = sample_context(kind, lines=6)  # type: ignore[arg-type]
    pdf = render_document(ctx, format="PDF", template_file="pdf/hybrid.yaml",
                          templates_dir=hybrid).content
    xml = render_document(ctx, format="XML", template_name="order-x",
                          templates_dir=hybrid).content
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {"order-x.xml": [xml]}
    assert ctx.order.Id in reader.pages[0].extract_text()
    xmp = reader.xmp_metadata
    assert xmp is not None
    raw = xmp.rdf_root.toxml()
    assert "<pdfaid:part>3</pdfaid:part>" in raw
    doc_type = "ORDER" if kind == "purchase" else "ORDER_CHANGE"
    assert f"<fx:DocumentType>{doc_type}</fx:DocumentType>" in raw
    assert "<fx:ConformanceLevel>COMFORT</fx:ConformanceLevel>" in raw
    assert std.order_x_schema().validate(etree.fromstring(reader.attachments["order-x.xml"][0]))
    from facturx import facturx

    name, extracted = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "order-x.xml" and extracted == xml


def test_same_dispatch_same_bytes(hybrid: Path) -> None:
    """factur-x's clock is pinned to generated_at: a retry re-renders the same file."""
    ctx = sample_context("change", lines=3)
    one, two = (render_document(ctx, format="PDF", template_file="pdf/hybrid.yaml",
                                templates_dir=hybrid) for _ in range(2))
    assert one.sha256 == two.sha256
    info = PdfReader(io.BytesIO(one.content)).metadata
    assert info is not None and info["/ModDate"] == "D:20250314093000+00'00'"


def test_embed_order_x_directly(templates_dir: Path) -> None:
    ctx = sample_context("cancellation", lines=2)
    pdf = render_document(ctx, format="PDF", template_file="pdf/standard.yaml",
                          templates_dir=templates_dir).content
    xml = render_document(ctx, format="XML", template_name="order-x",
                          templates_dir=templates_dir).content
    out = embed_order_x(pdf, xml, ctx)
    reader = PdfReader(io.BytesIO(out))
    assert reader.attachments["order-x.xml"] == [xml]
    assert "Cancellation of purchase order" in (reader.metadata.title or "")


@pytest.mark.parametrize("value", ["peppol", "cxml", "nope"])
def test_only_order_x_can_be_attached(value: str, tmp_templates: Path) -> None:
    text = (tmp_templates / "pdf/standard.yaml").read_text(encoding="utf-8")
    (tmp_templates / "pdf/bad.yaml").write_text(f"attach_xml: {value}\n" + text)
    with pytest.raises(TemplateError, match=r"bad\.yaml line \d+: attach_xml: .* order-x"):
        render_document(sample_context(), format="PDF", template_file="pdf/bad.yaml",
                        templates_dir=tmp_templates)
