"""Party data (turn 2) in the PDF and Excel standard templates, and its absence."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from openpyxl import load_workbook
from pypdf import PdfReader

from dispatch.documents.context import DocumentContext, Party, PostalAddress
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context


def plain(ctx: DocumentContext) -> DocumentContext:
    """The sample as it was before party data: no postal address, VAT, currency."""
    return dataclasses.replace(
        ctx, currency=None,
        vendor=Party(name="ACME Tools Ltd", id="ACME", email="orders@acme.test"),
        buyer=Party(name=ctx.buyer.name, email=ctx.buyer.email, address=ctx.buyer.address))


def pdf_text(ctx: DocumentContext, templates_dir: Path) -> str:
    content = render_document(ctx, format="PDF", template_file="pdf/standard.yaml",
                              templates_dir=templates_dir).content
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def sheet(ctx: DocumentContext, templates_dir: Path):  # noqa: ANN201
    content = render_document(ctx, format="Excel", template_file="excel/standard.xlsx",
                              templates_dir=templates_dir).content
    return load_workbook(io.BytesIO(content)).active


def test_address_lines_fall_back_to_the_postal_address() -> None:
    postal = PostalAddress(street="1 Tool Road", city="Springfield", postal_code="62701",
                           region="IL", country="US")
    assert Party(name="A", postal_address=postal).address_lines == (
        "1 Tool Road", "62701 Springfield, IL", "US")
    assert Party(name="A", address=("x",), postal_address=postal).address_lines == ("x",)
    assert Party(name="A").address_lines == ()


def test_pdf_shows_currency_and_both_addresses(templates_dir: Path) -> None:
    text = pdf_text(sample_context(lines=2), templates_dir)
    assert "1 Tool Road" in text and "62701 Springfield, IL" in text  # vendor
    assert "100 Industrial Way" in text  # buyer
    assert "Price (USD)" in text and "Amount (USD)" in text
    assert "VAT US556677889901" in text
    bare = pdf_text(plain(sample_context(lines=2)), templates_dir)
    assert "1 Tool Road" not in bare and "(USD)" not in bare and "VAT" not in bare


def test_excel_shows_currency_and_both_addresses(templates_dir: Path) -> None:
    ws = sheet(sample_context(lines=2), templates_dir)
    assert ws["E6"].value == "USD"
    assert "1 Tool Road\n62701 Springfield, IL\nUS" in ws["D9"].value
    assert "100 Industrial Way" in ws["A9"].value
    bare = sheet(plain(sample_context(lines=2)), templates_dir)
    assert bare["E6"].value is None
    assert bare["D9"].value == "ACME Tools Ltd\nVendor id: ACME\norders@acme.test"
