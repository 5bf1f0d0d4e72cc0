"""DocumentContext: construction, change normalisation, totals."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.documents.context import (
    Change,
    Dispatch,
    DocumentContext,
    Line,
    Order,
    Party,
    compute_totals,
)


def _ctx(**kw: object) -> DocumentContext:
    lines = [
        Line(Id="L1", Position=1, ItemId="A", TotalQuantity=10, PricePerPiece=Decimal("2.50")),
        Line(Id="L2", Position=2, CustomItemId="C", TotalQuantity=4, CancelledQuantity=1),
    ]
    base: dict[str, object] = dict(order=Order(Id="PO1"), lines=lines, vendor=Party(name="V"))
    base.update(kw)
    return DocumentContext(**base)  # type: ignore[arg-type]


def test_defaults_and_immutability() -> None:
    ctx = _ctx()
    assert isinstance(ctx.lines, tuple)
    assert ctx.dispatch.kind == "purchase" and ctx.dispatch.number == 1
    assert ctx.dispatch.replaces_number is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.order = Order(Id="X")  # type: ignore[misc]


def test_changes_from_dicts_get_position_and_item_code() -> None:
    ctx = _ctx(
        dispatch=Dispatch(kind="change", number=2, replaces_number=1),
        changes=[{"PurchaseOrderItemId": "L2", "Field": "CancelledQuantity", "Old": 0, "New": 1}],
    )
    (change,) = ctx.change_list
    assert isinstance(change, Change)
    assert (change.Position, change.ItemCode, change.Old, change.New) == (2, "C", 0, 1)
    assert ctx.change_notes == {"L2": "CancelledQuantity: 0 → 1"}
    assert ctx.changed_line_ids == frozenset({"L2"})


def test_change_dict_missing_field_is_named() -> None:
    with pytest.raises(ValueError, match="'Field' is missing"):
        _ctx(changes=[{"PurchaseOrderItemId": "L1", "Old": 1, "New": 2}])


@pytest.mark.parametrize("kind, number", [("refund", 1), ("purchase", 0)])
def test_dispatch_rejects_bad_kind_or_number(kind: str, number: int) -> None:
    with pytest.raises(ValueError):
        Dispatch(kind=kind, number=number)  # type: ignore[arg-type]


def test_line_properties() -> None:
    line = Line(
        Id="L",
        Position=1,
        CustomItemId="C",
        TotalQuantity=10,
        ReceivedQuantity=3,
        CancelledQuantity=2,
        PricePerPiece=Decimal("1.5"),
    )
    assert line.Code == "C" and line.IsCustom
    assert (line.NetQuantity, line.OpenQuantity) == (8, 5)
    assert line.Amount == Decimal("12.0")


def test_totals_of_sample() -> None:
    totals = _ctx().totals
    assert totals.line_count == 2
    assert (totals.quantity, totals.cancelled, totals.net_quantity) == (14, 1, 13)
    assert totals.amount == Decimal("25.00")
    assert totals.priced_lines == 1 and not totals.fully_priced


_line = st.builds(
    lambda total, rec, canc, price: Line(
        Id="L",
        Position=1,
        ItemId="I",
        TotalQuantity=total,
        ReceivedQuantity=min(rec, total),
        CancelledQuantity=min(canc, total - min(rec, total)),
        PricePerPiece=price,
    ),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.none() | st.decimals(min_value=0, max_value=10_000, places=2),
)


@given(st.lists(_line, max_size=30))
def test_totals_are_the_sums(lines: list[Line]) -> None:
    totals = compute_totals(lines)
    assert totals.quantity == sum(x.TotalQuantity for x in lines)
    assert totals.open_quantity == sum(x.OpenQuantity for x in lines)
    assert totals.amount == sum((x.Amount for x in lines if x.Amount is not None), Decimal(0))
    assert totals.fully_priced == all(x.PricePerPiece is not None for x in lines)
