"""Adversarial secrets against every channel: refused when no protocol can carry them, and
no form of any secret (raw, repr, ascii, bytes repr, JSON-escaped) in the error, its chain,
the log or the JSON a `dispatch deliveries --json` would print (SPEC 9)."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dispatch.channels import Envelope, open_channel
from dispatch.channels.b2b_http import B2BChannel
from dispatch.channels.base import error_text, redact, secret_problem
from dispatch.demo.vendors import start_b2b_standin
from dispatch.documents.b2b_line import B2BLine, submit_document
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorEmail
from dispatch.settings import DispatchSettings
from tests.hostile.conftest import GOOD

# Each holds an ASCII core no other text has: finding the core anywhere is a leak whatever
# the escaping around it.
ADVERSARIAL = {
    "trailing-newline": ("Tr41lCoreQ", "Tr41lCoreQ\n"),
    "crlf": ("Cr1fCoreQ", "Cr1fCoreQ\r\nNOOP"),
    "nul": ("NulCoreQ", "NulCoreQ\x00x"),
    "non-ascii": ("NonAsciiCoreQ", "Kéy-Ä-NonAsciiCoreQ-€"),
    "quotes": ("QuoteCoreQ", "q'u\"o-QuoteCoreQ"),
}
UNCARRIABLE = {"trailing-newline", "crlf", "nul"}
ENV = {"b2b": "ACME_B2B_KEY", "sftp": "ACME_SFTP_PASSWORD", "ftp": "ACME_FTP_PASSWORD",
       "ftps": "ACME_FTP_PASSWORD", "email": "DISPATCH_SMTP_PASSWORD"}


def forms(secret: str) -> set[str]:
    """Spellings of ``secret`` built with Python's own functions (not the product's)."""
    out = set()
    for value in (secret, secret.strip()):
        out |= {value, repr(value)[1:-1], ascii(value)[1:-1], repr(value.encode())[2:-1],
                json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return out


def exception_texts(exc: BaseException) -> list[str]:
    out = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        out += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return out


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(record) for record in caplog.records] + [
        repr(record.args) for record in caplog.records]


def deliveries_json(exc: DeliveryError) -> str:
    """What `dispatch deliveries --json` prints for a failed row (the error is stored as text)."""
    return json.dumps([{"status": "Failed", "attempts": 1, "error": str(exc)}], indent=2)


def assert_no_leak(core: str, secret: str, texts: list[str]) -> None:
    for text in texts:
        assert core not in text, f"secret core {core!r} leaked: {text[:300]!r}"
        for form in forms(secret):
            assert form not in text, f"secret form {form!r} leaked: {text[:300]!r}"


def b2b_document() -> list[Document]:
    now = datetime.now(UTC)
    return [submit_document(B2BLine("PO-H/1", 1, 120045, now, now))]


_names = iter(range(1, 10_000))


def file_document() -> list[Document]:
    return [Document(f"POH{next(_names)}_purchase_1.xml", b"<order/>", "application/xml",
                     "XML")]


def target_and_settings(key: str, servers: dict[str, Any]) -> tuple[Any, DispatchSettings]:
    if key == "b2b":
        return servers["b2b"].vendor_b2b("ACME_B2B_KEY"), DispatchSettings()
    if key == "sftp":
        return (servers["sftp"].vendor_ftp(key_file=None, password_env="ACME_SFTP_PASSWORD"),
                DispatchSettings())
    if key in ("ftp", "ftps"):
        return servers[key].vendor_ftp(password_env="ACME_FTP_PASSWORD"), DispatchSettings()
    return VendorEmail(to=["orders@acme.test"]), DispatchSettings(
        **servers["smtp"].settings_overrides())


def attempt(key: str, secret: str, servers: dict[str, Any]) -> DeliveryError | None:
    target, settings = target_and_settings(key, servers)
    if key == "email":  # the SMTP password comes from the settings, not a resolver
        settings = settings.model_copy(update={"smtp_password": SecretStr(secret)})
    resolver: Callable[[str], str | None] = {ENV[key]: secret}.get
    channel = open_channel(key, settings=settings, secrets=resolver)
    documents = b2b_document() if key == "b2b" else file_document()

    async def go() -> None:
        try:
            await channel.send(target, documents, Envelope(f"hostile-{key}-{next(_names)}"))
        finally:
            await channel.aclose()

    try:
        asyncio.run(go())
    except DeliveryError as exc:
        return exc
    return None


@pytest.fixture
def servers(b2b: Any, sftp: Any, ftp: Any, ftps: Any, smtp: Any) -> dict[str, Any]:
    return {"b2b": b2b, "sftp": sftp, "ftp": ftp, "ftps": ftps, "smtp": smtp}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("key", ["b2b", "sftp", "ftp", "ftps", "email"])
def test_adversarial_secret_fails_permanently_without_leaking(
        key: str, case: str, servers: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    core, secret = ADVERSARIAL[case]
    error = attempt(key, secret, servers)
    assert error is not None, "a wrong or uncarriable secret must fail"
    assert error.retryable is False, str(error)
    if case in UNCARRIABLE or (case == "non-ascii" and key == "b2b"):
        # Refused before anything is sent, naming the variable.
        assert ENV[key] in str(error), str(error)
    texts = exception_texts(error) + log_texts(caplog) + [deliveries_json(error)]
    assert_no_leak(core, secret, texts)


def test_a_key_the_vendor_echoes_is_redacted_in_every_escaping(
        caplog: pytest.LogCaptureFixture) -> None:
    core, secret = ADVERSARIAL["quotes"]  # legal in a header; JSON escapes its '"'
    caplog.set_level(logging.DEBUG)
    with start_b2b_standin(api_key=secret) as server:
        server.echo_next(500)
        channel = B2BChannel(secrets={"ACME_B2B_KEY": secret}.get)

        async def go() -> None:
            try:
                await channel.send(server.vendor_b2b("ACME_B2B_KEY"), b2b_document(),
                                   Envelope("hostile-echo"))
            finally:
                await channel.aclose()

        with pytest.raises(DeliveryError) as caught:
            asyncio.run(go())
    assert caught.value.retryable is True  # a 500: the next attempt may succeed
    assert "***" in str(caught.value)
    assert_no_leak(core, secret, exception_texts(caught.value) + log_texts(caplog)
                   + [deliveries_json(caught.value)])


def test_an_unexpected_library_error_quoting_the_key_is_redacted(
        caplog: pytest.LogCaptureFixture) -> None:
    core, secret = ADVERSARIAL["non-ascii"]
    secret = secret.encode("ascii", "replace").decode().replace("?", "x")  # carriable

    class Exploding(httpx.AsyncClient):
        async def post(self, url: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
            header = kwargs["headers"]["Authorization"]
            raise RuntimeError(f"boom {header!r} {header.encode()!r} {json.dumps(header)}")

    caplog.set_level(logging.DEBUG)
    channel = B2BChannel(client_factory=lambda _ca: Exploding(), secrets={"K": secret}.get)
    target = start_b2b_standin()
    try:
        async def go() -> None:
            try:
                await channel.send(target.vendor_b2b("K"), b2b_document(), Envelope("boom"))
            finally:
                await channel.aclose()

        with pytest.raises(DeliveryError) as caught:
            asyncio.run(go())
    finally:
        target.stop()
    assert "unexpected RuntimeError" in str(caught.value)
    assert any("Traceback" in text for text in log_texts(caplog)), "logged loudly"
    assert_no_leak(core, secret, exception_texts(caught.value) + log_texts(caplog))


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_error_text_redacts_every_form(case: str) -> None:
    core, secret = ADVERSARIAL[case]
    raw = secret.encode()
    for exc in (ValueError(secret), ValueError(repr(secret)), ValueError(repr(raw)),
                ValueError(ascii(secret)), ValueError(json.dumps({"k": secret})),
                KeyError(secret), OSError(5, f"Illegal header value {b'Bearer ' + raw!r}")):
        for text in (error_text(exc, secrets=[secret]),
                     error_text(exc, secrets=[secret], traceback=True)):
            assert_no_leak(core, secret, [text])
            assert "***" in text
    assert redact(f"a {secret} b", [None, ""]) == f"a {secret} b"


def test_secret_problem_names_the_problem_never_the_value() -> None:
    for case in UNCARRIABLE:
        core, secret = ADVERSARIAL[case]
        problem = secret_problem(secret)
        assert problem and core not in problem
    assert "line break" in (secret_problem("abc\n") or "")
    assert "non-ASCII" in (secret_problem("kéy", header=True) or "")
    assert secret_problem("kéy") is None  # FTP/SSH/SMTP carry UTF-8
    assert secret_problem(GOOD["b2b"], header=True) is None


# --- refused at start-up when the variable is set then ---------------------------------


def test_dispatch_load_refuses_a_set_secret_no_protocol_can_carry(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, SAMPLE

    core, secret = ADVERSARIAL["trailing-newline"]
    env = {**os.environ, "DISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "ACME_B2B_KEY": secret}
    run = subprocess.run([sys.executable, "-m", "dispatch", "load", str(SAMPLE)], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2, run.stdout
    assert ("vendors[0] (ACME).b2b.api_key_env: environment variable ACME_B2B_KEY: the value "
            "ends with a line break") in run.stderr
    assert "nothing was written" in run.stderr and "Traceback" not in run.stderr
    assert_no_leak(core, secret, [run.stdout, run.stderr])


def test_serve_start_up_refuses_a_stored_vendor_secret_no_protocol_can_carry(
        tmp_path: Any) -> None:
    from dispatch.api.app import create_app
    from dispatch.errors import SettingsError
    from dispatch.reference_data import read_reference_file
    from dispatch.store.engine import make_engine
    from dispatch.store.reference import upsert_reference_data
    from tests.conftest import SAMPLE, TEMPLATES_DIR

    core, secret = ADVERSARIAL["non-ascii"]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upsert_reference_data(engine, read_reference_file(SAMPLE, secrets=None),
                          source=str(SAMPLE), templates_dir=TEMPLATES_DIR)
    settings = DispatchSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SettingsError) as caught:
        create_app(settings, engine=engine, executor=None,  # type: ignore[arg-type]
                   secrets={"CRANE_B2B_KEY": secret}.get)
    assert ("vendor CRANE.b2b.api_key_env: environment variable CRANE_B2B_KEY: the value "
            "contains a non-ASCII character") in str(caught.value)
    assert_no_leak(core, secret, exception_texts(caught.value))
    create_app(settings, engine=engine, executor=None,  # type: ignore[arg-type]
               secrets={"CRANE_B2B_KEY": "ascii-key"}.get)
    engine.dispose()


def test_smtp_password_no_protocol_can_carry_stops_start_up() -> None:
    from dispatch.errors import SettingsError
    from dispatch.settings import load_settings

    core, secret = ADVERSARIAL["crlf"]
    with pytest.raises(SettingsError) as caught:
        load_settings(smtp_password=secret)
    assert "DISPATCH_SMTP_PASSWORD" in str(caught.value)
    assert "control character U+000D" in str(caught.value)
    assert_no_leak(core, secret, exception_texts(caught.value))


def test_target_secrets_gives_the_core_what_to_redact() -> None:
    from pydantic import SecretStr as Secret

    from dispatch.channels.base import target_secrets
    from dispatch.reference_data import VendorB2B, VendorFtp

    resolver = {"K": "key-1", "P": "pw-2"}.get
    settings = DispatchSettings().model_copy(update={"smtp_password": Secret("smtp-3")})
    assert target_secrets(VendorB2B(url="http://127.0.0.1:1", api_key_env="K"),
                          settings=settings, secrets=resolver) == ("key-1", "smtp-3")
    assert target_secrets(VendorFtp(url="sftp://a@127.0.0.1/in", password_env="P"),
                          secrets=resolver) == ("pw-2",)
    assert target_secrets(VendorEmail(to=["a@b.test"]), secrets=resolver) == ()
    text = error_text(RuntimeError("boom key-1 pw-2"), secrets=target_secrets(
        VendorB2B(url="http://127.0.0.1:1", api_key_env="K"), secrets=resolver))
    assert text == "RuntimeError: boom *** pw-2"
