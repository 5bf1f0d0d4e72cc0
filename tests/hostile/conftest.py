"""Loopback stand-in vendors for the hostile-input suite (module-scoped: each file its own).

The secrets here are fake and test-only; the adversarial ones are what careless operators
set (a key file's trailing newline, a non-ASCII key, quotes, CR/LF, NUL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.demo.vendors import (
    B2BStandin,
    FtpStandin,
    SftpStandin,
    SmtpStandin,
    TestCertificates,
    make_test_certificates,
    start_b2b_standin,
    start_ftp_standin,
    start_sftp_standin,
    start_smtp_standin,
)

GOOD = {"b2b": "good-B2b-Key-81", "sftp": "good-Sftp-Pw-82", "ftp": "good-Ftp-Pw-83",
        "smtp": "good-Smtp-Pw-84"}
SMTP_USER = "dispatch"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_test_certificates(tmp_path_factory.mktemp("tls"))


def _root(factory: pytest.TempPathFactory, name: str) -> Path:
    root = factory.mktemp(name)
    (root / "inbox").mkdir()
    return root


@pytest.fixture(scope="module")
def b2b() -> Iterator[B2BStandin]:
    with start_b2b_standin(api_key=GOOD["b2b"]) as server:
        yield server


@pytest.fixture(scope="module")
def sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpStandin]:
    with start_sftp_standin(_root(tmp_path_factory, "sftp"), prefer="asyncssh",
                            password=GOOD["sftp"]) as server:
        yield server


@pytest.fixture(scope="module")
def ftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpStandin]:
    with start_ftp_standin(_root(tmp_path_factory, "ftp"), password=GOOD["ftp"]) as server:
        yield server


@pytest.fixture(scope="module")
def ftps(tmp_path_factory: pytest.TempPathFactory, certs: TestCertificates
         ) -> Iterator[FtpStandin]:
    with start_ftp_standin(_root(tmp_path_factory, "ftps"), certificates=certs,
                           password=GOOD["ftp"]) as server:
        yield server


@pytest.fixture(scope="module")
def smtp(certs: TestCertificates) -> Iterator[SmtpStandin]:
    with start_smtp_standin(security="starttls", certificates=certs, username=SMTP_USER,
                            password=GOOD["smtp"]) as server:
        yield server
