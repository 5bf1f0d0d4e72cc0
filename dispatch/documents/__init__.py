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
