"""SendOptions, parsed once into a typed plan (pure).

The order's ``SendOptions`` JSON (seed 004) says which channels carry a dispatch and which
documents each file channel sends, with which named template. Everything that reads them
(Create validation, expansion into deliveries, ``dispatch render``, ``dispatch resend``)
reads this plan instead of the JSON keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dispatch.vocabulary import Channel, DocumentFormat

# Seed 004's keys: the channel flags, and per file channel its section and template fields.
CHANNEL_FLAGS: dict[Channel, str] = {
    Channel.B2B: "IsB2B", Channel.FTP: "IsFtp", Channel.EMAIL: "IsEmail"}
FORMAT_FLAGS: dict[DocumentFormat, str] = {
    DocumentFormat.XML: "IsXml", DocumentFormat.PDF: "IsPdf", DocumentFormat.EXCEL: "IsExcel"}
SECTIONS: dict[Channel, str] = {Channel.FTP: "FTP", Channel.EMAIL: "Email"}
TEMPLATE_FIELDS: dict[Channel, dict[DocumentFormat, str]] = {
    Channel.FTP: {DocumentFormat.PDF: "PdfTemplateName",
                  DocumentFormat.EXCEL: "ExcelTemplateName"},
    Channel.EMAIL: {DocumentFormat.PDF: "PdfTemplate", DocumentFormat.EXCEL: "ExcelTemplate"},
}


@dataclass(frozen=True)
class DocumentChoice:
    """One document a file channel sends: its format, the named template (None: the
    format's default), and the SendOptions path that chose the template (for errors)."""

    format: DocumentFormat
    template: str | None
    template_field: str | None  # e.g. "SendOptions.FTP.PdfTemplateName"


@dataclass(frozen=True)
class SendPlan:
    """The channels switched on (in the order B2B, FTP, Email) and each file channel's
    documents (in the order XML, PDF, Excel)."""

    channels: tuple[Channel, ...] = ()
    documents: Mapping[Channel, tuple[DocumentChoice, ...]] | None = None

    def uses(self, channel: Channel) -> bool:
        return channel in self.channels

    def documents_of(self, channel: Channel) -> tuple[DocumentChoice, ...]:
        return tuple((self.documents or {}).get(channel, ()))

    def only(self, channel: Channel) -> SendPlan:
        """The same plan restricted to one channel (``dispatch resend --channel``)."""
        return replace(self, channels=tuple(c for c in self.channels if c is channel))

    def template_for(self, format: DocumentFormat) -> str | None:
        """The template the order names for ``format`` (FTP's first, then Email's)."""
        for channel in (Channel.FTP, Channel.EMAIL):
            for choice in self.documents_of(channel):
                if choice.format is format and choice.template:
                    return choice.template
        return None


def parse_send_options(options: Mapping[str, Any] | None) -> SendPlan:
    """The plan of a stored or shape-checked SendOptions object (None: nothing is sent).

    Shape was checked at the API (seed 004 types); this reads, it does not validate.
    """
    options = options or {}
    flags = options.get("Channel") or {}
    channels = tuple(c for c, flag in CHANNEL_FLAGS.items() if flags.get(flag))
    documents: dict[Channel, tuple[DocumentChoice, ...]] = {}
    for channel, section_key in SECTIONS.items():
        section = options.get(section_key) or {}
        chosen = []
        for fmt, flag in FORMAT_FLAGS.items():
            if not section.get(flag):
                continue
            field = TEMPLATE_FIELDS[channel].get(fmt)
            chosen.append(DocumentChoice(
                fmt, section.get(field) if field else None,
                f"SendOptions.{section_key}.{field}" if field else None))
        documents[channel] = tuple(chosen)
    return SendPlan(channels, documents)

