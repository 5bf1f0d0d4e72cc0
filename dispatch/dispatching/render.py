"""Render a send's documents off the event loop: the vendor target and the exact bytes.

Every send is "render, then send": PDF/Excel/XML from the job's context and named
templates, a B2B line's seed 000 body (kept from its first attempt, so every retry POSTs the
same bytes under the same Idempotency-Key). Rendering never runs on the dispatch event loop,
so a large PDF does not hold up other orders' sends: it runs in a thread, or, with
``DISPATCH_RENDER_PROCESSES`` > 0, in a pool of that many processes (forked from a
server that has the renderers imported), so rendering uses the machine's other cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.dispatching.job import Job, SendGroup, Target
from dispatch.documents.b2b_line import B2BLine, customer_reference, delivery_window
from dispatch.documents.b2b_line import submit_document as render_b2b_line
from dispatch.documents.base import Document
from dispatch.documents.context import DocumentContext
from dispatch.documents.xml_spec import XmlTemplateSpec
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
        if d.settings.render_processes:
            documents = await asyncio.gather(*(_render_in_pool(d, job, row) for row in missing))
        else:
            documents = await asyncio.to_thread(_render_all, d, job, missing)
        for row, document in zip(missing, documents, strict=True):
            job.rendered[(row.format, row.template_name)] = document  # type: ignore[index]
    return target, [job.rendered[(row.format, row.template_name)]  # type: ignore[index]
                    for row in group.deliveries]


def _render_all(d: Dispatcher, job: Job, rows: list[DeliveryRow]) -> list[Document]:
    return [_render(d, job, row) for row in rows]


def _template_file(job: Job, row: DeliveryRow) -> str | None:
    if not row.template_name or row.format is DocumentFormat.XML:
        return None
    template_file = job.template_files.get(row.template_name)
    if template_file is None:
        raise DeliveryError(f"template '{row.template_name}' no longer exists; load it "
                            "again with `dispatch load`", retryable=False)
    return template_file


def _xml_template(job: Job, row: DeliveryRow) -> XmlTemplateSpec | None:
    """The XML template of an XML delivery that names one (None: the canonical XML)."""
    if row.format is not DocumentFormat.XML or not row.template_name:
        return None
    spec = job.xml_templates.get(row.template_name)
    if spec is None:
        raise DeliveryError(f"XML template '{row.template_name}' no longer exists (neither "
                            "loaded nor built in); load it with `dispatch load` and resend",
                            retryable=False)
    return spec


def _render(d: Dispatcher, job: Job, row: DeliveryRow) -> Document:
    result = render_one(job.context, row.format or DocumentFormat.XML,
                        _template_file(job, row), d.settings.templates_dir, row.template_name,
                        d.settings.max_document_bytes, _xml_template(job, row))
    if isinstance(result, str):
        raise DeliveryError(f"rendering {row.document_name}: {result}", retryable=False)
    return result


def render_one(context: DocumentContext, format: str, template_file: str | None,
               templates_dir: Path, template_name: str | None, max_bytes: int,
               xml_template: XmlTemplateSpec | None = None) -> Document | str:
    """One document, or the reason it cannot be rendered (a TemplateError/RenderError: no
    retry will help). Runs in a thread or a pool process: plain, picklable values."""
    # Imported here: reportlab/openpyxl cost ~1 s of start-up in every server-mode flow
    # run process, and B2B-only runs never need them.
    from dispatch.documents import render_document

    try:
        return render_document(context, format=format, template_file=template_file,
                               templates_dir=templates_dir, template_name=template_name,
                               max_bytes=max_bytes, xml_template=xml_template)
    except DispatchError as exc:
        return str(exc)


_pools: dict[int, ProcessPoolExecutor] = {}


def render_pool(processes: int) -> ProcessPoolExecutor:
    """This process's pool of ``processes`` renderers, started on first use. Its workers
    fork from a server process that imported the renderers once (a thread-safe start: the
    dispatching process runs threads, so it never forks itself)."""
    pool = _pools.get(processes)
    if pool is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["dispatch.documents"])
        pool = _pools[processes] = ProcessPoolExecutor(processes, mp_context=context)
    return pool


async def _render_in_pool(d: Dispatcher, job: Job, row: DeliveryRow) -> Document:
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        render_pool(d.settings.render_processes), render_one, job.context,
        str(row.format or DocumentFormat.XML), _template_file(job, row),
        d.settings.templates_dir, row.template_name, d.settings.max_document_bytes,
        _xml_template(job, row))
    if isinstance(result, str):
        raise DeliveryError(f"rendering {row.document_name}: {result}", retryable=False)
    return result


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
