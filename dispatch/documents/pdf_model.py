"""The compiled form of a PDF layout (what ``pdf_layout`` produces and ``pdf`` renders)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Template
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import TableStyle

SLOT_SEP = "\x1e"  # between static texts, and between rows of a repeated table
CELL_SEP = "\x1f"  # between the cells of one repeated row
ALIGNS = {"left": TA_LEFT, "center": TA_CENTER, "right": TA_RIGHT, "justify": TA_JUSTIFY}
FOR_CLAUSE = re.compile(r"^\s*[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s+in\s+\S.*$", re.S)
BASE_STYLE = ParagraphStyle("body", fontName="Helvetica", fontSize=9, leading=11)
LINE_COMMANDS = frozenset(
    {"GRID", "BOX", "OUTLINE", "INNERGRID", "LINEBELOW", "LINEABOVE", "LINEBEFORE", "LINEAFTER"}
)
TABLE_COMMANDS = LINE_COMMANDS | {
    "BACKGROUND", "ROWBACKGROUNDS", "COLBACKGROUNDS", "TEXTCOLOR", "FONT", "FONTNAME",
    "FONTSIZE", "LEADING", "ALIGN", "VALIGN", "LEFTPADDING", "RIGHTPADDING", "TOPPADDING",
    "BOTTOMPADDING", "SPAN", "NOSPLIT",
}  # fmt: skip


WRAP_MODES = ("auto", "always", "never")
NUMERIC_CHARS = frozenset("0123456789.,:-/ ")


@dataclass
class Column:
    """How one repeated column's cells become flowables.

    ``wrap``: ``always`` a Paragraph; ``never`` plain text; ``auto`` plain text when the cell
    has no markup (``<br/>`` aside) and every line fits ``width`` in ``font``/``size``, else a
    Paragraph. Plain text is several times cheaper for reportlab to lay out.
    """

    wrap: str
    style: ParagraphStyle  # for Paragraph cells
    font: str  # for plain cells (the table's FONT command)
    size: float
    width: float | None  # room for text (column width minus padding), None: unknown
    max_em: float | None = None  # widest glyph of ``font`` in ems, None: always measure
    digit_em: float | None = None  # widest of the glyphs in NUMERIC_CHARS


@dataclass
class Element:
    kind: str  # paragraph | spacer | page_break | table | loop_table
    cond: int | None = None  # slot that renders "1" when the element is shown
    text: int = -1  # paragraph: its slot
    style: ParagraphStyle = BASE_STYLE
    height: float = 0.0
    widths: list[float] | None = None
    rows: list[list[tuple[int, Column]]] = field(default_factory=list)  # table: slot, column
    header: list[int] = field(default_factory=list)  # loop_table: column title slots
    columns: list[Column] = field(default_factory=list)
    footer: list[list[int]] = field(default_factory=list)
    template: Template | None = None  # loop_table: renders rows of cells
    table_style: TableStyle | None = None
    repeat_header: bool = True
    line: int = 0  # file line of the element (error reports)
    cell_sources: list[str] = field(default_factory=list)  # loop_table: each column's value
    for_clause: str = ""


@dataclass
class Layout:
    path: Path
    pagesize: tuple[float, float]
    margins: tuple[float, float, float, float]  # top, right, bottom, left
    slots: Template  # every static text, joined by SLOT_SEP
    slot_sources: list[tuple[str, int]]  # (source, file line), to locate errors
    elements: list[Element]
    title: int
    page_header: int | None
    page_footer: int | None
    watermark: int | None
    page_font: tuple[str, float]
    watermark_color: Any
    templates_dir: Path | None = None  # where <img src=...> files must lie
    attach_xml: str | None = None  # an XML template embedded as PDF/A-3 file ("order-x")
