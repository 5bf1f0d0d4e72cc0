"""No secret appears in any error text, evidence or log record, success or failure."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from channel_support import ALL_SECRETS, SMTP_PASSWORD, run, secrets

from dispatch.channels import Envelope, open_channel
from dispatch.documents.b2b_line import B2BLine, submit_document
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorEmail
from dispatch.settings import DispatchSettings

WRONG = "wrong-Secret-Vx19"


def texts_of(exc: BaseException) -> list[str]:
    out = ["".join(traceback.format_exception(exc))]
    while exc is not None:
        out += [str(exc), repr(exc), repr(getattr(exc, "args", ()))]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out


def test_no_secret_leaks(caplog: pytest.LogCaptureFixture, make_doc: Callable[..., Document],
                         b2b_server: Any, sftp_faulty: Any, ftps_server: Any,
                         smtp_starttls: Any) -> None:
    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    smtp_settings = DispatchSettings(**smtp_starttls.settings_overrides())
    bad_smtp = DispatchSettings(**{**smtp_starttls.settings_overrides(), "smtp_password": WRONG})
    right = secrets
    wrong = {"ACME_B2B_KEY": WRONG, "ACME_SFTP_PASSWORD": WRONG,
             "ACME_FTP_PASSWORD": WRONG}.get
    cases: list[tuple[str, DispatchSettings, Any, Any, Callable[[], list[Document]]]] = [
        ("b2b", DispatchSettings(), right, b2b_server.vendor_b2b("ACME_B2B_KEY"),
         lambda: [submit_document(B2BLine("PO-S/1", 1, 1, now, now))]),
        ("sftp", DispatchSettings(), right,
         sftp_faulty.vendor_ftp(key_file=None, password_env="ACME_SFTP_PASSWORD"),
         lambda: [make_doc()]),
        ("ftps", DispatchSettings(), right,
         ftps_server.vendor_ftp(password_env="ACME_FTP_PASSWORD"), lambda: [make_doc()]),
        ("email", smtp_settings, right, VendorEmail(to=["a@acme.test"]), lambda: [make_doc()]),
    ]
    seen: list[str] = []

    async def attempt(key: str, settings: DispatchSettings, resolver: Any, target: Any,
                      docs: list[Document], expect_error: bool) -> None:
        channel = open_channel(key, settings=settings, secrets=resolver)
        try:
            evidence = await channel.send(target, docs, Envelope(f"sec-{key}"))
            seen.append(repr(evidence.as_dict()))
            assert not expect_error
        except DeliveryError as exc:
            assert expect_error, exc
            assert exc.retryable is False
            seen.extend(texts_of(exc))
        finally:
            await channel.aclose()

    async def everything() -> None:
        jobs: list[Awaitable[None]] = []
        for key, settings, _resolver, target, docs in cases:
            jobs.append(attempt(key, settings, right, target, docs(), False))
            bad_settings = bad_smtp if key == "email" else settings
            jobs.append(attempt(key, bad_settings, wrong, target, docs(), True))
        for job in jobs:
            await job

    run(everything())
    seen += [record.getMessage() for record in caplog.records]
    seen += [repr(record.args) for record in caplog.records]
    assert caplog.records, "expected library log records to check"
    for secret in (*ALL_SECRETS, WRONG):
        leaks = [text for text in seen if secret in text]
        assert not leaks, f"{secret!r} leaked: {leaks[:2]}"
    assert SMTP_PASSWORD not in repr(smtp_settings)
