"""Build ``standard.xlsx``, the sample Excel order template, with openpyxl.

The committed ``standard.xlsx`` is what dispatch uses; edit it in a spreadsheet program, or
change this script and run it again:

    .venv/bin/python templates/excel/make_standard.py

How a template works (see ``dispatch/documents/excel.py``): a cell holding exactly
``{{ expression }}`` gets the value itself (numbers stay numbers, dates stay dates); a cell
mixing text and placeholders gets text; the one row whose placeholders use ``line`` repeats
for every order line, and the rows below it move down. Styles, widths, merged cells, freeze
panes and print setup are kept. Order text is always written as text, never as a formula.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

OUT = Path(__file__).with_name("standard.xlsx")

INK = "1F2933"
MUTED = "5F6B7A"
RED = "B00020"
HEAD_FILL = PatternFill("solid", fgColor="E4E9F0")
BOX_FILL = PatternFill("solid", fgColor="F6F7F9")
THIN = Side(style="thin", color="C8C8C8")
GRID = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
TOP_RULE = Border(top=Side(style="medium", color="333333"))
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
MONEY = "#,##0.00"
QTY = "#,##0"
DATE = "yyyy-mm-dd"

TITLE = (
    "{{ 'CANCELLATION OF PURCHASE ORDER' if dispatch.is_cancellation else "
    "('PURCHASE ORDER CHANGE' if dispatch.is_change else 'PURCHASE ORDER') }} {{ order.Id }}"
)
BANNER = (
    "{% if dispatch.is_cancellation %}CANCELLATION: this order is cancelled. Do not deliver "
    "the outstanding quantities.{% elif dispatch.is_change %}CHANGE: version "
    "{{ dispatch.number }} replaces version {{ dispatch.replaces_number }}; changed lines are "
    "marked in the Changed column.{% endif %}"
)
COLUMNS = [  # title, width, placeholder, number format, align
    ("#", 5, "{{ line.Position }}", "0", "right"),
    ("Item", 16, "{{ line.Code }}", None, "left"),
    ("Description", 30, "{{ line.ItemName }}", None, "left"),
    ("Unit", 8, "{{ line.Unit }}", None, "left"),
    ("Quantity", 10, "{{ line.TotalQuantity }}", QTY, "right"),
    ("Cancelled", 10, "{{ line.CancelledQuantity }}", QTY, "right"),
    ("Price", 11, "{{ line.PricePerPiece }}", MONEY, "right"),
    ("Amount", 12, "{{ line.Amount }}", MONEY, "right"),
    ("Expected", 12, "{{ line.ExpectedDate }}", DATE, "right"),
    ("Note", 28, "{{ line.Note }}", None, "left"),
    ("Line reference", 16, "{{ line.LineReference }}", None, "left"),
    ("Changed", 30, "{{ change_notes.get(line.Id) }}", None, "left"),
]
LAST = len(COLUMNS)  # column L


def label(ws: Worksheet, ref: str, text: str) -> None:
    ws[ref] = text
    ws[ref].font = Font(size=9, color=MUTED)


def field(ws: Worksheet, ref: str, placeholder: str, fmt: str | None = None) -> None:
    ws[ref] = placeholder
    ws[ref].font = Font(size=10, bold=True, color=INK)
    ws[ref].alignment = Alignment(horizontal="left")
    if fmt:
        ws[ref].number_format = fmt


def build() -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = "Order"
    wb.properties.title = "Purchase order"
    ws.sheet_view.showGridLines = False

    ws["A1"] = TITLE
    ws["A1"].font = Font(size=16, bold=True, color=INK)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=LAST)
    ws.row_dimensions[1].height = 24
    ws["A2"] = BANNER
    ws["A2"].font = Font(size=12, bold=True, color=RED)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=LAST)
    ws.row_dimensions[2].height = 20

    label(ws, "A4", "Order")
    field(ws, "B4", "{{ order.Id }}")
    label(ws, "D4", "Version")
    field(ws, "E4", "{{ dispatch.number }}", "0")
    label(ws, "F4", "Replaces")
    field(ws, "G4", "{{ dispatch.replaces_number }}", "0")
    label(ws, "I4", "Status")
    field(ws, "J4", "{{ order.Status }}")
    label(ws, "A5", "Order date")
    field(ws, "B5", "{{ order.CreatedAt }}", DATE)
    label(ws, "D5", "Shipping")
    field(ws, "E5", "{{ order.ShippingDate }}", DATE)
    label(ws, "F5", "Issued")
    field(ws, "G5", "{{ dispatch.generated_at }}", "yyyy-mm-dd hh:mm")
    label(ws, "I5", "Consignment")
    field(ws, "J5", "{{ order.IsConsignment | yesno('Yes (consignment stock)', 'No') }}")
    label(ws, "A6", "Reference")
    field(ws, "B6", "{{ order.Reference }}")
    label(ws, "D6", "Currency")
    field(ws, "E6", "{{ currency }}")
    label(ws, "I6", "Stock / device")
    field(
        ws, "J6", "{{ order.StockName }}{% if order.DeviceId %} / {{ order.DeviceId }}{% endif %}"
    )

    for col, (title, text) in zip(
        ("A", "D", "I"),
        (
            (
                "BUYER",
                "{{ buyer.name }}\n{{ buyer.address_lines | join('\n') }}\n{{ buyer.email or '' }}",
            ),
            (
                "VENDOR",
                "{{ vendor.name }}\nVendor id: {{ vendor.id }}{{ ('\n' ~ vendor.address_lines | "
                "join('\n')) if vendor.address_lines else '' }}\n{{ vendor.email or '' }}",
            ),
            (
                "SHIP TO",
                "{% if ship_to %}{{ ship_to.lines | join('\n') }}{% else %}Stock "
                "{{ order.StockName }} (the buyer's default delivery address){% endif %}",
            ),
        ),
        strict=True,
    ):
        ws[f"{col}8"] = title
        ws[f"{col}8"].font = Font(size=8, bold=True, color=MUTED)
        ws[f"{col}9"] = text
        ws[f"{col}9"].alignment = WRAP_TOP
        ws[f"{col}9"].font = Font(size=10, color=INK)
        ws[f"{col}9"].fill = BOX_FILL
    ws.merge_cells("A8:C8")
    ws.merge_cells("D8:H8")
    ws.merge_cells("I8:L8")
    ws.merge_cells("A9:C9")
    ws.merge_cells("D9:H9")
    ws.merge_cells("I9:L9")
    ws.row_dimensions[9].height = 80  # room for a vendor's postal address

    header_row, line_row = 11, 12
    for index, (title, width, placeholder, fmt, align) in enumerate(COLUMNS, start=1):
        letter = ws.cell(row=header_row, column=index).column_letter
        ws.column_dimensions[letter].width = width
        head = ws.cell(row=header_row, column=index, value=title)
        head.font = Font(size=9, bold=True, color=INK)
        head.fill = HEAD_FILL
        head.border = GRID
        head.alignment = Alignment(horizontal=align, vertical="center")
        cell = ws.cell(row=line_row, column=index, value=placeholder)
        cell.font = Font(size=9.5, color=INK)
        cell.border = GRID
        cell.alignment = Alignment(horizontal=align, vertical="top", wrap_text=align == "left")
        if fmt:
            cell.number_format = fmt
    ws.row_dimensions[header_row].height = 18

    total_row = line_row + 1  # moves down with the lines
    ws.cell(row=total_row, column=3, value="Total ({{ totals.line_count }} lines)")
    for col, placeholder, fmt in (
        (5, "{{ totals.quantity }}", QTY),
        (6, "{{ totals.cancelled }}", QTY),
        (7, "{{ currency or '' }}", None),
        (8, "{{ totals.amount }}", MONEY),
    ):
        cell = ws.cell(row=total_row, column=col, value=placeholder)
        cell.alignment = Alignment(horizontal="right")
        if fmt:
            cell.number_format = fmt
    for col in range(1, LAST + 1):
        cell = ws.cell(row=total_row, column=col)
        cell.font = Font(size=10, bold=True, color=INK)
        cell.border = TOP_RULE

    ws.cell(row=total_row + 2, column=1, value="Notes").font = Font(size=9, bold=True, color=MUTED)
    notes = ws.cell(row=total_row + 3, column=1, value="{{ order.Notes or '' }}")
    notes.alignment = WRAP_TOP
    ws.merge_cells(start_row=total_row + 3, start_column=1, end_row=total_row + 3, end_column=8)
    ws.row_dimensions[total_row + 3].height = 48
    footer = ws.cell(
        row=total_row + 5,
        column=1,
        value="{{ order.Id }}_{{ dispatch.kind }}_{{ dispatch.number }} · generated "
        "{{ dispatch.generated_at | datetime }} · please confirm quoting {{ order.Id }}",
    )
    footer.font = Font(size=8, italic=True, color=MUTED)

    ws.freeze_panes = f"A{line_row}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddFooter.center.text = "Page &P of &N"
    return wb


if __name__ == "__main__":
    build().save(OUT)
    print(f"wrote {OUT}")
