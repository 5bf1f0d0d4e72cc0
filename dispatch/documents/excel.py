"""Excel documents with openpyxl, from an ``.xlsx`` template with Jinja2 placeholders.

A template is a workbook designed in a spreadsheet program. A cell holding exactly
``{{ expression }}`` receives the value itself (a number stays a number, a date a date);
a cell mixing text and placeholders receives text. The one row per sheet whose
placeholders use ``line`` is repeated for every order line; rows below it move down.
Fonts, fills, borders, number formats, column widths, row heights, merged cells, freeze
panes and page setup are kept. Formulas the template author typed are kept as they are
(they are not adjusted when rows move: take totals from ``totals`` instead); conditional
formats, data validation, images and charts are not carried over.

Order text never becomes a formula: every value that comes from a placeholder is written
as a string cell, and one starting with ``=``, ``+``, ``-`` or ``@`` also gets Excel's
quote prefix, so editing the cell later keeps it text.

The template is loaded and compiled once per (path, mtime); each render builds a fresh
workbook that shares the template's style tables, which is what keeps it near the cost of
a bare openpyxl workbook.
"""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path
from typing import Any

from jinja2 import Undefined
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from dispatch.documents.context import DocumentContext
from dispatch.documents.excel_template import (
    EXPR,
    LITERAL,
    ExcelTemplate,
    TemplateCell,
    TemplateSheet,
    compile_workbook,
    locate_error,
)
from dispatch.documents.sandbox import clean_text
from dispatch.documents.template_files import CompiledCache
from dispatch.errors import RenderError, TemplateError

_FORMULA_START = ("=", "+", "-", "@")
_STYLE_TABLES = (
    "_fonts", "_fills", "_borders", "_number_formats", "_alignments", "_protections",
    "_cell_styles",
)  # fmt: skip


def _fill(
    ws: Worksheet, cells: list[TemplateCell], batch: Any, names: dict[str, Any], row_of: Any
) -> None:
    values = iter(batch(names) if batch is not None else ())
    for entry in cells:
        row = row_of(entry.row)
        if entry.kind == LITERAL:
            _literal(ws, row, entry)
        elif entry.kind == EXPR:
            _put(ws, row, entry, next(values))
        else:
            _put(ws, row, entry, entry.value.render(names))


def _put(ws: Worksheet, row: int, entry: TemplateCell, value: Any) -> None:
    """Write a placeholder's value: text stays text, never a formula."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError or SecurityError
    style = StyleArray(entry.style)
    if value is None or value == "":
        ws._cells[(row, entry.col)] = Cell(ws, row=row, column=entry.col, style_array=style)
        return
    if isinstance(value, str):
        value = clean_text(value)
        if value.startswith(_FORMULA_START):
            style.quotePrefix = 1
        cell = Cell(ws, row=row, column=entry.col, style_array=style)
        cell._value = value
        cell.data_type = "s"
    elif isinstance(value, bool | int | float) or _is_openpyxl_scalar(value):
        cell = Cell(ws, row=row, column=entry.col, value=value, style_array=style)
    else:  # objects, lists: their text
        cell = Cell(ws, row=row, column=entry.col, style_array=style)
        cell._value = clean_text(str(value))
        cell.data_type = "s"
    ws._cells[(row, entry.col)] = cell


def _is_openpyxl_scalar(value: Any) -> bool:
    import datetime as dt
    from decimal import Decimal

    return isinstance(value, Decimal | dt.datetime | dt.date | dt.time | dt.timedelta)


def _literal(ws: Worksheet, row: int, entry: TemplateCell) -> None:
    cell = Cell(ws, row=row, column=entry.col, style_array=StyleArray(entry.style))
    cell._value = entry.value
    cell.data_type = entry.data_type
    ws._cells[(row, entry.col)] = cell


class _StableZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed timestamp, so equal content is equal bytes."""

    STAMP = (1980, 1, 1, 0, 0, 0)

    def writestr(self, zinfo_or_arcname: Any, data: Any, *args: Any, **kw: Any) -> None:
        if isinstance(zinfo_or_arcname, str):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=self.STAMP)
            zinfo_or_arcname.compress_type = self.compression
        super().writestr(zinfo_or_arcname, data, *args, **kw)

    def write(self, filename: Any, arcname: Any = None, *args: Any, **kw: Any) -> None:
        with open(filename, "rb") as handle:  # openpyxl's worksheet temp file
            self.writestr(str(arcname or filename), handle.read())


