"""Stand-in vendor endpoints on 127.0.0.1 for tests, the benchmark and ``dispatch demo``.

Each starter returns a running server object (a context manager with ``stop()``) that
records what it received and can hand out the matching vendor target::

    certificates = make_test_certificates(tmp / "tls")
    smtp = start_smtp_standin(security="starttls", certificates=certificates,
                              username="dispatch", password="...")
    settings = DispatchSettings(**smtp.settings_overrides())
    sftp = start_sftp_standin(tmp / "sftp")        # sshd when root, else asyncssh
    vendor_ftp = sftp.vendor_ftp("inbox")          # url + key_file + host_key
    b2b = start_b2b_standin()
    vendor_b2b = b2b.vendor_b2b()

The servers need the test extras (aiosmtpd, asyncssh, pyftpdlib); they are imported only
when a starter is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TestCertificates": "tls", "make_test_certificates": "tls",
    "SshKey": "keys", "make_ssh_key": "keys",
    "SmtpStandin": "smtp", "ReceivedMail": "smtp", "start_smtp_standin": "smtp",
    "SftpStandin": "sftp", "start_sftp_standin": "sftp", "sshd_usable": "sftp",
    "FtpStandin": "ftp", "VsftpdStandin": "ftp", "start_ftp_standin": "ftp",
    "start_vsftpd_standin": "ftp", "vsftpd_usable": "ftp",
    "B2BStandin": "b2b", "Submission": "b2b", "start_b2b_standin": "b2b",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
