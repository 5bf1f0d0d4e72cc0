"""The status machine and both field-by-status tables, over every status x field."""

from __future__ import annotations

import pytest

from dispatch.erp.schemas import UpdateOrderRequest, UpdateQuantityRequest
from dispatch.rules import status as st
from dispatch.rules.types import LineState, OrderState, RefSnapshot, VendorRef
from dispatch.rules.update import update_order, update_quantity

# Seed 004, written out independently of the implementation's tables.
SEED_TRANSITIONS = {
    ("New", "Suggested"), ("New", "Active"), ("New", "Cancelled"),
    ("Suggested", "Active"), ("Suggested", "Cancelled"),
    ("Active", "Cancelled"),
}
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
REF = RefSnapshot(vendors={"V": VendorRef("V", allow_overstock=True)})


def _order(status: str) -> OrderState:
    line = LineState("L1", 0, "I", None, None, total=10, received=2, cancelled=1)
    return OrderState("PO1", "V", "Main", "D", status, None, 1, [line])


@pytest.mark.parametrize("current", st.STATUSES)
@pytest.mark.parametrize("target", ["Suggested", "Active", "Cancelled"])
def test_transitions(current: str, target: str) -> None:
    expected = (current, target) in SEED_TRANSITIONS
    assert st.can_transition(current, target) is expected
    out = update_order(_order(current), UpdateOrderRequest(OrderId="PO1", Status=target))
    if expected:
        assert not out.failed
        assert out.order_changes["status"] == target
    elif current == target and current in ("Suggested", "Active"):
        assert not out.failed and out.order_changes == {}  # no-op, not an error
    else:
        assert out.failed
        assert all(e.startswith("Status:") for e in out.order_errors), out.order_errors


@pytest.mark.parametrize("status", st.STATUSES)
@pytest.mark.parametrize("field", sorted(SEED_ORDER))
def test_order_fields_by_status(status: str, field: str) -> None:
    value = "2024-01-02T03:04:05Z" if field.endswith("Date") else "x"
    req = UpdateOrderRequest.model_validate({"OrderId": "PO1", field: value})
    out = update_order(_order(status), req)
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
    req = UpdateQuantityRequest.model_validate(
        {"OrderId": "PO1", "PurchaseOrderItems": [{"Id": "L1", field: value}]})
    out = update_quantity(_order(status), req, REF)
    if status in SEED_QUANTITY[field]:
        assert not out.failed, out.all_errors()
        assert "L1" in out.line_changes
    else:
        assert out.failed
        assert out.line_errors[0][0].startswith(
            f"PurchaseOrderItems[0].{field}: cannot be changed while the order is {status}")


def test_new_and_closed_cannot_be_targets() -> None:
    for target in ("New", "Closed"):
        for current in st.STATUSES:
            assert not st.can_transition(current, target)
