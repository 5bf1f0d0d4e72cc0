"""SFTP channel against real OpenSSH sshd (when present) and asyncssh (faults, passwords)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from channel_support import SFTP_PASSWORD, run, secrets

from dispatch.channels import Envelope, Evidence
from dispatch.channels.base import connect_tcp
from dispatch.channels.sftp import SftpChannel
from dispatch.demo.vendors import SftpStandin, make_ssh_key, start_sftp_standin
from dispatch.demo.vendors.sftp import sshd_usable
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp

Docs = Callable[..., Document]


def deliver(target: VendorFtp, *documents: Document, channel: SftpChannel | None = None
            ) -> list[Evidence]:
    async def go() -> list[Evidence]:
        ch = channel or SftpChannel(secrets=secrets)
        try:
            return [await ch.send(target, [d], Envelope(d.name)) for d in documents]
        finally:
            if channel is None:
                await ch.aclose()

    return run(go())


def listing(server: SftpStandin) -> list[str]:
    return sorted(p.name for p in (server.root / "inbox").iterdir())


def test_delivers_with_evidence_over_one_connection(sftp_server: SftpStandin, make_doc: Docs
                                                    ) -> None:
    docs = [make_doc() for _ in range(3)]
    sockets: list[socket.socket] = []

    def factory(host: str, port: int, timeout: float) -> socket.socket:
        sockets.append(connect_tcp(host, port, timeout))
        return sockets[-1]

    before = sftp_server.connections
    evidence = deliver(sftp_server.vendor_ftp(), *docs,
                       channel=SftpChannel(socket_factory=factory, secrets=secrets))
    assert sftp_server.connections - before == 1
    assert sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    for document, proof in zip(docs, evidence, strict=True):
        path = sftp_server.root / "inbox" / document.name
        assert path.read_bytes() == document.content
        assert proof.sha256 == document.sha256 and proof.size == document.size
        assert proof.remote["size"] == document.size
        assert proof.remote["path"].endswith("/inbox/" + document.name)
        assert proof.target == f"sftp://{sftp_server.username}@127.0.0.1:{sftp_server.port}" \
            + sftp_server.remote_path("inbox") + "/" + document.name
        assert proof.already_present is False
    assert not [n for n in listing(sftp_server) if n.endswith(".part")]


def test_real_sshd_is_used_when_available(sftp_server: SftpStandin) -> None:
    if os.environ.get("DISPATCH_TEST_SFTP_SERVER", "auto") != "auto":
        pytest.skip("server forced by DISPATCH_TEST_SFTP_SERVER")
    assert sftp_server.kind == ("sshd" if sshd_usable() else "asyncssh")


def test_same_file_already_there_counts_as_delivered(sftp_server: SftpStandin, make_doc: Docs
                                                     ) -> None:
    document = make_doc()
    path = sftp_server.root / "inbox" / document.name
    path.write_bytes(document.content)  # e.g. sent before a crash, never recorded
    mtime = path.stat().st_mtime_ns
    (evidence,) = deliver(sftp_server.vendor_ftp(), document)
    assert evidence.already_present is True
    assert evidence.remote["size"] == document.size
    assert path.stat().st_mtime_ns == mtime


def test_different_file_under_the_name_is_replaced(sftp_server: SftpStandin, make_doc: Docs
                                                   ) -> None:
    document = make_doc()
    path = sftp_server.root / "inbox" / document.name
    path.write_bytes(b"x" * document.size)
    (evidence,) = deliver(sftp_server.vendor_ftp(), document)
    assert evidence.already_present is False and "replaced" in evidence.remote
    assert path.read_bytes() == document.content


def test_password_auth(sftp_faulty: SftpStandin, make_doc: Docs) -> None:
    target = sftp_faulty.vendor_ftp(key_file=None, password_env="ACME_SFTP_PASSWORD")
    (evidence,) = deliver(target, document := make_doc())
    assert evidence.target == f"sftp://vendor@127.0.0.1:{sftp_faulty.port}/inbox/{document.name}"
    assert (sftp_faulty.root / "inbox" / document.name).read_bytes() == document.content
    assert SFTP_PASSWORD not in repr(evidence)


def test_host_key_mismatch_is_permanent(sftp_server: SftpStandin, make_doc: Docs,
                                        tmp_path: Path) -> None:
    impostor = make_ssh_key(tmp_path / "other").public_line
    with pytest.raises(DeliveryError, match="host key mismatch") as err:
        deliver(sftp_server.vendor_ftp(host_key=impostor), document := make_doc())
    assert err.value.retryable is False
    assert document.name not in listing(sftp_server)


def test_unknown_host_key_type_is_permanent(sftp_server: SftpStandin, make_doc: Docs) -> None:
    ecdsa = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEez"
             "OmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=")
    with pytest.raises(DeliveryError, match="host_key") as err:
        deliver(sftp_server.vendor_ftp(host_key=ecdsa), make_doc())
    assert err.value.retryable is False


def test_missing_host_key_is_never_auto_accepted(sftp_server: SftpStandin, make_doc: Docs
                                                 ) -> None:
    with pytest.raises(DeliveryError, match="no host_key configured") as err:
        deliver(sftp_server.vendor_ftp(host_key=None), make_doc())
    assert err.value.retryable is False


def test_auth_rejected_is_permanent(sftp_server: SftpStandin, make_doc: Docs, tmp_path: Path
                                    ) -> None:
    stranger = make_ssh_key(tmp_path / "stranger").private_file
    with pytest.raises(DeliveryError, match="authentication rejected") as err:
        deliver(sftp_server.vendor_ftp(key_file=str(stranger)), make_doc())
    assert err.value.retryable is False


def test_wrong_password_is_permanent(sftp_faulty: SftpStandin, make_doc: Docs) -> None:
    target = sftp_faulty.vendor_ftp(key_file=None, password_env="OTHER")

    async def go() -> None:
        channel = SftpChannel(secrets={"OTHER": "not-the-password"}.get)
        try:
            await channel.send(target, [make_doc()], Envelope("k"))
        finally:
            await channel.aclose()

    with pytest.raises(DeliveryError, match="authentication rejected") as err:
        run(go())
    assert err.value.retryable is False
    assert "not-the-password" not in str(err.value)


@pytest.mark.parametrize("kind", ["sshd", "asyncssh"])
def test_permission_denied_is_permanent(kind: str, tmp_path: Path, make_doc: Docs) -> None:
    if kind == "sshd" and not sshd_usable():
        pytest.skip("sshd not available")
    (tmp_path / "inbox").mkdir()
    with start_sftp_standin(tmp_path, prefer=kind, read_only=True) as server:  # type: ignore[arg-type]
        with pytest.raises(DeliveryError, match="permission denied") as err:
            deliver(server.vendor_ftp(), document := make_doc())
    assert err.value.retryable is False
    assert not (tmp_path / "inbox" / document.name).exists()


def test_missing_directory_is_permanent(sftp_server: SftpStandin, make_doc: Docs) -> None:
    with pytest.raises(DeliveryError, match="does not exist") as err:
        deliver(sftp_server.vendor_ftp("no-such-dir"), make_doc())
    assert err.value.retryable is False


def test_connection_dropped_mid_transfer(sftp_faulty: SftpStandin, make_doc: Docs) -> None:
    document = make_doc(b"0123456789" * 20_000)
    target = sftp_faulty.vendor_ftp()
    sftp_faulty.faults.drop_after_bytes = 50_000

    async def go() -> Evidence:
        channel = SftpChannel(secrets=secrets)
        try:
            with pytest.raises(DeliveryError) as err:
                await channel.send(target, [document], Envelope("k"))
            assert err.value.retryable is True
            assert not (sftp_faulty.root / "inbox" / document.name).exists()
            sftp_faulty.faults.drop_after_bytes = None
            return await channel.send(target, [document], Envelope("k"))  # the retry
        finally:
            await channel.aclose()

    evidence = run(go())
    assert (sftp_faulty.root / "inbox" / document.name).read_bytes() == document.content
    assert evidence.remote["size"] == document.size


def test_server_down_is_retryable(down_port: int, make_doc: Docs, sftp_server: SftpStandin
                                  ) -> None:
    target = sftp_server.vendor_ftp()
    target = target.model_copy(update={"url": target.url.replace(str(sftp_server.port),
                                                                 str(down_port))})
    with pytest.raises(DeliveryError) as err:
        deliver(target, make_doc())
    assert err.value.retryable is True


def test_bad_document_name_is_refused(sftp_server: SftpStandin) -> None:
    with pytest.raises(DeliveryError, match="remote file name"):
        deliver(sftp_server.vendor_ftp(), Document("../evil.xml", b"x", "application/xml", "XML"))


def test_stopping_the_standin_ends_its_processes(tmp_path: Path, make_doc: Docs) -> None:
    (tmp_path / "inbox").mkdir()
    server = start_sftp_standin(tmp_path)
    deliver(server.vendor_ftp(), make_doc())
    server.stop()
    listener = server._listener
    if listener is not None:  # sshd: one process per connection, all ended by their id
        assert listener._processes and all(p.poll() is not None for p in listener._processes)
