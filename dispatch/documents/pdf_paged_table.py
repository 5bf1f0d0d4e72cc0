"""Long reportlab tables laid out a page at a time, so render time stays linear in rows.

A platypus ``Table`` that does not fit splits into the rows that fit and a new ``Table`` of
*all* the rest (every value, cell style and height copied, then re-measured when the next
page wraps and splits it): O(remaining rows) a page, O(rows² / rows per page) a table.
``PagedTable`` keeps the full table once and, at each page, builds a real ``Table`` of that
page's rows only; the rest is a ``PagedTable`` with an offset. A page costs O(its rows).

The pages are reportlab's own, not a lookalike: each piece gets the rows, cell styles and
heights ``Table.split`` would give it, and its line and background commands come from
reportlab's split code (``_splitLineCmds``, ``_cr_0``, ``_cr_1_0``; ``_cr_1_1`` restated in
``_carry_over``). So the repeated header, the zebra phase, commands counted from the end
(footer rows) and reportlab's quirks (the first page's last row gets no zebra shade) stay
where they were, and the PDF bytes are equal (tests/documents/test_pdf_paged_table.py).
Written against reportlab 5.1 ``platypus/tables.py``. A table using what this does not
replay (spans, NOSPLIT, split-first/last rows, row split ranges, rounded corners, shadows,
idents, column-first splitting, a Table subclass) stays a plain ``Table``. A row split
across pages (``splitInRow``: the fallback for a row taller than a page) is left to
reportlab on the real remainder, O(remaining rows) each time.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from reportlab import rl_config
from reportlab.platypus import Table
from reportlab.platypus.flowables import Flowable

# A remainder this close to fitting is built as a real Table and asked for its exact size:
# the frame's fit test (with its 1e-6 fuzz) then sees reportlab's own sum, never ours.
_SLACK = 1.0


def measure_rows(table: Table) -> None:
    """Give ``table`` every row's height, measured once, when its column widths are known.

    reportlab finds unknown row heights with a ``None in H`` / ``H.index(None)`` scan per
    row (quadratic in rows) and redoes it for the rest of the table at every page split:
    a 20,000-line order took minutes. Known heights skip all of that, and the tables
    reportlab makes when it splits inherit them. Same rule as reportlab's: the tallest
    cell (text lines times leading, or the wrapped flowable) plus top and bottom padding.
    """
    t: Any = table  # reportlab's internals, read as its own _calc_height reads them
    widths = t._argW
    if not widths or None in widths or t._spanCmds or None not in t._argH:
        return
    heights: list[float] = []
    minimum = t._minRowHeights
    for i, (values, styles) in enumerate(zip(t._cellvalues, t._cellStyles, strict=True)):
        tallest = 0.0
        for j, (value, style, width) in enumerate(zip(values, styles, widths, strict=True)):
            if isinstance(value, tuple | list | Flowable):
                value = values[j] = t._cellListProcess(value, width, None)
                height = t._listCellGeom(value, width, style)[1]
            else:
                lines = (str(value) if value is not None else "").count("\n") + 1
                height = (style.leading or 1.2 * style.fontsize) * lines
            tallest = max(tallest, height + style.bottomPadding + style.topPadding)
        heights.append(max(minimum[i], tallest) if minimum else tallest)
    t._argH = t._rowHeights = heights


def paged(table: Table) -> Flowable:
    """``table`` as a PagedTable when its pages can be replayed exactly, else unchanged."""
    return PagedTable(table) if _pageable(table) else table


def _pageable(table: Table) -> bool:
    t: Any = table
    return (
        type(t) is Table  # a subclass may split or draw differently
        and t._nrows > 0
        and all(isinstance(w, int | float) for w in t._argW)
        and all(isinstance(h, int | float) for h in t._argH)  # measure_rows ran
        and t._rowHeights is t._argH
        and isinstance(t.repeatRows, int)
        and bool(t.splitByRow)
        and not (t._spanCmds or t._nosplitCmds or t._srflcmds or t._sircmds)
        and all(isinstance(c[1][1], int) and isinstance(c[2][1], int)
                for c in (*t._linecmds, *t._bkgrndcmds))  # no "splitfirst"-style rows
        and t._rowSplitRange is None
        and getattr(t, "_cornerRadii", None) is None
        and t._shadow is None
        and t.ident is None
        and not hasattr(t, "keepWithNext")
    )


def _carry_over(cmds: list[Any], n: int, nrows: int, repeat: int, rest: Any) -> None:
    """``Table._cr_1_1``: add to ``rest`` the commands of the rows after the first ``n``
    under ``repeat`` header rows. Same arithmetic, without its ``set(range(sr, er + 1))``
    per command (O(remaining rows) at every page); rows are numbers (``_pageable``)."""
    for c in cmds:
        (sc, sr), (ec, er) = c[1:3]
        if sr < 0:
            sr += nrows
        if er < 0:
            er += nrows
        low, high = max(sr, 0), min(er, repeat - 1)
        if low <= high:  # covers header rows: the rest's header gets it too
            rest._addCommand((c[0], (sc, low), (ec, high), *c[3:]))
        if er >= n:
            rest._addCommand((c[0], (sc, max(sr - n, 0) + repeat), (ec, max(er - n, 0) + repeat),
                              *c[3:]))


def _shell(ncols: int, nrows: int, linecmds: list[Any]) -> Any:
    """An empty Table shell: reportlab's command-splitting methods run on it unchanged."""
    shell: Any = Table.__new__(Table)
    shell._ncols, shell._nrows, shell._linecmds = ncols, nrows, linecmds
    shell._bkgrndcmds, shell._spanCmds, shell._nosplitCmds = [], [], []
    shell._srflcmds, shell._sircmds, shell._rowSplitRange = [], [], None
    return shell


