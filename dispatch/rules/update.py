"""PurchaseOrder/UpdateQuantity and PurchaseOrder/UpdateOrder on an order's current state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatch.erp.schemas import QuantityItem, UpdateOrderRequest, UpdateQuantityRequest
from dispatch.rules import status as st
from dispatch.rules.types import (
    Decision,
    DispatchPlan,
    LineState,
    OrderState,
    RefSnapshot,
    TransactionPlan,
    VendorRef,
)
from dispatch.vocabulary import DispatchKind

# request field -> LineState attribute / column name
QUANTITY_COLUMNS = {
    "TotalQuantity": ("total", "total_quantity"),
    "ReceivedQuantity": ("received", "received_quantity"),
    "CancelledQuantity": ("cancelled", "cancelled_quantity"),
    "ExpectedDate": ("expected_date", "expected_date"),
}
ORDER_COLUMNS = {
    "Status": "status",
    "ShippingDate": "shipping_date",
    "ReceivedByVendorDate": "received_by_vendor_date",
    "TrackingNumber": "tracking_number",
    "Reference": "reference",
    "Notes": "notes",
}


def missing_order(order_id: str | None) -> Decision:
    """The refusal of an update naming no order, or one that does not exist."""
    out = Decision()
    if not order_id:
        out.order_errors.append("OrderId: required; give the Id returned by Create")
    else:
        out.order_errors.append(f"OrderId: order '{order_id}' does not exist")
    return out


@dataclass(frozen=True)
class LineIndex:
    """An order's lines by id and by item, built once per request: resolving every entry
    of an UpdateQuantity stays linear in the request, whatever the order's size."""

    by_id: dict[str, LineState]
    by_item: dict[str, list[LineState]]

    @classmethod
    def of(cls, order: OrderState) -> LineIndex:
        by_item: dict[str, list[LineState]] = {}
        for line in order.lines:
            if line.item_id:
                by_item.setdefault(line.item_id, []).append(line)
        return cls({line.id: line for line in order.lines}, by_item)


def _resolve_line(order: OrderState, lines: LineIndex, entry: QuantityItem, path: str,
                  out: Decision, index: int) -> LineState | None:
    """The line ``entry`` refers to (by Id, or by ItemId and DeviceId), else an error."""
    if entry.Id:
        if entry.ItemId or entry.DeviceId:
            out.line_error(
                index, f"{path}.Id: give Id alone, or ItemId (and DeviceId) without Id"
            )
            return None
        found = lines.by_id.get(entry.Id)
        if found is not None:
            return found
        out.line_error(index, f"{path}.Id: order '{order.id}' has no line '{entry.Id}'")
        return None
    if not entry.ItemId:
        out.line_error(index, f"{path}.Id: required (or reference the line by ItemId)")
        return None
    candidates = lines.by_item.get(entry.ItemId, [])
    if entry.DeviceId:
        if order.device_id and entry.DeviceId != order.device_id:
            out.line_error(
                index,
                f"{path}.DeviceId: the order is for device '{order.device_id}', "
                f"not '{entry.DeviceId}'",
            )
            return None
        if not order.device_id:
            candidates = [line for line in candidates if line.device_id == entry.DeviceId]
    elif not order.device_id and any(line.device_id for line in candidates):
        devices = ", ".join(sorted({line.device_id or "-" for line in candidates}))
        out.line_error(
            index,
            f"{path}.DeviceId: required for a stock-level order "
            f"(item '{entry.ItemId}' is ordered for devices {devices})",
        )
        return None
    if not candidates:
        where = f" on device '{entry.DeviceId}'" if entry.DeviceId else ""
        out.line_error(
            index, f"{path}.ItemId: order '{order.id}' has no line of item '{entry.ItemId}'{where}"
        )
        return None
    if len(candidates) > 1:
        out.line_error(
            index,
            f"{path}.ItemId: order '{order.id}' has {len(candidates)} lines of item "
            f"'{entry.ItemId}'; reference the line by Id",
        )
        return None
    return candidates[0]


def update_quantity(
    order: OrderState, req: UpdateQuantityRequest, ref: RefSnapshot
) -> Decision:
    """Apply UpdateQuantity to ``order`` (not mutated); errors name field paths."""
    out = Decision()
    entries = req.PurchaseOrderItems or []
    if not entries:
        out.order_errors.append("PurchaseOrderItems: at least one line to update is required")
        return out
    vendor = ref.vendors.get(order.vendor_id)
    new_lines = {line.id: _copy(line) for line in order.lines}
    lines = LineIndex.of(order)
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        path = f"PurchaseOrderItems[{index}]"
        line = _resolve_line(order, lines, entry, path, out, index)
        if line is None:
            continue
        if line.id in seen:
            out.line_error(
                index,
                f"{path}: refers to line '{line.id}' again "
                f"(see PurchaseOrderItems[{seen[line.id]}])",
            )
            continue
        seen[line.id] = index
        out.resolved_lines[index] = line.id
        target = new_lines[line.id]
        for field, (attr, _column) in QUANTITY_COLUMNS.items():
            value = getattr(entry, field)
            if value is None:
                continue
            if not st.field_allowed(st.QUANTITY_FIELDS, field, order.status):
                out.line_error(
                    index,
                    f"{path}.{field}: cannot be changed while the order is {order.status} "
                    f"(allowed: {st.allowed_text(st.QUANTITY_FIELDS, field)})",
                )
                continue
            setattr(target, attr, value)
        _check_quantities(order, line, target, vendor, ref, path, index, out)
    if out.failed:
        return out
    _quantity_effects(order, new_lines, vendor, out)
    return out


