"""SendOptions JSON -> SendPlan: channels, documents, templates, sections, restriction."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.erp.schemas import CreateRequest
from dispatch.rules.create import options_of
from dispatch.rules.send_options import DocumentChoice, SendPlan, parse_send_options
from dispatch.vocabulary import Channel, DocumentFormat

B2B, FTP, EMAIL = Channel.B2B, Channel.FTP, Channel.EMAIL
XML, PDF, EXCEL = DocumentFormat.XML, DocumentFormat.PDF, DocumentFormat.EXCEL

EVERYTHING: dict[str, Any] = {
    "Channel": {"IsEmail": True, "IsFtp": True, "IsB2B": True},
    "FTP": {"IsExcel": True, "IsXml": True, "ExcelTemplateName": "ftp-excel",
            "PdfTemplateName": "ftp-pdf"},
    "Email": {"IsPdf": True, "IsXml": True, "IsExcel": True, "PdfTemplate": "mail-pdf",
              "ExcelTemplate": "mail-excel"},
}


@pytest.mark.parametrize("options", [None, {}, {"Channel": None}, {"Channel": {}},
                                     {"Channel": {"IsB2B": False, "IsEmail": False}}])
def test_nothing_chosen_sends_nothing(options: dict[str, Any] | None) -> None:
    plan = parse_send_options(options)
    assert plan.channels == ()
    assert all(not plan.uses(c) for c in Channel)
    assert all(plan.documents_of(c) == () for c in Channel)


def test_channels_and_documents_in_fixed_order() -> None:
    plan = parse_send_options(EVERYTHING)
    assert plan.channels == (B2B, FTP, EMAIL)  # not the JSON's key order
    assert [d.format for d in plan.documents_of(EMAIL)] == [XML, PDF, EXCEL]
    assert [d.format for d in plan.documents_of(FTP)] == [XML, EXCEL]
    assert plan.documents_of(B2B) == ()


def test_each_document_carries_its_template_and_the_field_naming_it() -> None:
    plan = parse_send_options(EVERYTHING)
    assert plan.documents_of(EMAIL) == (
        DocumentChoice(XML, None, "SendOptions.Email.XmlTemplate"),  # optional: none named
        DocumentChoice(PDF, "mail-pdf", "SendOptions.Email.PdfTemplate"),
        DocumentChoice(EXCEL, "mail-excel", "SendOptions.Email.ExcelTemplate"),
    )
    assert plan.documents_of(FTP)[1] == DocumentChoice(
        EXCEL, "ftp-excel", "SendOptions.FTP.ExcelTemplateName")


def test_an_xml_template_name_is_carried_like_the_others() -> None:
    plan = parse_send_options({"Channel": {"IsFtp": True, "IsEmail": True},
                               "FTP": {"IsXml": True, "XmlTemplateName": "peppol"},
                               "Email": {"IsXml": True, "XmlTemplate": "acme-xml"}})
    assert plan.documents_of(FTP) == (
        DocumentChoice(XML, "peppol", "SendOptions.FTP.XmlTemplateName"),)
    assert plan.documents_of(EMAIL) == (
        DocumentChoice(XML, "acme-xml", "SendOptions.Email.XmlTemplate"),)
    assert plan.template_for(XML) == "acme-xml"  # Email's first, as for PDF and Excel


def test_chosen_format_without_template_has_none() -> None:
    plan = parse_send_options({"Channel": {"IsFtp": True}, "FTP": {"IsPdf": True}})
    assert plan.documents_of(FTP) == (
        DocumentChoice(PDF, None, "SendOptions.FTP.PdfTemplateName"),)


def test_templates_named_counts_names_whatever_the_flags() -> None:
    plan = parse_send_options({"FTP": {"PdfTemplateName": "p", "IsExcel": True},
                               "Email": {"ExcelTemplate": "", "IsPdf": True}})
    assert plan.templates_named(FTP) == (
        DocumentChoice(PDF, "p", "SendOptions.FTP.PdfTemplateName"),)
    assert plan.templates_named(EMAIL) == ()  # an empty name names nothing
    assert plan.chooses(FTP, EXCEL) and not plan.chooses(FTP, PDF)
    assert plan.chooses(EMAIL, PDF)


@pytest.mark.parametrize(("options", "sections"), [
    ({}, set()),
    ({"FTP": {}}, {FTP}),
    ({"Email": {"IsXml": False}}, {EMAIL}),
    ({"FTP": None, "Email": {}}, {EMAIL}),
    (EVERYTHING, {FTP, EMAIL}),
])
def test_sections_given_are_known_even_when_empty(options: dict[str, Any],
                                                  sections: set[Channel]) -> None:
    plan = parse_send_options(options)
    assert {c for c in Channel if plan.has_section(c)} == sections


@pytest.mark.parametrize("channel", list(Channel))
def test_only_keeps_one_channel_and_its_documents(channel: Channel) -> None:
    plan = parse_send_options(EVERYTHING).only(channel)
    assert plan.channels == (channel,)
    assert plan.documents_of(EMAIL) == parse_send_options(EVERYTHING).documents_of(EMAIL)


def test_only_a_channel_not_chosen_leaves_nothing() -> None:
    plan = parse_send_options({"Channel": {"IsEmail": True}, "Email": {"IsXml": True}})
    assert plan.only(FTP).channels == ()


@pytest.mark.parametrize(("options", "format", "expected"), [
    (EVERYTHING, PDF, "mail-pdf"),  # Email's before FTP's
    (EVERYTHING, EXCEL, "mail-excel"),
    (EVERYTHING, XML, None),  # XML has no template
    ({"FTP": {"PdfTemplateName": "ftp-pdf"}}, PDF, "ftp-pdf"),  # named, not chosen: counts
    ({"Email": {"IsPdf": True}, "FTP": {"PdfTemplateName": "ftp-pdf"}}, PDF, "ftp-pdf"),
    ({"Email": {"PdfTemplate": "mail-pdf"}}, EXCEL, None),
    (None, PDF, None),
])
def test_template_for(options: dict[str, Any] | None, format: DocumentFormat,
                      expected: str | None) -> None:
    assert parse_send_options(options).template_for(format) == expected


def test_a_create_request_parses_as_stored() -> None:
    req = CreateRequest.model_validate({"SendOptions": EVERYTHING})
    stored = options_of(req)
    assert stored == EVERYTHING  # what the order row keeps
    assert parse_send_options(stored) == parse_send_options(EVERYTHING)
    assert options_of(CreateRequest()) is None
    assert parse_send_options(options_of(CreateRequest())) == SendPlan(
        (), {FTP: (), EMAIL: ()}, frozenset(), {FTP: (), EMAIL: ()})
