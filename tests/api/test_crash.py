"""kill -9 right after requests were accepted: every accepted request completes after a
restart (a real `dispatch serve` process, SQLite and PostgreSQL)."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from dispatch.erp.executor import PG_LOCK_KEY
from dispatch.store.accept_journal import AcceptJournal, journal_path
from dispatch.store.engine import make_engine
from tests.api.conftest import order_body
from tests.conftest import API_KEY, ROOT, SAMPLE, TEMPLATES_DIR

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db_url: str, tmp: Path) -> None:
        self.db_url, self.tmp, self.port = db_url, tmp, _free_port()
        self.env = {**os.environ, "DISPATCH_DATABASE_URL": db_url, "DISPATCH_API_KEYS": API_KEY,
                    "DISPATCH_TEMPLATES_DIR": str(TEMPLATES_DIR),
                    "DISPATCH_REQUEST_POLL_SECONDS": "0.05"}
        self.proc: subprocess.Popen | None = None

    def load(self) -> None:
        subprocess.run([sys.executable, "-m", "dispatch", "load", str(SAMPLE)], env=self.env,
                       cwd=ROOT, check=True, capture_output=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dispatch", "serve", "--port", str(self.port),
             "--no-dispatch", "--log-level", "warning"],
            env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "server.log").open("ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.tmp / "server.log").read_text()
            try:
                status, _ = self.request("GET", "/health")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)  # readiness poll of a starting process, not synchronisation
        raise AssertionError("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={
                "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def result(self, guid: str) -> dict[str, Any]:
        path = f"/ERP/PurchaseOrder/GetRequestResult?requestGuid={guid}"
        status, body = self.request("GET", path)
        assert status == 200, body
        return body


@contextmanager
def executor_lock_held(db_url: str) -> Iterator[None]:
    """Hold the executor's leader lock from outside, so the server can accept but not run."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1]).resolve()
        fd = os.open(f"{path}.executor.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            os.close(fd)
    else:
        engine = create_engine(db_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                conn.commit()
        engine.dispose()


def _stored_statuses(db_url: str) -> dict[str, int]:
    """Requests by status; on SQLite those still in the accept journal count as Created."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM erp_request GROUP BY status"))
        result = {status: n for status, n in rows}
    path = journal_path(engine)
    if path is not None and path.exists():
        journal = AcceptJournal(path)
        result["Created"] = result.get("Created", 0) + journal.waiting_count()
        journal.close()
    engine.dispose()
    return result


def _wait_all(server: Server, guids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pending = list(guids)
    while pending and time.monotonic() < deadline:
        pending = [g for g in pending if server.result(g)["Status"] not in ("Completed", "Failed")]
    assert not pending, f"{len(pending)} requests never finished"
    return [server.result(g) for g in guids]


def test_accepted_requests_survive_kill_9(db_url: str, tmp_path: Path) -> None:
    server = Server(db_url, tmp_path)
    server.load()
    bodies = [order_body(Status="Active", Reference=f"crash-{i}") for i in range(20)]
    with executor_lock_held(db_url):
        server.start()  # it cannot become the executor while we hold the lock
        guids = []
        for body in bodies:
            status, answer = server.request("POST", "/ERP/PurchaseOrder/Create", body)
            assert status == 200
            guids.append(answer["RequestGuid"])
        server.kill()  # right after the last 200: nothing executed yet
    assert _stored_statuses(db_url) == {"Created": 20}
    server.start()
    try:
        results = _wait_all(server, guids)
        assert [r["Status"] for r in results] == ["Completed"] * 20
        ids = [r["PurchaseOrder"]["Id"] for r in results]
        assert ids == sorted(ids, key=lambda i: int(i.removeprefix("PurchaseOrder")))  # in order
        status, detail = server.request("GET", f"/ERP/PurchaseOrder/Get?orderId={ids[7]}")
        assert status == 200 and detail["Reference"] == "crash-7"
        assert len(detail["Transactions"]) == 2
    finally:
        server.kill()


def test_kill_9_while_executing_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    server = Server(db_url, tmp_path)
    server.load()
    server.start()
    guids = []
    for i in range(150):
        status, answer = server.request("POST", "/ERP/PurchaseOrder/Create",
                                        order_body(Status="Active", Reference=f"race-{i}"))
        assert status == 200
        guids.append(answer["RequestGuid"])
    server.kill()
    server.start()
    try:
        results = _wait_all(server, guids)
        assert all(r["Status"] == "Completed" for r in results)
        ids = [r["PurchaseOrder"]["Id"] for r in results]
        assert len(set(ids)) == 150  # each request made exactly one order
        engine = make_engine(db_url)
        with engine.connect() as conn:
            orders = conn.execute(text("SELECT count(*) FROM purchase_order")).scalar_one()
            txs = conn.execute(text("SELECT count(*) FROM ledger_transaction")).scalar_one()
        engine.dispose()
        assert (orders, txs) == (150, 300)
    finally:
        server.kill()
