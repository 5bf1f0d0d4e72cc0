"""File intake exactly once across a crash (SPEC 8 "Files"): a ``collect-responses`` process
SIGKILLed right after recording an inbox file and before moving it; the next sweep moves
the file to ``processed/`` without recording it again or announcing it twice. On the SFTP
stand-in and pyftpdlib FTP, SQLite and PostgreSQL.

The crash point is deterministic (``tests/flows/child_collect.py`` kills itself as soon as
``record_response`` returned), never a timing guess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from dispatch.store import responses as store
from dispatch.store.engine import reading
from flows.collect_responses import collect_responses
from tests.conftest import TEMPLATES_DIR
from tests.dispatching.conftest import Env
from tests.responses.conftest import delivered_order
from tests.responses.documents import ORDER_RESPONSE, cxml, peppol
from tests.responses.test_file_intake import (  # noqa: F401 - fixtures
    acme_order,
    ftp_server,
    inboxes,
    sftp_inbox,
    tree,
)

ROOT = Path(__file__).resolve().parents[2]


def crash_while_collecting(env: Env, log: Path) -> list[dict[str, object]]:
    config = {"database_url": env.settings.database_url, "templates_dir": str(TEMPLATES_DIR)}
    with log.open("w") as stderr:
        run = subprocess.run(
            [sys.executable, "-m", "tests.flows.child_collect", json.dumps(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120,
            env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())})
    assert run.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.mark.parametrize("transport", ["sftp", "ftp"])
def test_sigkill_between_record_and_move(installed: Env, inboxes: Env,  # noqa: F811
                                         ftp_server, transport: str,  # noqa: F811
                                         tmp_path: Path) -> None:
    env = inboxes
    if transport == "sftp":
        order_id, lines = acme_order(env)
        inbox = sftp_inbox(env)
        document = peppol(ORDER_RESPONSE, order_id=order_id, line_ids=lines)
        vendor = "ACME"
    else:
        order_id, _ = delivered_order(env, {
            "VendorId": "BOLT", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
            "SendOptions": {"Channel": {"IsEmail": True}, "Email": {"IsXml": True}},
            "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10}]})
        inbox = ftp_server.root / "responses"
        document = cxml("accept", order_id=order_id, items=[(1, 10, "accept", "2030-01-02")])
        vendor = "BOLT"
    (inbox / "answer.xml").write_bytes(document)

    events = crash_while_collecting(env, tmp_path / "child.err")
    assert [e["event"] for e in events] == ["ready", "recorded"]
    assert (events[1]["source"], events[1]["new"]) == ("file:answer.xml", True)
    # The crash left the document recorded and the file where the vendor put it.
    assert tree(inbox) == ["answer.xml"]
    with reading(env.engine) as conn:
        assert [r.id for r in store.list_responses(conn)] == [events[1]["response_id"]]

    # The next sweep (this process): moved, not recorded again, not announced again.
    result = asyncio.run(collect_responses())
    assert [(f["vendor_id"], f["name"], f["folder"], f["new"]) for f in result["files"]] == \
        [(vendor, "answer.xml", "processed", False)]  # new=False: no event announced
    assert tree(inbox) == ["processed/answer.xml"]
    with reading(env.engine) as conn:
        rows = store.list_responses(conn)
    assert [(r.id, r.source, r.matched) for r in rows] == \
        [(events[1]["response_id"], "file:answer.xml", True)]
    assert env.api.order(order_id)["Response"]["Status"] in ("ConditionallyAccepted",
                                                              "Accepted")
    assert asyncio.run(collect_responses())["files"] == []
