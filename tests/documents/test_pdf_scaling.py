"""PDF rendering stays linear in lines: reportlab never re-measures a long table's rows.

reportlab measures unknown row heights with a ``None in H`` / ``H.index(None)`` scan per
row: quadratic in the rows of one table. dispatch measures them once (``_measure_rows``).
Timing lives in bench/documents.py --scaling; this checks the mechanism.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reportlab.platypus import tables

from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context


def test_long_tables_are_measured_once_not_at_every_page(
        templates_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unmeasured: list[int] = []
    original = tables.Table._calc_height

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        if None in self._argH:
            unmeasured.append(len(self._argH))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tables.Table, "_calc_height", spy)
    document = render_document(sample_context("change", lines=400), format="PDF",
                               template_file="pdf/standard.yaml", templates_dir=templates_dir)
    assert document.content.startswith(b"%PDF")
    assert not [rows for rows in unmeasured if rows > 50], unmeasured[:10]
