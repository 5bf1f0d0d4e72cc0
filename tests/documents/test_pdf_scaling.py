"""PDF rendering stays linear in lines: reportlab never re-measures or re-copies a long table.

reportlab measures unknown row heights with a ``None in H`` / ``H.index(None)`` scan per
row: quadratic in the rows of one table. dispatch measures them once (``measure_rows``).
And at every page break ``Table.split`` copies all the rows still to come into a new Table
and lays them out again: O(rows² / rows per page). dispatch hands reportlab one page of
rows at a time (``PagedTable``). Timing lives in bench/documents.py --scaling; these check
the mechanism.
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


def test_each_page_hands_reportlab_only_its_own_rows(
        templates_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Splitting one Table of 2,000 rows page by page made Tables of 75,000 rows in all and
    # laid out 290,000; a page at a time, every row is in the full table and in one page.
    lines = 2000
    made, laid_out = [0], [0]
    init, calc = tables.Table.__init__, tables.Table._calc_height

    def counting_init(self: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        made[0] += len(data)
        init(self, data, *args, **kwargs)

    def counting_calc(self: Any, *args: Any, **kwargs: Any) -> Any:
        laid_out[0] += len(self._argH)
        return calc(self, *args, **kwargs)

    monkeypatch.setattr(tables.Table, "__init__", counting_init)
    monkeypatch.setattr(tables.Table, "_calc_height", counting_calc)
    document = render_document(sample_context("change", lines=lines), format="PDF",
                               template_file="pdf/standard.yaml", templates_dir=templates_dir)
    assert document.content.startswith(b"%PDF")
    assert made[0] < 3 * lines and laid_out[0] < 2 * lines, (made[0], laid_out[0])
