"""Constants and helpers shared by the channel tests (secrets are fake, test-only)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SMTP_USER = "dispatch"
SMTP_PASSWORD = "smtp-pw-Zq81xx"
FTP_PASSWORD = "ftp-pw-Kd72yy"
SFTP_PASSWORD = "sftp-pw-Mw55zz"
B2B_KEY = "b2b-key-Hs90ww"
SECRETS = {"ACME_FTP_PASSWORD": FTP_PASSWORD, "ACME_SFTP_PASSWORD": SFTP_PASSWORD,
           "ACME_B2B_KEY": B2B_KEY}
ALL_SECRETS = (SMTP_PASSWORD, FTP_PASSWORD, SFTP_PASSWORD, B2B_KEY)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def secrets(name: str) -> str | None:
    return SECRETS.get(name)
