"""Compile the ``table`` element of a PDF layout: a fixed block, or rows repeated ``for:``.

A fixed table (``rows:``) holds Paragraph cells: address blocks, key/value boxes.
A repeated table (``for: line in lines`` with ``columns:``) has one title row repeated on
every page, one row per item and optional ``footer:`` rows (totals). A column with
``wrap: true`` is a Paragraph (wraps, markup); other columns are plain text, which is what
keeps a 500-line table fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import TableStyle

from dispatch.documents.layout_yaml import LDict, line_of, parse_color, parse_length
from dispatch.documents.pdf_model import (
    ALIGNS,
    CELL_SEP,
    FOR_CLAUSE,
    LINE_COMMANDS,
    NUMERIC_CHARS,
    SLOT_SEP,
    TABLE_COMMANDS,
    WRAP_MODES,
    Column,
    Element,
)
from dispatch.documents.sandbox import MARKUP_ENV

if TYPE_CHECKING:
    from dispatch.documents.pdf_layout import LayoutCompiler

_COMMON = {"widths", "style", "cell_style", "grid", "box", "background", "padding", "valign", "if"}
_LOOP = {"for", "columns", "footer", "repeat_header", "font", "font_size", "header_font",
         "header_background", "header_color", "zebra", "footer_font", "footer_line"}  # fmt: skip
_COLUMN = {"title", "width", "value", "align", "wrap", "style"}


def compile_table(c: LayoutCompiler, spec: Any) -> Element:
    """A ``table:`` element; ``c`` supplies slots, styles and error reporting."""
    if not isinstance(spec, dict):
        raise c.fail(spec, "table: must be a mapping with rows:, or with for: and columns:")
    loop = "for" in spec
    spec = c.keys(spec, _COMMON | (_LOOP if loop else {"rows"}), "table")
    valign = str(spec.get("valign", "top")).upper()
    commands: list[tuple[Any, ...]] = [("VALIGN", (0, 0), (-1, -1), valign)]
    pad = c.value(spec, "padding", parse_length)
    if pad is not None:
        for side in ("LEFT", "RIGHT", "TOP", "BOTTOM"):
            commands.append((f"{side}PADDING", (0, 0), (-1, -1), pad))
    if "background" in spec:
        commands.append(("BACKGROUND", (0, 0), (-1, -1), c.value(spec, "background", parse_color)))
    if "grid" in spec:
        commands.append(("GRID", (0, 0), (-1, -1), 0.25, c.value(spec, "grid", parse_color)))
    if "box" in spec:
        commands.append(("BOX", (0, 0), (-1, -1), 0.75, c.value(spec, "box", parse_color)))
    padding = 2 * (6.0 if pad is None else pad)  # reportlab's default cell padding is 6pt
    if loop:
        element = _loop_table(c, spec, commands, padding)
    else:
        element = _fixed_table(c, spec, commands, padding)
    element.table_style = TableStyle(commands + _raw_commands(c, spec))
    return element


def _ems(font: str) -> tuple[float | None, float | None]:
    """Widest glyph, and widest numeric glyph, of a standard (Type 1) font in ems.

    (None, None) for TrueType fonts: their cells are always measured.
    """
    widths = getattr(pdfmetrics.getFont(font), "widths", None)
    if not isinstance(widths, list) or len(widths) < 256:
        return None, None
    digits = max(widths[ord(ch)] for ch in NUMERIC_CHARS)
    return max(widths) / 1000.0, digits / 1000.0


def _wrap_mode(c: LayoutCompiler, spec: LDict) -> str:
    raw = spec.get("wrap", "auto")
    mode = {True: "always", False: "never"}.get(raw, str(raw)) if isinstance(raw, bool) else raw
    if mode not in WRAP_MODES:
        raise c.fail(spec, f"wrap: {raw!r}; use auto, always (true) or never (false)")
    return str(mode)


def _fixed_table(
    c: LayoutCompiler, spec: LDict, commands: list[tuple[Any, ...]], padding: float
) -> Element:
    rows = spec.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise c.fail(spec, "rows: must be a list of rows, each a list of cell texts")
    style = c.style_named(spec, "cell_style", "body")
    widths = _widths(c, spec, max(len(r) for r in rows))
    mode = _wrap_mode(c, spec)
    known: list[float | None] = list(widths) if widths else [None] * max(len(r) for r in rows)
    columns = [
        Column(
            mode,
            style,
            style.fontName,
            style.fontSize,
            None if w is None else w - padding,
            *_ems(style.fontName),
        )
        for w in known
    ]
    element = Element("table", widths=widths)
    element.rows = [[(c.slot(cell, row), columns[i]) for i, cell in enumerate(row)] for row in rows]
    # Plain cells take the cell style's font, colour and alignment from these commands.
    align = {0: "LEFT", 1: "CENTER", 2: "RIGHT", 4: "JUSTIFY"}.get(style.alignment, "LEFT")
    commands[:0] = [
        ("FONT", (0, 0), (-1, -1), style.fontName, style.fontSize, style.leading),
        ("TEXTCOLOR", (0, 0), (-1, -1), style.textColor),
        ("ALIGN", (0, 0), (-1, -1), align),
    ]
    return element


def _loop_table(
    c: LayoutCompiler, spec: LDict, commands: list[tuple[Any, ...]], padding: float
) -> Element:
    for_clause = str(spec["for"])
    if not FOR_CLAUSE.match(for_clause):
        raise c.fail(spec["for"], f"for: {for_clause!r} must look like 'line in lines'")
    columns = spec.get("columns")
    if not isinstance(columns, list) or not columns:
        raise c.fail(spec, "columns: must list the table's columns (title, width, value)")
    cell_style = c.style_named(spec, "cell_style", "body")
    font = str(spec.get("font", cell_style.fontName))
    size = c.value(spec, "font_size", parse_length, cell_style.fontSize)
    header_font = str(spec.get("header_font", "Helvetica-Bold"))
    footer_font = str(spec.get("footer_font", header_font))
    for name in (font, header_font, footer_font):
        c.check_font(name, spec)

    element = Element("loop_table", repeat_header=bool(spec.get("repeat_header", True)))
    element.for_clause = for_clause
    cells: list[str] = []
    widths: list[float | None] = []
    for index, col in enumerate(columns):
        col = c.keys(col, _COLUMN, f"column {index + 1}")
        align = str(col.get("align", "left"))
        if align not in ALIGNS:
            raise c.fail(col, f"align: {align!r}; use {', '.join(ALIGNS)}")
        base = c.style_named(col, "style", str(spec.get("cell_style", "body")))
        style = ParagraphStyle(f"{base.name}-{align}", parent=base, alignment=ALIGNS[align])
        width = c.value(col, "width", parse_length)
        col_font, col_size = font, size
        if "style" in col:  # plain cells of this column follow its style too
            col_font, col_size = style.fontName, style.fontSize
            commands.append(("FONT", (index, 1), (index, -1), col_font, col_size, style.leading))
        room = None if width is None else width - padding
        element.columns.append(
            Column(_wrap_mode(c, col), style, col_font, col_size, room, *_ems(col_font))
        )
        element.header.append(c.slot(col.get("title", ""), col))
        cells.append(c.source(col.get("value", ""), col))
        widths.append(width)
        commands.append(("ALIGN", (index, 0), (index, -1), align.upper()))
    if all(w is not None for w in widths):
        element.widths = [w for w in widths if w is not None]
    element.cell_sources = cells
    element.line = line_of(spec)
    source = f"{{% for {for_clause} %}}{CELL_SEP.join(cells)}{SLOT_SEP}{{% endfor %}}"
    try:
        element.template = MARKUP_ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise c.fail(spec["for"], f"for: {for_clause!r}: {exc.message}") from None

    footer = spec.get("footer") or []
    if not isinstance(footer, list) or not all(isinstance(r, list) for r in footer):
        raise c.fail(spec, "footer: must be a list of rows, each a list of cell texts")
    element.footer = [[c.slot(cell, row) for cell in row] for row in footer]
    nfoot = len(footer)
    commands[:0] = [("FONT", (0, 0), (-1, -1), font, size, size * 1.2)]
    commands.append(("FONT", (0, 0), (-1, 0), header_font, size, size * 1.2))
    if "header_background" in spec:
        shade = c.value(spec, "header_background", parse_color)
        commands.append(("BACKGROUND", (0, 0), (-1, 0), shade))
    if "header_color" in spec:
        commands.append(("TEXTCOLOR", (0, 0), (-1, 0), c.value(spec, "header_color", parse_color)))
    if "zebra" in spec:
        raw = spec["zebra"] if isinstance(spec["zebra"], list) else [spec["zebra"], "white"]
        try:
            shades = [parse_color(z) for z in raw]
        except ValueError as exc:
            raise c.fail(spec, f"zebra: {exc}") from None
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, -1 - nfoot), shades))
    if nfoot:
        commands.append(("FONT", (0, -nfoot), (-1, -1), footer_font, size, size * 1.2))
        if "footer_line" in spec:
            line = c.value(spec, "footer_line", parse_color)
            commands.append(("LINEABOVE", (0, -nfoot), (-1, -nfoot), 0.75, line))
    return element


def _widths(c: LayoutCompiler, spec: LDict, count: int) -> list[float] | None:
    if "widths" not in spec:
        return None
    raw = spec["widths"]
    if not isinstance(raw, list) or len(raw) != count:
        raise c.fail(spec, f"widths: give {count} lengths, one per column")
    try:
        return [parse_length(w) for w in raw]
    except ValueError as exc:
        raise c.fail(spec, f"widths: {exc}") from None


def _raw_commands(c: LayoutCompiler, spec: LDict) -> list[tuple[Any, ...]]:
    """``style:``: extra TableStyle commands, e.g. ``[LINEBELOW, [0, 0], [-1, 0], 1, black]``."""
    out: list[tuple[Any, ...]] = []
    for cmd in spec.get("style") or []:
        name = str(cmd[0]).upper() if isinstance(cmd, list) and cmd else ""
        if name not in TABLE_COMMANDS or len(cmd) < 3:
            allowed = ", ".join(sorted(TABLE_COMMANDS))
            raise c.fail(spec, f"style: {cmd!r} is not a table command; use one of {allowed}")
        try:
            start = tuple(int(v) for v in cmd[1])
            stop = tuple(int(v) for v in cmd[2])
            args = list(cmd[3:])
            if name in LINE_COMMANDS and len(args) >= 2:
                args[0], args[1] = parse_length(args[0]), parse_color(args[1])
            elif name in ("BACKGROUND", "TEXTCOLOR") and args:
                args[0] = parse_color(args[0])
            elif name in ("ROWBACKGROUNDS", "COLBACKGROUNDS") and args:
                args[0] = [parse_color(v) for v in args[0]]
        except (TypeError, ValueError) as exc:
            raise c.fail(spec, f"style: {cmd!r}: {exc}") from None
        out.append((name, start, stop, *args))
    return out
