"""Documents: one renderer per format (XML, PDF, Excel) behind the Renderer protocol.

Pure: no network, no database. The entry points:

- ``context.DocumentContext`` (+ ``Order``, ``Line``, ``Party``, ``Location``, ``Dispatch``,
  ``Change``): everything a template sees; ``compute_totals``.
- ``registry.render_document(ctx, format=, template_file=, templates_dir=)`` → ``base.Document``;
  ``registry.RENDERERS``, ``registry.document_name``.
- ``checks.check_template(templates_dir, name=, format=, file=)``: refuse a broken template.
- ``samples.sample_context(kind, lines=)``: a realistic order, for previews and checks.

Formats: ``order_xml`` (lxml + ``templates/xml/purchase-order.xsd``), ``pdf`` (YAML layout
compiled by ``pdf_layout``/``pdf_tables``, drawn by platypus), ``excel`` (an ``.xlsx``
template compiled by ``excel_template``, filled with openpyxl). Templates run in the
Jinja2 sandbox of ``sandbox``; files are confined and cached by ``template_files``.
"""

from typing import Any

# Lazy, so that ``dispatch.documents.base`` (imported by every channel) does not pull in
# reportlab, openpyxl and lxml.
_EXPORTS = {
    "check_template": "dispatch.documents.checks",
    "check_xml": "dispatch.documents.checks",
    "render_document": "dispatch.documents.registry",
    "document_name": "dispatch.documents.registry",
    "RENDERERS": "dispatch.documents.registry",
    "Renderer": "dispatch.documents.registry",
    "DocumentContext": "dispatch.documents.context",
    "Order": "dispatch.documents.context",
    "Line": "dispatch.documents.context",
    "Party": "dispatch.documents.context",
    "Location": "dispatch.documents.context",
    "Dispatch": "dispatch.documents.context",
    "Change": "dispatch.documents.context",
    "compute_totals": "dispatch.documents.context",
    "sample_context": "dispatch.documents.samples",
    "Document": "dispatch.documents.base",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
