"""One contract over every registered renderer, plus the compiled-template cache."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dispatch.documents.base import Document
from dispatch.documents.registry import (
    RENDERERS,
    Renderer,
    document_name,
    get_renderer,
    render_document,
)
from dispatch.documents.samples import sample_context
from dispatch.documents.template_files import CompiledCache
from dispatch.errors import TemplateError

SAMPLE_FILES = {"XML": None, "PDF": "pdf/standard.yaml", "Excel": "excel/standard.xlsx"}
MAGIC = {"XML": b"<?xml", "PDF": b"%PDF-", "Excel": b"PK\x03\x04"}


def test_every_format_has_a_sample_template() -> None:
    assert set(RENDERERS) == set(SAMPLE_FILES)


@pytest.mark.parametrize("format", sorted(RENDERERS))
@pytest.mark.parametrize("kind", ["purchase", "change", "cancellation"])
def test_contract(format: str, kind: str, templates_dir: Path) -> None:
    renderer = RENDERERS[format]
    assert isinstance(renderer, Renderer) and renderer.format == format
    ctx = sample_context(kind, lines=4)  # type: ignore[arg-type]
    doc = render_document(
        ctx, format=format, template_file=SAMPLE_FILES[format], templates_dir=templates_dir
    )
    assert isinstance(doc, Document)
    assert doc.name == f"PurchaseOrder1001_{kind}_{ctx.dispatch.number}.{renderer.extension}"
    assert doc.name == document_name(ctx, format)
    assert doc.media_type == renderer.media_type and doc.format == format
    assert doc.content.startswith(MAGIC[format]) and doc.size == len(doc.content)


@pytest.mark.parametrize("format", ["PDF", "Excel"])
def test_template_formats_need_a_template(format: str, templates_dir: Path) -> None:
    with pytest.raises(TemplateError, match="needs a template"):
        render_document(sample_context(), format=format, templates_dir=templates_dir)


def test_unknown_format_is_named() -> None:
    with pytest.raises(TemplateError, match="unknown document format 'CSV'"):
        get_renderer("CSV")
    assert get_renderer("excel") is RENDERERS["Excel"]


def test_xml_falls_back_to_the_project_schema(tmp_path: Path) -> None:
    doc = render_document(sample_context(), format="XML", templates_dir=tmp_path)
    assert doc.content.startswith(b"<?xml")


def test_cache_compiles_once_per_modification(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("one")
    calls: list[str] = []

    def compile_file(p: Path) -> str:
        calls.append(p.read_text())
        return calls[-1]

    cache: CompiledCache[str] = CompiledCache(compile_file)
    assert [cache.get(path) for _ in range(3)] == ["one"] * 3
    assert calls == ["one"]
    path.write_text("two")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert cache.get(path) == "two" and calls == ["one", "two"]


def test_a_file_asked_for_by_many_threads_at_once_is_compiled_once(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("one")
    calls: list[str] = []
    second_call = threading.Event()

    def compile_file(p: Path) -> str:
        calls.append(p.read_text())
        if len(calls) > 1:
            second_call.set()
        # Stay inside the compile while the other threads arrive: a cache that lets them
        # compile too shows it here at once; one that makes them wait waits out the second.
        second_call.wait(1.0)
        return calls[-1]

    cache: CompiledCache[str] = CompiledCache(compile_file)
    start = threading.Barrier(8)

    def ask() -> str:
        start.wait()
        return cache.get(path)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ask(), range(8)))
    assert results == ["one"] * 8
    assert calls == ["one"]


def test_repeated_renders_reuse_the_compiled_template(templates_dir: Path) -> None:
    from dispatch.documents import pdf

    ctx = sample_context(lines=1)
    file = "pdf/standard.yaml"
    render_document(ctx, format="PDF", template_file=file, templates_dir=templates_dir)
    path = (templates_dir / file).resolve()
    first = pdf._LAYOUTS.get(path)
    render_document(ctx, format="PDF", template_file=file, templates_dir=templates_dir)
    assert pdf._LAYOUTS.get(path) is first