def render_workbook(template: ExcelTemplate, ctx: DocumentContext) -> bytes:
    """Fill ``template`` for ``ctx``. Raises RenderError for a failing placeholder.

    The bytes depend only on the template and ``ctx`` (timestamps are the dispatch's
    ``generated_at``), so a re-render for a retry has the same SHA-256 (SPEC 7).
    """
    names = ctx.template_vars()
    try:
        wb = _new_workbook(template)
        for sheet in template.sheets:
            _fill_sheet(wb.create_sheet(sheet.title), sheet, names, ctx)
        wb.properties.created = wb.properties.modified = ctx.dispatch.generated_at
        buf = io.BytesIO()
        ExcelWriter(wb, _StableZip(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    except RenderError:
        raise
    except Exception as exc:  # Jinja (undefined, security), overflow, openpyxl value errors…
        raise RenderError(f"{template.path.name}: {type(exc).__name__}: {exc}") from exc
    return buf.getvalue()


def _new_workbook(template: ExcelTemplate) -> Workbook:
    src = template.workbook
    wb = Workbook()
    wb.remove(wb.active)
    for name in _STYLE_TABLES:
        setattr(wb, name, IndexedList(getattr(src, name)))
    wb._named_styles = copy.copy(src._named_styles)
    wb.loaded_theme = src.loaded_theme
    wb.properties.title = src.properties.title
    return wb


def _fill_sheet(
    ws: Worksheet, sheet: TemplateSheet, names: dict[str, Any], ctx: DocumentContext
) -> None:
    line_row = sheet.line_row
    count = len(ctx.lines) if line_row is not None else 1
    shift = count - 1

    def moved(row: int) -> int:
        return row + shift if line_row is not None and row > line_row else row

    _fill(ws, sheet.cells, sheet.cells_batch, names, moved)
    if line_row is not None and sheet.line_cells:
        line_names = dict(names)
        for index, line in enumerate(ctx.lines):
            line_names["line"] = line
            _fill(
                ws,
                sheet.line_cells,
                sheet.line_batch,
                line_names,
                lambda _row, i=index: line_row + i,
            )
    _copy_layout(ws, sheet, moved, count)


def _copy_layout(ws: Worksheet, sheet: TemplateSheet, moved: Any, count: int) -> None:
    src = sheet.source
    line_row = sheet.line_row
    for key, dim in src.column_dimensions.items():
        new = copy.copy(dim)
        new.parent = ws
        ws.column_dimensions[key] = new
    for index, dim in src.row_dimensions.items():
        if line_row is not None and index == line_row:
            rows = [line_row + i for i in range(count)]
        else:
            rows = [moved(index)]
        for row in rows:
            new = copy.copy(dim)
            new.parent = ws
            new.index = row
            ws.row_dimensions[row] = new
    for r1, c1, r2, c2 in sheet.merged:
        if r1 == line_row:
            for i in range(count):
                ws.merge_cells(start_row=r1 + i, start_column=c1, end_row=r2 + i, end_column=c2)
        else:
            ws.merge_cells(start_row=moved(r1), start_column=c1, end_row=moved(r2), end_column=c2)
    ws.sheet_format = copy.copy(src.sheet_format)
    ws.sheet_properties = copy.copy(src.sheet_properties)
    ws.page_margins = copy.copy(src.page_margins)
    ws.print_options = copy.copy(src.print_options)
    for attr in ("orientation", "paperSize", "fitToWidth", "fitToHeight", "scale"):
        setattr(ws.page_setup, attr, getattr(src.page_setup, attr))
    ws.oddHeader.center.text = src.oddHeader.center.text
    ws.oddFooter.center.text = src.oddFooter.center.text
    ws.sheet_view.showGridLines = src.sheet_view.showGridLines
    if src.freeze_panes:
        ws.freeze_panes = src.freeze_panes
    if src.print_title_rows:
        ws.print_title_rows = src.print_title_rows


class ExcelRenderer:
    """Renders a named Excel template (an ``.xlsx`` under ``templates/excel/``)."""

    format = "Excel"
    extension = "xlsx"
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    needs_template = True
    suffixes = (".xlsx",)

    def __init__(self) -> None:
        self._cache: CompiledCache[ExcelTemplate] = CompiledCache(compile_workbook)

    def render(self, ctx: DocumentContext, *, template: Path | None, templates_dir: Path) -> bytes:
        if template is None:
            raise TemplateError("an Excel document needs a named template (an .xlsx workbook)")
        return render_workbook(self._cache.get(template), ctx)

    def compile(self, template: Path, *, label: str, templates_dir: Path) -> ExcelTemplate:
        return compile_workbook(template, label=label)

    def render_compiled(self, compiled: ExcelTemplate, ctx: DocumentContext) -> bytes:
        return render_workbook(compiled, ctx)

    def locate_error(self, compiled: ExcelTemplate, ctx: DocumentContext) -> str | None:
        return locate_error(compiled, ctx)
