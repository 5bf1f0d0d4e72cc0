"""The contract every registered channel keeps, run over the whole registry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channel_support import ALL_SECRETS, run, secrets

from dispatch.channels import (
    CHANNELS,
    ChannelSet,
    DeliveryChannel,
    Envelope,
    Evidence,
    channel_class,
    channel_key,
    open_channel,
)
from dispatch.documents.b2b_line import B2BLine, submit_document
from dispatch.documents.base import Document
from dispatch.reference_data import VendorEmail
from dispatch.settings import DispatchSettings

_refs = iter(range(1, 10_000))


@dataclass
class Rig:
    """What the contract needs to know about one channel's loopback server."""

    settings: DispatchSettings
    target: Any
    documents: Callable[[], list[Document]]
    count: Callable[[], int]  # submissions / files / messages the server holds
    can_tell_resend: bool = True
    message_ids: Callable[[], list[str]] | None = None


@pytest.fixture
def rig(request: pytest.FixtureRequest, make_doc: Callable[..., Document]) -> Rig:
    key: str = request.param
    if key == "b2b":
        server = request.getfixturevalue("b2b_server")
        now = datetime.now(UTC)

        def lines() -> list[Document]:
            ref = f"PO-C{next(_refs)}/POI1"
            return [submit_document(B2BLine(ref, 2, 120045, now, now + timedelta(days=3)))]

        return Rig(DispatchSettings(), server.vendor_b2b("ACME_B2B_KEY"), lines,
                   lambda: len(server.submissions))
    if key == "email":
        server = request.getfixturevalue("smtp_starttls")
        return Rig(DispatchSettings(**server.settings_overrides()),
                   VendorEmail(to=["orders@acme.test"]), lambda: [make_doc(), make_doc()],
                   lambda: len(server.messages), can_tell_resend=False,
                   message_ids=lambda: [m.message_id for m in server.messages])
    fixture = {"sftp": "sftp_server", "ftp": "ftp_server", "ftps": "ftps_server"}[key]
    server = request.getfixturevalue(fixture)
    extra = {} if key == "sftp" else {"password_env": "ACME_FTP_PASSWORD"}
    return Rig(DispatchSettings(), server.vendor_ftp("inbox", **extra), lambda: [make_doc()],
               lambda: len(list((server.root / "inbox").iterdir())))


def test_registry_names_every_protocol() -> None:
    assert set(CHANNELS) == {"b2b", "sftp", "ftp", "ftps", "email"}
    for key in CHANNELS:
        cls = channel_class(key)
        assert key in cls.keys
        assert callable(cls.send) and callable(cls.aclose)


def test_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="b2b, email, ftp, ftps, sftp"):
        channel_class("fax")


@pytest.mark.parametrize("rig", sorted(CHANNELS), indirect=True)
def test_channel_contract(rig: Rig) -> None:
    documents = rig.documents()
    envelope = Envelope("contract-" + hashlib.sha1(documents[0].name.encode()).hexdigest()[:12],
                        order_id="PurchaseOrder42", kind="purchase", version=1)
    key = channel_key(rig.target)
    before = rig.count()

    async def go() -> tuple[Evidence, Evidence]:
        channel = open_channel(key, settings=rig.settings, secrets=secrets)
        assert isinstance(channel, DeliveryChannel)
        try:
            first = await channel.send(rig.target, documents, envelope)
            again = await channel.send(rig.target, documents, envelope)  # a retry after a crash
            return first, again
        finally:
            await channel.aclose()

    first, again = run(go())
    # complete evidence
    assert first.channel == key and first.target and first.remote
    assert len(first.sha256) == 64 and first.size > 0
    assert [(p.name, p.sha256, p.size) for p in first.documents] == [
        (d.name, d.sha256, d.size) for d in documents]
    if len(documents) == 1:
        assert (first.sha256, first.size) == (documents[0].sha256, documents[0].size)
    assert first.already_present is False
    text = repr(first.as_dict())
    assert not any(secret in text for secret in ALL_SECRETS)
    # a resend with the same key
    if rig.can_tell_resend:
        assert rig.count() == before + 1
    else:  # SMTP cannot tell: the same Message-ID lets the recipient drop the duplicate
        assert rig.message_ids is not None
        ids = rig.message_ids()[-2:]
        assert ids[0] == ids[1] == first.remote["message_id"] == again.remote["message_id"]
    if key in ("sftp", "ftp", "ftps"):
        assert again.already_present is True


def test_channel_set_reuses_and_closes(b2b_server: Any, make_doc: Callable[..., Document]
                                       ) -> None:
    now = datetime.now(UTC)
    document = submit_document(B2BLine("PO-SET/POI1", 1, 1, now, now))

    async def go() -> None:
        async with ChannelSet(settings=DispatchSettings(), secrets=secrets) as channels:
            target = b2b_server.vendor_b2b("ACME_B2B_KEY")
            assert channels.for_target(target) is channels.get("b2b")
            assert channels.get("ftp") is channels.get("ftps")
            await channels.for_target(target).send(target, [document], Envelope("set-1"))

    run(go())