class PagedTable(Flowable):
    """What remains of a long table: its repeated header rows and ``base``'s rows from
    ``start`` on, with the line and background commands reportlab would give that remainder.

    ``PagedTable(table)`` is ``table`` itself (no header prefix, ``table``'s own commands).
    """

    def __init__(self, base: Table, *, head: int = 0, start: int = 0,
                 commands: tuple[list[Any], list[Any]] | None = None,
                 tops: list[float] | None = None) -> None:
        super().__init__()
        b: Any = base
        self._base, self._head, self._start = b, head, start
        self._linecmds: list[Any]
        self._bkgrndcmds: list[Any]
        self._linecmds, self._bkgrndcmds = commands or (b._linecmds, b._bkgrndcmds)
        self._nrows = head + b._nrows - start
        # Heights of base rows [0, i): the remainder's height in O(1) at every page.
        self._tops = tops if tops is not None else [0.0, *accumulate(b._rowHeights)]
        self._table: Table | None = None  # the real Table, built when first needed
        self.hAlign, self.vAlign = b.hAlign, b.vAlign
        if start == 0 and head == 0:
            for name in ("spaceBefore", "spaceAfter"):
                if hasattr(b, name):
                    setattr(self, name, getattr(b, name))

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if self._fits(availHeight):
            return self._delegate("wrap", availWidth, availHeight)
        return self._width(), self._height()

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        """``Table.split``: the rows that fit as a Table, then the rest as a PagedTable."""
        if not self._fits(availHeight):
            if self._width() > availWidth and not rl_config.allowTableBoundsErrors & 1:
                return []
            pieces = self._split_rows(availHeight)
            if pieces or not self._base.splitInRow:
                return pieces
        # It (nearly) fits, or a row must split across pages (a row taller than a page:
        # rare, so O(remainder) then): reportlab splits the real table, the rest is paged.
        pieces = self._delegate("split", availWidth, availHeight)
        return [pieces[0], paged(pieces[1])] if len(pieces) == 2 else pieces

    def drawOn(self, canvas: Any, x: float, y: float, _sW: float = 0) -> None:
        self._real().drawOn(canvas, x, y, _sW)  # a frame draws what fitted when wrapped

    def identity(self, maxLen: int | None = None) -> str:
        return str(self._real().identity(maxLen))  # for LayoutError messages

    def _split_rows(self, avail: float) -> list[Flowable]:
        """``Table._splitRows(avail, doInRowSplit=0)`` for a table without spans."""
        b, head, start, nrows = self._base, self._head, self._start, self._nrows
        n = self._rows_fitting(avail)
        repeat = b.repeatRows
        if n <= repeat:
            return []
        if n == nrows:
            return [self]
        values, styles, heights = self._slice(n)
        first = Table(values, colWidths=list(b._argW), rowHeights=heights, repeatRows=repeat,
                      repeatCols=b.repeatCols, splitByRow=b.splitByRow,
                      splitInRow=b.splitInRow, normalizedData=1, cellStyles=styles,
                      spaceBefore=getattr(self, "spaceBefore", None),
                      longTableOptimize=b._longTableOptimize, cornerRadii=None,
                      renderCB=b._renderCB)
        linecmds = _shell(b._ncols, nrows, self._linecmds)._splitLineCmds(n)
        cut: Any = first
        cut._cr_0(n, linecmds, nrows, 0)
        cut._cr_0(n, self._bkgrndcmds, nrows, 0, _srflMode=True)
        first.hAlign, first.vAlign = self.hAlign, self.vAlign
        rest = _shell(b._ncols, 0, [])
        if repeat:
            _carry_over(linecmds, n, nrows, repeat, rest)
            _carry_over(self._bkgrndcmds, n, nrows, repeat, rest)
        else:
            rest._cr_1_0(n, linecmds, 0)
            rest._cr_1_0(n, self._bkgrndcmds, 0, _srflMode=True)
        after = PagedTable(b, head=repeat, start=start + n - head, tops=self._tops,
                           commands=(rest._linecmds, rest._bkgrndcmds))
        after.hAlign, after.vAlign = self.hAlign, self.vAlign
        if getattr(self, "spaceAfter", None) is not None:
            after.spaceAfter = self.spaceAfter
        return [first, after]

    def _rows_fitting(self, avail: float) -> int:
        """How many rows fit in ``avail`` (``Table._getFirstPossibleSplitRowPosition``)."""
        heights, head = self._base._rowHeights, self._head
        h: float = 0
        n = 0
        for i in range(head):
            if h + heights[i] > avail:
                return n
            h, n = h + heights[i], n + 1
        for i in range(self._start, len(heights)):
            if h + heights[i] > avail:
                break
            h, n = h + heights[i], n + 1
        return n

    def _slice(self, stop: int | None = None) -> tuple[list[Any], list[Any], list[float]]:
        """Values, cell styles and heights of this remainder's rows [0, ``stop``)."""
        b, head, start = self._base, self._head, self._start
        end = len(b._cellvalues) if stop is None else start + stop - head
        return (b._cellvalues[:head] + b._cellvalues[start:end],
                b._cellStyles[:head] + b._cellStyles[start:end],
                b._rowHeights[:head] + b._rowHeights[start:end])

    def _real(self) -> Table:
        """This remainder as the Table ``Table.split`` would have made (O(its rows))."""
        if self._table is None:
            self._table = self._build()
        return self._table

    def _build(self) -> Table:
        b = self._base
        if self._start == 0 and self._head == 0:
            return b
        values, styles, heights = self._slice()
        table: Any = Table(values, colWidths=list(b._argW), rowHeights=heights,
                           repeatRows=self._head, repeatCols=b.repeatCols,
                           splitByRow=b.splitByRow, splitInRow=b.splitInRow,
                           normalizedData=1, cellStyles=styles,
                           spaceAfter=getattr(self, "spaceAfter", None),
                           longTableOptimize=b._longTableOptimize, cornerRadii=None,
                           renderCB=b._renderCB)
        table._linecmds, table._bkgrndcmds = list(self._linecmds), list(self._bkgrndcmds)
        table.hAlign, table.vAlign = self.hAlign, self.vAlign
        return table

    def _delegate(self, method: str, *args: Any) -> Any:
        """The real Table's ``method``, with the canvas and frame the frame gave us."""
        table = self._real()
        lent = [name for name in ("canv", "_frame") if name in self.__dict__]
        for name in lent:
            setattr(table, name, self.__dict__[name])
        try:
            return getattr(table, method)(*args)
        finally:
            for name in lent:
                table.__dict__.pop(name, None)

    def _fits(self, avail: float) -> bool:
        return self._height() <= avail + _SLACK

    def _width(self) -> float:
        width: float = 0  # summed as Table._calc_width sums it
        for w in self._base._argW:
            width = width + w
        return width

    def _height(self) -> float:
        tops = self._tops
        return tops[self._head] + tops[-1] - tops[self._start]
