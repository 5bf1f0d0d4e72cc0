"""Templates sandboxed in work as well as in reach (SPEC 9): no unbounded repetition, an
output cap (DISPATCH_MAX_DOCUMENT_BYTES), and files a template reads (images, fonts) only
from inside the templates directory, symlinks included."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest
from openpyxl import Workbook
from pypdf import PdfReader
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.errors import RenderError, TemplateError

ROOT = Path(__file__).resolve().parents[2]

# Each would take hundreds of MB to GBs if evaluated.
BLOW_UPS = [
    "{{ 'A' * 300000000 }}",
    "{{ (['A'] * 300000000)|length }}",
    "{{ 300000000 * order.Id }}",
    "{{ '%0300000000d' % 1 }}",
    "{{ '{:>300000000}'.format(order.Id) }}",
    "{{ order.Id|center(300000000) }}",
    "{{ order.Id.ljust(300000000) }}",
    "{{ 'x'|indent(300000000) }}",
    "{{ 'abc'|replace('', 'x' * 10000000) }}",
    "{{ 7 ** 300000000 }}",
    "{% set ns = namespace(s=order.Id) %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s=order.Id) %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}0123456789{% endfor %}"
    "{% endfor %}",
]


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    for sub in ("pdf", "excel", "xml"):
        shutil.copytree(ROOT / "templates" / sub, target / sub)
    return target


def pdf_layout(text: str) -> str:
    return "body:\n  - paragraph: " + repr(text).replace("\\'", "''") + "\n"


def render(tdir: Path, fmt: str, file: str, max_bytes: int = 20 * 1024 * 1024) -> bytes:
    return render_document(sample_context(), format=fmt, template_file=file,
                           templates_dir=tdir, max_bytes=max_bytes).content


@pytest.mark.parametrize("attack", BLOW_UPS)
def test_pdf_templates_cannot_build_huge_values(attack: str, tdir: Path) -> None:
    (tdir / "pdf" / "big.yaml").write_text(pdf_layout(attack))
    tracemalloc.start()
    try:
        with pytest.raises(RenderError, match="DISPATCH_MAX_DOCUMENT_BYTES|exponent|width"):
            render(tdir, "PDF", "pdf/big.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024, f"peak {peak:,} bytes while refusing"


@pytest.mark.parametrize("attack", BLOW_UPS)
def test_excel_templates_cannot_build_huge_values(attack: str, tdir: Path) -> None:
    wb = Workbook()
    wb.active["B2"] = attack
    wb.save(tdir / "excel" / "big.xlsx")
    with pytest.raises(RenderError, match="DISPATCH_MAX_DOCUMENT_BYTES|exponent|width"):
        render(tdir, "Excel", "excel/big.xlsx")


def test_small_repetition_and_formatting_still_work(tdir: Path) -> None:
    (tdir / "pdf" / "ok.yaml").write_text(pdf_layout(
        "{{ '-' * 20 }} {{ '%05d' % 42 }} {{ '{:>8}'.format(order.Id) }} "
        "{{ order.Id|center(30) }} {{ 'a' ~ 'b' }}"))
    text = PdfReader(__import__("io").BytesIO(render(tdir, "PDF", "pdf/ok.yaml"))).pages[0]
    assert "--------------------" in text.extract_text() and "00042" in text.extract_text()


def test_a_document_over_the_output_cap_is_refused_naming_the_limit(tdir: Path) -> None:
    with pytest.raises(RenderError) as caught:
        render(tdir, "PDF", "pdf/standard.yaml", max_bytes=2048)
    assert "DISPATCH_MAX_DOCUMENT_BYTES" in str(caught.value)
    assert len(render(tdir, "PDF", "pdf/standard.yaml")) > 2048  # the default fits


# --- files a template reads ----------------------------------------------------------------


def write_png(path: Path) -> None:
    canvas = Canvas(str(path.with_suffix(".pdf")))
    canvas.save()
    # A 1x1 PNG (reportlab reads it back through PIL-free code paths).
    path.write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2a4a3c8"
        "0000000049454e44ae426082"))
    ImageReader(str(path))  # valid


@pytest.fixture
def outside_image(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    write_png(secret)
    return secret


@pytest.mark.parametrize("src", ["/etc/passwd", "{outside}", "../outside/secret.png",
                                 "pdf/../../outside/secret.png", "http://127.0.0.1:9/x.png",
                                 "file:///etc/passwd", "pdf/link.png", "pdf/missing.png"])
def test_images_outside_the_templates_directory_are_refused(
        src: str, tdir: Path, outside_image: Path) -> None:
    (tdir / "pdf" / "link.png").symlink_to(outside_image)
    src = src.format(outside=outside_image)
    (tdir / "pdf" / "img.yaml").write_text(pdf_layout(f'<img src="{src}" width="10" '
                                                      'height="10"/>'))
    with pytest.raises(TemplateError) as caught:
        render(tdir, "PDF", "pdf/img.yaml")
    assert "img.yaml" in str(caught.value)


def test_an_image_path_from_order_text_cannot_escape(tdir: Path) -> None:
    # The template author put an expression in src: its value must still be confined.
    (tdir / "pdf" / "img.yaml").write_text(pdf_layout(
        '<img src="{{ \'/etc/host\' ~ \'name\' }}" width="10" height="10"/>'))
    with pytest.raises(TemplateError, match="absolute"):
        render(tdir, "PDF", "pdf/img.yaml")


def test_an_image_inside_the_templates_directory_is_drawn(tdir: Path) -> None:
    write_png(tdir / "pdf" / "logo.png")
    (tdir / "pdf" / "img.yaml").write_text(pdf_layout(
        'Logo: <img src="pdf/logo.png" width="10" height="10"/>'))
    assert render(tdir, "PDF", "pdf/img.yaml").startswith(b"%PDF")


def test_order_text_cannot_inject_an_image(tdir: Path) -> None:
    (tdir / "pdf" / "notes.yaml").write_text(pdf_layout("{{ '<img src=\"/etc/passwd\"/>' }}"))
    content = render(tdir, "PDF", "pdf/notes.yaml")  # escaped: shown as text, nothing read
    assert b"root:" not in content


def test_a_font_symlinked_outside_is_refused(tdir: Path, tmp_path: Path) -> None:
    fonts = list(Path("/usr/share/fonts").rglob("*.ttf"))
    if not fonts:
        pytest.skip("no TrueType font on this machine")
    (tdir / "pdf" / "font.ttf").symlink_to(fonts[0])
    (tdir / "pdf" / "font.yaml").write_text(
        "fonts: {Mine: pdf/font.ttf}\nbody:\n  - paragraph: x\n")
    with pytest.raises(TemplateError, match="outside the templates directory"):
        render(tdir, "PDF", "pdf/font.yaml")
