"""FTP and FTPS channel against pyftpdlib and real vsftpd (TLS session reuse required)."""

from __future__ import annotations

import ftplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from channel_support import FTP_PASSWORD, run, secrets

from dispatch.channels import Envelope, Evidence
from dispatch.channels.ftp import FtpChannel, default_ftp
from dispatch.demo.vendors import FtpStandin, TestCertificates, VsftpdStandin
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp

Docs = Callable[..., Document]
Server = FtpStandin | VsftpdStandin


def deliver(target: VendorFtp, *documents: Document, channel: FtpChannel | None = None
            ) -> list[Evidence]:
    async def go() -> list[Evidence]:
        ch = channel or FtpChannel(secrets=secrets)
        try:
            return [await ch.send(target, [d], Envelope(d.name)) for d in documents]
        finally:
            await ch.aclose()

    return run(go())


def target_of(server: Server, directory: str = "inbox", **extra: object) -> VendorFtp:
    if isinstance(server, FtpStandin):
        return server.vendor_ftp(directory, password_env="ACME_FTP_PASSWORD", **extra)
    return server.vendor_ftp(directory, **extra)


@pytest.fixture(params=["ftp", "ftps", "vsftpd-ftps"])
def server(request: pytest.FixtureRequest) -> Server:
    name = {"ftp": "ftp_server", "ftps": "ftps_server", "vsftpd-ftps": "vsftpd_ftps"}
    return request.getfixturevalue(name[request.param])


def test_delivers_with_evidence_over_one_connection(server: Server, make_doc: Docs) -> None:
    docs = [make_doc() for _ in range(3)]
    made: list[ftplib.FTP] = []

    def factory(context: ssl.SSLContext | None, timeout: float) -> ftplib.FTP:
        made.append(default_ftp(context, timeout))
        return made[-1]

    before = server.connections
    evidence = deliver(target_of(server), *docs, channel=FtpChannel(ftp_factory=factory,
                                                                    secrets=secrets))
    assert server.connections - before == 1 and len(made) == 1
    for document, proof in zip(docs, evidence, strict=True):
        assert (server.root / "inbox" / document.name).read_bytes() == document.content
        assert proof.sha256 == document.sha256 and proof.remote["size"] == document.size
        assert proof.remote["path"] == f"/inbox/{document.name}"
        assert proof.target.endswith(f"@127.0.0.1:{server.port}/inbox/{document.name}")
        assert proof.channel == ("ftps" if server.certificates else "ftp")
    assert not [p for p in (server.root / "inbox").iterdir() if p.name.endswith(".part")]


def test_sockets_have_nodelay(ftps_server: FtpStandin, make_doc: Docs) -> None:
    made: list[ftplib.FTP] = []

    def factory(context: ssl.SSLContext | None, timeout: float) -> ftplib.FTP:
        made.append(default_ftp(context, timeout))
        return made[-1]

    async def go() -> None:
        channel = FtpChannel(ftp_factory=factory, secrets=secrets)
        await channel.send(target_of(ftps_server), [make_doc()], Envelope("k"))
        assert made[0].sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await channel.aclose()

    run(go())


def test_vsftpd_rejects_data_connections_without_session_reuse(
    vsftpd_ftps: VsftpdStandin, make_doc: Docs
) -> None:
    """Why ReusingFTP_TLS exists: stdlib FTP_TLS alone gets '522 session reuse required'."""

    def plain_stdlib(context: ssl.SSLContext | None, timeout: float) -> ftplib.FTP:
        return ftplib.FTP_TLS(context=context, timeout=timeout)

    with pytest.raises(DeliveryError, match="522"):
        deliver(target_of(vsftpd_ftps), make_doc(),
                channel=FtpChannel(ftp_factory=plain_stdlib, secrets=secrets))


def test_same_file_already_there_counts_as_delivered(server: Server, make_doc: Docs) -> None:
    document = make_doc()
    path = server.root / "inbox" / document.name
    deliver(target_of(server), document)
    mtime = path.stat().st_mtime_ns
    (evidence,) = deliver(target_of(server), document)
    assert evidence.already_present is True and evidence.remote["size"] == document.size
    assert path.stat().st_mtime_ns == mtime


