"""Sandboxing, path confinement and check_template: broken or hostile templates are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openpyxl import Workbook

from dispatch.documents.checks import check_template
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.documents.template_files import resolve_template
from dispatch.errors import RenderError, TemplateError

ESCAPES = [
    "{{ order.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ctx.template_vars.__globals__ }}",
    "{{ lines.__len__() }}",
    "{{ order.Id.format.__self__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].system('true') }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{{ changes.append(1) }}",
    "{{ change_notes.clear() }}",
]


def _pdf_layout(text: str) -> str:
    return "body:\n  - paragraph: " + repr(text).replace("\\'", "''") + "\n"


@pytest.mark.parametrize("attack", ESCAPES)
def test_pdf_sandbox_escapes_fail(attack: str, tmp_templates: Path) -> None:
    (tmp_templates / "pdf" / "evil.yaml").write_text(_pdf_layout(attack))
    with pytest.raises(RenderError):
        render_document(
            sample_context(),
            format="PDF",
            template_file="pdf/evil.yaml",
            templates_dir=tmp_templates,
        )
    with pytest.raises(TemplateError, match=r"template 'evil' \(pdf/evil.yaml\) line 2"):
        check_template(tmp_templates, name="evil", format="PDF", file="pdf/evil.yaml")


@pytest.mark.parametrize("attack", ESCAPES)
def test_excel_sandbox_escapes_fail(attack: str, tmp_templates: Path) -> None:
    wb = Workbook()
    wb.active["C3"] = attack
    wb.save(tmp_templates / "excel" / "evil.xlsx")
    with pytest.raises(RenderError):
        render_document(
            sample_context(),
            format="Excel",
            template_file="excel/evil.xlsx",
            templates_dir=tmp_templates,
        )
    with pytest.raises(TemplateError, match="cell C3"):
        check_template(tmp_templates, name="evil", format="Excel", file="excel/evil.xlsx")


def test_safe_filter_is_not_available_for_markup(tmp_templates: Path) -> None:
    (tmp_templates / "pdf" / "safe.yaml").write_text(_pdf_layout("{{ order.Notes | safe }}"))
    with pytest.raises(
        TemplateError, match="line 2: template syntax error: No filter named 'safe'"
    ):
        check_template(tmp_templates, name="safe", format="PDF", file="pdf/safe.yaml")


BROKEN_PDF = [
    ("body:\n  - paragraph: [unclosed\n", "line 3: YAML syntax error"),
    ("body:\n  - paragraph: ok\n  - paragraph: '{{ order.Id '\n", "line 3: template syntax error"),
    ("body:\n  - paragraph: '{% if x %}no end'\n", "line 2: template syntax error"),
    ("body:\n  - paragraph: x\n    style: nope\n", "line 2: style: unknown style 'nope'"),
    ("body:\n  - paragrap: x\n", "line 2: unknown element (paragrap)"),
    ("page: {size: B7}\nbody:\n  - spacer: 1cm\n", "line 1: size 'B7'"),
    ("styles:\n  s: {size: big}\nbody:\n  - spacer: 1cm\n", "line 2: size: 'big' is not a length"),
    ("body:\n  - table:\n      for: 'line of lines'\n      columns: []\n", "line 3: for:"),
    ("body:\n  - paragraph: '{{ order.Nope }}'\n", "line 2: fails on a sample purchase order"),
    ("body:\n  - paragraph: '<b>unclosed'\n", "fails on a sample purchase order"),
    ("", "the file is empty"),
]


@pytest.mark.parametrize("text, message", BROKEN_PDF)
def test_broken_pdf_layout_is_refused_naming_the_line(
    text: str, message: str, tmp_templates: Path
) -> None:
    (tmp_templates / "pdf" / "broken.yaml").write_text(text)
    with pytest.raises(TemplateError) as caught:
        check_template(tmp_templates, name="broken", format="PDF", file="pdf/broken.yaml")
    assert "template 'broken' (pdf/broken.yaml)" in str(caught.value)
    assert message in str(caught.value)


def test_broken_excel_template_names_sheet_and_cell(tmp_templates: Path) -> None:
    wb = Workbook()
    wb.active.title = "Order"
    wb.active["D7"] = "{{ order.Id "
    wb.save(tmp_templates / "excel" / "broken.xlsx")
    with pytest.raises(TemplateError, match="sheet 'Order' cell D7: template syntax error"):
        check_template(tmp_templates, name="broken", format="Excel", file="excel/broken.xlsx")


def test_excel_template_with_two_line_rows_is_refused(tmp_templates: Path) -> None:
    wb = Workbook()
    wb.active["A3"] = "{{ line.Code }}"
    wb.active["A5"] = "{{ line.Unit }}"
    wb.save(tmp_templates / "excel" / "two.xlsx")
    with pytest.raises(TemplateError, match="rows 3, 5; only one row per sheet repeats"):
        check_template(tmp_templates, name="two", format="Excel", file="excel/two.xlsx")


@pytest.mark.parametrize(
    "format, file, message",
    [
        ("PDF", "excel/standard.xlsx", "format PDF needs a .yaml layout"),
        ("Excel", "pdf/standard.yaml", "format Excel needs an .xlsx workbook"),
        ("PDF", "pdf/missing.yaml", "does not exist"),
        ("PDF", "../etc/passwd", "must not contain '..'"),
        ("PDF", "/etc/passwd", "is absolute"),
        ("XML", "xml/purchase-order.xsd", "a named template is PDF or Excel"),
    ],
)
def test_wrong_format_missing_or_escaping_file_is_refused(
    format: str, file: str, message: str, templates_dir: Path
) -> None:
    with pytest.raises(TemplateError, match="template 't'") as caught:
        check_template(templates_dir, name="t", format=format, file=file)
    assert message in str(caught.value)


def test_symlink_out_of_the_templates_dir_is_refused(tmp_path: Path, tmp_templates: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("body:\n  - spacer: 1cm\n")
    os.symlink(outside, tmp_templates / "pdf" / "link.yaml")
    with pytest.raises(TemplateError, match="outside the templates directory"):
        resolve_template(tmp_templates, "pdf/link.yaml")
    with pytest.raises(TemplateError, match="outside the templates directory"):
        render_document(
            sample_context(),
            format="PDF",
            template_file="pdf/link.yaml",
            templates_dir=tmp_templates,
        )


def test_the_shipped_templates_pass(templates_dir: Path) -> None:
    check_template(templates_dir, name="standard-pdf", format="PDF", file="pdf/standard.yaml")
    check_template(templates_dir, name="standard-excel", format="Excel", file="excel/standard.xlsx")
