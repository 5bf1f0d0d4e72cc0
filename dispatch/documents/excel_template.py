"""Excel templates: load an ``.xlsx`` once, find its placeholders and its repeated line row.

See ``excel.py`` for what a template may contain. Compiling checks every placeholder and
names the sheet and cell of an error; ``locate_error`` finds the cell failing on an order.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta
from openpyxl import load_workbook
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils.cell import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from dispatch.documents.context import DocumentContext
from dispatch.documents.sandbox import PLAIN_ENV
from dispatch.errors import TemplateError

_PURE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}\s*$", re.S)
LITERAL, EXPR, TEXT = 0, 1, 2


@dataclass
class TemplateCell:
    row: int
    col: int
    style: StyleArray
    kind: int  # LITERAL | EXPR | TEXT
    value: Any  # literal value, expression source, or compiled template
    data_type: str = "n"


@dataclass
class TemplateSheet:
    source: Worksheet
    title: str
    line_row: int | None  # the repeated row, or None
    cells: list[TemplateCell] = field(default_factory=list)  # static cells, template coordinates
    line_cells: list[TemplateCell] = field(default_factory=list)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # r1, c1, r2, c2
    # All ``{{ expression }}`` cells of a group evaluated by one call returning a tuple:
    # a Jinja call costs ~15 µs of setup, most of a cell's time when done one by one.
    cells_batch: Any = None
    line_batch: Any = None


@dataclass
class ExcelTemplate:
    path: Path
    workbook: Any  # the loaded template: source of style tables, theme, sheet setup
    sheets: list[TemplateSheet]


def compile_workbook(path: Path, *, label: str | None = None) -> ExcelTemplate:
    """Load and check an ``.xlsx`` template; errors name the sheet and cell."""
    label = label or str(path)
    try:
        wb = load_workbook(path, rich_text=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TemplateError(
            f"{label}: not a readable .xlsx workbook ({type(exc).__name__}: {exc}); an Excel "
            "template is a workbook saved as .xlsx"
        ) from None
    sheets = [_compile_sheet(ws, label) for ws in wb.worksheets]
    return ExcelTemplate(path=path, workbook=wb, sheets=sheets)


def _compile_sheet(ws: Worksheet, label: str) -> TemplateSheet:
    cells: list[TemplateCell] = []
    line_rows: set[int] = set()
    for row in ws.iter_rows():
        for c in row:
            if c.value is None and not c.has_style:
                continue
            entry = TemplateCell(
                c.row, c.column, StyleArray(c._style), LITERAL, c.value, c.data_type
            )
            if isinstance(c.value, str) and ("{{" in c.value or "{%" in c.value):
                where = f"{label}: sheet {ws.title!r} cell {c.coordinate}"
                try:
                    names = meta.find_undeclared_variables(PLAIN_ENV.parse(c.value))
                    match = _PURE.match(c.value)
                    if match:
                        expression(match["expr"])  # checked alone, for the error's cell
                        entry.kind = EXPR
                        entry.value = match["expr"]
                    else:
                        entry.kind = TEXT
                        entry.value = PLAIN_ENV.from_string(c.value)  # compiles: finds filters
                except TemplateSyntaxError as exc:
                    raise TemplateError(f"{where}: template syntax error: {exc.message}") from None
                if "line" in names:
                    line_rows.add(c.row)
            cells.append(entry)
    if len(line_rows) > 1:
        rows = ", ".join(str(r) for r in sorted(line_rows))
        raise TemplateError(
            f"{label}: sheet {ws.title!r}: placeholders use `line` in rows {rows}; only one "
            "row per sheet repeats for the order lines"
        )
    line_row = next(iter(line_rows), None)
    sheet = TemplateSheet(source=ws, title=ws.title, line_row=line_row)
    for entry in cells:
        (sheet.line_cells if entry.row == line_row else sheet.cells).append(entry)
    sheet.cells_batch = _batch(sheet.cells)
    sheet.line_batch = _batch(sheet.line_cells)
    for rng in ws.merged_cells.ranges:
        r1, c1, r2, c2 = rng.min_row, rng.min_col, rng.max_row, rng.max_col
        if line_row is not None and r1 <= line_row <= r2 and (r1, r2) != (line_row, line_row):
            raise TemplateError(
                f"{label}: sheet {ws.title!r}: merged cells {rng.coord} span the repeated line "
                f"row {line_row} and other rows; merge within the line row only"
            )
        sheet.merged.append((r1, c1, r2, c2))
    return sheet


def expression(source: str) -> Any:
    """A compiled sandboxed expression returning its value (Undefined is not hidden)."""
    # Undefined results are kept (not turned into None) so that a typo or a blocked
    # attribute fails the render, and so check_template, instead of leaving a cell empty.
    return PLAIN_ENV.compile_expression(source, undefined_to_none=False)


def _batch(cells: list[TemplateCell]) -> Any:
    sources = [f"({c.value})" for c in cells if c.kind == EXPR]
    return expression(f"({', '.join(sources)},)") if sources else None


def locate_error(template: ExcelTemplate, ctx: DocumentContext) -> str | None:
    """``sheet 'S' cell B4`` of the first placeholder failing on ``ctx`` (slow; for checks)."""
    names = ctx.template_vars()
    line_names = {**names, "line": ctx.lines[0]} if ctx.lines else names
    for sheet in template.sheets:
        for entry, scope in [(e, names) for e in sheet.cells] + [
            (e, line_names) for e in sheet.line_cells
        ]:
            try:
                if entry.kind == EXPR:
                    value = expression(entry.value)(scope)
                    if isinstance(value, Undefined):
                        value._fail_with_undefined_error()
                elif entry.kind == TEXT:
                    entry.value.render(scope)
            except Exception:  # any failure is what we are looking for
                return f"sheet {sheet.title!r} cell {get_column_letter(entry.col)}{entry.row}"
    return None
