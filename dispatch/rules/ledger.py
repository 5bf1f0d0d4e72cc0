"""The ledger invariant of SPEC 3, as a pure check."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dispatch.rules import status as st
from dispatch.rules.types import LineState

SIGN = {"Purchase": 1, "Cancel": -1, "Receive": -1}


def expected_outstanding(order_status: str, line: LineState) -> int:
    """Outstanding quantity the ledger must show: Total - Received - Cancelled when Active."""
    return line.outstanding if order_status == st.ACTIVE else 0


def ledger_violations(
    order_status: str, lines: Iterable[LineState], transactions: Iterable[tuple[str, str, int]]
) -> list[str]:
    """Lines whose sum(Purchase) - sum(Cancel) - sum(Receive) differs from the outstanding.

    ``transactions`` are ``(kind, line_id, quantity)``.
    """
    balance: dict[str, int] = defaultdict(int)
    for kind, line_id, quantity in transactions:
        if quantity <= 0:
            return [f"{line_id}: {kind} transaction of {quantity} (must be > 0)"]
        balance[line_id] += SIGN[kind] * quantity
    problems = []
    for line in lines:
        want = expected_outstanding(order_status, line)
        have = balance.get(line.id, 0)
        if have != want or have < 0:
            problems.append(f"{line.id}: ledger {have}, outstanding {want} ({order_status})")
    return problems
