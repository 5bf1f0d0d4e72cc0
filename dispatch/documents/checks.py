"""``check_template``: refuse a broken template when reference data is loaded, not at send time.

A template passes when its file is inside the templates directory, has the format's file
type, compiles (errors name the line, or the sheet and cell), and renders sample orders of
every dispatch kind, with and without a ship-to location, to a document that reads back.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from dispatch.documents.context import KINDS
from dispatch.documents.registry import TemplateRenderer, get_renderer
from dispatch.documents.samples import sample_context
from dispatch.documents.template_files import resolve_template
from dispatch.documents.xml_spec import XmlTemplateSpec
from dispatch.documents.xml_template import check_xml_template
from dispatch.errors import RenderError, TemplateError

_XLSX_MAGIC = b"PK\x03\x04"


def check_template(templates_dir: Path, *, name: str, format: str, file: str) -> None:
    """Raise ``TemplateError`` naming template ``name`` if it cannot render documents.

    Args:
        templates_dir: the templates directory (``DISPATCH_TEMPLATES_DIR``).
        name: the template entry's name, e.g. ``standard-pdf``.
        format: ``PDF`` or ``Excel``.
        file: the entry's ``file``, relative to ``templates_dir``.
    """
    label = f"template {name!r} ({file})"
    if format not in ("PDF", "Excel"):
        raise TemplateError(f"{label}: format {format!r}; a named template is PDF or Excel")
    renderer = get_renderer(format)
    assert isinstance(renderer, TemplateRenderer)
    path = resolve_template(templates_dir, file, label=label)
    suffixes = renderer.suffixes
    head = path.read_bytes()[:4]
    looks_xlsx = head == _XLSX_MAGIC
    if format == "PDF" and (looks_xlsx or path.suffix.lower() not in suffixes):
        kind = "an Excel workbook" if looks_xlsx else f"a {path.suffix or 'suffix-less'} file"
        raise TemplateError(
            f"{label}: format PDF needs a .yaml layout (see templates/pdf/standard.yaml), "
            f"but the file is {kind}"
        )
    if format == "Excel" and (not looks_xlsx or path.suffix.lower() not in suffixes):
        raise TemplateError(
            f"{label}: format Excel needs an .xlsx workbook (see templates/excel/standard.xlsx), "
            f"but {file} is not one"
        )
    compiled = renderer.compile(path, label=label, templates_dir=templates_dir)
    for kind in KINDS:
        for ship_to in (True, False):
            ctx = sample_context(kind, lines=3, ship_to=ship_to)  # type: ignore[arg-type]
            try:
                content = renderer.render_compiled(compiled, ctx)
            except RenderError as exc:
                where = renderer.locate_error(compiled, ctx)
                at = f" {where}" if where else ""
                sample = f"a sample {kind} order {'with' if ship_to else 'without'} a ship-to"
                raise TemplateError(f"{label}{at}: fails on {sample}: {exc}") from None
            _reads_back(label, format, content)


def check_xml(templates_dir: Path, spec: XmlTemplateSpec) -> None:
    """Refuse an XML template (SPEC 4) that does not compile, whose schema does not parse,
    or that fails on sample orders of every dispatch kind (``check_xml_template``)."""
    label = f"XML template {spec.name!r}"
    try:
        check_xml_template(spec, templates_dir=templates_dir,
                           samples={kind: sample_context(kind) for kind in KINDS})  # type: ignore[arg-type]
    except TemplateError as exc:
        text = str(exc)
        raise TemplateError(text if text.startswith("XML template") else f"{label}: {text}"
                            ) from None


def _reads_back(label: str, format: str, content: bytes) -> None:
    if format == "PDF" and not content.startswith(b"%PDF-"):
        raise TemplateError(f"{label}: the rendered sample is not a PDF")
    if format == "Excel":
        try:
            zipfile.ZipFile(io.BytesIO(content)).testzip()
        except zipfile.BadZipFile as exc:
            raise TemplateError(f"{label}: the rendered sample is not an xlsx: {exc}") from None
