"""The Renderer protocol, the registry of formats, and ``render_document``: the one entry.

Adding a format is one module with a class satisfying ``Renderer`` plus one line in
``RENDERERS``. XML has two renderers: the canonical document (``order_xml``, the default)
and named XML templates (``xml_template``: a ``templates:`` entry or a built-in such as
``peppol``), chosen when ``render_document`` is given one. Everything here is pure: no
network, no database; template files are read (and compiled once per modification time)
from the templates directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dispatch.documents.base import Document
from dispatch.documents.context import DocumentContext
from dispatch.documents.excel import ExcelRenderer
from dispatch.documents.order_xml import XmlRenderer
from dispatch.documents.pdf import PdfRenderer
from dispatch.documents.sandbox import DEFAULT_MAX_DOCUMENT_BYTES, limited
from dispatch.documents.template_files import resolve_template
from dispatch.documents.xml_spec import ALL_KINDS, XmlTemplateSpec, builtin_xml_template
from dispatch.documents.xml_template import XmlTemplateRenderer
from dispatch.errors import RenderError, TemplateError

# The project's own templates/ (used when DISPATCH_TEMPLATES_DIR has no XML schema).
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@runtime_checkable
class Renderer(Protocol):
    """Turns a ``DocumentContext`` into the bytes of one format."""

    format: str  # "XML" | "PDF" | "Excel": the key in RENDERERS and in SendOptions
    extension: str  # file name extension, without the dot
    media_type: str
    needs_template: bool  # False: the format has one fixed shape (XML)

    def render(
        self, ctx: DocumentContext, *, template: Path | None, templates_dir: Path
    ) -> bytes: ...


@runtime_checkable
class TemplateRenderer(Renderer, Protocol):
    """A renderer driven by a named template file, which can be checked ahead of time."""

    suffixes: tuple[str, ...]  # accepted file name suffixes, e.g. (".yaml", ".yml")

    def compile(self, template: Path, *, label: str, templates_dir: Path) -> Any:
        """Parse and check ``template``; raise TemplateError naming ``label`` and the line."""
        ...

    def render_compiled(self, compiled: Any, ctx: DocumentContext) -> bytes: ...

    def locate_error(self, compiled: Any, ctx: DocumentContext) -> str | None:
        """Where in the template rendering ``ctx`` fails (``line 12``, ``cell B4``), if found."""
        ...


RENDERERS: dict[str, Renderer] = {
    "XML": XmlRenderer(DEFAULT_TEMPLATES_DIR),
    "PDF": PdfRenderer(),
    "Excel": ExcelRenderer(),
}
XML_TEMPLATES = XmlTemplateRenderer()  # XML from a named template (SPEC 4)


def get_renderer(format: str) -> Renderer:
    """The renderer for ``format`` (``XML``, ``PDF`` or ``Excel``, case-insensitive)."""
    renderer = RENDERERS.get(format)
    if renderer is None:
        by_lower = {key.lower(): value for key, value in RENDERERS.items()}
        renderer = by_lower.get(format.lower())
    if renderer is None:
        raise TemplateError(f"unknown document format {format!r}; use {', '.join(RENDERERS)}")
    return renderer


def document_name(ctx: DocumentContext, format: str) -> str:
    """``{OrderId}_{kind}_{n}.{xml|pdf|xlsx}`` (SPEC 4)."""
    extension = get_renderer(format).extension
    return f"{ctx.order.Id}_{ctx.dispatch.kind}_{ctx.dispatch.number}.{extension}"


def render_document(
    ctx: DocumentContext,
    *,
    format: str,
    template_file: str | None = None,
    templates_dir: Path,
    template_name: str | None = None,
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    xml_template: XmlTemplateSpec | None = None,
) -> Document:
    """Render one document of ``ctx`` in ``format`` from ``template_file``.

    Args:
        format: ``XML``, ``PDF`` or ``Excel``.
        template_file: the template entry's ``file`` (relative to ``templates_dir``);
            required for PDF and Excel. For XML: a one-file XML template (no schema).
        template_name: the template entry's name, to make errors say which one; for XML
            without ``xml_template`` or ``template_file``, a built-in template's name
            (``peppol``, ``cxml``, ``order-x``).
        xml_template: an XML template (``xml_spec.xml_template_from_entry`` or
            ``builtin_xml_template``); for XML with no template named: the canonical one.
        max_bytes: ``DISPATCH_MAX_DOCUMENT_BYTES``: the largest document, and the largest
            value or output a template may build on the way (see ``sandbox``).

    Raises:
        TemplateError: the template is missing, outside ``templates_dir`` or broken.
        RenderError: the template failed on this order (e.g. an XML value the schema refuses).
    """
    renderer = get_renderer(format)
    spec: XmlTemplateSpec | None = None
    if renderer.format == "XML":
        spec = xml_template or _named_xml_template(template_name, template_file)
        template_name = spec.name if spec is not None else template_name
    path: Path | None = None
    if renderer.needs_template:
        label = f"template {template_name or '?'!r} ({template_file})"
        if not template_file:
            raise TemplateError(f"a {renderer.format} document needs a template; none was named")
        path = resolve_template(templates_dir, template_file, label=label)
    with limited(max_bytes):
        if spec is not None:
            content = XML_TEMPLATES.render_spec(ctx, spec, templates_dir=templates_dir)
        else:
            content = renderer.render(ctx, template=path, templates_dir=templates_dir)
    if len(content) > max_bytes:
        raise RenderError(
            f"{renderer.format} document of {ctx.order.Id} from template "
            f"{template_name or template_file or '(built in)'!r}: {len(content):,} bytes, more "
            f"than DISPATCH_MAX_DOCUMENT_BYTES ({max_bytes:,}); shorten the template or the order")
    return Document(
        name=document_name(ctx, renderer.format),
        content=content,
        media_type=renderer.media_type,
        format=renderer.format,
    )


def _named_xml_template(name: str | None, file: str | None) -> XmlTemplateSpec | None:
    """The XML template a name or file stands for; None: the canonical document."""
    if file:
        return XmlTemplateSpec(name=name or file, files={ALL_KINDS: file})
    if not name:
        return None
    spec = builtin_xml_template(name)
    if spec is None:
        raise TemplateError(f"no XML template {name!r}: name a templates: entry with format "
                            "XML, or a built-in one (peppol, cxml, order-x)")
    return spec
