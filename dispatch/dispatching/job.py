"""A claimed dispatch job, loaded once into a typed value: its due sends and everything
rendering them needs (document context, vendor targets, templates, B2B line data)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from dispatch.dispatching.loading import build_context, xml_templates
from dispatch.documents.base import Document
from dispatch.documents.context import DocumentContext
from dispatch.documents.xml_spec import XmlTemplateSpec
from dispatch.reference_data import VendorB2B, VendorEmail, VendorFtp
from dispatch.store import outbox
from dispatch.store.dispatch_reads import DocumentLine, LocationRecord, read_dispatch_inputs
from dispatch.store.outbox import DeliveryRow, JobRow
from dispatch.vocabulary import Channel, DispatchKind, DocumentFormat

Target = VendorB2B | VendorEmail | VendorFtp
TARGET_MODELS: dict[Channel, type[BaseModel]] = {
    Channel.B2B: VendorB2B, Channel.EMAIL: VendorEmail, Channel.FTP: VendorFtp}
VENDOR_KEYS = {Channel.B2B: "b2b", Channel.EMAIL: "email", Channel.FTP: "ftp"}


@dataclass(frozen=True)
class SendGroup:
    """What one send carries: an email message (its documents share a Message-ID), one
    file, or one B2B line."""

    channel: Channel
    deliveries: tuple[DeliveryRow, ...]

    @property
    def ids(self) -> list[int]:
        return [d.id for d in self.deliveries]

    @property
    def first(self) -> DeliveryRow:
        return self.deliveries[0]

    @property
    def formats(self) -> str:
        return "+".join(d.format or "line" for d in self.deliveries)

    @property
    def label(self) -> str:
        if self.channel is Channel.B2B:
            return f"B2B line {self.first.order_item_id}"
        return f"{self.channel} {self.formats}"


@dataclass
class Job:
    """A claimed job: the row, its due sends, and what they are rendered from."""

    row: JobRow
    groups: list[SendGroup]
    context: DocumentContext
    vendor: dict[Channel, dict[str, Any] | None]  # the vendor's channel configuration
    lines: dict[str, DocumentLine]
    ship_to: LocationRecord | None
    template_files: dict[str, str]
    rendered: dict[tuple[DocumentFormat, str | None], Document] = field(default_factory=dict)
    # XML deliveries' templates by name (an entry, else a built-in); absent: not found
    xml_templates: dict[str, XmlTemplateSpec] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.row.order_id}-{self.row.kind}-{self.row.number}"

    def target(self, channel: Channel) -> Target | None:
        """The vendor's configuration for ``channel`` as its model (None: not configured,
        or no longer valid)."""
        config = self.vendor.get(channel)
        if not config:
            return None
        try:
            return TARGET_MODELS[channel].model_validate(config)  # type: ignore[return-value]
        except ValidationError:
            return None


def group_sends(rows: list[DeliveryRow]) -> list[SendGroup]:
    """Email rows sharing a Message-ID travel together; everything else alone."""
    groups: list[list[DeliveryRow]] = []
    by_key: dict[str, list[DeliveryRow]] = {}
    for row in rows:
        if row.channel is Channel.EMAIL and row.group_key:
            members = by_key.get(row.group_key)
            if members is None:
                members = by_key[row.group_key] = []
                groups.append(members)
            members.append(row)
        else:
            groups.append([row])
    return [SendGroup(members[0].channel, tuple(members)) for members in groups]


def load_job(conn: Connection, *, job_id: int, now: dt.datetime, buyer_name: str
             ) -> Job | None:
    """The job with its due deliveries grouped into sends (None: the job is gone)."""
    row = outbox.job_row(conn, job_id=job_id)
    if row is None:
        return None
    due = outbox.due_deliveries(conn, job_id=job_id, now=now)
    templates = {d.template_name for d in due if d.template_name}
    inputs = read_dispatch_inputs(conn, order_id=row.order_id, template_names=templates)
    if inputs is None:
        return None
    reminder = row.kind is DispatchKind.REMINDER  # SPEC 8: its own context and template
    context = build_context(inputs, kind=DispatchKind.PURCHASE if reminder else row.kind,
                            number=row.number,
                            replaces_number=row.replaces_number, changes=row.changes,
                            generated_at=row.created_at, buyer_name=buyer_name)
    if reminder:
        from dispatch.responses.reminder import reminder_job_parts

        context, inputs = reminder_job_parts(conn, row=row, context=context, inputs=inputs)
    vendor = inputs.vendor
    configs = {c: getattr(vendor, key) if vendor is not None else None
               for c, key in VENDOR_KEYS.items()}
    xml_names = {d.template_name for d in due
                 if d.template_name and d.format is DocumentFormat.XML}
    return Job(row, group_sends(due), context, configs, {ln.id: ln for ln in inputs.lines},
               inputs.ship_to, inputs.template_files,
               xml_templates=xml_templates(xml_names, inputs.xml_entries))
