"""The status machine: every transition, by the table and through UpdateOrder.

(The field-by-status tables are exercised in ``test_update.py``.)
"""

from __future__ import annotations

import pytest

from dispatch.erp.schemas import UpdateOrderRequest
from dispatch.rules import status as st
from dispatch.rules.types import LineState, OrderState
from dispatch.rules.update import update_order

# Seed 004, written out independently of the implementation's tables.
SEED_TRANSITIONS = {
    ("New", "Suggested"), ("New", "Active"), ("New", "Cancelled"),
    ("Suggested", "Active"), ("Suggested", "Cancelled"),
    ("Active", "Cancelled"),
}


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


def test_new_and_closed_cannot_be_targets() -> None:
    for target in ("New", "Closed"):
        for current in st.STATUSES:
            assert not st.can_transition(current, target)
