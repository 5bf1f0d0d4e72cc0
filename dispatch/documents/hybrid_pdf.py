"""Hybrid PDFs: the dispatch's Order-X XML embedded in its PDF (PDF/A-3 attachment).

One file a person reads and a machine parses, as Factur-X does for invoices (SPEC 4). A PDF
layout asks for it with ``attach_xml: order-x``; ``factur-x``'s ``generate_from_binary``
does the embedding (the ``order-x.xml`` attachment with AFRelationship ``Data``, the PDF/A-3
XMP metadata naming the Order-X profile and document type).

factur-x stamps the attachment and the metadata with the current time; the stamps are pinned
to the dispatch's ``generated_at`` instead, so a re-render for a retry gives the same bytes
(and SHA-256) as the first attempt, like every other document.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dispatch.documents.context import DocumentContext
from dispatch.documents.xml_spec import ORDER_X_PROFILE, builtin_xml_template
from dispatch.documents.xml_template import render_xml
from dispatch.errors import RenderError, TemplateError

ATTACHABLE = ("order-x",)  # factur-x embeds Order-X (and Factur-X invoices) only
# factur-x reads its clock through two module functions: pinning them is process-wide, so
# embeddings take turns (each takes a few milliseconds).
_CLOCK = threading.Lock()


def check_attachable(name: str) -> None:
    """TemplateError unless ``name`` is an XML template a PDF can carry."""
    if name not in ATTACHABLE:
        raise TemplateError(f"attach_xml: {name!r} cannot be embedded; use "
                            f"{', '.join(ATTACHABLE)} (factur-x embeds Order-X documents)")


@contextlib.contextmanager
def _pinned_clock(module: Any, at: dt.datetime) -> Iterator[None]:
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    saved = module._get_pdf_timestamp, module._get_metadata_timestamp
    module._get_pdf_timestamp = lambda date=None: saved[0](date or at)
    module._get_metadata_timestamp = lambda: at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    try:
        yield
    finally:
        module._get_pdf_timestamp, module._get_metadata_timestamp = saved


def embed_order_x(pdf: bytes, xml: bytes, ctx: DocumentContext) -> bytes:
    """``pdf`` with the Order-X ``xml`` of ``ctx`` attached as a PDF/A-3 file.

    Raises:
        RenderError: factur-x refused the PDF or the XML.
    """
    from facturx import facturx  # imported here: pypdf and factur-x only when asked for

    d = ctx.dispatch
    kind = {"purchase": "Purchase order", "change": "Change of purchase order",
            "cancellation": "Cancellation of purchase order"}[d.kind]
    metadata = {
        "author": ctx.buyer.name,
        "keywords": "Order-X, purchase order",
        "title": f"{kind} {ctx.order.Id} version {d.number}",
        "subject": f"Order-X {ORDER_X_PROFILE} {d.kind} of {ctx.order.Id} for {ctx.vendor.name}",
    }
    try:
        with _CLOCK, _pinned_clock(facturx, d.generated_at):
            return bytes(facturx.generate_from_binary(
                pdf, xml, flavor="order-x", level=ORDER_X_PROFILE,
                orderx_type="order" if d.is_purchase else "order_change",
                check_xsd=False,  # render_xml validated it against the same XSD
                pdf_metadata=metadata, lang="en-US"))
    except Exception as exc:  # factur-x raises ValueError, Exception, pypdf errors
        raise RenderError(f"embedding the Order-X XML in the PDF: {type(exc).__name__}: "
                          f"{exc}") from exc


def attach_xml(pdf: bytes, ctx: DocumentContext, *, name: str, templates_dir: Path) -> bytes:
    """Render ``ctx`` with the built-in XML template ``name`` and embed it in ``pdf``."""
    check_attachable(name)
    spec = builtin_xml_template(name)
    assert spec is not None
    xml = render_xml(ctx, spec, templates_dir=templates_dir)
    return embed_order_x(pdf, xml, ctx)
