"""How a dispatch job expands into deliveries: one row per document and target.

Email: one message per dispatch, one row per attached document, all sharing the
Message-ID (``group_key``). FTP: one row per file. B2B: one row per order line (the protocol
has no cancellation, so those rows are born ``Unsupported``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatch.rules.types import DispatchPlan, LineState, VendorRef

EXTENSIONS = {"XML": "xml", "PDF": "pdf", "Excel": "xlsx"}
B2B_NO_CANCEL = (
    "the vendor's B2B API (ExternalPurchaseOrders) has no cancellation; "
    "tell the vendor through another channel"
)
B2B_NO_DECREASE = "the vendor's B2B API cannot reduce a submitted quantity"


@dataclass(frozen=True)
class DeliveryPlan:
    channel: str  # B2B | FTP | Email
    format: str | None
    template_name: str | None
    document_name: str | None
    order_item_id: str | None
    quantity: int | None
    target: str
    idempotency_key: str
    group_key: str | None
    status: str  # Pending | Unsupported
    error: str | None = None


def document_name(order_id: str, kind: str, number: int, fmt: str) -> str:
    return f"{order_id}_{kind}_{number}.{EXTENSIONS[fmt]}"


def _formats(options: dict[str, Any], pdf_key: str, excel_key: str) -> list[tuple[str, str | None]]:
    chosen: list[tuple[str, str | None]] = []
    if options.get("IsXml"):
        chosen.append(("XML", None))
    if options.get("IsPdf"):
        chosen.append(("PDF", options.get(pdf_key)))
    if options.get("IsExcel"):
        chosen.append(("Excel", options.get(excel_key)))
    return chosen


def email_target(email: dict[str, Any]) -> str:
    target = "mailto:" + ",".join(email.get("to") or [])
    if email.get("cc"):
        target += "?cc=" + ",".join(email["cc"])
    return target


def expand(
    *,
    order_id: str,
    send_options: dict[str, Any] | None,
    vendor: VendorRef,
    lines: list[LineState],
    plan: DispatchPlan,
    token: str,
) -> list[DeliveryPlan]:
    """Deliveries of one dispatch. ``token`` (random, stored) makes keys unique per dispatch."""
    options = send_options or {}
    channel = options.get("Channel") or {}
    rows: list[DeliveryPlan] = []
    kind, n = plan.kind, plan.number
    if channel.get("IsB2B") and vendor.b2b:
        url = vendor.b2b["url"].rstrip("/") + "/api/external/purchaseorders/submit"
        rows += _b2b_rows(order_id, lines, plan, url, token)
    if channel.get("IsFtp") and vendor.ftp:
        base = vendor.ftp["url"].rstrip("/")
        ftp_formats = _formats(options.get("FTP") or {}, "PdfTemplateName", "ExcelTemplateName")
        for fmt, template in ftp_formats:
            name = document_name(order_id, kind, n, fmt)
            rows.append(
                DeliveryPlan("FTP", fmt, template, name, None, None, f"{base}/{name}",
                             f"ftp:{token}:{name}", None, "Pending")
            )
    if channel.get("IsEmail") and vendor.email:
        message_id = f"<{order_id}.{kind}.{n}.{token}@dispatch>"
        target = email_target(vendor.email)
        for fmt, template in _formats(options.get("Email") or {}, "PdfTemplate", "ExcelTemplate"):
            name = document_name(order_id, kind, n, fmt)
            rows.append(
                DeliveryPlan("Email", fmt, template, name, None, None, target,
                             f"{message_id}#{fmt}", message_id, "Pending")
            )
    return rows


def _b2b_rows(order_id, lines, plan, url, token) -> list[DeliveryPlan]:  # type: ignore[no-untyped-def]
    rows = []
    increases: dict[str, int] = {}
    if plan.kind == "change":
        for change in plan.changes or []:
            if change["Field"] == "TotalQuantity":
                increases[change["PurchaseOrderItemId"]] = change["New"] - change["Old"]
            elif change["Field"] == "CancelledQuantity":
                increases.setdefault(change["PurchaseOrderItemId"], 0)
    for line in lines:
        key = f"{order_id}-{plan.number}-{line.id}-{token}"
        status, error, quantity = "Pending", None, line.total - line.cancelled
        if plan.kind == "cancellation":
            status, error, quantity = "Unsupported", B2B_NO_CANCEL, line.outstanding
        elif plan.kind == "change":
            if line.id not in increases:
                continue
            quantity = increases[line.id]
            if quantity <= 0:
                status, error = "Unsupported", B2B_NO_DECREASE
        elif quantity <= 0:
            continue
        rows.append(
            DeliveryPlan("B2B", None, None, None, line.id, quantity, url, key, None, status, error)
        )
    return rows
