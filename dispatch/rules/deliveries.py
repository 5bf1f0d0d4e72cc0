"""How a dispatch expands into deliveries: one row per document and target.

Email: one message per dispatch, one row per attached document, all sharing the
Message-ID (``group_key``). FTP: one row per file. B2B: one row per order line (the protocol
has no cancellation, so those rows are born ``Unsupported``). Which channels and documents
come from the order's :class:`SendPlan`; a channel the vendor lacks gets no rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.rules.send_options import DocumentChoice, SendPlan
from dispatch.rules.types import DispatchPlan, LineState, VendorRef
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind, DocumentFormat

B2B_NO_CANCEL = (
    "the vendor's B2B API (ExternalPurchaseOrders) has no cancellation; "
    "tell the vendor through another channel"
)
B2B_NO_DECREASE = "the vendor's B2B API cannot reduce a submitted quantity"


@dataclass(frozen=True)
class DeliveryPlan:
    """One delivery row as decided, idempotency key included (written before any send)."""

    channel: Channel
    format: DocumentFormat | None
    template_name: str | None
    document_name: str | None
    order_item_id: str | None
    quantity: int | None
    target: str
    idempotency_key: str
    group_key: str | None
    status: DeliveryStatus  # PENDING, or UNSUPPORTED when the channel cannot carry it
    error: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A decided dispatch with its delivery rows: what the store writes to the outbox."""

    vendor_id: str  # "" when the vendor is gone from the reference data (then no rows)
    dispatch: DispatchPlan
    deliveries: tuple[DeliveryPlan, ...]
    resend_of_job_id: int | None = None


def document_name(order_id: str, kind: str, number: int, fmt: DocumentFormat) -> str:
    return f"{order_id}_{kind}_{number}.{fmt.extension}"


def email_target(email: dict[str, Any]) -> str:
    target = "mailto:" + ",".join(email.get("to") or [])
    if email.get("cc"):
        target += "?cc=" + ",".join(email["cc"])
    return target


def template_of(doc: DocumentChoice, vendor: VendorRef) -> str | None:
    """The template a document is rendered from. XML (SPEC 4): SendOptions' name, else the
    vendor's ``xml_template``, else None (the canonical document)."""
    if doc.template or doc.format is not DocumentFormat.XML:
        return doc.template
    return vendor.xml_template


def expand(
    *,
    order_id: str,
    send_plan: SendPlan,
    vendor: VendorRef,
    lines: Sequence[LineState],
    dispatch: DispatchPlan,
    token: str,
) -> list[DeliveryPlan]:
    """Deliveries of one dispatch. ``token`` (random, stored) makes keys unique per dispatch."""
    rows: list[DeliveryPlan] = []
    kind, n = dispatch.kind, dispatch.number
    if send_plan.uses(Channel.B2B) and vendor.b2b:
        url = vendor.b2b["url"].rstrip("/") + "/api/external/purchaseorders/submit"
        rows += _b2b_rows(order_id, lines, dispatch, url, token)
    if send_plan.uses(Channel.FTP) and vendor.ftp:
        base = vendor.ftp["url"].rstrip("/")
        for doc in send_plan.documents_of(Channel.FTP):
            name = document_name(order_id, kind, n, doc.format)
            rows.append(DeliveryPlan(
                Channel.FTP, doc.format, template_of(doc, vendor), name, None, None,
                f"{base}/{name}",
                f"ftp:{token}:{name}", None, DeliveryStatus.PENDING))
    if send_plan.uses(Channel.EMAIL) and vendor.email:
        message_id = f"<{order_id}.{kind}.{n}.{token}@dispatch>"
        target = email_target(vendor.email)
        for doc in send_plan.documents_of(Channel.EMAIL):
            name = document_name(order_id, kind, n, doc.format)
            rows.append(DeliveryPlan(
                Channel.EMAIL, doc.format, template_of(doc, vendor), name, None, None, target,
                f"{message_id}#{doc.format}", message_id, DeliveryStatus.PENDING))
    return rows


def outbox_entries(
    *,
    order_id: str,
    send_plan: SendPlan,
    vendor: VendorRef | None,
    lines: Sequence[LineState],
    dispatches: Sequence[DispatchPlan],
    new_token: Callable[[], str],
) -> list[OutboxEntry]:
    """Each dispatch a request decided, expanded (``new_token`` gives one token per dispatch)."""
    return [OutboxEntry(vendor.id if vendor else "", plan, tuple(
        expand(order_id=order_id, send_plan=send_plan, vendor=vendor, lines=lines,
               dispatch=plan, token=new_token()) if vendor else ()))
        for plan in dispatches]


def _quantity_changes(dispatch: DispatchPlan) -> dict[str, int]:
    """Line id -> increase of TotalQuantity, for every line a change dispatch touches."""
    increases: dict[str, int] = {}
    for change in dispatch.changes or []:
        if change["Field"] == "TotalQuantity":
            increases[change["PurchaseOrderItemId"]] = change["New"] - change["Old"]
        elif change["Field"] == "CancelledQuantity":
            increases.setdefault(change["PurchaseOrderItemId"], 0)
    return increases


def _b2b_rows(order_id: str, lines: Sequence[LineState], dispatch: DispatchPlan, url: str,
              token: str) -> list[DeliveryPlan]:
    rows = []
    increases = _quantity_changes(dispatch) if dispatch.kind == DispatchKind.CHANGE else {}
    for line in lines:
        key = f"{order_id}-{dispatch.number}-{line.id}-{token}"
        status, error = DeliveryStatus.PENDING, None
        quantity = line.total - line.cancelled
        if dispatch.kind == DispatchKind.CANCELLATION:
            status, error, quantity = DeliveryStatus.UNSUPPORTED, B2B_NO_CANCEL, line.outstanding
        elif dispatch.kind == DispatchKind.CHANGE:
            if line.id not in increases:
                continue
            quantity = increases[line.id]
            if quantity <= 0:
                status, error = DeliveryStatus.UNSUPPORTED, B2B_NO_DECREASE
        elif quantity <= 0:
            continue
        rows.append(DeliveryPlan(Channel.B2B, None, None, None, line.id, quantity, url, key,
                                 None, status, error))
    return rows


# --- SPEC 8: the reminder a late response causes ----------------------------------------

REMINDER_TEMPLATE = "reminder-pdf"  # the shipped one: templates/pdf/reminder.yaml


def reminder_entry(*, order_id: str, vendor: VendorRef, number: int, template: str | None,
                   token: str) -> OutboxEntry | None:
    """The reminder dispatch ``number`` of an order whose vendor did not answer in time:
    one email to the vendor's addresses with a PDF from ``template`` (default
    ``reminder-pdf``), named ``{OrderId}_reminder_{n}.pdf``. None when the vendor has no
    email address (nothing can carry a reminder)."""
    if not vendor.email:
        return None
    kind = DispatchKind.REMINDER
    message_id = f"<{order_id}.{kind}.{number}.{token}@dispatch>"
    row = DeliveryPlan(
        Channel.EMAIL, DocumentFormat.PDF, template or REMINDER_TEMPLATE,
        document_name(order_id, kind, number, DocumentFormat.PDF), None, None,
        email_target(vendor.email), f"{message_id}#{DocumentFormat.PDF}", message_id,
        DeliveryStatus.PENDING)
    return OutboxEntry(vendor.id, DispatchPlan(kind, number, None), (row,))
