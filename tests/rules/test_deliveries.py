"""Expansion of a dispatch into delivery rows, per channel and kind (pure, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.rules.deliveries import (
    B2B_NO_CANCEL,
    B2B_NO_DECREASE,
    DeliveryPlan,
    expand,
    outbox_entries,
)
from dispatch.rules.send_options import SendPlan, parse_send_options
from dispatch.rules.types import DispatchPlan, LineState, VendorRef
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind, DocumentFormat

PENDING, UNSUPPORTED = DeliveryStatus.PENDING, DeliveryStatus.UNSUPPORTED
PURCHASE = DispatchPlan(DispatchKind.PURCHASE, 1, None)
CANCELLATION = DispatchPlan(DispatchKind.CANCELLATION, 2, 1)
VENDOR = VendorRef("ACME", email={"to": ["a@acme.test", "b@acme.test"], "cc": ["c@acme.test"]},
                   ftp={"url": "sftp://acme.test/in/"}, b2b={"url": "http://acme.test/"})
LINES = [LineState("L1", 0, "I1", None, None, total=10, received=2, cancelled=1),
         LineState("L2", 1, "I2", None, None, total=4),
         LineState("L3", 2, "I3", None, None, total=3, cancelled=3)]
EVERYTHING = parse_send_options({
    "Channel": {"IsB2B": True, "IsFtp": True, "IsEmail": True},
    "FTP": {"IsXml": True, "IsPdf": True, "PdfTemplateName": "ftp-pdf"},
    "Email": {"IsXml": True, "IsPdf": True, "IsExcel": True, "PdfTemplate": "mail-pdf",
              "ExcelTemplate": "mail-excel"},
})


def rows(plan: SendPlan = EVERYTHING, dispatch: DispatchPlan = PURCHASE,
         vendor: VendorRef = VENDOR, lines: list[LineState] = LINES) -> list[DeliveryPlan]:
    return expand(order_id="PO1", send_plan=plan, vendor=vendor, lines=lines, dispatch=dispatch,
                  token="tok")


def of(channel: Channel, rows_: list[DeliveryPlan]) -> list[DeliveryPlan]:
    return [r for r in rows_ if r.channel is channel]


def change(*entries: tuple[str, str, int, int]) -> DispatchPlan:
    return DispatchPlan(DispatchKind.CHANGE, 3, 2, [
        {"PurchaseOrderItemId": line, "Field": field, "Old": old, "New": new}
        for line, field, old, new in entries])


def test_channels_in_order_b2b_ftp_email() -> None:
    assert [r.channel for r in rows()] == [Channel.B2B] * 2 + [Channel.FTP] * 2 + \
        [Channel.EMAIL] * 3


def test_email_is_one_message_a_row_per_attachment() -> None:
    email = of(Channel.EMAIL, rows())
    message_id = "<PO1.purchase.1.tok@dispatch>"
    assert [r.format for r in email] == [DocumentFormat.XML, DocumentFormat.PDF,
                                         DocumentFormat.EXCEL]
    assert {r.group_key for r in email} == {message_id}
    assert [r.idempotency_key for r in email] == [
        f"{message_id}#XML", f"{message_id}#PDF", f"{message_id}#Excel"]
    assert [r.document_name for r in email] == [
        "PO1_purchase_1.xml", "PO1_purchase_1.pdf", "PO1_purchase_1.xlsx"]
    assert [r.template_name for r in email] == [None, "mail-pdf", "mail-excel"]
    assert {r.target for r in email} == {"mailto:a@acme.test,b@acme.test?cc=c@acme.test"}
    assert all(r.status is PENDING and r.order_item_id is None for r in email)


def test_ftp_is_a_row_per_file() -> None:
    ftp = of(Channel.FTP, rows(dispatch=CANCELLATION))
    assert [(r.format, r.document_name, r.target, r.idempotency_key, r.template_name)
            for r in ftp] == [
        (DocumentFormat.XML, "PO1_cancellation_2.xml",
         "sftp://acme.test/in/PO1_cancellation_2.xml", "ftp:tok:PO1_cancellation_2.xml", None),
        (DocumentFormat.PDF, "PO1_cancellation_2.pdf",
         "sftp://acme.test/in/PO1_cancellation_2.pdf", "ftp:tok:PO1_cancellation_2.pdf",
         "ftp-pdf"),
    ]
    assert all(r.group_key is None and r.status is PENDING for r in ftp)  # files can cancel


def test_b2b_is_a_row_per_line_with_something_to_order() -> None:
    b2b = of(Channel.B2B, rows())
    url = "http://acme.test/api/external/purchaseorders/submit"
    assert [(r.order_item_id, r.quantity, r.idempotency_key) for r in b2b] == [
        ("L1", 9, "PO1-1-L1-tok"), ("L2", 4, "PO1-1-L2-tok")]  # L3 is wholly cancelled
    assert all(r.format is None and r.document_name is None and r.target == url
               and r.status is PENDING and r.error is None for r in b2b)


def test_cancellation_over_b2b_is_unsupported() -> None:
    b2b = of(Channel.B2B, rows(dispatch=CANCELLATION))
    assert [(r.order_item_id, r.quantity) for r in b2b] == [("L1", 7), ("L2", 4), ("L3", 0)]
    assert all(r.status is UNSUPPORTED and r.error == B2B_NO_CANCEL for r in b2b)


def test_change_over_b2b_covers_only_changed_lines() -> None:
    b2b = of(Channel.B2B, rows(dispatch=change(("L2", "TotalQuantity", 4, 7))))
    assert [(r.order_item_id, r.quantity, r.status) for r in b2b] == [("L2", 3, PENDING)]
    assert b2b[0].idempotency_key == "PO1-3-L2-tok"


@pytest.mark.parametrize(("entries", "line"), [
    ((("L1", "TotalQuantity", 10, 8),), ("L1", -2)),  # a decrease
    ((("L1", "CancelledQuantity", 1, 3),), ("L1", 0)),  # a cancellation is a decrease too
])
def test_decreases_over_b2b_are_unsupported(entries: Any, line: tuple[str, int]) -> None:
    b2b = of(Channel.B2B, rows(dispatch=change(*entries)))
    assert [(r.order_item_id, r.quantity) for r in b2b] == [line]
    assert b2b[0].status is UNSUPPORTED and b2b[0].error == B2B_NO_DECREASE


def test_change_raising_total_and_cancelling_counts_the_raise() -> None:
    dispatch = change(("L1", "TotalQuantity", 10, 15), ("L1", "CancelledQuantity", 1, 2))
    assert [(r.order_item_id, r.quantity, r.status) for r in of(
        Channel.B2B, rows(dispatch=dispatch))] == [("L1", 5, PENDING)]


def test_change_documents_go_out_whole() -> None:
    dispatch = change(("L2", "TotalQuantity", 4, 7))
    assert [r.document_name for r in of(Channel.FTP, rows(dispatch=dispatch))] == [
        "PO1_change_3.xml", "PO1_change_3.pdf"]


@pytest.mark.parametrize(("missing", "channel"), [
    ("b2b", Channel.B2B), ("ftp", Channel.FTP), ("email", Channel.EMAIL)])
def test_a_channel_the_vendor_lacks_gets_no_rows(missing: str, channel: Channel) -> None:
    vendor = VendorRef("ACME", **{k: getattr(VENDOR, k) for k in ("b2b", "ftp", "email")
                                  if k != missing})
    assert {r.channel for r in rows(vendor=vendor)} == set(Channel) - {channel}


@pytest.mark.parametrize("channel", list(Channel))
def test_only_the_channels_of_the_plan(channel: Channel) -> None:
    assert {r.channel for r in rows(plan=EVERYTHING.only(channel))} == {channel}
    assert rows(plan=parse_send_options(None)) == []


def test_email_without_cc() -> None:
    vendor = VendorRef("ACME", email={"to": ["a@acme.test"]})
    assert {r.target for r in rows(vendor=vendor)} == {"mailto:a@acme.test"}


def test_outbox_entries_one_token_per_dispatch() -> None:
    tokens = iter(["t1", "t2"])
    entries = outbox_entries(order_id="PO1", send_plan=EVERYTHING.only(Channel.EMAIL),
                             vendor=VENDOR, lines=LINES, dispatches=[PURCHASE, CANCELLATION],
                             new_token=lambda: next(tokens))
    assert [(e.vendor_id, e.dispatch, e.resend_of_job_id) for e in entries] == [
        ("ACME", PURCHASE, None), ("ACME", CANCELLATION, None)]
    assert [{r.group_key for r in e.deliveries} for e in entries] == [
        {"<PO1.purchase.1.t1@dispatch>"}, {"<PO1.cancellation.2.t2@dispatch>"}]


def test_outbox_entries_without_vendor_have_no_rows() -> None:
    entries = outbox_entries(order_id="PO1", send_plan=EVERYTHING, vendor=None, lines=LINES,
                             dispatches=[PURCHASE], new_token=lambda: "t")
    assert [(e.vendor_id, e.deliveries) for e in entries] == [("", ())]


# --- which XML a delivery gets (SPEC 4) ----------------------------------------------------

XML_BOTH = {"Channel": {"IsFtp": True, "IsEmail": True},
            "FTP": {"IsXml": True, "IsPdf": True, "PdfTemplateName": "ftp-pdf"},
            "Email": {"IsXml": True}}


@pytest.mark.parametrize(("ftp_name", "email_name", "vendor_template", "expected"), [
    (None, None, None, (None, None)),  # the canonical XML: nothing changes for others
    (None, None, "peppol", ("peppol", "peppol")),  # one line of reference data
    ("cxml", None, "peppol", ("cxml", "peppol")),  # SendOptions' name wins, per channel
    ("cxml", "order-x", None, ("cxml", "order-x")),
])
def test_the_xml_template_is_sendoptions_else_the_vendors_else_canonical(
        ftp_name: str | None, email_name: str | None, vendor_template: str | None,
        expected: tuple[str | None, str | None]) -> None:
    options: dict[str, Any] = {k: dict(v) for k, v in XML_BOTH.items()}
    if ftp_name:
        options["FTP"]["XmlTemplateName"] = ftp_name
    if email_name:
        options["Email"]["XmlTemplate"] = email_name
    vendor = VendorRef("ACME", email=VENDOR.email, ftp=VENDOR.ftp,
                       xml_template=vendor_template)
    out = rows(parse_send_options(options), vendor=vendor)
    xml = {r.channel: r.template_name for r in out if r.format is DocumentFormat.XML}
    assert (xml[Channel.FTP], xml[Channel.EMAIL]) == expected
    pdf = next(r for r in out if r.format is DocumentFormat.PDF)
    assert pdf.template_name == "ftp-pdf"  # other formats keep their own template
    assert all(r.document_name and r.document_name.endswith((".xml", ".pdf")) for r in out)