def _copy(line: LineState) -> LineState:
    return LineState(**line.__dict__)


def _check_quantities(order: OrderState, old: LineState, new: LineState,
                      vendor: VendorRef | None, ref: RefSnapshot, path: str, index: int,
                      out: Decision) -> None:
    """Total, Received and Cancelled of one line after the update, against SPEC's rules."""
    if new.total != old.total:
        if new.total <= 0:
            out.line_error(index, f"{path}.TotalQuantity: must be > 0 (use CancelledQuantity)")
        elif order.status == st.ACTIVE:
            if new.total < old.total:
                out.line_error(
                    index,
                    f"{path}.TotalQuantity: cannot decrease on an Active order "
                    f"({old.total} -> {new.total}); raise CancelledQuantity instead",
                )
            else:
                item = ref.items.get(old.item_id) if old.item_id else None
                quoted = bool(item and (iv := item.vendors.get(order.vendor_id)) and iv.quoted)
                if not quoted and not (vendor and vendor.allow_overstock):
                    out.line_error(
                        index,
                        f"{path}.TotalQuantity: cannot increase on an Active order: item "
                        f"'{old.item_id or old.custom_item_id}' is not quoted for vendor "
                        f"'{order.vendor_id}' and the vendor does not allow overstock",
                    )
    for field, old_value, new_value in (
        ("ReceivedQuantity", old.received, new.received),
        ("CancelledQuantity", old.cancelled, new.cancelled),
    ):
        if new_value < old_value:
            out.line_error(
                index, f"{path}.{field}: cannot decrease ({old_value} -> {new_value})"
            )
    if new.received + new.cancelled > new.total:
        out.line_error(
            index,
            f"{path}: ReceivedQuantity + CancelledQuantity ({new.received} + {new.cancelled}) "
            f"exceeds TotalQuantity ({new.total})",
        )


def _quantity_effects(
    order: OrderState, new_lines: dict[str, LineState], vendor: VendorRef | None, out: Decision
) -> None:
    changes: list[dict[str, Any]] = []
    for old in order.lines:
        new = new_lines[old.id]
        cols: dict[str, Any] = {}
        for field, (attr, column) in QUANTITY_COLUMNS.items():
            before, after = getattr(old, attr), getattr(new, attr)
            if before != after:
                cols[column] = after
                if field in ("TotalQuantity", "CancelledQuantity"):
                    changes.append(
                        {"PurchaseOrderItemId": old.id, "Field": field, "Old": before, "New": after}
                    )
        if not cols:
            continue
        out.line_changes[old.id] = cols
        if order.status == st.ACTIVE:
            for kind, before, after in (
                ("Purchase", old.total, new.total),
                ("Cancel", old.cancelled, new.cancelled),
                ("Receive", old.received, new.received),
            ):
                if after > before:
                    out.transactions.append(TransactionPlan(kind, old.id, after - before))
    if order.status != st.ACTIVE:
        return
    if changes and vendor is not None and vendor.send_changes:
        n = order.dispatch_count + 1
        out.dispatches.append(
            DispatchPlan(DispatchKind.CHANGE, n, n - 1 if n > 1 else None, changes))
    if all(line.outstanding == 0 for line in new_lines.values()):
        out.order_changes["status"] = st.CLOSED


def update_order(order: OrderState, req: UpdateOrderRequest) -> Decision:
    """Apply UpdateOrder to ``order`` (not mutated); errors name fields."""
    out = Decision()
    for field, column in ORDER_COLUMNS.items():
        value = getattr(req, field)
        if value is None:
            continue
        if field == "Status" and value == order.status and value in (st.SUGGESTED, st.ACTIVE):
            continue  # already there: nothing to change
        if not st.field_allowed(st.ORDER_FIELDS, field, order.status):
            out.order_errors.append(
                f"{field}: cannot be changed while the order is {order.status} "
                f"(allowed: {st.allowed_text(st.ORDER_FIELDS, field)})"
            )
            continue
        if field == "Status" and not st.can_transition(order.status, value):
            out.order_errors.append(st.transition_error(order.status, value))
            continue
        out.order_changes[column] = value
    if out.failed:
        return out
    target = out.order_changes.get("status")
    n = order.dispatch_count
    has_channels = bool(order.plan.channels)
    if target == st.ACTIVE:
        out.transactions += [
            TransactionPlan("Purchase", line.id, line.total)
            for line in order.lines
            if line.total > 0
        ]
        if has_channels:
            out.dispatches.append(DispatchPlan(DispatchKind.PURCHASE, n + 1, n or None))
    elif target == st.CANCELLED and order.status == st.ACTIVE:
        out.transactions += [
            TransactionPlan("Cancel", line.id, line.outstanding)
            for line in order.lines
            if line.outstanding > 0
        ]
        if has_channels:
            out.dispatches.append(DispatchPlan(DispatchKind.CANCELLATION, n + 1, n or None))
    return out

