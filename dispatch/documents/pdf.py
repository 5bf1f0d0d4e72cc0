"""PDF documents with reportlab platypus, from a YAML layout template (see ``pdf_layout``).

Order text reaches reportlab escaped (Paragraph markup) or as plain table text; output is
deterministic (``invariant``) so the same order renders to the same bytes and hash.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

from jinja2 import TemplateError as JinjaError
from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
)
from reportlab.platypus.doctemplate import LayoutError
from reportlab.platypus.flowables import Flowable

from dispatch.documents.context import DocumentContext
from dispatch.documents.pdf_layout import compile_layout
from dispatch.documents.pdf_model import CELL_SEP, NUMERIC_CHARS, SLOT_SEP, Column, Layout
from dispatch.documents.pdf_paged_table import measure_rows, paged
from dispatch.documents.sandbox import MARKUP_ENV
from dispatch.documents.template_files import CompiledCache, resolve_template
from dispatch.errors import RenderError, TemplateError

_LAYOUTS: CompiledCache[Layout] = CompiledCache(compile_layout)
_MARKUP = re.compile(r"<(?!br/>)")  # a tag other than <br/>: the cell needs a Paragraph

# Streams stay zlib-compressed but not also ASCII85-wrapped (a 7-bit-mail relic): pure-Python
# A85 costs ~1 ms a page and makes files 25 % larger. A documented reportlab setting.
rl_config.useA85 = 0


def plain(text: str) -> str:
    """Markup-escaped template output as plain text (table cells, page header/footer)."""
    if "&" in text or "<" in text:
        return html.unescape(text.replace("<br/>", "\n"))
    return text


_IMG = re.compile(r"<\s*img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*("[^"]*"|'[^']*'|[^\s/>]+)""", re.IGNORECASE)


def confined_images(text: str, templates_dir: Path | None, label: str) -> str:
    """``text`` with every ``<img src=...>`` pointing at the real path of a file inside the
    templates directory (symlinks resolved); anything else (absolute, ``..``, outside, a
    URL, missing) raises TemplateError. reportlab would otherwise open any path or URL."""
    if "<" not in text or _IMG.search(text) is None:
        return text

    def confine(tag: re.Match[str]) -> str:
        found = _SRC.search(tag.group(0))
        if found is None:
            raise TemplateError(f"{label}: an <img> without src")
        src = html.unescape(found.group(1).strip("\"'"))
        if templates_dir is None or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", src):
            raise TemplateError(f"{label}: image {src!r}: give a file under the templates "
                                "directory (no URL, no absolute path)")
        path = resolve_template(templates_dir, src, label=f"{label} image")
        real = html.escape(str(path), quote=True)
        start, end = found.span()
        return f'{tag.group(0)[:start]}src="{real}"{tag.group(0)[end:]}'

    return _IMG.sub(confine, text)


def cell(text: str, column: Column) -> Any:
    """Plain text when it needs no markup and fits the column, else a Paragraph."""
    if column.wrap != "always" and _MARKUP.search(text) is None:
        value = plain(text)
        if column.wrap == "never" or column.width is None:
            return value
        font, size, room = column.font, column.size, column.width
        if column.max_em is not None:
            # Fits even if every character were the widest glyph (of the numeric ones, for
            # quantities, prices and dates): no need to measure.
            em = column.digit_em if NUMERIC_CHARS.issuperset(value) else column.max_em
            if len(value) * size * em <= room:  # type: ignore[operator]
                return value
        if all(stringWidth(part, font, size) <= room for part in value.split("\n")):
            return value
    return Paragraph(text, column.style)


