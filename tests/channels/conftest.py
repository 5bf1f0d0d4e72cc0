"""Loopback servers for the channel tests (started from dispatch.demo.vendors).

Session-scoped servers are shared; each test uses its own file names, keys and message ids.
Fault-injecting servers (asyncssh, the ``*_faulty`` fixtures) are per test.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from channel_support import B2B_KEY, FTP_PASSWORD, SFTP_PASSWORD, SMTP_PASSWORD, SMTP_USER

from dispatch.demo.vendors import (
    B2BStandin,
    FtpStandin,
    SftpStandin,
    SmtpStandin,
    TestCertificates,
    VsftpdStandin,
    make_test_certificates,
    start_b2b_standin,
    start_ftp_standin,
    start_sftp_standin,
    start_smtp_standin,
    start_vsftpd_standin,
    vsftpd_usable,
)
from dispatch.documents.base import Document

_names = itertools.count(1)


@pytest.fixture
def make_doc() -> Callable[..., Document]:
    """Documents with names unique in the session: PO<n>_purchase_1.xml."""

    def make(content: bytes | None = None, *, suffix: str = "xml",
             media_type: str = "application/xml", fmt: str = "XML") -> Document:
        n = next(_names)
        body = content if content is not None else f"<order id='PO{n}'/>".encode() * 50
        return Document(f"PO{n}_purchase_1.{suffix}", body, media_type, fmt)

    return make


@pytest.fixture
def down_port() -> int:
    """A loopback port nothing listens on (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_test_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """A second, unrelated CA: clients trusting it must reject the servers."""
    return make_test_certificates(tmp_path_factory.mktemp("tls-other"), "unrelated CA")


@pytest.fixture(scope="session")
def smtp_plain() -> Iterator[SmtpStandin]:
    with start_smtp_standin() as server:
        yield server


@pytest.fixture(scope="session")
def smtp_starttls(certs: TestCertificates) -> Iterator[SmtpStandin]:
    with start_smtp_standin(security="starttls", certificates=certs, username=SMTP_USER,
                            password=SMTP_PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_tls(certs: TestCertificates) -> Iterator[SmtpStandin]:
    with start_smtp_standin(security="tls", certificates=certs, username=SMTP_USER,
                            password=SMTP_PASSWORD) as server:
        yield server


def _root(factory: pytest.TempPathFactory, name: str) -> Path:
    root = factory.mktemp(name)
    (root / "inbox").mkdir()
    return root


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpStandin]:
    """Real OpenSSH sshd when available (root + /usr/sbin/sshd), else asyncssh.

    DISPATCH_TEST_SFTP_SERVER=asyncssh forces the fallback (to test it where sshd exists).
    """
    prefer = os.environ.get("DISPATCH_TEST_SFTP_SERVER", "auto")
    with start_sftp_standin(_root(tmp_path_factory, "sftp"), prefer=prefer) as server:
        yield server


@pytest.fixture
def sftp_faulty(tmp_path: Path) -> Iterator[SftpStandin]:
    """asyncssh with password auth and switchable faults (server.faults)."""
    (tmp_path / "inbox").mkdir()
    with start_sftp_standin(tmp_path, prefer="asyncssh", password=SFTP_PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpStandin]:
    with start_ftp_standin(_root(tmp_path_factory, "ftp"), password=FTP_PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def ftps_server(tmp_path_factory: pytest.TempPathFactory, certs: TestCertificates
                ) -> Iterator[FtpStandin]:
    with start_ftp_standin(_root(tmp_path_factory, "ftps"), certificates=certs,
                           password=FTP_PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def vsftpd_ftps(tmp_path_factory: pytest.TempPathFactory, certs: TestCertificates
                ) -> Iterator[VsftpdStandin]:
    if not vsftpd_usable():
        pytest.skip("vsftpd not installed or not root")
    with start_vsftpd_standin(_root(tmp_path_factory, "vsftpd"), certificates=certs) as server:
        yield server


@pytest.fixture(scope="session")
def b2b_server() -> Iterator[B2BStandin]:
    with start_b2b_standin(api_key=B2B_KEY) as server:
        yield server
