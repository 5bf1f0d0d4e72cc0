"""No form of a secret anywhere, end to end (SPEC 9): the real `dispatch serve` (embedded
Prefect, its own PREFECT_HOME) sends orders whose vendors hold adversarial secrets through
every channel's error paths; then every place a secret could surface is searched: the
service's stdout/stderr, every API answer, `dispatch deliveries --json` (and its table), and
every text/blob value of every table of Prefect's database (logs, artifacts, events, flow and
task runs and their states), plus the raw bytes of every file under PREFECT_HOME.

Values no protocol can carry (a trailing newline, CR/LF, non-ASCII in an HTTP header) are
refused when `serve` starts or `dispatch load` runs; so the service starts with no vendors
and the variables already in its environment, and the reference data naming them is loaded
afterwards by a `dispatch load` that does not see their values: the send refuses them.
Carriable wrong values meet the stand-ins' refusals (HTTP 401, FTP 530, SSH auth, SMTP 535),
and the B2B stand-in first echoes the Authorization header back in a 500 answer.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dispatch.channels.base import secret_forms
from dispatch.demo.vendors import (
    TestCertificates,
    make_test_certificates,
    start_b2b_standin,
    start_ftp_standin,
    start_sftp_standin,
    start_smtp_standin,
)
from tests.hostile.test_secrets import forms as python_forms

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-api-key-0123456789"
SMTP_USER = "dispatch"
GOOD = "good-vendor-secret-77"

# Each secret holds an ASCII core that no other text has: finding a core anywhere is a leak,
# whatever the escaping around it. name -> (core, value)
SECRETS: dict[str, tuple[str, str]] = {
    "E2E_B2B_NEWLINE": ("B2bNlCoreQ", "B2bNlCoreQ-k3y\n"),  # a key file's newline
    "E2E_B2B_NONASCII": ("B2bUniCoreQ", "Kéy-B2bUniCoreQ-€"),  # no HTTP header carries it
    "E2E_B2B_QUOTES": ("B2bQuoteCoreQ", "q'u\"o-B2bQuoteCoreQ"),  # carried, 500 echo, 401
    "E2E_FTP_NEWLINE": ("FtpNlCoreQ", "FtpNlCoreQ-pw\n"),
    "E2E_FTP_CRLF": ("FtpCrlfCoreQ", "FtpCrlfCoreQ\r\nDELE inbox"),  # command injection
    "E2E_FTP_NONASCII": ("FtpUniCoreQ", "Pässwört-FtpUniCoreQ-\"'"),  # carried, 530
    "E2E_SFTP_QUOTES": ("SftpQuoteCoreQ", "s\"q'-SftpQuoteCoreQ-ü"),  # carried, auth fails
}
# DISPATCH_SMTP_PASSWORD is read at start-up, where an uncarriable one stops the service:
# a carriable wrong one (quotes, non-ASCII) meets the relay's 535.
SMTP_CORE, SMTP_PASSWORD = "SmtpCoreQ", "Smtp-\"Ü'-SmtpCoreQ"
# vendor id -> (channel, secret variable)
VENDORS = {
    "VB2BNL": ("b2b", "E2E_B2B_NEWLINE"), "VB2BUNI": ("b2b", "E2E_B2B_NONASCII"),
    "VB2BQ": ("b2b", "E2E_B2B_QUOTES"), "VFTPNL": ("ftp", "E2E_FTP_NEWLINE"),
    "VFTPCRLF": ("ftp", "E2E_FTP_CRLF"), "VFTPUNI": ("ftp", "E2E_FTP_NONASCII"),
    "VSFTPQ": ("sftp", "E2E_SFTP_QUOTES"),
}
SETTLE_SECONDS = 45.0  # every delivery final well before this, or the test fails


def all_forms() -> dict[str, set[str]]:
    """core -> every spelling of its secret to look for: the product's own list
    (secret_forms), Python's (repr, ascii, bytes repr, JSON), base64 (SMTP AUTH) and the
    core itself."""
    out: dict[str, set[str]] = {}
    for core, value in [*SECRETS.values(), (SMTP_CORE, SMTP_PASSWORD)]:
        spellings = {core, *secret_forms(value), *python_forms(value)}
        for blob in (value.encode(), f"\0{SMTP_USER}\0{value}".encode()):
            spellings.add(base64.b64encode(blob).decode())
        out[core] = {s for s in spellings if s}
    return out


def leaks(where: str, text: str | bytes, found: list[str]) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace") + "\n" + text.decode("latin-1")
    for core, spellings in all_forms().items():
        for spelling in spellings:
            if spelling in text:
                at = text.index(spelling)
                found.append(f"{where}: {core} as {spelling!r}: "
                             f"...{text[max(0, at - 80):at + 80]!r}...")
                break


def reference_data(b2b: Any, ftp: Any, sftp: Any) -> dict[str, Any]:
    vendors = []
    for vendor_id, (channel, env) in VENDORS.items():
        entry: dict[str, Any] = {"id": vendor_id, "name": f"Vendor {vendor_id}",
                                 "email": {"to": [f"po@{vendor_id.lower()}.test"]}}
        if channel == "b2b":
            entry["b2b"] = b2b.vendor_b2b(env).model_dump(mode="json", exclude_none=True)
        elif channel == "ftp":
            entry["ftp"] = ftp.vendor_ftp("inbox", password_env=env).model_dump(
                mode="json", exclude_none=True)
        else:
            entry["ftp"] = sftp.vendor_ftp("inbox", password_env=env, key_file=None).model_dump(
                mode="json", exclude_none=True)
        vendors.append(entry)
    return {
        "vendors": vendors, "stocks": [{"name": "Main"}],
        "devices": [{"id": "DEV-1", "stock": "Main"}],
        "items": [{"id": "WIDGET", "name": "Widget", "unit": "pc", "vendors": {
            vendor_id: {"quoted": True, "atelier_code": 500100 + n, "price": 2.5}
            for n, vendor_id in enumerate(VENDORS)}}],
    }


def order_body(vendor_id: str) -> dict[str, Any]:
    channel = VENDORS[vendor_id][0]
    return {
        "VendorId": vendor_id, "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "Reference": f"secrets e2e {vendor_id}",
        "SendOptions": {"Channel": {"IsB2B": channel == "b2b", "IsFtp": channel != "b2b",
                                    "IsEmail": True},
                        **({"FTP": {"IsXml": True}} if channel != "b2b" else {}),
                        "Email": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "WIDGET", "TotalQuantity": 3}],
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dispatch_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "dispatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dispatch"]


class Vendors:
    def __init__(self, tmp: Path, certs: TestCertificates) -> None:
        for name in ("ftp", "sftp"):
            (tmp / name / "inbox").mkdir(parents=True)
        self.b2b = start_b2b_standin(api_key=GOOD)
        self.ftp = start_ftp_standin(tmp / "ftp", password=GOOD)
        self.sftp = start_sftp_standin(tmp / "sftp", prefer="asyncssh", password=GOOD)
        self.smtp = start_smtp_standin(security="starttls", certificates=certs,
                                       username=SMTP_USER, password=GOOD)

    def stop(self) -> None:
        for server in (self.b2b, self.ftp, self.sftp, self.smtp):
            server.stop()


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    running = Vendors(tmp_path / "vendors", make_test_certificates(tmp_path / "tls"))
    yield running
    running.stop()


def test_no_form_of_any_secret_leaves_the_service(tmp_path: Path, vendors: Vendors) -> None:
    prefect_home = tmp_path / "prefect-home"
    port = free_port()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PREFECT_", "DISPATCH_"))}
    base_env.update({
        "PREFECT_HOME": str(prefect_home), "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'dispatch.db'}",
        "DISPATCH_API_KEYS": API_KEY, "DISPATCH_RETRY_DELAYS": "0.3",
        "DISPATCH_TEMPLATES_DIR": str(ROOT / "templates"),
    })
    smtp = vendors.smtp.settings_overrides()
    serve_env = {**base_env, **{name: value for name, (_core, value) in SECRETS.items()},
                 "DISPATCH_SMTP_HOST": smtp["smtp_host"],
                 "DISPATCH_SMTP_PORT": str(smtp["smtp_port"]),
                 "DISPATCH_SMTP_SECURITY": "starttls",
                 "DISPATCH_SMTP_CA_FILE": str(smtp["smtp_ca_file"]),
                 "DISPATCH_SMTP_USERNAME": SMTP_USER, "DISPATCH_SMTP_PASSWORD": SMTP_PASSWORD}
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    found: list[str] = []
    answers: list[tuple[str, bytes]] = []
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [*dispatch_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "debug", "--access-log"],
            env=serve_env, cwd=tmp_path, stdout=out, stderr=err)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited: {err_path.read_text()[-3000:]}"
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.05)

        # The variables are in serve's environment, not in the loader's.
        refdata = tmp_path / "refdata.yaml"
        refdata.write_text(yaml.safe_dump(reference_data(vendors.b2b, vendors.ftp,
                                                         vendors.sftp)))
        loaded = subprocess.run([*dispatch_cmd(), "load", str(refdata)], env=base_env,
                                cwd=tmp_path, capture_output=True, timeout=60)
        assert loaded.returncode == 0, loaded.stderr.decode()[-2000:]
        answers.append(("dispatch load", loaded.stdout + loaded.stderr))

        vendors.b2b.echo_next(500)  # the first B2B request that arrives: its key echoed back
        guids = {}
        for vendor_id in VENDORS:
            response = client.post("/ERP/PurchaseOrder/Create", json=order_body(vendor_id))
            answers.append((f"POST Create {vendor_id}", response.content))
            assert response.status_code == 200, response.text
            guids[vendor_id] = response.json()["RequestGuid"]

        orders: dict[str, str] = {}
        details: dict[str, Any] = {}
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            for vendor_id, guid in guids.items():
                if vendor_id in orders:
                    continue
                response = client.get("/ERP/PurchaseOrder/GetRequestResult",
                                      params={"requestGuid": guid})
                answers.append((f"GetRequestResult {vendor_id}", response.content))
                result = response.json()
                assert result["Status"] != "Failed", (vendor_id, result)
                if result["Status"] == "Completed":
                    orders[vendor_id] = result["PurchaseOrder"]["Id"]
            for vendor_id, order_id in orders.items():
                response = client.get("/ERP/PurchaseOrder/Get", params={"orderId": order_id})
                answers.append((f"Get {order_id} ({vendor_id})", response.content))
                details[vendor_id] = response.json()
            statuses = [d["Status"] for detail in details.values()
                        for d in detail["Deliveries"]]
            if len(details) == len(VENDORS) and "Pending" not in statuses:
                break
            assert time.monotonic() < deadline, f"deliveries not final: {statuses}"
            time.sleep(0.3)

        # Every send failed, and said why (naming the variable, never the value).
        for vendor_id, detail in details.items():
            channel, env = VENDORS[vendor_id]
            rows = detail["Deliveries"]
            assert rows and all(d["Status"] == "Failed" for d in rows), (vendor_id, rows)
            vendor_rows = [d for d in rows if d["Channel"] != "Email"]
            assert vendor_rows and all(d["Error"] for d in rows), (vendor_id, rows)
            if env in ("E2E_B2B_NEWLINE", "E2E_B2B_NONASCII", "E2E_FTP_NEWLINE",
                       "E2E_FTP_CRLF"):
                assert all(env in d["Error"] for d in vendor_rows), (vendor_id, vendor_rows)
        assert vendors.b2b.requests >= 2  # the echo (500) and the retry (401) reached it
        assert not vendors.smtp.messages

        listed = None
        for args in (["deliveries", "--json", "--limit", "1000"],
                     ["deliveries", "--wide", "--limit", "1000"],
                     ["deliveries", "--status", "Failed", "--json"]):
            shown = subprocess.run([*dispatch_cmd(), *args], env=serve_env, cwd=tmp_path,
                                   capture_output=True, timeout=60)
            assert shown.returncode == 0, shown.stderr.decode()[-2000:]
            answers.append((f"dispatch {' '.join(args)}", shown.stdout + shown.stderr))
            listed = listed if listed is not None else json.loads(shown.stdout)
        assert listed and all(row["error"] for row in listed), listed

        prefect_db = wait_for_prefect_records(prefect_home, [*orders.values()])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    for where, content in answers:
        leaks(where, content, found)
    leaks("serve stdout", out_path.read_bytes(), found)
    leaks("serve stderr", err_path.read_bytes(), found)
    searched = search_prefect_database(prefect_db, found)
    for path in sorted(prefect_home.rglob("*")):
        if path.is_file():
            leaks(f"file {path.relative_to(prefect_home)}", path.read_bytes(), found)
    assert not found, "secrets leaked:\n" + "\n".join(found[:40])

    # The search covered what it claims to: Prefect recorded the runs, logs and states.
    for table in ("flow_run", "task_run", "log", "flow_run_state"):
        assert searched.get(table, 0) > 0, f"nothing to search in Prefect's {table}: {searched}"
    log_text = err_path.read_text(errors="replace") + out_path.read_text(errors="replace")
    assert "E2E_B2B_NEWLINE" in log_text or "dispatch-order" in log_text, log_text[-2000:]


def wait_for_prefect_records(prefect_home: Path, order_ids: list[str],
                             timeout: float = 20.0) -> Path:
    """Prefect's database, once it holds every order's flow-run logs (log lines reach it in
    batches, after the run): a search done earlier would search less than there will be."""
    deadline = time.monotonic() + timeout
    while True:
        databases = sorted(prefect_home.rglob("*.db"))
        if databases:
            try:
                with sqlite3.connect(f"file:{databases[0]}?mode=ro", uri=True) as conn:
                    text = "\n".join(str(row[0]) for row in conn.execute(
                        "SELECT message FROM log"))
                if all(order_id in text for order_id in order_ids):
                    return databases[0]
            except sqlite3.Error:
                pass
        if time.monotonic() > deadline:
            assert databases, f"no Prefect database under {prefect_home}"
            return databases[0]
        time.sleep(0.25)


def search_prefect_database(path: Path, found: list[str]) -> dict[str, int]:
    """Search every text and blob value of every table; returns values searched per table."""
    searched: dict[str, int] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            if not columns:
                continue
            select = ", ".join(f'"{c}"' for c in columns)
            for row in conn.execute(f'SELECT {select} FROM "{table}"'):
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str | bytes):
                        searched[table] = searched.get(table, 0) + 1
                        leaks(f"prefect {table}.{column}", value, found)
    return searched