def _page_painters(layout: Layout, header: str, footer: str, watermark: str) -> tuple[Any, Any]:
    """(before, after) callbacks: running header/footer, then a translucent watermark on top."""
    width, height = layout.pagesize
    top, right, bottom, left = layout.margins
    font, size = layout.page_font

    def before(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFillColorRGB(0.35, 0.35, 0.35)
        canvas.setFont(font, size)
        if header:
            canvas.drawString(left, height - top + 4 * mm, header)
        if footer:
            canvas.drawString(left, bottom - 8 * mm, footer)
        canvas.drawRightString(width - right, bottom - 8 * mm, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    def after(canvas: Any, doc: Any) -> None:
        if not watermark:
            return
        canvas.saveState()
        canvas.setFillColor(layout.watermark_color)
        canvas.setFillAlpha(0.35)
        canvas.setFont("Helvetica-Bold", 72)
        canvas.translate(width / 2, height / 2)
        canvas.rotate(40)
        canvas.drawCentredString(0, -24, watermark)
        canvas.restoreState()

    return before, after


def render_layout(layout: Layout, ctx: DocumentContext) -> bytes:
    """Render ``ctx`` with a compiled layout. Raises RenderError (Jinja or reportlab failure)."""
    content = _render_layout(layout, ctx)
    if layout.attach_xml is None:
        return content
    from dispatch.documents.hybrid_pdf import attach_xml

    templates_dir = layout.templates_dir or layout.path.parent.parent
    return attach_xml(content, ctx, name=layout.attach_xml, templates_dir=templates_dir)


def _render_layout(layout: Layout, ctx: DocumentContext) -> bytes:
    names = ctx.template_vars()
    try:
        try:
            return _render(layout, names, split_rows=False)
        except LayoutError:
            # A row taller than a page (a very long note): let rows split across pages.
            # Not the default because reportlab then misplaces repeated headers.
            return _render(layout, names, split_rows=True)
    except (RenderError, TemplateError):
        raise
    except JinjaError as exc:
        raise RenderError(f"{layout.path.name}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # reportlab raises ValueError, LayoutError, IndexError…
        raise RenderError(f"{layout.path.name}: reportlab: {type(exc).__name__}: {exc}") from exc


def _render(layout: Layout, names: dict[str, Any], *, split_rows: bool) -> bytes:
    texts = layout.slots.render(names).split(SLOT_SEP)
    if len(texts) != len(layout.slot_sources):
        raise RenderError(f"{layout.path.name}: a text produced a separator character")
    story: list[Any] = []
    for el in layout.elements:
        if el.cond is not None and texts[el.cond] != "1":
            continue
        kind = el.kind
        if kind == "paragraph":
            text = confined_images(texts[el.text], layout.templates_dir, layout.path.name)
            story.append(Paragraph(text, el.style))
        elif kind == "spacer":
            story.append(Spacer(1, el.height))
        elif kind == "page_break":
            story.append(PageBreak())
        elif kind == "table":
            data = [[cell(confined_images(texts[slot], layout.templates_dir, layout.path.name),
                          column) for slot, column in row] for row in el.rows]
            story.append(
                Table(data, colWidths=el.widths, style=el.table_style, splitInRow=split_rows)
            )
        else:
            story.append(_loop_table(el, texts, names, split_rows, layout))
    buf = io.BytesIO()
    top, right, bottom, left = layout.margins
    width, height = layout.pagesize
    before, after = _page_painters(
        layout,
        plain(texts[layout.page_header]) if layout.page_header is not None else "",
        plain(texts[layout.page_footer]) if layout.page_footer is not None else "",
        plain(texts[layout.watermark]) if layout.watermark is not None else "",
    )
    frame = Frame(left, bottom, width - left - right, height - top - bottom, id="body")
    doc = BaseDocTemplate(
        buf,
        pagesize=layout.pagesize,
        pageTemplates=[PageTemplate("page", [frame], onPage=before, onPageEnd=after)],
        title=plain(texts[layout.title]),
        creator="dispatch",
        invariant=True,
    )
    doc.build(story)
    return buf.getvalue()


def _loop_table(el: Any, texts: list[str], names: dict[str, Any], split_rows: bool,
                layout: Layout) -> Flowable:
    ncols = len(el.columns)
    data: list[list[Any]] = [[plain(texts[slot]) for slot in el.header]]
    out = el.template.render(names)
    if out:
        columns = el.columns
        for row in out.split(SLOT_SEP)[:-1]:
            cells = row.split(CELL_SEP)
            if len(cells) != ncols:
                raise RenderError("a repeated table row produced a separator character")
            data.append([cell(confined_images(v, layout.templates_dir, layout.path.name), col)
                         for v, col in zip(cells, columns, strict=True)])
    for frow in el.footer:
        cells = [plain(texts[slot]) for slot in frow]
        data.append((cells + [""] * ncols)[:ncols])
    table = Table(
        data,
        colWidths=el.widths,
        repeatRows=1 if el.repeat_header else 0,
        style=el.table_style,
        splitInRow=split_rows,
    )
    measure_rows(table)
    return paged(table)  # reportlab gets one page of rows at a time: linear in lines


class PdfRenderer:
    """Renders a named PDF template (a ``.yaml`` layout under ``templates/pdf/``)."""

    format = "PDF"
    extension = "pdf"
    media_type = "application/pdf"
    needs_template = True
    suffixes = (".yaml", ".yml")

    def render(self, ctx: DocumentContext, *, template: Path | None, templates_dir: Path) -> bytes:
        if template is None:
            raise TemplateError("a PDF document needs a named template (a .yaml layout)")
        layout = _LAYOUTS.get(
            template,
            lambda p: compile_layout(
                p, label=_label(p, templates_dir), templates_dir=templates_dir
            ),
        )
        return render_layout(layout, ctx)

    def compile(self, template: Path, *, label: str, templates_dir: Path) -> Layout:
        """Compile without the cache (``check_template``: report every problem afresh)."""
        return compile_layout(template, label=label, templates_dir=templates_dir)

    def render_compiled(self, compiled: Layout, ctx: DocumentContext) -> bytes:
        return render_layout(compiled, ctx)

    def locate_error(self, compiled: Layout, ctx: DocumentContext) -> str | None:
        return locate_error(compiled, ctx)


def locate_error(layout: Layout, ctx: DocumentContext) -> str | None:
    """``line N`` of the first text of ``layout`` that fails on ``ctx`` (slow; for checks)."""
    names = ctx.template_vars()
    for source, line in layout.slot_sources:
        try:
            MARKUP_ENV.from_string(source).render(names)
        except Exception:  # any failure is what we are looking for
            return f"line {line}"
    for el in layout.elements:
        for source in el.cell_sources:
            try:
                MARKUP_ENV.from_string(f"{{% for {el.for_clause} %}}{source}{{% endfor %}}").render(
                    names
                )
            except Exception:
                return f"line {el.line} (a column's value)"
    return None


def _label(path: Path, templates_dir: Path) -> str:
    try:
        return str(path.relative_to(templates_dir.resolve()))
    except ValueError:
        return str(path)
