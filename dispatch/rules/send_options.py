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
# The XML fields are extensions (SPEC 4), optional: without one the vendor's xml_template,
# else the canonical XML, is sent.
TEMPLATE_FIELDS: dict[Channel, dict[DocumentFormat, str]] = {
    Channel.FTP: {DocumentFormat.XML: "XmlTemplateName", DocumentFormat.PDF: "PdfTemplateName",
                  DocumentFormat.EXCEL: "ExcelTemplateName"},
    Channel.EMAIL: {DocumentFormat.XML: "XmlTemplate", DocumentFormat.PDF: "PdfTemplate",
                    DocumentFormat.EXCEL: "ExcelTemplate"},
}
OPTIONAL_TEMPLATE = frozenset({DocumentFormat.XML})  # formats whose template has a default


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
    documents (in the order XML, PDF, Excel).

    ``sections`` and ``named`` keep what Create validation reports on: which file channel
    sections SendOptions gives at all, and every template it names (chosen or not).
    """

    channels: tuple[Channel, ...] = ()
    documents: Mapping[Channel, tuple[DocumentChoice, ...]] | None = None
    sections: frozenset[Channel] = frozenset()
    named: Mapping[Channel, tuple[DocumentChoice, ...]] | None = None

    def uses(self, channel: Channel) -> bool:
        return channel in self.channels

    def documents_of(self, channel: Channel) -> tuple[DocumentChoice, ...]:
        return tuple((self.documents or {}).get(channel, ()))

    def chooses(self, channel: Channel, format: DocumentFormat) -> bool:
        """Whether ``channel``'s section switches ``format`` on (the channel may be off)."""
        return any(choice.format is format for choice in self.documents_of(channel))

    def has_section(self, channel: Channel) -> bool:
        return channel in self.sections

    def templates_named(self, channel: Channel) -> tuple[DocumentChoice, ...]:
        """Every template ``channel``'s section names, whether its format is chosen or not."""
        return tuple((self.named or {}).get(channel, ()))

    def only(self, channel: Channel) -> SendPlan:
        """The same plan restricted to one channel (``dispatch resend --channel``)."""
        return replace(self, channels=tuple(c for c in self.channels if c is channel))

    def template_for(self, format: DocumentFormat) -> str | None:
        """The template the order names for ``format`` (Email's first, then FTP's; named
        counts, chosen or not: what ``dispatch render`` previews by default)."""
        for channel in (Channel.EMAIL, Channel.FTP):
            for choice in self.templates_named(channel):
                if choice.format is format:
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
    named: dict[Channel, tuple[DocumentChoice, ...]] = {}
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
        named[channel] = tuple(
            DocumentChoice(fmt, section[field], f"SendOptions.{section_key}.{field}")
            for fmt, field in TEMPLATE_FIELDS[channel].items() if section.get(field))
    sections = frozenset(c for c, key in SECTIONS.items() if options.get(key) is not None)
    return SendPlan(channels, documents, sections, named)
