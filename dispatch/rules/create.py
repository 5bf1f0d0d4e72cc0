"""PurchaseOrder/Create: business validation and the effects of the initial status."""

from __future__ import annotations

from typing import Any

from dispatch.erp.schemas import CreateRequest
from dispatch.rules import status as st
from dispatch.rules.send_options import (
    CHANNEL_FLAGS,
    FORMAT_FLAGS,
    OPTIONAL_TEMPLATE,
    SECTIONS,
    TEMPLATE_FIELDS,
    SendPlan,
    parse_send_options,
)
from dispatch.rules.types import (
    Decision,
    DispatchPlan,
    RefSnapshot,
    TransactionPlan,
    VendorRef,
)
from dispatch.vocabulary import Channel, DispatchKind, DocumentFormat

# The vendor's reference-data section each channel needs.
VENDOR_SECTIONS = {Channel.B2B: "b2b", Channel.FTP: "ftp", Channel.EMAIL: "email"}


def options_of(req: CreateRequest) -> dict[str, Any] | None:
    """The SendOptions of a Create request as they are stored on the order."""
    if req.SendOptions is None:
        return None
    return req.SendOptions.model_dump(mode="json", exclude_none=True)


def validate_create(req: CreateRequest, ref: RefSnapshot,
                    plan: SendPlan | None = None) -> Decision:
    """Every business rule of Create; the decision lists errors naming their fields.

    ``plan`` is the request's SendOptions parsed (parsed here when not given).
    """
    if plan is None:
        plan = parse_send_options(options_of(req))
    out = Decision()
    errors = out.order_errors
    vendor = ref.vendors.get(req.VendorId) if req.VendorId else None
    if not req.VendorId:
        errors.append("VendorId: required; give the id of an existing vendor")
    elif vendor is None:
        errors.append(f"VendorId: vendor '{req.VendorId}' does not exist")
    if not req.StockName:
        errors.append("StockName: required; give the name of an existing stock")
    elif req.StockName not in ref.stocks:
        errors.append(f"StockName: stock '{req.StockName}' does not exist")
    if req.DeviceId:
        _check_device(req.DeviceId, req.StockName, ref, "DeviceId", errors)

    _check_send_options(plan, ref, vendor, errors)

    lines = req.PurchaseOrderItems or []
    if not lines:
        errors.append("PurchaseOrderItems: at least one line is required")
    for index, line in enumerate(lines):
        path = f"PurchaseOrderItems[{index}]"
        line_errors: list[str] = []
        if line.CustomItemId:
            if line.ItemId:
                line_errors.append(
                    f"{path}.ItemId: must be empty on a custom item line "
                    "(give ItemId or CustomItemId, not both)"
                )
            if line.CustomItemQuantity is None or line.CustomItemQuantity <= 0:
                line_errors.append(f"{path}.CustomItemQuantity: must be > 0 for a custom item")
            if line.CustomItemPricePerPiece is None or line.CustomItemPricePerPiece < 0:
                line_errors.append(
                    f"{path}.CustomItemPricePerPiece: must be >= 0 for a custom item"
                )
            if line.TotalQuantity not in (None, 0, line.CustomItemQuantity):
                line_errors.append(
                    f"{path}.TotalQuantity: a custom line's quantity is its CustomItemQuantity; "
                    "leave TotalQuantity empty"
                )
            if plan.uses(Channel.B2B):
                line_errors.append(
                    f"{path}.CustomItemId: custom items cannot be sent over B2B "
                    "(switch off SendOptions.Channel.IsB2B or remove the line)"
                )
        elif not line.ItemId:
            line_errors.append(f"{path}.ItemId: required (give ItemId or CustomItemId)")
        else:
            item = ref.items.get(line.ItemId)
            if item is None:
                line_errors.append(f"{path}.ItemId: item '{line.ItemId}' does not exist")
            elif plan.uses(Channel.B2B) and vendor is not None:
                iv = item.vendors.get(vendor.id)
                if iv is None or iv.atelier_code is None:
                    line_errors.append(
                        f"{path}.ItemId: item '{line.ItemId}' has no atelier_code for vendor "
                        f"'{vendor.id}', which B2B needs (add it to the item's vendors)"
                    )
            if line.TotalQuantity is None or line.TotalQuantity <= 0:
                line_errors.append(f"{path}.TotalQuantity: must be > 0")
            if line.CustomItemQuantity:
                line_errors.append(f"{path}.CustomItemQuantity: only for custom item lines")
            if line.CustomItemPricePerPiece:
                line_errors.append(f"{path}.CustomItemPricePerPiece: only for custom item lines")
        if line.DeviceId:
            if req.DeviceId:
                line_errors.append(
                    f"{path}.DeviceId: must be empty because the order has DeviceId "
                    f"'{req.DeviceId}' (set the device on the order or on its lines, not both)"
                )
            else:
                _check_device(line.DeviceId, req.StockName, ref, f"{path}.DeviceId", line_errors)
        if line_errors:
            out.line_errors[index] = line_errors
    return out


