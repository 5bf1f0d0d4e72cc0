"""The dispatch command: render, deliveries, resend, dispatch-pending (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.conftest import ROOT, TEMPLATES_DIR
from tests.dispatching.conftest import Env, all_channels_order, env, world  # noqa: F401


def _run(e: Env, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DISPATCH_DATABASE_URL": e.settings.database_url,
               "DISPATCH_TEMPLATES_DIR": str(TEMPLATES_DIR), "DO_NOT_TRACK": "1",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               **{f"DISPATCH_{k.upper()}": str(v)
                  for k, v in e.world.settings_overrides().items()}}
    return subprocess.run([sys.executable, "-m", "dispatch", *args], env=environ,
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=180)


def test_render_previews_each_format(env: Env, tmp_path: Path) -> None:  # noqa: F811
    order_id = env.order(all_channels_order(Status="New"))
    pdf = _run(env, "render", order_id, "--format", "PDF", "-o", str(tmp_path / "p.pdf"))
    assert pdf.returncode == 0, pdf.stderr
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "p.pdf").pages)
    assert order_id in text and "DRILL-5" in text
    cancel = _run(env, "render", order_id, "--format", "PDF", "--kind", "cancellation",
                  "-o", str(tmp_path / "c.pdf"))
    assert cancel.returncode == 0, cancel.stderr
    assert "CANCELLATION" in "".join(p.extract_text() for p in PdfReader(tmp_path / "c.pdf").pages)
    xlsx = _run(env, "render", order_id, "--format", "Excel", "--template", "standard-excel",
                "-o", str(tmp_path / "o.xlsx"))
    assert xlsx.returncode == 0, xlsx.stderr
    cells = [c.value for row in load_workbook(tmp_path / "o.xlsx").active.iter_rows()
             for c in row]
    assert "=SUM(A1)" in cells  # order text stays text
    xml = _run(env, "render", order_id, "--format", "XML", "-o", str(tmp_path / "o.xml"))
    assert xml.returncode == 0 and order_id.encode() in (tmp_path / "o.xml").read_bytes()


def test_render_errors_name_the_argument(env: Env) -> None:  # noqa: F811
    missing = _run(env, "render", "PurchaseOrder999", "--format", "XML")
    assert missing.returncode == 2 and "ORDER_ID: no purchase order" in missing.stderr
    order_id = env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}}))
    no_template = _run(env, "render", order_id, "--format", "PDF")
    assert no_template.returncode == 2 and "--template" in no_template.stderr


def test_deliveries_and_resend(env: Env) -> None:  # noqa: F811
    order_id = env.order(all_channels_order())
    env.world.b2b.fail_next(400, times=2)
    env.run_due()
    failed = _run(env, "deliveries", "--status", "Failed", "--json")
    assert failed.returncode == 0, failed.stderr
    rows = json.loads(failed.stdout)
    assert {r["channel"] for r in rows} == {"B2B"} and all("400" in r["error"] for r in rows)
    table = _run(env, "deliveries", "--order", order_id)
    assert "Delivered" in table.stdout and "Failed" in table.stdout
    resent = _run(env, "resend", order_id, "--channel", "B2B")
    assert resent.returncode == 0, resent.stderr
    assert "dispatch #1 created as dispatch #2" in resent.stdout
    env.run_due()
    detail = env.api.order(order_id)
    second = [d for d in detail["Deliveries"] if d["DispatchNumber"] == 2]
    assert {d["Channel"] for d in second} == {"B2B"} and len(second) == 2
    assert all(d["Status"] == "Delivered" for d in second)
    assert len(env.world.smtp.messages) == 1  # the email was not repeated
    bad = _run(env, "resend", order_id, "--channel", "FTP", "--kind", "change")
    assert bad.returncode == 2 and "--kind" in bad.stderr
    b2b_only = env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}}))
    other = _run(env, "resend", b2b_only, "--channel", "Email")
    assert other.returncode == 2
    assert f"--channel: order '{b2b_only}' is not sent by Email" in other.stderr
    missing = _run(env, "resend", "PurchaseOrder999")
    assert missing.returncode == 2 and "ORDER_ID: no purchase order" in missing.stderr


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI wiring; flows test both
def test_dispatch_pending_command(env: Env) -> None:  # noqa: F811
    order_id = env.order(all_channels_order())
    dry = _run(env, "dispatch-pending", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "nothing was sent" in dry.stdout and "4 Skipped" in dry.stdout
    assert env.world.smtp.messages == []
    real = _run(env, "dispatch-pending")
    assert real.returncode == 0, real.stderr
    assert "4 Delivered" in real.stdout
    assert {d["Status"] for d in env.api.order(order_id)["Deliveries"]} == {"Delivered"}
    again = _run(env, "dispatch-pending")
    assert again.returncode == 0 and again.stdout.strip() == "dispatch-pending: nothing due"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_dispatch_pending_with_nothing_due_does_not_start_prefect(env: Env) -> None:  # noqa: F811
    """Issue 9 item 8: the database says nothing is due, so Prefect is never imported (its
    temporary API took seconds to start); a waiting retry's time is named."""
    env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}},
                                 PurchaseOrderItems=[{"ItemId": "DRILL-5",
                                                      "TotalQuantity": 1}]))
    env.world.b2b.fail_next(503)
    env.run_due()  # the retry is due in 0.2 s from now...
    probe = ("import sys; from dispatch.cli import main; code = main(sys.argv[1:]); "
             "assert 'prefect' not in sys.modules, 'prefect was imported'; sys.exit(code)")
    environ = {**os.environ, "DISPATCH_DATABASE_URL": env.settings.database_url,
               "DISPATCH_TEMPLATES_DIR": str(TEMPLATES_DIR)}
    with env.engine.begin() as conn:  # ...so move it an hour on: nothing is due now
        conn.exec_driver_sql("UPDATE dispatch_job SET next_attempt_at = "
                             "next_attempt_at + INTERVAL '1 hour'" if env.engine.dialect.name
                             == "postgresql" else "UPDATE dispatch_job SET next_attempt_at = "
                             "datetime(next_attempt_at, '+1 hour')")
    done = subprocess.run([sys.executable, "-c", probe, "dispatch-pending"], env=environ,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dispatch-pending: nothing due; the next retry is due at ")


def test_render_xml_from_a_named_template(env: Env, tmp_path: Path) -> None:  # noqa: F811
    """SPEC 4: --template for XML (built-ins by name), --kind; a preview never needs the
    cXML shared secret; an unknown name is refused naming --template."""
    from lxml import etree

    from tests.dispatching.test_vendor_formats import _load, _reference_data

    data = _reference_data(env, xml_template=None)
    data["buyer"]["cxml"] = {"domain": "NetworkID", "identity": "AN-BUYER"}
    acme = next(v for v in data["vendors"] if v["id"] == "ACME")
    acme["cxml"] = {"domain": "DUNS", "identity": "123456789",
                    "shared_secret_env": "ACME_CXML_SECRET_NOT_SET"}
    _load(env, data)
    order_id = env.order(all_channels_order(Status="New"))
    out = tmp_path / "o.xml"
    peppol = _run(env, "render", order_id, "--format", "XML", "--template", "peppol",
                  "-o", str(out))
    assert peppol.returncode == 0, peppol.stderr
    root = etree.fromstring(out.read_bytes())
    assert root.tag == "{urn:oasis:names:specification:ubl:schema:xsd:Order-2}Order"
    change = _run(env, "render", order_id, "--format", "XML", "--template", "peppol",
                  "--kind", "change", "-o", str(out))
    assert change.returncode == 0, change.stderr
    assert etree.fromstring(out.read_bytes()).tag.endswith("}OrderChange")
    cxml = _run(env, "render", order_id, "--format", "XML", "--template", "cxml",
                "-o", str(out))
    assert cxml.returncode == 0, cxml.stderr
    assert b"<OrderRequest" in out.read_bytes() and b"SharedSecret" not in out.read_bytes()
    canonical = _run(env, "render", order_id, "--format", "XML", "-o", str(out))
    assert canonical.returncode == 0, canonical.stderr
    assert b"urn:dispatch:purchase-order:1" in out.read_bytes()  # no name: as before
    unknown = _run(env, "render", order_id, "--format", "XML", "--template", "ubl-9")
    assert unknown.returncode == 2 and "--template: no XML template 'ubl-9'" in unknown.stderr
