"""The durable ERP request queue: accept, execute one request atomically, report results.

``accept`` stores a shape-valid request before the API answers. ``execute`` runs one stored
request inside the caller's transaction (a SAVEPOINT per request, see ``executor.py``):
rules decide, the store writes order, lines, transactions and the outbox together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from dispatch.erp.schemas import (
    CreateRequest,
    UpdateOrderRequest,
    UpdateQuantityRequest,
)
from dispatch.rules import create as create_rules
from dispatch.rules import status as st
from dispatch.rules import update as update_rules
from dispatch.rules.deliveries import outbox_entries
from dispatch.rules.send_options import parse_send_options
from dispatch.rules.types import Decision, LineState, OrderState, RefSnapshot
from dispatch.store import erp_requests as request_store
from dispatch.store import orders as order_store


@dataclass
class Execution:
    """The result of one request, as GetRequestResult shows it."""

    status: str  # Completed | Failed
    message: str
    result: dict[str, Any]
    order_id: str | None
    new_jobs: list[tuple[str, int, str]] = field(default_factory=list)  # (order, job id, kind)


def request_row(*, kind: str, raw: bytes, model: Any, idempotency_key: str | None
                ) -> dict[str, Any]:
    """The row to store for a shape-valid request.

    The raw body is stored (it is what was validated, and re-validates identically); the
    idempotency hash, only needed with a key, is over the parsed model so formatting
    differences do not matter.
    """
    body_hash = None
    if idempotency_key is not None:
        canonical = model.model_dump_json(exclude_unset=True)
        body_hash = hashlib.sha256(f"{kind}\n{canonical}".encode()).hexdigest()
    return request_store.new_row(
        kind=kind, body=raw.decode("utf-8"), order_id=getattr(model, "OrderId", None),
        idempotency_key=idempotency_key, body_hash=body_hash)


def accept_row(engine: Engine, *, row: dict[str, Any]) -> request_store.Accepted:
    """Durably store a request row; returns its GUID (same GUID for a replayed key)."""
    return request_store.accept_request(engine, row=row)


def accept(engine: Engine, *, kind: str, raw: bytes, model: Any,
           idempotency_key: str | None) -> request_store.Accepted:
    """Durably store a shape-valid request (committed before this returns)."""
    return accept_row(engine, row=request_row(kind=kind, raw=raw, model=model,
                                              idempotency_key=idempotency_key))


def execute(conn: Connection, *, kind: str, body: str, guid: str, ref: RefSnapshot,
            now: dt.datetime, numbers: order_store.Numbers | None = None,
            model: Any = None) -> Execution:
    """Run one stored request in ``conn``'s transaction; ``numbers`` hands out order and line
    numbers for a batch (default: this request's own); ``model`` is ``body`` already
    validated (default: validated here)."""
    if kind == "Create":
        own = order_store.Numbers(conn) if numbers is None else None
        req = model if isinstance(model, CreateRequest) else \
            CreateRequest.model_validate_json(body)
        result = _create(conn, req, guid, ref, now, numbers or own)  # type: ignore[arg-type]
        if own is not None:
            own.flush()
        return result
    if kind == "UpdateQuantity":
        return _update_quantity(conn, model if isinstance(model, UpdateQuantityRequest) else
                                UpdateQuantityRequest.model_validate_json(body), guid, ref, now)
    if kind == "UpdateOrder":
        return _update_order(conn, model if isinstance(model, UpdateOrderRequest) else
                             UpdateOrderRequest.model_validate_json(body), guid, ref, now)
    raise ValueError(f"unknown request kind {kind!r}")


def _failed(out: Decision, order_id: str | None, items: list[dict[str, Any]]) -> Execution:
    errors = out.all_errors()
    for index, item in enumerate(items):
        item["Errors"] = list(out.line_errors.get(index, []))
        item["Status"] = "None"
    first = errors[0] if errors else "invalid request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Execution("Failed", f"Nothing was changed: {first}{more}", {
        "PurchaseOrder": {"Id": order_id, "Status": "None", "Errors": errors,
                          "PurchaseOrderItems": items}}, order_id)


def _create(conn: Connection, req: CreateRequest, guid: str, ref: RefSnapshot,
            now: dt.datetime, numbers: order_store.Numbers) -> Execution:
    lines_in = req.PurchaseOrderItems or []
    items: list[dict[str, Any]] = [{"Id": None, "ItemId": line.ItemId or line.CustomItemId}
                                   for line in lines_in]
    send_options = create_rules.options_of(req)
    send_plan = parse_send_options(send_options)
    out = create_rules.validate_create(req, ref, send_plan)
    if out.failed:
        return _failed(out, None, items)
    number = numbers.take("purchase_order", 1)[0]
    line_numbers = numbers.take("purchase_order_item", len(lines_in))
    order_id = f"{req.CustomIdPrefix or 'PurchaseOrder'}{number}"
    status = req.Status or st.NEW
    line_rows, states = [], []
    for position, (line, n) in enumerate(zip(lines_in, line_numbers, strict=True)):
        line_id = f"PurchaseOrderItem{n}"
        total = line.CustomItemQuantity if line.CustomItemId else line.TotalQuantity
        item_id = None if line.CustomItemId else line.ItemId
        line_rows.append({
            "id": line_id, "order_id": order_id, "position": position,
            "item_id": item_id,
            "device_id": line.DeviceId, "custom_item_id": line.CustomItemId or None,
            "custom_item_price_per_piece": line.CustomItemPricePerPiece
            if line.CustomItemId else None,
            "total_quantity": total, "received_quantity": 0, "cancelled_quantity": 0,
            "note": line.Note, "line_reference": line.LineReference,
        })
        states.append(LineState(line_id, position, item_id, line.DeviceId,
                                line.CustomItemId or None, total or 0))
        items[position]["Id"] = line_id
    order_store.insert_order(conn, order={
        "id": order_id, "vendor_id": req.VendorId, "stock_name": req.StockName,
        "device_id": req.DeviceId, "status": status, "is_consignment": req.IsConsignment,
        "reference": req.Reference, "notes": req.Notes, "custom_id_prefix": req.CustomIdPrefix,
        "custom_ship_to_id": req.CustomShipToId, "send_options": send_options,
        "dispatch_count": 0, "created_at": now, "updated_at": now,
    }, lines=line_rows)
    txs, dispatches = create_rules.initial_effects(
        status, [(s.id, s.total) for s in states], has_channels=bool(send_plan.channels))
    entries = outbox_entries(order_id=order_id, send_plan=send_plan,
                             vendor=ref.vendors[req.VendorId],  # type: ignore[index]
                             lines=states, dispatches=dispatches,
                             new_token=order_store.new_token)
    job_ids = order_store.write_effects(conn, order_id=order_id, transactions=txs,
                                        entries=entries, request_guid=guid, now=now)
    for item in items:
        item.update(Status="Created", Errors=[])
    return Execution(
        "Completed",
        f"Created purchase order {order_id} ({status}) with {len(states)} line(s)",
        {"PurchaseOrder": {"Id": order_id, "Status": "Created", "Errors": [],
                           "PurchaseOrderItems": items}},
        order_id,
        [(order_id, job_id, plan.kind) for job_id, plan in zip(job_ids, dispatches, strict=True)],
    )


def _update_quantity(conn: Connection, req: UpdateQuantityRequest, guid: str,
                     ref: RefSnapshot, now: dt.datetime) -> Execution:
    entries = req.PurchaseOrderItems or []
    items: list[dict[str, Any]] = [{"Id": e.Id, "ItemId": e.ItemId} for e in entries]
    order = order_store.load_order_state(conn, order_id=req.OrderId) if req.OrderId else None
    if order is None:
        return _failed(update_rules.missing_order(req.OrderId), req.OrderId, items)
    out = update_rules.update_quantity(order, req, ref)
    if out.failed:
        return _failed(out, order.id, items)
    by_id = {line.id: line for line in order.lines}
    for index, line_id in out.resolved_lines.items():
        items[index].update(Id=line_id, ItemId=by_id[line_id].item_id)
    for index, item in enumerate(items):
        changed = out.resolved_lines.get(index) in out.line_changes
        item.update(Status="Updated" if changed else "None", Errors=[])
    return _apply_update(conn, order, out, guid, ref, now, items)


def _update_order(conn: Connection, req: UpdateOrderRequest, guid: str, ref: RefSnapshot,
                  now: dt.datetime) -> Execution:
    order = order_store.load_order_state(conn, order_id=req.OrderId) if req.OrderId else None
    if order is None:
        return _failed(update_rules.missing_order(req.OrderId), req.OrderId, [])
    out = update_rules.update_order(order, req)
    if out.failed:
        return _failed(out, order.id, [])
    return _apply_update(conn, order, out, guid, ref, now, [])


def _apply_update(conn: Connection, order: OrderState, out: Decision, guid: str,
                  ref: RefSnapshot, now: dt.datetime, items: list[dict[str, Any]]
                  ) -> Execution:
    changed = bool(out.order_changes or out.line_changes)
    if out.line_changes:
        order_store.update_lines(conn, changes=out.line_changes)
    if changed:
        order_store.update_order_row(conn, order_id=order.id,
                                     cols={**out.order_changes, "updated_at": now})
    lines_after = []
    for line in order.lines:
        cols = out.line_changes.get(line.id, {})
        lines_after.append(LineState(
            line.id, line.position, line.item_id, line.device_id, line.custom_item_id,
            cols.get("total_quantity", line.total), cols.get("received_quantity", line.received),
            cols.get("cancelled_quantity", line.cancelled),
            cols.get("expected_date", line.expected_date)))
    entries = outbox_entries(order_id=order.id, send_plan=order.plan,
                             vendor=ref.vendors.get(order.vendor_id), lines=lines_after,
                             dispatches=out.dispatches, new_token=order_store.new_token)
    job_ids = order_store.write_effects(conn, order_id=order.id, transactions=out.transactions,
                                        entries=entries, request_guid=guid, now=now)
    status = out.order_changes.get("status")
    if not changed:
        message = f"Purchase order {order.id}: nothing to change"
    else:
        message = f"Updated purchase order {order.id}"
        if status:
            message += f": {order.status} -> {status}"
    return Execution(
        "Completed", message,
        {"PurchaseOrder": {"Id": order.id, "Status": "Updated" if changed else "None",
                           "Errors": [], "PurchaseOrderItems": items}},
        order.id,
        [(order.id, job_id, plan.kind) for job_id, plan in zip(job_ids, out.dispatches,
                                                               strict=True)],
    )


def internal_failure(order_id: str | None, exc: BaseException) -> Execution:
    """A request that raised unexpectedly: failed, nothing applied, the cause named."""
    return Execution("Failed", f"Nothing was changed: internal error ({type(exc).__name__}); "
                     "see the service log", {"PurchaseOrder": {
                         "Id": order_id, "Status": "None",
                         "Errors": [f"internal error: {type(exc).__name__}"],
                         "PurchaseOrderItems": []}}, order_id)
