"""Compile a PDF layout file (YAML with Jinja2 texts) once per (path, mtime).

Why this language: the file is plain YAML a person edits in any editor (page, styles, then
the body top to bottom: paragraphs, spacers, tables, a table repeated ``for: line in
lines``); texts are Jinja2 rendered in the sandbox, with reportlab's small paragraph markup
(``<b>``, ``<font>``, ``<br/>``) for emphasis. The YAML is parsed once, never per order, so
order text cannot inject layout (as it could if YAML or RML text were produced by Jinja
and then parsed), and a render costs two Jinja calls plus platypus itself.
``templates/pdf/standard.yaml`` uses every feature.

Every text that does not repeat becomes a *slot* of one batched template (slots separated
by U+001E, which order text cannot contain: it is cleaned away); each repeated table is one
more template producing rows (U+001E) of cells (U+001F).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError
from reportlab.lib.pagesizes import A3, A4, A5, landscape, legal, letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from dispatch.documents.layout_yaml import (
    LDict,
    line_of,
    load_with_lines,
    parse_color,
    parse_length,
)
from dispatch.documents.pdf_model import (
    ALIGNS,
    BASE_STYLE,
    CELL_SEP,
    SLOT_SEP,
    Element,
    Layout,
)
from dispatch.documents.pdf_tables import compile_table
from dispatch.documents.sandbox import MARKUP_ENV
from dispatch.documents.template_files import resolve_template
from dispatch.errors import TemplateError

PAGE_SIZES = {"A3": A3, "A4": A4, "A5": A5, "letter": letter, "legal": legal}
_TOP = {"title", "page", "fonts", "styles", "body", "attach_xml"}
_PAGE = {"size", "orientation", "margins", "header", "footer", "font", "font_size",
         "watermark", "watermark_color"}  # fmt: skip
_STYLE = {"parent", "font", "size", "leading", "color", "background", "align", "space_before",
          "space_after", "border_color", "border_width", "padding", "indent"}  # fmt: skip
_SIDES = ("top", "right", "bottom", "left")
_STYLE_ATTRS = (
    ("leading", "leading", parse_length),
    ("color", "textColor", parse_color),
    ("background", "backColor", parse_color),
    ("space_before", "spaceBefore", parse_length),
    ("space_after", "spaceAfter", parse_length),
    ("border_color", "borderColor", parse_color),
    ("border_width", "borderWidth", parse_length),
    ("padding", "borderPadding", parse_length),
    ("indent", "leftIndent", parse_length),
)


class LayoutCompiler:
    """Checks a parsed layout and builds its ``Layout``; every error names file and line."""

    def __init__(self, path: Path, label: str, templates_dir: Path | None) -> None:
        self.path, self.label, self.templates_dir = path, label, templates_dir
        self.sources: list[tuple[str, int]] = []
        self.styles: dict[str, ParagraphStyle] = {"body": BASE_STYLE}

    def fail(self, where: Any, message: str) -> TemplateError:
        line = line_of(where)
        return TemplateError(f"{self.label}{f' line {line}' if line else ''}: {message}")

    def keys(self, spec: Any, allowed: set[str], what: str) -> LDict:
        if not isinstance(spec, dict):
            raise self.fail(spec, f"{what} must be a mapping, got {spec!r}")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            raise self.fail(spec, f"{what}: unknown key(s) {', '.join(unknown)}; allowed: {known}")
        return spec  # type: ignore[return-value]

    def source(self, value: Any, where: Any) -> str:
        """One Jinja text, syntax-checked; errors name the file line of the text."""
        text = "" if value is None else str(value)
        if SLOT_SEP in text or CELL_SEP in text:
            raise self.fail(where, "texts must not contain the control characters U+001E/U+001F")
        try:
            MARKUP_ENV.compile(text)  # compiling, not just parsing, also finds unknown filters
        except TemplateSyntaxError as exc:
            line = line_of(value, line_of(where)) + (exc.lineno or 1) - 1
            raise TemplateError(
                f"{self.label} line {line}: template syntax error: {exc.message}"
            ) from None
        return text

    def slot(self, value: Any, where: Any) -> int:
        self.sources.append((self.source(value, where), line_of(value, line_of(where))))
        return len(self.sources) - 1

    def cond(self, spec: LDict) -> int | None:
        if "if" not in spec:
            return None
        expr = str(spec["if"])
        try:
            MARKUP_ENV.compile_expression(expr)
        except TemplateSyntaxError as exc:
            raise self.fail(
                spec["if"], f"if: {expr!r} is not an expression: {exc.message}"
            ) from None
        self.sources.append((f"{{% if ({expr}) %}}1{{% endif %}}", line_of(spec["if"])))
        return len(self.sources) - 1

    def value(self, spec: LDict, key: str, parse: Any, default: Any = None) -> Any:
        if key not in spec:
            return default
        try:
            return parse(spec[key])
        except (TypeError, ValueError, KeyError) as exc:
            where = spec[key] if line_of(spec[key]) else spec
            raise self.fail(where, f"{key}: {exc}") from None

    def check_font(self, font: str, where: Any) -> None:
        try:
            pdfmetrics.getFont(font)
        except KeyError:
            raise self.fail(
                where,
                f"unknown font {font!r}; use Helvetica, Helvetica-Bold, Times-Roman, Courier… "
                "or register a TrueType file under fonts:",
            ) from None

    def style_named(self, spec: LDict, key: str, default: str) -> ParagraphStyle:
        name = str(spec.get(key, default))
        if name not in self.styles:
            defined = ", ".join(self.styles)
            raise self.fail(spec, f"{key}: unknown style {name!r}; defined: {defined}")
        return self.styles[name]

    # --- sections ----------------------------------------------------------------------

    def compile(self, data: Any) -> Layout:
        top = self.keys(data, _TOP, "the layout")
        fonts = top.get("fonts") or LDict()
        for name, file in self.keys(fonts, set(fonts), "fonts").items():
            self.font(name, file)
        page = self.keys(top.get("page") or LDict(), _PAGE, "page")
        size = str(page.get("size", "A4"))
        if size not in PAGE_SIZES:
            raise self.fail(page, f"size {size!r}: use one of {', '.join(PAGE_SIZES)}")
        pagesize = PAGE_SIZES[size]
        if page.get("orientation", "portrait") == "landscape":
            pagesize = landscape(pagesize)
        styles = top.get("styles") or LDict()
        for name, spec in self.keys(styles, set(styles), "styles").items():
            self.styles[name] = self.style(name, spec)
        body = top.get("body")
        if not isinstance(body, list) or not body:
            raise self.fail(top, "body: must be a list of elements (paragraph, spacer, table…)")
        elements = [self.element(spec) for spec in body]
        title = self.slot(top.get("title", "{{ order.Id }}"), top)
        header = self.slot(page["header"], page) if "header" in page else None
        footer = self.slot(page["footer"], page) if "footer" in page else None
        watermark = self.slot(page["watermark"], page) if "watermark" in page else None
        font = str(page.get("font", "Helvetica"))
        self.check_font(font, page)
        return Layout(
            path=self.path,
            pagesize=pagesize,
            margins=self.margins(page.get("margins", "15mm"), page),
            slots=MARKUP_ENV.from_string(SLOT_SEP.join(s for s, _ in self.sources)),
            slot_sources=self.sources,
            elements=elements,
            title=title,
            page_header=header,
            page_footer=footer,
            watermark=watermark,
            page_font=(font, self.value(page, "font_size", parse_length, 7.5)),
            watermark_color=self.value(page, "watermark_color", parse_color, "#d8d8d8"),
            templates_dir=self.templates_dir,
            attach_xml=self.attach_xml(top),
        )

    def attach_xml(self, top: LDict) -> str | None:
        """``attach_xml: order-x``: embed the dispatch's Order-X XML (see ``hybrid_pdf``)."""
        name = top.get("attach_xml")
        if name is None:
            return None
        from dispatch.documents.hybrid_pdf import check_attachable

        try:
            check_attachable(str(name))
        except TemplateError as exc:
            raise self.fail(top, str(exc)) from None
        return str(name)

    def margins(self, raw: Any, where: Any) -> tuple[float, float, float, float]:
        try:
            if isinstance(raw, dict):
                sides = [
                    parse_length(raw.get(k, "15mm")) for k in ("top", "right", "bottom", "left")
                ]
                return (sides[0], sides[1], sides[2], sides[3])
            one = parse_length(raw)
        except ValueError as exc:
            raise self.fail(where, f"margins: {exc}") from None
        return (one, one, one, one)

    def font(self, name: str, file: Any) -> None:
        if self.templates_dir is None:
            raise self.fail(file, "fonts: need the templates directory to find the file")
        path = resolve_template(self.templates_dir, str(file), label=f"{self.label} font {name}")
        try:
            pdfmetrics.registerFont(TTFont(name, str(path)))
        except Exception as exc:  # reportlab's TTFError and friends share no useful base
            raise self.fail(file, f"font {name}: cannot load {file}: {exc}") from None

    def style(self, name: str, spec: Any) -> ParagraphStyle:
        spec = self.keys(spec, _STYLE, f"style {name}")
        parent = self.styles.get(str(spec.get("parent", "body")))
        if parent is None:
            raise self.fail(spec, f"style {name}: unknown parent {spec['parent']!r}")
        kw: dict[str, Any] = {}
        if "font" in spec:
            self.check_font(str(spec["font"]), spec)
            kw["fontName"] = str(spec["font"])
        if "size" in spec:
            kw["fontSize"] = self.value(spec, "size", parse_length)
            kw["leading"] = kw["fontSize"] * 1.2
        for key, attr, parse in _STYLE_ATTRS:
            if key in spec:
                kw[attr] = self.value(spec, key, parse)
        if "align" in spec:
            kw["alignment"] = self.value(spec, "align", lambda v: ALIGNS[str(v)])
        return ParagraphStyle(name, parent=parent, **kw)

    def element(self, spec: Any) -> Element:
        if not isinstance(spec, dict) or not spec:
            raise self.fail(spec, f"a body element must be a mapping, got {spec!r}")
        if "paragraph" in spec:
            spec = self.keys(spec, {"paragraph", "style", "if"}, "paragraph")
            return Element(
                "paragraph",
                cond=self.cond(spec),
                text=self.slot(spec["paragraph"], spec),
                style=self.style_named(spec, "style", "body"),
            )
        if "spacer" in spec:
            spec = self.keys(spec, {"spacer", "if"}, "spacer")
            height = self.value(spec, "spacer", parse_length)
            return Element("spacer", cond=self.cond(spec), height=height)
        if "page_break" in spec:
            spec = self.keys(spec, {"page_break", "if"}, "page_break")
            return Element("page_break", cond=self.cond(spec))
        if "table" in spec:
            spec = self.keys(spec, {"table", "if"}, "table")
            inner = spec["table"]
            # `if:` may sit beside `table:` or inside it, whichever reads better.
            holder = inner if isinstance(inner, LDict) and "if" in inner else spec
            cond = self.cond(holder)
            element = compile_table(self, inner)
            element.cond = cond
            return element
        raise self.fail(
            spec,
            f"unknown element ({', '.join(spec)}); use paragraph, spacer, page_break or table",
        )


def compile_layout(
    path: Path, *, label: str | None = None, templates_dir: Path | None = None
) -> Layout:
    """Parse and check the layout at ``path``; errors name ``label`` and the line."""
    label = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateError(
            f"{label}: not a UTF-8 text file; a PDF template is a .yaml layout"
        ) from None
    except OSError as exc:
        raise TemplateError(f"{label}: cannot read it ({exc.strerror})") from None
    return LayoutCompiler(path, label, templates_dir).compile(load_with_lines(text, label))
