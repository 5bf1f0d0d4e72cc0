"""`dispatch render`: a document of an order through the same code path that sends it."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine

from dispatch.dispatching.loading import document_context, xml_templates
from dispatch.documents import render_document
from dispatch.documents.base import Document
from dispatch.documents.context import DocumentContext
from dispatch.errors import DispatchError, NotFoundError
from dispatch.models import utcnow
from dispatch.settings import DispatchSettings
from dispatch.store import orders as order_store
from dispatch.store.engine import reading
from dispatch.store.reference import read_vendor_ref, read_xml_entries, template_file_of
from dispatch.vocabulary import DispatchKind, DocumentFormat

# Formats rendered from a named template (XML is built in).
TEMPLATED = (DocumentFormat.PDF, DocumentFormat.EXCEL)


def render_preview(engine: Engine, settings: DispatchSettings, *, order_id: str,
                   format: DocumentFormat | str, template_name: str | None,
                   kind: DispatchKind | str) -> Document:
    """The document of the order's latest dispatch of ``kind`` (or of the next one, as it
    would be numbered, when there is none yet), with the order's template by default."""
    format, kind = DocumentFormat(format), DispatchKind(kind)
    with reading(engine) as conn:
        order = order_store.load_order_state(conn, order_id=order_id)
        if order is None:
            raise NotFoundError(f"ORDER_ID: no purchase order '{order_id}'")
        job = order_store.latest_dispatch(conn, order_id=order_id, kind=kind)
        if job is not None:
            number, replaces, changes, at = (job.number, job.replaces_number, job.changes,
                                             job.created_at)
        else:
            number = order.dispatch_count + 1
            replaces, changes, at = (order.dispatch_count or None), None, utcnow()
        template_file, xml_template = None, None
        if format is DocumentFormat.XML:
            # SPEC 4: --template, else the order's SendOptions, else the vendor's
            # xml_template, else the canonical document
            vendor = read_vendor_ref(conn, vendor_id=order.vendor_id)
            template_name = (template_name or order.plan.template_for(format)
                             or (vendor.xml_template if vendor is not None else None))
            if template_name is not None:
                xml_template = xml_templates([template_name], read_xml_entries(
                    conn, names=[template_name])).get(template_name)
                if xml_template is None:
                    raise DispatchError(f"--template: no XML template '{template_name}' "
                                        "(load one with format XML, or name peppol, cxml "
                                        "or order-x)")
        elif format in TEMPLATED:
            if template_name is None:
                template_name = order.plan.template_for(format)
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
    return render_document(without_shared_secret(ctx), format=format,
                           template_file=template_file, templates_dir=settings.templates_dir,
                           template_name=template_name, max_bytes=settings.max_document_bytes,
                           xml_template=xml_template)


def without_shared_secret(ctx: DocumentContext) -> DocumentContext:
    """A preview never reads the cXML shared secret: the vendor's identity without the
    name of its variable, so the document shows no SharedSecret (and needs none set)."""
    identity = ctx.vendor.cxml
    if identity is None or identity.shared_secret_env is None:
        return ctx
    vendor = replace(ctx.vendor, cxml=replace(identity, shared_secret_env=None))
    return replace(ctx, vendor=vendor)
