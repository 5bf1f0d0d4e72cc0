"""The README's first command: `dispatch demo` delivers everything and exits cleanly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISPATCH_", "PREFECT_"))}
    run = subprocess.run([sys.executable, "-m", "dispatch", "demo", "--output", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "problems 0" in run.stdout
    assert "Traceback" not in run.stderr
    received = out / "received"
    pdfs = sorted(p.name for p in (received / "email").glob("*.pdf"))
    assert "PurchaseOrder5_cancellation_2.pdf" in pdfs
    assert (received / "sftp" / "PurchaseOrder1_purchase_1.xml").is_file()
    with sqlite3.connect(out / "dispatch.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM delivery GROUP BY status"))
        attempts = db.execute("SELECT max(attempts) FROM delivery WHERE channel = 'B2B'"
                              ).fetchone()[0]
    assert set(statuses) == {"Delivered", "Unsupported"}, statuses
    assert statuses["Unsupported"] == 1  # the cancelled order's B2B line
    assert attempts == 2  # the transient 503 was retried
    assert "PREFECT_HOME=" in run.stdout and "prefect server start" in run.stdout
    # vendor formats (issue 10): which XML each vendor got, read from the received files
    assert ("DELTA: sftp/PurchaseOrder6_purchase_1.xml: peppol (Order); "
            "sftp/PurchaseOrder6_change_2.xml: peppol (OrderChange)") in run.stdout
    assert "EMBER: email/PurchaseOrder7_purchase_1.pdf: order-x embedded in the PDF" in run.stdout
    assert "ACME: email/PurchaseOrder1_purchase_1.xml: canonical" in run.stdout
    # order responses (issue 11): DELTA's stand-in answers its OrderChange over HTTP, one
    # line accepted with a later date; EMBER never answers and is reminded once
    assert ("DELTA's stand-in read PurchaseOrder6_change_2.xml and posted a Peppol "
            "OrderResponse (CA) to POST /vendor/order-responses: HTTP 200") in run.stdout
    assert "PurchaseOrder6: Response ConditionallyAccepted (dispatch #2" in run.stdout
    assert "CABLE-10: ordered 25, ConditionallyAccepted, confirmed 25, promised 20" in run.stdout
    assert "FUSE-16: ordered 5, Accepted, confirmed 5" in run.stdout
    assert "EMBER never answered PurchaseOrder7" in run.stdout
    assert "reminder #2 Email PurchaseOrder7_reminder_2.pdf Delivered: SMTP 250" in run.stdout
    assert run.stdout.index("Response ConditionallyAccepted") < run.stdout.index("reminder #2")
    assert (received / "email" / "PurchaseOrder7_reminder_2.pdf").is_file()
    with sqlite3.connect(out / "dispatch.db") as db:
        reminders = db.execute("SELECT count(*) FROM delivery WHERE order_id = 'PurchaseOrder7'"
                               " AND kind = 'reminder'").fetchone()[0]
    assert reminders == 1  # chased once
