"""PurchaseOrder/Create: business validation and the effects of the initial status."""

from __future__ import annotations

from dispatch.erp.schemas import CreateRequest, SendOptionsIn
from dispatch.rules import status as st
from dispatch.rules.types import DispatchPlan, Outcome, RefSnapshot, TransactionPlan

FORMAT_FLAGS = (("IsXml", "XML"), ("IsPdf", "PDF"), ("IsExcel", "Excel"))
# channel -> (options key, PDF template field, Excel template field)
CHANNEL_TEMPLATE_FIELDS = {
    "FTP": ("FTP", "PdfTemplateName", "ExcelTemplateName"),
    "Email": ("Email", "PdfTemplate", "ExcelTemplate"),
}


def chosen_channels(options: SendOptionsIn | None) -> list[str]:
    """Channels switched on in SendOptions, in the order B2B, FTP, Email."""
    channel = options.Channel if options else None
    if channel is None:
        return []
    flags = (("B2B", channel.IsB2B), ("FTP", channel.IsFtp), ("Email", channel.IsEmail))
    return [name for name, on in flags if on]


def validate_create(req: CreateRequest, ref: RefSnapshot) -> Outcome:
    """Every business rule of Create; the outcome lists errors naming their fields."""
    out = Outcome()
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

    channels = chosen_channels(req.SendOptions)
    _check_send_options(req, ref, vendor, channels, errors)

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
            if "B2B" in channels:
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
            elif "B2B" in channels and vendor is not None:
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


def _check_send_options(req, ref, vendor, channels, errors: list[str]) -> None:  # type: ignore[no-untyped-def]
    options = req.SendOptions
    if options is None:
        return
    need = {"B2B": "b2b", "FTP": "ftp", "Email": "email"}
    for channel in channels:
        if vendor is not None and getattr(vendor, need[channel]) is None:
            flag = {"B2B": "IsB2B", "FTP": "IsFtp", "Email": "IsEmail"}[channel]
            errors.append(
                f"SendOptions.Channel.{flag}: vendor '{vendor.id}' has no {need[channel]} "
                "configured (add it to the vendor in the reference data)"
            )
    for channel, (key, pdf_field, excel_field) in CHANNEL_TEMPLATE_FIELDS.items():
        sub = getattr(options, key)
        if sub is None:
            if channel in channels:
                errors.append(
                    f"SendOptions.{key}: required when {channel} is chosen; "
                    "set at least one of IsXml, IsPdf, IsExcel"
                )
            continue
        for flag, fmt, field in (("IsPdf", "PDF", pdf_field), ("IsExcel", "Excel", excel_field)):
            name = getattr(sub, field)
            if name:
                actual = ref.templates.get(name)
                if actual is None:
                    errors.append(f"SendOptions.{key}.{field}: template '{name}' does not exist")
                elif actual != fmt:
                    errors.append(
                        f"SendOptions.{key}.{field}: template '{name}' is {actual}, not {fmt}"
                    )
            elif getattr(sub, flag) and channel in channels:
                errors.append(f"SendOptions.{key}.{field}: required when {flag} is true")
        if channel in channels and not any(getattr(sub, flag) for flag, _ in FORMAT_FLAGS):
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
            dispatches.append(DispatchPlan("purchase", 1, None))
    if status == st.CANCELLED:
        txs += [TransactionPlan("Cancel", line_id, qty) for line_id, qty in line_quantities]
        if has_channels:
            dispatches.append(DispatchPlan("cancellation", 2, 1))
    return txs, dispatches
