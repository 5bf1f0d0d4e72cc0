"""The order status machine and the field-by-status tables of seed 004, as data."""

from __future__ import annotations

from typing import Final

NEW, SUGGESTED, ACTIVE, CLOSED, CANCELLED = "New", "Suggested", "Active", "Closed", "Cancelled"
STATUSES: Final = (NEW, SUGGESTED, ACTIVE, CLOSED, CANCELLED)
CREATE_STATUSES: Final = (SUGGESTED, NEW, ACTIVE, CANCELLED)

# UpdateOrder: which status an order may move to from each status.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    NEW: frozenset({SUGGESTED, ACTIVE, CANCELLED}),
    SUGGESTED: frozenset({ACTIVE, CANCELLED}),
    ACTIVE: frozenset({CANCELLED}),
    CLOSED: frozenset(),
    CANCELLED: frozenset(),
}

# UpdateQuantity: the statuses in which each line field may be changed.
QUANTITY_FIELDS: Final[dict[str, frozenset[str]]] = {
    "ReceivedQuantity": frozenset({ACTIVE}),
    "CancelledQuantity": frozenset({ACTIVE}),
    "TotalQuantity": frozenset({NEW, SUGGESTED, ACTIVE}),
    "ExpectedDate": frozenset({ACTIVE}),
}

# UpdateOrder: the statuses in which each order field may be changed.
ORDER_FIELDS: Final[dict[str, frozenset[str]]] = {
    "Status": frozenset({NEW, SUGGESTED, ACTIVE}),
    "ShippingDate": frozenset({ACTIVE}),
    "ReceivedByVendorDate": frozenset({ACTIVE}),
    "TrackingNumber": frozenset({ACTIVE}),
    "Reference": frozenset({NEW, SUGGESTED, ACTIVE}),
    "Notes": frozenset(STATUSES),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def field_allowed(table: dict[str, frozenset[str]], field: str, status: str) -> bool:
    return status in table.get(field, frozenset())


def allowed_text(table: dict[str, frozenset[str]], field: str) -> str:
    """Human list of the statuses in which ``field`` may change, in table order."""
    allowed = [s for s in STATUSES if s in table.get(field, frozenset())]
    return ", ".join(allowed) if allowed else "never"


def transition_error(current: str, target: str) -> str:
    allowed = sorted(TRANSITIONS.get(current, frozenset()), key=STATUSES.index)
    if target in (NEW, CLOSED):
        how = "set automatically" if target == CLOSED else "only given at creation"
        return f"Status: '{target}' cannot be set ({how})"
    if not allowed:
        return f"Status: a {current} order cannot change status"
    return (
        f"Status: cannot change from {current} to {target}; "
        f"allowed from {current}: {', '.join(allowed)}"
    )
