"""What a resend repeats and where it goes (pure): the rule behind `dispatch resend`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dispatch.rules.resend import ResendRefused, decide_resend, repeated_dispatch
from dispatch.rules.types import DispatchRecord, LineState, OrderState, VendorRef
from dispatch.vocabulary import Channel, DeliveryStatus, DispatchKind

AT = dt.datetime(2030, 1, 2, 3, 4, 5)
CHANGES = [{"PurchaseOrderItemId": "L1", "Field": "TotalQuantity", "Old": 5, "New": 8}]
HISTORY = [
    DispatchRecord(11, 1, DispatchKind.PURCHASE, None, None, AT),
    DispatchRecord(12, 2, DispatchKind.CHANGE, 1, CHANGES, AT),
    DispatchRecord(13, 3, DispatchKind.PURCHASE, 2, None, AT),  # a resend of #1
    DispatchRecord(14, 4, DispatchKind.CHANGE, 3, CHANGES, AT),
]
VENDOR = VendorRef("ACME", email={"to": ["a@acme.test"]}, b2b={"url": "http://acme.test"})
OPTIONS: dict[str, Any] = {"Channel": {"IsB2B": True, "IsEmail": True}, "Email": {"IsXml": True}}


def order(options: dict[str, Any] | None = OPTIONS, dispatches: int = 4) -> OrderState:
    lines = [LineState("L1", 0, "I1", None, None, total=8), LineState("L2", 1, "I2", None, None, 2)]
    return OrderState("PO1", "ACME", "Main", "D", "Active", options, dispatches, lines)


@pytest.mark.parametrize(("kind", "job_id"), [
    (None, 14), (DispatchKind.PURCHASE, 13), (DispatchKind.CHANGE, 14),
    (DispatchKind.CANCELLATION, None)])
def test_the_latest_of_the_kind_is_repeated(kind: DispatchKind | None,
                                            job_id: int | None) -> None:
    found = repeated_dispatch(HISTORY, kind)
    assert (found.job_id if found else None) == job_id
    assert repeated_dispatch(list(reversed(HISTORY)), kind) == found  # by number, not position


def test_a_resend_is_a_new_dispatch_linked_to_the_one_it_repeats() -> None:
    entry = decide_resend(order(), HISTORY, vendor=VENDOR, kind=DispatchKind.PURCHASE,
                          channel=None, token="tok")
    assert entry.resend_of_job_id == 13 and entry.vendor_id == "ACME"
    assert (entry.dispatch.kind, entry.dispatch.number, entry.dispatch.replaces_number) == (
        DispatchKind.PURCHASE, 5, 3)
    assert {r.channel for r in entry.deliveries} == {Channel.B2B, Channel.EMAIL}
    assert all(r.status is DeliveryStatus.PENDING for r in entry.deliveries)
    assert all("tok" in r.idempotency_key for r in entry.deliveries)
    assert [r.quantity for r in entry.deliveries if r.channel is Channel.B2B] == [8, 2]


def test_a_change_resend_carries_its_changes() -> None:
    entry = decide_resend(order(), HISTORY, vendor=VENDOR, kind=None, channel=Channel.B2B,
                          token="t")
    assert entry.dispatch.kind is DispatchKind.CHANGE and entry.dispatch.changes == CHANGES
    assert [(r.channel, r.order_item_id, r.quantity) for r in entry.deliveries] == [
        (Channel.B2B, "L1", 3)]  # only the changed line, by its increase


def test_restricted_to_one_channel() -> None:
    entry = decide_resend(order(), HISTORY, vendor=VENDOR, kind=None, channel=Channel.EMAIL,
                          token="t")
    assert {r.channel for r in entry.deliveries} == {Channel.EMAIL}


@pytest.mark.parametrize(("kind", "history", "message"), [
    (DispatchKind.CANCELLATION, HISTORY, "order 'PO1' has no cancellation dispatch to resend"),
    (None, [], "order 'PO1' has no dispatch to resend"),
    (DispatchKind.PURCHASE, [], "order 'PO1' has no purchase dispatch to resend"),
])
def test_nothing_to_repeat_is_refused_naming_kind(kind: DispatchKind | None,
                                                  history: list[DispatchRecord],
                                                  message: str) -> None:
    with pytest.raises(ResendRefused) as refused:
        decide_resend(order(), history, vendor=VENDOR, kind=kind, channel=Channel.FTP,
                      token="t")
    assert (refused.value.field, refused.value.message) == ("kind", message)


@pytest.mark.parametrize(("options", "channel"), [
    (OPTIONS, Channel.FTP), (None, Channel.B2B), ({"Channel": {"IsB2B": False}}, Channel.B2B)])
def test_a_channel_the_order_does_not_use_is_refused(options: dict[str, Any] | None,
                                                     channel: Channel) -> None:
    with pytest.raises(ResendRefused) as refused:
        decide_resend(order(options), HISTORY, vendor=VENDOR, kind=None, channel=channel,
                      token="t")
    assert refused.value.field == "channel"
    assert refused.value.message == f"order 'PO1' is not sent by {channel}"


def test_without_the_vendor_nothing_is_expanded() -> None:
    entry = decide_resend(order(), HISTORY, vendor=None, kind=None, channel=None, token="t")
    assert (entry.vendor_id, entry.deliveries, entry.dispatch.number) == ("", (), 5)
