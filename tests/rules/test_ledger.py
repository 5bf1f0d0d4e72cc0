"""The ledger invariant under random operation sequences (hypothesis), on the pure rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as hs

from dispatch.erp.schemas import UpdateOrderRequest, UpdateQuantityRequest
from dispatch.rules import status as st
from dispatch.rules.create import initial_effects
from dispatch.rules.ledger import ledger_violations
from dispatch.rules.types import (
    Decision,
    ItemRef,
    ItemVendorRef,
    LineState,
    OrderState,
    RefSnapshot,
    VendorRef,
)
from dispatch.rules.update import QUANTITY_COLUMNS, update_order, update_quantity

COLUMN_TO_ATTR = {column: attr for attr, column in QUANTITY_COLUMNS.values()}


def _ref(overstock: bool) -> RefSnapshot:
    return RefSnapshot(
        vendors={"V": VendorRef("V", allow_overstock=overstock, send_changes=True)},
        items={"Q": ItemRef("Q", {"V": ItemVendorRef(quoted=True)}),
               "N": ItemRef("N", {"V": ItemVendorRef(quoted=False)})},
    )


def _apply(order: OrderState, out: Decision, ledger: list[tuple[str, str, int]]) -> OrderState:
    for line in order.lines:
        for column, value in out.line_changes.get(line.id, {}).items():
            setattr(line, COLUMN_TO_ATTR[column], value)
    order.status = out.order_changes.get("status", order.status)
    order.dispatch_count = max([order.dispatch_count, *(d.number for d in out.dispatches)])
    ledger.extend((t.kind, t.line_id, t.quantity) for t in out.transactions)
    return order


line_field = hs.sampled_from(["TotalQuantity", "ReceivedQuantity", "CancelledQuantity"])
operation = hs.one_of(
    hs.tuples(hs.just("status"), hs.sampled_from(["Suggested", "Active", "Cancelled"])),
    hs.tuples(hs.just("qty"), hs.integers(0, 2), line_field, hs.integers(-2, 25)),
)


@settings(max_examples=400, deadline=None)
@given(
    initial=hs.sampled_from(st.CREATE_STATUSES),
    totals=hs.lists(hs.tuples(hs.sampled_from(["Q", "N"]), hs.integers(1, 20)),
                    min_size=1, max_size=3),
    overstock=hs.booleans(),
    ops=hs.lists(operation, max_size=25),
)
def test_ledger_invariant_holds_after_every_operation(initial, totals, overstock, ops) -> None:
    ref = _ref(overstock)
    lines = [LineState(f"L{i}", i, item, None, None, qty) for i, (item, qty) in enumerate(totals)]
    order = OrderState("PO1", "V", "Main", "D", initial, {"Channel": {"IsEmail": True}}, 0, lines)
    ledger: list[tuple[str, str, int]] = []
    txs, dispatches = initial_effects(initial, [(x.id, x.total) for x in lines], has_channels=True)
    ledger.extend((t.kind, t.line_id, t.quantity) for t in txs)
    order.dispatch_count = len(dispatches)
    assert ledger_violations(order.status, order.lines, ledger) == []
    for op in ops:
        before = [(x.total, x.received, x.cancelled) for x in order.lines]
        if op[0] == "status":
            out = update_order(order, UpdateOrderRequest(OrderId="PO1", Status=op[1]))
        else:
            _, index, field, value = op
            if index >= len(order.lines):
                continue
            req = UpdateQuantityRequest.model_validate({"OrderId": "PO1", "PurchaseOrderItems": [
                {"Id": order.lines[index].id, field: value}]})
            out = update_quantity(order, req, ref)
        if out.failed:
            # a failed request changes nothing and produces nothing
            assert not out.transactions and not out.dispatches
            assert before == [(x.total, x.received, x.cancelled) for x in order.lines]
            continue
        status_before = order.status
        _apply(order, out, ledger)
        assert ledger_violations(order.status, order.lines, ledger) == []
        for line in order.lines:
            assert line.received + line.cancelled <= line.total
            assert line.total > 0
        if status_before == st.ACTIVE and order.status == st.ACTIVE:
            assert any(x.outstanding > 0 for x in order.lines)  # else it must have closed


def test_ledger_detects_imbalance() -> None:
    line = LineState("L0", 0, "Q", None, None, total=5)
    assert ledger_violations("Active", [line], [("Purchase", "L0", 4)]) != []
    assert ledger_violations("Active", [line], [("Purchase", "L0", 5)]) == []
    assert ledger_violations("Cancelled", [line], [("Purchase", "L0", 5)]) != []
    assert ledger_violations("Cancelled", [line], [("Purchase", "L0", 5),
                                                   ("Cancel", "L0", 5)]) == []
