"""Paged tables draw exactly what reportlab's own Table.split draws: the same PDF bytes.

Each case renders one context twice: through ``PagedTable`` (a real Table per page), and
with ``pdf.paged`` replaced by the identity, so the long table is one plain ``Table`` that
reportlab splits itself (the code before paging). Output is deterministic
(``invariant=True``), so equal bytes mean every page draws the same, in the same order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from reportlab.platypus import Table

from dispatch.documents import pdf
from dispatch.documents.context import DocumentContext
from dispatch.documents.pdf_paged_table import PagedTable, measure_rows, paged
from dispatch.documents.registry import render_document
from dispatch.documents.samples import sample_context
from dispatch.responses.reminder import ReminderDispatch


def _reminder(lines: int) -> DocumentContext:
    ctx = sample_context("purchase", lines=lines)
    at = dt.datetime(2025, 3, 20, 8, 0)
    return dataclasses.replace(ctx, dispatch=ReminderDispatch(
        kind="reminder", number=2, generated_at=at, chased_number=1,  # type: ignore[arg-type]
        delivered_at=at - dt.timedelta(days=3), due_by=at - dt.timedelta(days=1)))


def _both(ctx: DocumentContext, file: str, templates_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes, int]:
    """(bytes through PagedTable, bytes through a plain Table, pages PagedTable split)."""
    splits: list[int] = []
    original = PagedTable._split_rows

    def counted(self: PagedTable, avail: float) -> Any:
        pieces = original(self, avail)
        splits.append(len(pieces))
        return pieces

    def render() -> bytes:
        return render_document(ctx, format="PDF", template_file=file,
                               templates_dir=templates_dir).content

    with monkeypatch.context() as m:
        m.setattr(PagedTable, "_split_rows", counted)
        new = render()
    with monkeypatch.context() as m:
        m.setattr(pdf, "paged", lambda table: table)
        old = render()
    return new, old, splits.count(2)


CASES = {
    "standard-purchase": ("pdf/standard.yaml", lambda n: sample_context("purchase", lines=n)),
    "standard-change": ("pdf/standard.yaml", lambda n: sample_context("change", lines=n)),
    "standard-cancellation": ("pdf/standard.yaml",
                              lambda n: sample_context("cancellation", lines=n)),
    "order-x-hybrid": ("pdf/order-x-hybrid.yaml", lambda n: sample_context("change", lines=n)),
    "reminder": ("pdf/reminder.yaml", _reminder),
}


@pytest.mark.parametrize("lines", [1, 40, 400, 2000])
@pytest.mark.parametrize("case", CASES)
def test_shipped_templates_render_the_same_bytes(
        case: str, lines: int, templates_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file, make = CASES[case]
    new, old, splits = _both(make(lines), file, templates_dir, monkeypatch)
    assert new == old
    if lines >= 400:  # many pages: the paged path really ran
        assert splits > lines // 60


def _long_note(ctx: DocumentContext, *positions: int) -> DocumentContext:
    lines = list(ctx.lines)
    for p in positions:
        lines[p] = dataclasses.replace(lines[p], Note="a long note " * 340)  # > a page
    return dataclasses.replace(ctx, lines=tuple(lines))


@pytest.mark.parametrize("positions", [(1,), (0, 150), (299,)])
def test_rows_taller_than_a_page_split_in_the_row_the_same_way(
        positions: tuple[int, ...], templates_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _long_note(sample_context("change", lines=300), *positions)
    new, old, splits = _both(ctx, "pdf/standard.yaml", templates_dir, monkeypatch)
    assert new == old and splits > 3


# Footers, commands counted from the end, a box, three zebra shades, and a table that starts
# near the foot of a page (only its header would fit there), with and without a repeated
# header: what reportlab re-addresses at each split.
VARIANT = """
page: {size: A5, margins: 12mm}
styles:
  cell: {size: 8, leading: 10}
body:
  - spacer: {spacer}
  - table:
      for: line in lines
      repeat_header: {repeat}
      cell_style: cell
      padding: 2
      box: "#222222"
      grid: "#c8c8c8"
      header_background: "#e4e9f0"
      zebra: ["#ffffff", "#f6f7f9", "#eef3e9"]
      footer_line: "#333333"
      style:
        - [LINEBELOW, [0, -3], [-1, -3], 1.5, "#aa0000"]
        - [BACKGROUND, [0, -2], [-1, -1], "#fff1cc"]
        - [TEXTCOLOR, [1, 1], [1, -3], "#335577"]
        - [LINEABOVE, [0, 5], [-1, 5], 1, "#0000aa"]
      columns:
        - {title: "#", width: 10mm, value: "{{ line.Position }}", align: right}
        - {title: Item, width: 30mm, value: "{{ line.Code }}"}
        - title: Description
          width: 50mm
          value: "{{ line.ItemName }}{% if line.Note %}<br/>{{ line.Note }}{% endif %}"
        - {title: Qty, width: 20mm, value: "{{ line.TotalQuantity | qty }}", align: right}
      footer:
        - ["", "", "Quantity", "{{ totals.quantity | qty }}"]
        - ["", "", "Lines", "{{ totals.line_count }}"]
  - paragraph: "After the table"
"""


@pytest.mark.parametrize("spacer", ["1mm", "160mm"])
@pytest.mark.parametrize("repeat", ["true", "false"])
@pytest.mark.parametrize("lines", [3, 400])
def test_footers_negative_indices_and_no_repeated_header_render_the_same_bytes(
        repeat: str, spacer: str, lines: int, tmp_templates: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = VARIANT.replace("{repeat}", repeat).replace("{spacer}", spacer)
    (tmp_templates / "pdf/variant.yaml").write_text(text, encoding="utf-8")
    ctx = sample_context("change", lines=lines)
    new, old, splits = _both(ctx, "pdf/variant.yaml", tmp_templates, monkeypatch)
    assert new == old and (splits > 10 or lines < 400)
    ctx = _long_note(sample_context("change", lines=lines), lines // 2)  # splitInRow too
    new, old, _ = _both(ctx, "pdf/variant.yaml", tmp_templates, monkeypatch)
    assert new == old


def test_tables_it_cannot_replay_stay_plain_tables() -> None:
    data = [["h", "h"], *[[str(i), "x"] for i in range(50)]]
    spanned = Table(data, colWidths=[40, 40], style=[("SPAN", (0, 1), (1, 1))])
    measure_rows(spanned)
    unmeasured = Table(data, colWidths=[40, None])
    measure_rows(unmeasured)
    plain = Table(data, colWidths=[40, 40], repeatRows=1)
    measure_rows(plain)
    assert paged(spanned) is spanned and paged(unmeasured) is unmeasured
    assert isinstance(paged(plain), PagedTable)
