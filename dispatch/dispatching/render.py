"""Render a send's documents off the event loop: the vendor target and the exact bytes.

Every send is "render, then send": PDF/Excel/XML from the job's context and named
templates, a B2B line's seed 000 body (kept from its first attempt, so every retry POSTs the
same bytes under the same Idempotency-Key). Rendering runs in a worker thread, so a large
PDF does not hold up other orders' sends on the dispatch event loop.
"""

from __future__ import annotations

import asyncio

from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.dispatching.job import Job, SendGroup, Target
from dispatch.documents.b2b_line import B2BLine, customer_reference, delivery_window
from dispatch.documents.b2b_line import submit_document as render_b2b_line
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError, DispatchError
from dispatch.store.outbox import DeliveryRow
from dispatch.vocabulary import Channel, DocumentFormat


async def render_group(d: Dispatcher, job: Job, group: SendGroup
                       ) -> tuple[Target, list[Document]]:
    """The target and documents of one send; DeliveryError(retryable=False) when no
    retry can help (vendor channel gone, template broken or missing)."""
    target = job.target(group.channel)
    if target is None:
        key = {Channel.B2B: "b2b", Channel.FTP: "ftp", Channel.EMAIL: "email"}[group.channel]
        raise DeliveryError(f"vendor '{job.row.vendor_id}' has no valid {key} configuration "
                            "any more; configure it with `dispatch load` and resend",
                            retryable=False)
    if group.channel is Channel.B2B:
        return target, [_b2b_document(d, job, group.first)]
    missing = [row for row in group.deliveries
               if (row.format, row.template_name) not in job.rendered]
    if missing:
        documents = await asyncio.to_thread(_render_all, d, job, missing)
        for row, document in zip(missing, documents, strict=True):
            job.rendered[(row.format, row.template_name)] = document  # type: ignore[index]
    return target, [job.rendered[(row.format, row.template_name)]  # type: ignore[index]
                    for row in group.deliveries]


def _render_all(d: Dispatcher, job: Job, rows: list[DeliveryRow]) -> list[Document]:
    return [_render(d, job, row) for row in rows]


def _render(d: Dispatcher, job: Job, row: DeliveryRow) -> Document:
    template_file = None
    if row.template_name:
        template_file = job.template_files.get(row.template_name)
        if template_file is None:
            raise DeliveryError(f"template '{row.template_name}' no longer exists; load it "
                                "again with `dispatch load`", retryable=False)
    # Imported here: reportlab/openpyxl cost ~1 s of start-up in every server-mode flow
    # run process, and B2B-only runs never need them.
    from dispatch.documents import render_document

    try:
        return render_document(job.context, format=row.format or DocumentFormat.XML,
                               template_file=template_file,
                               templates_dir=d.settings.templates_dir,
                               template_name=row.template_name)
    except DispatchError as exc:  # TemplateError / RenderError: no retry will help
        raise DeliveryError(f"rendering {row.document_name}: {exc}", retryable=False) \
            from exc


def _b2b_document(d: Dispatcher, job: Job, row: DeliveryRow) -> Document:
    reference = customer_reference(job.row.order_id, row.order_item_id or "")
    if row.payload:  # the first attempt's exact body
        return Document(name=reference, content=row.payload.encode(),
                        media_type="application/json", format="JSON")
    line = job.lines.get(row.order_item_id or "")
    if line is None:
        raise DeliveryError(f"B2B line {row.order_item_id}: no such line on order "
                            f"{job.row.order_id}", retryable=False)
    if line.atelier_code is None:
        raise DeliveryError(
            f"B2B line {line.id}: item '{line.item_id or line.custom_item_id}' has no "
            f"atelier_code for vendor '{job.row.vendor_id}'; add it and resend",
            retryable=False)
    start, end = delivery_window(line.expected_date, now=job.row.created_at,
                                 window_days=d.settings.b2b_delivery_window_days)
    loc = job.ship_to
    location = None if loc is None else {
        "locationName": loc.location_name, "addressLine1": loc.address_line1,
        "addressLine2": loc.address_line2, "countryTitle": loc.country_title,
        "city": loc.city, "province": loc.province, "zipCode": loc.zip_code}
    b2b = job.vendor.get(Channel.B2B) or {}
    return render_b2b_line(B2BLine(
        customer_reference=reference, quantity=row.quantity or 0, atelier_code=line.atelier_code,
        from_date=start, to_date=end, delivery_location=location,
        invoice_address=b2b.get("invoice_address")))
