"""UpdateQuantity and UpdateOrder on plain order states: the field-by-status tables of seed
004 (every status x field), line resolution, quantity rules and the effects decided."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.erp.schemas import UpdateOrderRequest, UpdateQuantityRequest
from dispatch.rules import status as st
from dispatch.rules.types import (
    DispatchPlan,
    ItemRef,
    ItemVendorRef,
    LineState,
    OrderState,
    RefSnapshot,
    TransactionPlan,
    VendorRef,
)
from dispatch.rules.update import missing_order, update_order, update_quantity
from dispatch.vocabulary import DispatchKind

# Seed 004, written out independently of the implementation's tables.
SEED_QUANTITY = {
    "ReceivedQuantity": {"Active"},
    "CancelledQuantity": {"Active"},
    "TotalQuantity": {"New", "Suggested", "Active"},
    "ExpectedDate": {"Active"},
}
SEED_ORDER = {
    "ShippingDate": {"Active"},
    "ReceivedByVendorDate": {"Active"},
    "TrackingNumber": {"Active"},
    "Reference": {"New", "Suggested", "Active"},
    "Notes": {"New", "Suggested", "Active", "Closed", "Cancelled"},
}
EMAIL = {"Channel": {"IsEmail": True}, "Email": {"IsXml": True}}


def ref(*, overstock: bool = False, send_changes: bool = False) -> RefSnapshot:
    return RefSnapshot(
        vendors={"V": VendorRef("V", allow_overstock=overstock, send_changes=send_changes)},
        items={"Q": ItemRef("Q", {"V": ItemVendorRef(quoted=True)}),
               "N": ItemRef("N", {"V": ItemVendorRef(quoted=False)})})


def order(status: str, *lines: LineState, device: str | None = "D",
          send_options: dict[str, Any] | None = None, dispatches: int = 1) -> OrderState:
    lines = lines or (LineState("L1", 0, "N", None, None, total=10, received=2, cancelled=1),)
    return OrderState("PO1", "V", "Main", device, status, send_options, dispatches, list(lines))


def qty(*entries: dict[str, Any]) -> UpdateQuantityRequest:
    return UpdateQuantityRequest.model_validate(
        {"OrderId": "PO1", "PurchaseOrderItems": list(entries)})


# --- the field-by-status tables ----------------------------------------------------------


@pytest.mark.parametrize("status", st.STATUSES)
@pytest.mark.parametrize("field", sorted(SEED_ORDER))
def test_order_fields_by_status(status: str, field: str) -> None:
    value = "2024-01-02T03:04:05Z" if field.endswith("Date") else "x"
    req = UpdateOrderRequest.model_validate({"OrderId": "PO1", field: value})
    out = update_order(order(status), req)
    if status in SEED_ORDER[field]:
        assert not out.failed, out.order_errors
        assert out.order_changes
    else:
        assert out.failed
        assert out.order_errors[0].startswith(f"{field}: cannot be changed while the order is "
                                              f"{status}")


@pytest.mark.parametrize("status", st.STATUSES)
@pytest.mark.parametrize("field", sorted(SEED_QUANTITY))
def test_quantity_fields_by_status(status: str, field: str) -> None:
    value: object = {"TotalQuantity": 12, "ReceivedQuantity": 3, "CancelledQuantity": 2,
                     "ExpectedDate": "2030-01-01T00:00:00Z"}[field]
    out = update_quantity(order(status), qty({"Id": "L1", field: value}), ref(overstock=True))
    if status in SEED_QUANTITY[field]:
        assert not out.failed, out.all_errors()
        assert "L1" in out.line_changes
    else:
        assert out.failed
        assert out.line_errors[0][0].startswith(
            f"PurchaseOrderItems[0].{field}: cannot be changed while the order is {status}")


# --- line resolution ---------------------------------------------------------------------

STOCK_LEVEL = (  # an order without an order-level device: lines per device
    LineState("A1", 0, "Q", "D1", None, total=5),
    LineState("A2", 1, "Q", "D2", None, total=5),
    LineState("B1", 2, "N", "D1", None, total=5),
    LineState("C1", 3, None, None, "CUSTOM", total=5),
)
RESOLVED = [
    ("by id", None, {"Id": "A2"}, "A2"),
    ("by item on its only device", None, {"ItemId": "N", "DeviceId": "D1"}, "B1"),
    ("by item and device", None, {"ItemId": "Q", "DeviceId": "D2"}, "A2"),
    ("custom line by id", None, {"Id": "C1"}, "C1"),
    ("order device, by item", "D", {"ItemId": "N"}, "B1"),
    ("order device, device repeated", "D", {"ItemId": "N", "DeviceId": "D"}, "B1"),
]


@pytest.mark.parametrize(("case", "device", "entry", "line_id"), RESOLVED,
                         ids=[c[0] for c in RESOLVED])
def test_lines_resolve(case: str, device: str | None, entry: dict[str, Any],
                       line_id: str) -> None:
    lines = STOCK_LEVEL if device is None else (
        LineState("A1", 0, "Q", None, None, total=5), LineState("B1", 1, "N", None, None, 5))
    state = order("New", *lines, device=device)
    out = update_quantity(state, qty({**entry, "TotalQuantity": 9}), ref())
    assert not out.failed, out.all_errors()
    assert out.resolved_lines == {0: line_id}
    assert out.line_changes == {line_id: {"total_quantity": 9}}


UNRESOLVED = [
    ("id with item", None, {"Id": "A1", "ItemId": "Q"}, "Id: give Id alone"),
    ("id with device", None, {"Id": "A1", "DeviceId": "D1"}, "Id: give Id alone"),
    ("unknown id", None, {"Id": "ZZ"}, "Id: order 'PO1' has no line 'ZZ'"),
    ("neither id nor item", None, {"TotalQuantity": 1}, "Id: required"),
    ("stock-level order needs device", None, {"ItemId": "Q"},
     "DeviceId: required for a stock-level order (item 'Q' is ordered for devices D1, D2)"),
    ("item not on that device", None, {"ItemId": "N", "DeviceId": "D2"},
     "ItemId: order 'PO1' has no line of item 'N' on device 'D2'"),
    ("item not ordered", None, {"ItemId": "X", "DeviceId": "D1"},
     "ItemId: order 'PO1' has no line of item 'X'"),
    ("another device than the order's", "D", {"ItemId": "N", "DeviceId": "E"},
     "DeviceId: the order is for device 'D', not 'E'"),
    ("two lines of the item", "D", {"ItemId": "Q"},
     "ItemId: order 'PO1' has 2 lines of item 'Q'; reference the line by Id"),
]


@pytest.mark.parametrize(("case", "device", "entry", "expected"), UNRESOLVED,
                         ids=[c[0] for c in UNRESOLVED])
def test_unresolved_lines_are_errors(case: str, device: str | None, entry: dict[str, Any],
                                     expected: str) -> None:
    lines = STOCK_LEVEL if device is None else (
        LineState("A1", 0, "Q", None, None, total=5), LineState("A2", 1, "Q", None, None, 5),
        LineState("B1", 2, "N", None, None, 5))
    out = update_quantity(order("New", *lines, device=device),
                          qty({"Id": "A1", "TotalQuantity": 2}, {**entry, "TotalQuantity": 9}),
                          ref())
    assert out.failed and list(out.line_errors) == [1]
    assert len(out.line_errors[1]) == 1, out.line_errors
    assert out.line_errors[1][0].startswith(f"PurchaseOrderItems[1].{expected}")
    assert out.line_changes == {} and out.transactions == []


def test_the_same_line_twice_is_an_error() -> None:
    state = order("New", LineState("A1", 0, "Q", None, None, total=5))
    out = update_quantity(state, qty({"Id": "A1", "TotalQuantity": 6},
                                     {"ItemId": "Q", "TotalQuantity": 7}), ref())
    assert out.line_errors == {1: [
        "PurchaseOrderItems[1]: refers to line 'A1' again (see PurchaseOrderItems[0])"]}


def test_no_entries_and_missing_order() -> None:
    assert update_quantity(order("New"), qty(), ref()).order_errors == [
        "PurchaseOrderItems: at least one line to update is required"]
    assert missing_order(None).order_errors == [
        "OrderId: required; give the Id returned by Create"]
    assert missing_order("PO9").order_errors == ["OrderId: order 'PO9' does not exist"]


# --- quantity rules and effects ----------------------------------------------------------

QUANTITY_ERRORS = [
    ("total to zero", "New", {"TotalQuantity": 0}, ref(), ".TotalQuantity: must be > 0"),
    ("total decreases on Active", "Active", {"TotalQuantity": 9}, ref(overstock=True),
     ".TotalQuantity: cannot decrease on an Active order (10 -> 9)"),
    ("increase of an unquoted item, no overstock", "Active", {"TotalQuantity": 11}, ref(),
     ".TotalQuantity: cannot increase on an Active order: item 'N' is not quoted"),
    ("received decreases", "Active", {"ReceivedQuantity": 1}, ref(),
     ".ReceivedQuantity: cannot decrease (2 -> 1)"),
    ("cancelled decreases", "Active", {"CancelledQuantity": 0}, ref(),
     ".CancelledQuantity: cannot decrease (1 -> 0)"),
    ("received + cancelled over total", "Active", {"ReceivedQuantity": 10}, ref(),
     ": ReceivedQuantity + CancelledQuantity (10 + 1) exceeds TotalQuantity (10)"),
    ("total under received + cancelled", "New", {"TotalQuantity": 2}, ref(),
     ": ReceivedQuantity + CancelledQuantity (2 + 1) exceeds TotalQuantity (2)"),
]


@pytest.mark.parametrize(("case", "status", "fields", "snapshot", "expected"), QUANTITY_ERRORS,
                         ids=[c[0] for c in QUANTITY_ERRORS])
def test_quantity_rules(case: str, status: str, fields: dict[str, Any], snapshot: RefSnapshot,
                        expected: str) -> None:
    out = update_quantity(order(status), qty({"Id": "L1", **fields}), snapshot)
    assert out.failed
    assert any(e.startswith(f"PurchaseOrderItems[0]{expected}") for e in out.line_errors[0]), \
        out.line_errors


@pytest.mark.parametrize("snapshot", [ref(overstock=True), ref()])
def test_increase_on_active_needs_quote_or_overstock(snapshot: RefSnapshot) -> None:
    quoted = LineState("L1", 0, "Q", None, None, total=10)
    assert not update_quantity(order("Active", quoted), qty({"Id": "L1", "TotalQuantity": 12}),
                               snapshot).failed


def test_active_quantities_make_transactions_and_a_change_dispatch() -> None:
    state = order("Active", LineState("L1", 0, "Q", None, None, total=10, received=2),
                  LineState("L2", 1, "N", None, None, total=4), send_options=EMAIL, dispatches=1)
    out = update_quantity(state, qty({"Id": "L1", "TotalQuantity": 12, "ReceivedQuantity": 5},
                                     {"Id": "L2", "CancelledQuantity": 1}),
                          ref(send_changes=True))
    assert not out.failed, out.all_errors()
    assert out.line_changes == {
        "L1": {"total_quantity": 12, "received_quantity": 5}, "L2": {"cancelled_quantity": 1}}
    assert out.transactions == [TransactionPlan("Purchase", "L1", 2),
                                TransactionPlan("Receive", "L1", 3),
                                TransactionPlan("Cancel", "L2", 1)]
    assert out.dispatches == [DispatchPlan(DispatchKind.CHANGE, 2, 1, [
        {"PurchaseOrderItemId": "L1", "Field": "TotalQuantity", "Old": 10, "New": 12},
        {"PurchaseOrderItemId": "L2", "Field": "CancelledQuantity", "Old": 0, "New": 1}])]
    assert "status" not in out.order_changes


@pytest.mark.parametrize(("status", "fields", "send_changes", "changes"), [
    ("Active", {"TotalQuantity": 12}, False, False),  # vendor does not want changes
    ("Active", {"ReceivedQuantity": 3}, True, False),  # receiving is no change to the vendor
    ("Active", {"ExpectedDate": "2030-01-01T00:00:00Z"}, True, False),
    ("New", {"TotalQuantity": 12}, True, False),  # nothing was sent yet
    ("Active", {"CancelledQuantity": 2}, True, True),
])
def test_change_dispatch_only_when_told_and_relevant(status: str, fields: dict[str, Any],
                                                     send_changes: bool, changes: bool) -> None:
    out = update_quantity(order(status, LineState("L1", 0, "Q", None, None, total=10)),
                          qty({"Id": "L1", **fields}), ref(send_changes=send_changes))
    assert not out.failed, out.all_errors()
    assert [d.kind for d in out.dispatches] == ([DispatchKind.CHANGE] if changes else [])


def test_non_active_changes_make_no_transactions() -> None:
    out = update_quantity(order("Suggested"), qty({"Id": "L1", "TotalQuantity": 20}), ref())
    assert out.line_changes == {"L1": {"total_quantity": 20}} and out.transactions == []


def test_nothing_changed_is_no_change() -> None:
    out = update_quantity(order("Active"), qty({"Id": "L1", "TotalQuantity": 10}),
                          ref(send_changes=True))
    assert not out.failed and out.line_changes == {} and out.dispatches == []
    assert out.resolved_lines == {0: "L1"}


def test_active_order_closes_when_nothing_is_outstanding() -> None:
    state = order("Active", LineState("L1", 0, "N", None, None, total=10, received=2),
                  LineState("L2", 1, "N", None, None, total=3, received=3))
    out = update_quantity(state, qty({"Id": "L1", "ReceivedQuantity": 8,
                                      "CancelledQuantity": 2}), ref())
    assert out.order_changes == {"status": st.CLOSED}
    partly = update_quantity(state, qty({"Id": "L1", "ReceivedQuantity": 8}), ref())
    assert "status" not in partly.order_changes


# --- UpdateOrder effects -----------------------------------------------------------------

LINES = (LineState("L1", 0, "N", None, None, total=10, received=2, cancelled=1),
         LineState("L2", 1, "N", None, None, total=4, received=4))


@pytest.mark.parametrize(("current", "target", "transactions", "dispatch"), [
    ("New", "Active", [("Purchase", "L1", 10), ("Purchase", "L2", 4)],
     (DispatchKind.PURCHASE, 2, 1)),
    ("Suggested", "Active", [("Purchase", "L1", 10), ("Purchase", "L2", 4)],
     (DispatchKind.PURCHASE, 2, 1)),
    ("Active", "Cancelled", [("Cancel", "L1", 7)],  # L2 has nothing outstanding
     (DispatchKind.CANCELLATION, 2, 1)),
    ("New", "Cancelled", [], None),  # nothing was purchased: nothing to tell
    ("Suggested", "Cancelled", [], None),
    ("New", "Suggested", [], None),
])
@pytest.mark.parametrize("send_options", [EMAIL, None])
def test_status_effects(current: str, target: str, transactions: list[tuple[str, str, int]],
                        dispatch: tuple[Any, ...] | None,
                        send_options: dict[str, Any] | None) -> None:
    out = update_order(order(current, *LINES, send_options=send_options),
                       UpdateOrderRequest(OrderId="PO1", Status=target))
    assert not out.failed and out.order_changes == {"status": target}
    assert [(t.kind, t.line_id, t.quantity) for t in out.transactions] == transactions
    expected = [dispatch] if dispatch and send_options else []
    assert [(d.kind, d.number, d.replaces_number) for d in out.dispatches] == expected


def test_first_dispatch_replaces_nothing() -> None:
    out = update_order(order("New", send_options=EMAIL, dispatches=0),
                       UpdateOrderRequest(OrderId="PO1", Status="Active"))
    assert out.dispatches == [DispatchPlan(DispatchKind.PURCHASE, 1, None)]


def test_update_order_does_not_mutate_the_state() -> None:
    state = order("Active", *LINES, send_options=EMAIL)
    update_order(state, UpdateOrderRequest(OrderId="PO1", Status="Cancelled", Notes="n"))
    update_quantity(state, qty({"Id": "L1", "ReceivedQuantity": 5}), ref())
    assert state.status == "Active" and state.lines[0].received == 2


class CountingLines(list):  # type: ignore[type-arg]
    """An order's lines that count how often they are walked."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingLines.walks += 1
        return super().__iter__()


@pytest.mark.parametrize("by", ["Id", "ItemId"])
def test_resolving_entries_walks_the_order_a_fixed_number_of_times(by: str) -> None:
    """Issue 12: nothing quadratic in a request. 2,000 entries on a 2,000-line order walk
    its lines a constant number of times (not once per entry, as a scan per entry did)."""
    n = 2000
    lines = CountingLines(LineState(f"L{i}", i, f"I{i}", None, None, total=10)
                          for i in range(n))
    state = order("Active", device="D")
    state.lines = lines
    snapshot = RefSnapshot(vendors={"V": VendorRef("V")},
                           items={f"I{i}": ItemRef(f"I{i}") for i in range(n)})
    entries = [{"Id": f"L{i}", "ReceivedQuantity": 1} if by == "Id"
               else {"ItemId": f"I{i}", "ReceivedQuantity": 1} for i in range(n)]
    CountingLines.walks = 0
    out = update_quantity(state, qty(*entries), snapshot)
    assert not out.failed, out.all_errors()[:3]
    assert len(out.line_changes) == n
    assert CountingLines.walks <= 5, CountingLines.walks
