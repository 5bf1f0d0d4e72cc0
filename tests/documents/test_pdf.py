"""PDF documents from the YAML layout: read back with pypdf."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from dispatch.documents.context import DocumentContext, Party
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context

FILE = "pdf/standard.yaml"


def _pdf(ctx: DocumentContext, templates_dir: Path, file: str = FILE) -> PdfReader:
    doc = render_document(ctx, format="PDF", template_file=file, templates_dir=templates_dir)
    assert doc.content.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(doc.content))


def _text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("kind", ["purchase", "change", "cancellation"])
def test_shows_order_and_every_line(kind: str, templates_dir: Path) -> None:
    ctx = sample_context(kind, lines=12)  # type: ignore[arg-type]
    text = _text(_pdf(ctx, templates_dir))
    assert ctx.order.Id in text
    for line in ctx.lines:
        assert line.Code in text
        assert (line.ItemName or "") in text
    assert f"{ctx.totals.amount:,.2f}" in text
    assert "Plant 7" in text and "ACME Tools Ltd" in text
    assert "Deliver to gate 3" in text and "REF-2" in text  # a line note and line reference
    assert ("CANCELLATION" in text) is (kind == "cancellation")


def test_change_names_the_version_it_replaces_and_what_changed(templates_dir: Path) -> None:
    text = _text(_pdf(sample_context("change", lines=5), templates_dir))
    assert "Version 2 (replaces version 1)" in text
    assert "What changed since version 1" in text
    assert "TotalQuantity" in text and "CancelledQuantity" in text


def test_cancellation_is_unmistakable(templates_dir: Path) -> None:
    reader = _pdf(sample_context("cancellation", lines=40), templates_dir)
    first = reader.pages[0].extract_text()
    assert "CANCELLATION" in first.split("Cancellation of purchase order")[0]  # the banner
    for page in reader.pages:  # running header and watermark on every page
        assert "CANCELLATION" in page.extract_text()
        assert "CANCELLED" in page.extract_text()


def test_500_lines_span_pages_with_repeated_header(templates_dir: Path) -> None:
    ctx = sample_context("purchase", lines=500)
    reader = _pdf(ctx, templates_dir)
    assert len(reader.pages) >= 10
    for page in reader.pages[1:]:
        text = page.extract_text()
        assert f"Purchase order {ctx.order.Id}" in text  # running page header
        assert "Description" in text and "Expected" in text  # repeated column titles
    text = _text(reader)
    assert all(line.Code in text for line in ctx.lines)


def test_hostile_text_is_shown_literally(templates_dir: Path) -> None:
    ctx = sample_context(lines=2)
    evil = "<font size=40>BIG</font> & ]]> <b>x</b> \x00\x1b end"
    first = dataclasses.replace(ctx.lines[0], Note=evil, ItemName="Bolts <M8> & nuts")
    ctx = dataclasses.replace(
        ctx,
        lines=(first, ctx.lines[1]),
        order=dataclasses.replace(ctx.order, Notes="<para>&amp;</para>"),
    )
    text = " ".join(_text(_pdf(ctx, templates_dir)).split())  # wrapped lines joined
    assert "<font size=40>BIG</font> & ]]> <b>x</b> \u25a0\u25a0 end" in text
    assert "Bolts <M8> & nuts" in text
    assert "<para>&amp;</para>" in text


def test_a_line_taller_than_a_page_still_renders(templates_dir: Path) -> None:
    ctx = sample_context(lines=3)
    long = dataclasses.replace(ctx.lines[1], Note="a long note " * 340)  # ~4000 characters
    reader = _pdf(dataclasses.replace(ctx, lines=(ctx.lines[0], long, ctx.lines[2])), templates_dir)
    assert len(reader.pages) >= 2
    assert ctx.lines[2].Code in _text(reader)


def test_same_order_same_bytes(templates_dir: Path) -> None:
    ctx = sample_context("change", lines=5)
    one = render_document(ctx, format="PDF", template_file=FILE, templates_dir=templates_dir)
    two = render_document(ctx, format="PDF", template_file=FILE, templates_dir=templates_dir)
    assert one.sha256 == two.sha256
    assert one.name == "PurchaseOrder1001_change_2.pdf" and one.media_type == "application/pdf"


def test_edited_template_is_picked_up(tmp_templates: Path) -> None:
    ctx = sample_context(lines=1)
    assert "Bestellung" not in _text(_pdf(ctx, tmp_templates))
    path = tmp_templates / FILE
    text = path.read_text().replace("Purchase order{% endif %}", "Bestellung{% endif %}")
    path.write_text(text + "\n")  # size changes, so the cache sees a new file
    assert "Bestellung" in _text(_pdf(ctx, tmp_templates))


MINIMAL = """
page: {size: A5, orientation: landscape, margins: 10mm}
styles:
  big: {font: Helvetica-Bold, size: 14, align: center}
body:
  - paragraph: "Order {{ order.Id }}"
    style: big
  - paragraph: "only for changes"
    if: dispatch.is_change
  - table:
      for: line in lines
      columns:
        - {title: Item, width: 40mm, value: "{{ line.Code }}"}
        - {title: Qty, width: 20mm, value: "{{ line.TotalQuantity }}", align: right}
"""


def test_a_new_template_is_one_file(tmp_templates: Path) -> None:
    (tmp_templates / "pdf" / "minimal.yaml").write_text(MINIMAL)
    ctx = sample_context(lines=3)
    reader = _pdf(ctx, tmp_templates, "pdf/minimal.yaml")
    text = _text(reader)
    assert "Order PurchaseOrder1001" in text and "ITEM-0003" in text
    assert "only for changes" not in text
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert width > height  # A5 landscape


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs the DejaVu fonts (fonts-dejavu-core)")
def test_a_truetype_font_under_the_templates_dir_shows_any_letter(tmp_templates: Path) -> None:
    fonts = tmp_templates / "pdf" / "fonts"
    fonts.mkdir()
    (fonts / "DejaVuSans.ttf").write_bytes(DEJAVU.read_bytes())
    (tmp_templates / "pdf" / "unicode.yaml").write_text(
        "fonts: {DejaVu: pdf/fonts/DejaVuSans.ttf}\n"
        "styles:\n  u: {font: DejaVu}\n"
        "body:\n  - paragraph: '{{ vendor.name }}'\n    style: u\n"
    )
    ctx = dataclasses.replace(sample_context(), vendor=Party(name="Černý & Łódź s.r.o."))
    text = _text(_pdf(ctx, tmp_templates, "pdf/unicode.yaml"))
    assert "Černý & Łódź s.r.o." in text
