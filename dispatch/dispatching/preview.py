"""`dispatch render`: a document of an order through the same code path that sends it."""

from __future__ import annotations

from sqlalchemy import Engine, select

from dispatch.dispatching.loading import document_context
from dispatch.documents import render_document
from dispatch.documents.base import Document
from dispatch.errors import DispatchError, NotFoundError
from dispatch.models import utcnow
from dispatch.settings import DispatchSettings
from dispatch.store.engine import reading
from dispatch.store.jobs import JOBS
from dispatch.store.orders import ORDERS
from dispatch.store.reference import template_file_of

# SendOptions keys naming a template, per format
TEMPLATE_KEYS = {"PDF": (("Email", "PdfTemplate"), ("FTP", "PdfTemplateName")),
                 "Excel": (("Email", "ExcelTemplate"), ("FTP", "ExcelTemplateName"))}


def render_preview(engine: Engine, settings: DispatchSettings, *, order_id: str, format: str,
                   template_name: str | None, kind: str) -> Document:
    with reading(engine) as conn:
        order = conn.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
        if order is None:
            raise NotFoundError(f"ORDER_ID: no purchase order '{order_id}'")
        job = conn.execute(select(JOBS).where(JOBS.c.order_id == order_id, JOBS.c.kind == kind)
                           .order_by(JOBS.c.number.desc()).limit(1)).first()
        if job is not None:
            number, replaces, changes, at = (job.number, job.replaces_number, job.changes,
                                             job.created_at)
        else:
            number = order.dispatch_count + 1
            replaces, changes, at = (order.dispatch_count or None), None, utcnow()
        template_file = None
        if format in TEMPLATE_KEYS:
            if template_name is None:
                options = order.send_options or {}
                template_name = next((options.get(a, {}).get(b) for a, b in TEMPLATE_KEYS[format]
                                      if options.get(a, {}).get(b)), None)
            if template_name is None:
                raise DispatchError(f"--template: order '{order_id}' names no {format} "
                                    "template; give one with --template NAME")
            template_file = template_file_of(conn, name=template_name)
            if template_file is None:
                raise DispatchError(f"--template: no template '{template_name}' is loaded "
                                    "(see `dispatch load`)")
        ctx = document_context(conn, order_id=order_id, kind=kind, number=number,
                               replaces_number=replaces, changes=changes, generated_at=at,
                               buyer_name=settings.buyer_name)
    return render_document(ctx, format=format, template_file=template_file,
                           templates_dir=settings.templates_dir, template_name=template_name)
