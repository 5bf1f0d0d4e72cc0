"""Email channel against aiosmtpd: plain, STARTTLS + AUTH, implicit TLS, and faults."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from typing import Any

import aiosmtplib
import pytest
from channel_support import SMTP_PASSWORD, run

from dispatch.channels import Envelope, Evidence
from dispatch.channels.smtp import SmtpChannel, make_message_id, subject_for
from dispatch.demo.vendors import SmtpStandin, TestCertificates
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorEmail
from dispatch.settings import DispatchSettings

Docs = Callable[..., Document]
VENDOR = VendorEmail(to=["orders@acme.test", "sales@acme.test"], cc=["buyer@dispatch.test"])


def settings_for(server: SmtpStandin, **changes: Any) -> DispatchSettings:
    return DispatchSettings(**{**server.settings_overrides(), **changes})


def deliver(settings: DispatchSettings, *envelopes: Envelope, documents: list[Document],
            channel_kwargs: dict[str, Any] | None = None) -> list[Evidence]:
    async def go() -> list[Evidence]:
        channel = SmtpChannel(settings=settings, **(channel_kwargs or {}))
        try:
            return [await channel.send(VENDOR, documents, e) for e in envelopes]
        finally:
            await channel.aclose()

    return run(go())


def attachments(make_doc: Docs) -> list[Document]:
    return [make_doc(), make_doc(b"%PDF-1.4 fake", suffix="pdf", media_type="application/pdf",
                                 fmt="PDF"),
            make_doc(b"PK\x03\x04 fake", suffix="xlsx", fmt="Excel",
                     media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]


def test_one_message_with_every_document(smtp_plain: SmtpStandin, make_doc: Docs) -> None:
    documents = attachments(make_doc)
    envelope = Envelope("dlv-m1", order_id="PurchaseOrder7", kind="change", version=2,
                        message_id="<dlv-m1@dispatch.test>")
    before = len(smtp_plain.messages)
    (evidence,) = deliver(settings_for(smtp_plain), envelope, documents=documents)
    (mail,) = smtp_plain.messages[before:]
    message = mail.message
    assert message["Message-ID"] == "<dlv-m1@dispatch.test>"
    assert "PurchaseOrder7" in message["Subject"] and "version 2" in message["Subject"]
    assert message["Subject"] == subject_for("PurchaseOrder7", "change", 2)
    assert sorted(mail.rcpt_tos) == sorted([*VENDOR.to, *VENDOR.cc])
    parts = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert parts == {d.name: d.content for d in documents}
    assert evidence.remote["message_id"] == "<dlv-m1@dispatch.test>"
    assert evidence.remote["reply"].startswith("250")
    assert evidence.sha256 == hashlib.sha256(mail.content).hexdigest()
    assert [p.sha256 for p in evidence.documents] == [d.sha256 for d in documents]
    assert evidence.target == "mailto:orders@acme.test,sales@acme.test?cc=buyer@dispatch.test"


def test_cancellation_subject_says_so() -> None:
    assert "CANCELLATION" in subject_for("PO1", "cancellation", 3)


def test_message_id_is_derived_from_the_key_when_not_given(smtp_plain: SmtpStandin,
                                                           make_doc: Docs) -> None:
    key = "PO9/purchase/1/email"
    (evidence,) = deliver(settings_for(smtp_plain), Envelope(key), documents=[make_doc()])
    expected = make_message_id(key, "dispatch.localhost")
    assert evidence.remote["message_id"] == expected == "<PO9/purchase/1/email@dispatch.localhost>"
    assert smtp_plain.messages[-1].message_id == expected
    assert make_message_id("a b@c<d>", "x.test") == "<a-b-c-d-@x.test>"


@pytest.mark.parametrize("fixture", ["smtp_starttls", "smtp_tls"])
def test_tls_and_auth_over_one_connection(fixture: str, request: pytest.FixtureRequest,
                                          make_doc: Docs) -> None:
    server: SmtpStandin = request.getfixturevalue(fixture)
    before_messages, before_conns = len(server.messages), server.connections
    envelopes = [Envelope(f"{fixture}-{n}") for n in range(3)]
    evidence = deliver(settings_for(server), *envelopes, documents=[make_doc()])
    assert len(server.messages) - before_messages == 3
    assert server.connections - before_conns == 1
    assert all(e.remote["reply"].startswith("250") for e in evidence)


def test_socket_has_nodelay(smtp_plain: SmtpStandin, make_doc: Docs) -> None:
    async def go() -> None:
        channel = SmtpChannel(settings=settings_for(smtp_plain))
        await channel.send(VENDOR, [make_doc()], Envelope("nodelay"))
        assert channel._smtp is not None and channel._smtp.transport is not None
        sock = channel._smtp.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await channel.aclose()

    run(go())


def test_wrong_password_is_permanent(smtp_starttls: SmtpStandin, make_doc: Docs) -> None:
    settings = settings_for(smtp_starttls, smtp_password="not-the-password")
    with pytest.raises(DeliveryError, match="login rejected") as err:
        deliver(settings, Envelope("auth"), documents=[make_doc()])
    assert err.value.retryable is False
    assert "not-the-password" not in str(err.value) and SMTP_PASSWORD not in str(err.value)


def test_4xx_is_retryable_then_succeeds(smtp_plain: SmtpStandin, make_doc: Docs) -> None:
    before = len(smtp_plain.messages)
    smtp_plain.fail_next("451 4.3.0 Try again later")

    async def go() -> Evidence:
        channel = SmtpChannel(settings=settings_for(smtp_plain))
        try:
            with pytest.raises(DeliveryError, match="451") as err:
                await channel.send(VENDOR, [make_doc()], Envelope("k451"))
            assert err.value.retryable is True
            return await channel.send(VENDOR, [make_doc()], Envelope("k451"))
        finally:
            await channel.aclose()

    evidence = run(go())
    assert len(smtp_plain.messages) == before + 1
    assert smtp_plain.messages[-1].message_id == evidence.remote["message_id"]


def test_5xx_is_permanent(smtp_plain: SmtpStandin, make_doc: Docs) -> None:
    smtp_plain.fail_next("554 5.7.1 Message rejected")
    with pytest.raises(DeliveryError, match="554") as err:
        deliver(settings_for(smtp_plain), Envelope("k554"), documents=[make_doc()])
    assert err.value.retryable is False


def test_connection_dropped_during_data_is_retryable(smtp_plain: SmtpStandin, make_doc: Docs
                                                     ) -> None:
    before = len(smtp_plain.messages)
    smtp_plain.drop_next()
    with pytest.raises(DeliveryError) as err:
        deliver(settings_for(smtp_plain), Envelope("kdrop"), documents=[make_doc()])
    assert err.value.retryable is True
    assert len(smtp_plain.messages) == before


def test_reused_connection_that_died_is_replaced(smtp_plain: SmtpStandin, make_doc: Docs
                                                 ) -> None:
    async def go() -> None:
        channel = SmtpChannel(settings=settings_for(smtp_plain))
        await channel.send(VENDOR, [make_doc()], Envelope("r1"))
        assert channel._smtp is not None and channel._smtp.transport is not None
        channel._smtp.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        await channel.send(VENDOR, [make_doc()], Envelope("r2"))
        await channel.aclose()

    run(go())


def test_server_down_is_retryable(down_port: int, make_doc: Docs) -> None:
    settings = DispatchSettings(smtp_host="127.0.0.1", smtp_port=down_port)
    with pytest.raises(DeliveryError) as err:
        deliver(settings, Envelope("down"), documents=[make_doc()])
    assert err.value.retryable is True


def test_untrusted_certificate_is_permanent(smtp_starttls: SmtpStandin, make_doc: Docs,
                                            other_certs: TestCertificates) -> None:
    settings = settings_for(smtp_starttls, smtp_ca_file=other_certs.ca_file)
    with pytest.raises(DeliveryError, match="certificate not trusted") as err:
        deliver(settings, Envelope("cert"), documents=[make_doc()])
    assert err.value.retryable is False


def test_starttls_required_but_not_offered_is_permanent(smtp_plain: SmtpStandin,
                                                        make_doc: Docs) -> None:
    settings = settings_for(smtp_plain, smtp_security="starttls")
    with pytest.raises(DeliveryError, match="STARTTLS|starttls") as err:
        deliver(settings, Envelope("nostarttls"), documents=[make_doc()])
    assert err.value.retryable is False


def test_factory_is_used(smtp_plain: SmtpStandin, make_doc: Docs) -> None:
    made: list[aiosmtplib.SMTP] = []

    def factory(**kwargs: Any) -> aiosmtplib.SMTP:
        made.append(aiosmtplib.SMTP(**kwargs))
        return made[-1]

    deliver(settings_for(smtp_plain), Envelope("f1"), Envelope("f2"), documents=[make_doc()],
            channel_kwargs={"smtp_factory": factory})
    assert len(made) == 1
