"""Excel documents from the .xlsx template: reopened with openpyxl, cells where they belong."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from dispatch.documents.context import DocumentContext
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context

FILE = "excel/standard.xlsx"
LINE_ROW = 12  # the template's repeated row


def _xlsx(ctx: DocumentContext, templates_dir: Path, file: str = FILE) -> bytes:
    doc = render_document(ctx, format="Excel", template_file=file, templates_dir=templates_dir)
    assert doc.name.endswith(".xlsx") and doc.format == "Excel"
    return doc.content


def _sheet(content: bytes):  # noqa: ANN202
    return load_workbook(io.BytesIO(content)).active


@pytest.mark.parametrize("kind", ["purchase", "change", "cancellation"])
def test_values_land_in_the_right_cells(kind: str, templates_dir: Path) -> None:
    ctx = sample_context(kind, lines=20)  # type: ignore[arg-type]
    ws = _sheet(_xlsx(ctx, templates_dir))
    assert ws["B4"].value == ctx.order.Id
    assert ws["E4"].value == ctx.dispatch.number
    assert ws["B5"].value == ctx.order.CreatedAt and ws["B5"].number_format == "yyyy-mm-dd"
    for index, line in enumerate(ctx.lines):
        row = LINE_ROW + index
        assert ws.cell(row, 1).value == line.Position
        assert ws.cell(row, 2).value == line.Code
        assert ws.cell(row, 3).value == line.ItemName
        assert ws.cell(row, 5).value == line.TotalQuantity
        price = ws.cell(row, 7).value
        assert price == (None if line.PricePerPiece is None else float(line.PricePerPiece))
        assert ws.cell(row, 10).value == line.Note
        assert ws.cell(row, 11).value == line.LineReference
    total_row = LINE_ROW + len(ctx.lines)  # the totals moved down below the lines
    assert ws.cell(total_row, 3).value == "Total (20 lines)"
    assert ws.cell(total_row, 5).value == ctx.totals.quantity
    assert Decimal(str(ws.cell(total_row, 8).value)) == ctx.totals.amount
    assert ws.cell(total_row + 3, 1).value == ctx.order.Notes
    title = ws["A1"].value
    assert title.startswith(
        {
            "purchase": "PURCHASE ORDER",
            "change": "PURCHASE ORDER CHANGE",
            "cancellation": "CANCELLATION OF PURCHASE ORDER",
        }[kind]
    )
    assert ("CANCELLATION" in (ws["A2"].value or "")) is (kind == "cancellation")


def test_change_marks_changed_lines(templates_dir: Path) -> None:
    ctx = sample_context("change", lines=4)
    ws = _sheet(_xlsx(ctx, templates_dir))
    assert ws["G4"].value == 1  # replaces version 1
    assert ws.cell(LINE_ROW, 12).value == "TotalQuantity: 6 → 11"
    assert ws.cell(LINE_ROW + 1, 12).value is None
    assert "version 2 replaces version 1" in ws["A2"].value


def test_styles_widths_and_merges_are_kept(templates_dir: Path) -> None:
    template = load_workbook(templates_dir / FILE).active
    ws = _sheet(_xlsx(sample_context(lines=5), templates_dir))
    for letter in "ABCDEFGHIJKL":
        assert ws.column_dimensions[letter].width == template.column_dimensions[letter].width
    assert ws.cell(LINE_ROW + 4, 7).number_format == "#,##0.00"
    assert ws.cell(LINE_ROW + 4, 1).border.left.style == "thin"
    assert ws["A1"].font.b and ws["A1"].font.sz == 16
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:L1", "A9:C9", "I9:L9"} <= merged
    assert f"A{LINE_ROW + 5 + 3}:H{LINE_ROW + 5 + 3}" in merged  # the notes merge moved down
    assert ws.freeze_panes == "A12" and ws.print_title_rows == "$11:$11"


@pytest.mark.parametrize("text", ["=SUM(A1)", "+1+1", "-2-2", "@SUM(A1)", '=HYPERLINK("x")'])
def test_order_text_never_becomes_a_formula(text: str, templates_dir: Path) -> None:
    ctx = sample_context(lines=2)
    first = dataclasses.replace(ctx.lines[0], Note=text, ItemName=text, LineReference=text)
    ctx = dataclasses.replace(
        ctx, lines=(first, ctx.lines[1]), order=dataclasses.replace(ctx.order, Reference=text)
    )
    content = _xlsx(ctx, templates_dir)
    ws = _sheet(content)
    for cell in (ws.cell(LINE_ROW, 3), ws.cell(LINE_ROW, 10), ws.cell(LINE_ROW, 11), ws["B6"]):
        assert cell.value == text
        assert cell.data_type == "s"
        assert cell.quotePrefix  # Excel keeps it text even when the cell is edited
    sheet_xml = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml


def test_control_characters_do_not_break_the_workbook(templates_dir: Path) -> None:
    ctx = sample_context(lines=1)
    line = dataclasses.replace(ctx.lines[0], Note="a\x00b\x1bc <&> ]]>")
    ws = _sheet(_xlsx(dataclasses.replace(ctx, lines=(line,)), templates_dir))
    assert ws.cell(LINE_ROW, 10).value == "a\ufffdb\ufffdc <&> ]]>"


def _template(path: Path, rows: dict[str, object]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "PO"
    for ref, value in rows.items():
        ws[ref] = value
    ws.column_dimensions["B"].width = 33
    wb.save(path)


def test_a_new_template_is_one_file(tmp_templates: Path) -> None:
    _template(
        tmp_templates / "excel" / "mini.xlsx",
        {
            "A1": "Order {{ order.Id }} v{{ dispatch.number }}",
            "A2": "{{ order.CreatedAt }}",
            "A3": "=1+1",  # the author's own formula is kept
            "A5": "{{ line.Position }}",
            "B5": "{{ line.Code }} ({{ line.Unit }})",
            "A6": "end",
        },
    )
    ctx = sample_context(lines=3)
    ws = _sheet(_xlsx(ctx, tmp_templates, "excel/mini.xlsx"))
    assert ws.title == "PO"
    assert ws["A1"].value == "Order PurchaseOrder1001 v1"
    assert isinstance(ws["A2"].value, dt.datetime)
    assert ws["A3"].value == "=1+1" and ws["A3"].data_type == "f"
    assert [ws.cell(r, 2).value for r in (5, 6, 7)] == [
        "ITEM-0001 (bag)",
        "ITEM-0002 (pair)",
        "ITEM-0003 (pack)",
    ]
    assert ws["A8"].value == "end"
    assert ws.column_dimensions["B"].width == 33


def test_same_order_same_bytes(templates_dir: Path) -> None:
    """A retry re-renders to the same SHA-256: no wall-clock time inside the file."""
    ctx = sample_context("change", lines=3)
    content = _xlsx(ctx, templates_dir)
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    core = archive.read("docProps/core.xml").decode()
    assert core.count(ctx.dispatch.generated_at.strftime("%Y-%m-%dT%H:%M:%S")) == 2
    assert _xlsx(ctx, templates_dir) == content