def _check_device(
    device_id: str, stock: str | None, ref: RefSnapshot, path: str, errors: list[str]
) -> None:
    device_stock = ref.devices.get(device_id)
    if device_stock is None:
        errors.append(f"{path}: device '{device_id}' does not exist")
    elif stock and stock in ref.stocks and device_stock != stock:
        errors.append(
            f"{path}: device '{device_id}' belongs to stock '{device_stock}', not '{stock}'"
        )


def _check_send_options(
    plan: SendPlan, ref: RefSnapshot, vendor: VendorRef | None, errors: list[str]
) -> None:
    for channel in plan.channels:
        need = VENDOR_SECTIONS[channel]
        if vendor is not None and getattr(vendor, need) is None:
            errors.append(
                f"SendOptions.Channel.{CHANNEL_FLAGS[channel]}: vendor '{vendor.id}' has no "
                f"{need} configured (add it to the vendor in the reference data)"
            )
    for channel, key in SECTIONS.items():
        if not plan.has_section(channel):
            if plan.uses(channel):
                errors.append(
                    f"SendOptions.{key}: required when {channel} is chosen; "
                    "set at least one of IsXml, IsPdf, IsExcel"
                )
            continue
        named = {choice.format: choice for choice in plan.templates_named(channel)}
        for fmt, field in TEMPLATE_FIELDS[channel].items():
            path = f"SendOptions.{key}.{field}"
            if fmt in named:
                name = named[fmt].template
                actual = ref.template_format(name or "")
                if actual is None and fmt is DocumentFormat.XML:
                    errors.append(f"{path}: no XML template '{name}'; name a template loaded "
                                  "with format XML, or peppol, cxml or order-x (built in)")
                elif actual is None:
                    errors.append(f"{path}: template '{name}' does not exist")
                elif actual != fmt:
                    errors.append(f"{path}: template '{name}' is {actual}, not {fmt}")
            elif (plan.uses(channel) and plan.chooses(channel, fmt)
                  and fmt not in OPTIONAL_TEMPLATE):
                errors.append(f"{path}: required when {FORMAT_FLAGS[fmt]} is true")
        if plan.uses(channel) and not plan.documents_of(channel):
            errors.append(
                f"SendOptions.{key}: {channel} is chosen; set at least one of "
                "IsXml, IsPdf, IsExcel"
            )


def initial_effects(
    status: str, line_quantities: list[tuple[str, int]], *, has_channels: bool
) -> tuple[list[TransactionPlan], list[DispatchPlan]]:
    """Transactions and dispatches of a created order (status as given at creation)."""
    txs: list[TransactionPlan] = []
    dispatches: list[DispatchPlan] = []
    if status in (st.ACTIVE, st.CANCELLED):
        txs += [TransactionPlan("Purchase", line_id, qty) for line_id, qty in line_quantities]
        if has_channels:
            dispatches.append(DispatchPlan(DispatchKind.PURCHASE, 1, None))
    if status == st.CANCELLED:
        txs += [TransactionPlan("Cancel", line_id, qty) for line_id, qty in line_quantities]
        if has_channels:
            dispatches.append(DispatchPlan(DispatchKind.CANCELLATION, 2, 1))
    return txs, dispatches