def test_untrusted_certificate_is_permanent(ftps_server: FtpStandin, make_doc: Docs,
                                            other_certs: TestCertificates) -> None:
    with pytest.raises(DeliveryError, match="certificate not trusted") as err:
        deliver(target_of(ftps_server, ca_file=str(other_certs.ca_file)), make_doc())
    assert err.value.retryable is False


def test_system_trust_store_does_not_trust_a_private_ca(ftps_server: FtpStandin,
                                                        make_doc: Docs) -> None:
    target = target_of(ftps_server)
    target = VendorFtp(url=target.url, password_env=target.password_env)  # no ca_file
    with pytest.raises(DeliveryError, match="certificate not trusted"):
        deliver(target, make_doc())


def test_login_rejected_is_permanent(ftp_server: FtpStandin, make_doc: Docs) -> None:
    async def go() -> None:
        channel = FtpChannel(secrets={"ACME_FTP_PASSWORD": "wrong-pass"}.get)
        try:
            await channel.send(target_of(ftp_server), [make_doc()], Envelope("k"))
        finally:
            await channel.aclose()

    with pytest.raises(DeliveryError, match="login rejected") as err:
        run(go())
    assert err.value.retryable is False
    assert "wrong-pass" not in str(err.value) and FTP_PASSWORD not in str(err.value)


def test_permission_denied_is_permanent(ftps_server: FtpStandin, make_doc: Docs) -> None:
    target = ftps_server.vendor_ftp(username="readonly", password_env="ACME_FTP_PASSWORD")
    with pytest.raises(DeliveryError, match="refused by the server") as err:
        deliver(target, document := make_doc())
    assert err.value.retryable is False
    assert not (ftps_server.root / "inbox" / document.name).exists()


@pytest.mark.parametrize("fixture", ["ftp_server", "ftps_server"])
def test_connection_dropped_mid_transfer(fixture: str, request: pytest.FixtureRequest,
                                         make_doc: Docs) -> None:
    server: FtpStandin = request.getfixturevalue(fixture)
    document = make_doc(b"0123456789" * 50_000)
    server.faults.drop_after_bytes = 100_000

    async def go() -> Evidence:
        channel = FtpChannel(secrets=secrets)
        try:
            with pytest.raises(DeliveryError) as err:
                await channel.send(target_of(server), [document], Envelope("k"))
            assert err.value.retryable is True
            assert not (server.root / "inbox" / document.name).exists()
            server.faults.drop_after_bytes = None
            return await channel.send(target_of(server), [document], Envelope("k"))
        finally:
            server.faults.drop_after_bytes = None
            await channel.aclose()

    evidence = run(go())
    assert (server.root / "inbox" / document.name).read_bytes() == document.content
    assert evidence.remote["size"] == document.size


def test_reused_connection_that_died_is_replaced(ftp_server: FtpStandin, make_doc: Docs
                                                 ) -> None:
    async def go() -> None:
        channel = FtpChannel(secrets=secrets)
        await channel.send(target_of(ftp_server), [make_doc()], Envelope("a"))
        for ftp in channel._connections.values():  # the server hung up while idle
            ftp.sock.shutdown(socket.SHUT_RDWR)
        await channel.send(target_of(ftp_server), [make_doc()], Envelope("b"))
        await channel.aclose()

    run(go())


def test_server_down_is_retryable(down_port: int, make_doc: Docs) -> None:
    with pytest.raises(DeliveryError, match="ConnectionRefused") as err:
        deliver(VendorFtp(url=f"ftp://acme@127.0.0.1:{down_port}/inbox"), make_doc())
    assert err.value.retryable is True


def test_missing_directory_is_permanent(ftp_server: FtpStandin, make_doc: Docs,
                                        tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as err:
        deliver(target_of(ftp_server, "no-such-dir"), make_doc())
    assert err.value.retryable is False
