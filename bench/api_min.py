"""The floor for bench/api.py (issue 13): the ERP Create contract, minimally.

    python bench/api_min.py --db PATH --port P --key K

FastAPI + uvicorn (httptools, uvloop) + SQLite (WAL, synchronous=NORMAL, as the product):
the API key is checked, the body is shape-validated with pydantic (unknown keys refused),
the raw body is inserted into ``erp_request`` and committed before the 200 (group commit:
the one writer thread stores everything waiting in one transaction), and the same thread
executes the stored requests in arrival order: the order, its lines and a Purchase
transaction per line (Status Active) written with the request's status in one transaction.
Not the product: no idempotency keys, no savepoints, no results endpoint, no outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sqlite3
import threading
import uuid
from concurrent.futures import Future

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS erp_request (seq INTEGER PRIMARY KEY, guid TEXT UNIQUE, body TEXT,
  status TEXT, result TEXT, received_at TEXT);
CREATE INDEX IF NOT EXISTS ix_req ON erp_request (status, seq);
CREATE TABLE IF NOT EXISTS purchase_order (id TEXT PRIMARY KEY, vendor_id TEXT, stock_name TEXT,
  device_id TEXT, status TEXT, reference TEXT, notes TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS purchase_order_item (id TEXT PRIMARY KEY, order_id TEXT, position INT,
  item_id TEXT, total_quantity INT, note TEXT, line_reference TEXT);
CREATE TABLE IF NOT EXISTS ledger_transaction (id INTEGER PRIMARY KEY, order_id TEXT,
  order_item_id TEXT, kind TEXT, quantity INT, at TEXT, request_guid TEXT);
"""


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Line(Shape):
    ItemId: str | None = None
    TotalQuantity: int | None = None
    Note: str | None = None
    LineReference: str | None = None


class Create(Shape):
    VendorId: str | None = None
    StockName: str | None = None
    DeviceId: str | None = None
    Status: str | None = None
    Reference: str | None = None
    Notes: str | None = None
    PurchaseOrderItems: list[Line] | None = None


class Executor(threading.Thread):
    """Stores accepted rows (group commit), then executes stored requests in order."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + SCHEMA)
        self.inbox: list[tuple[tuple[str, str, str], Future[None]]] = []
        self.lock, self.wake = threading.Lock(), threading.Event()
        self.numbers = [0, 0]  # order, line (this thread is the only writer)

    def submit(self, row: tuple[str, str, str]) -> Future[None]:
        future: Future[None] = Future()
        with self.lock:
            self.inbox.append((row, future))
        self.wake.set()
        return future

    def run(self) -> None:
        while True:
            self.wake.wait(0.5)
            self.wake.clear()
            with self.lock:
                items, self.inbox = self.inbox, []
            if items:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("INSERT INTO erp_request (guid, body, status, received_at)"
                                    " VALUES (?, ?, 'Created', ?)", [r for r, _ in items])
                self.db.execute("COMMIT")
                for _, future in items:
                    future.set_result(None)
            if self.execute(64):
                self.wake.set()

    def execute(self, limit: int) -> int:
        rows = self.db.execute("SELECT seq, guid, body FROM erp_request WHERE status = "
                               "'Created' ORDER BY seq LIMIT ?", (limit,)).fetchall()
        if not rows:
            return 0
        now = dt.datetime.now(dt.UTC).isoformat()
        self.db.execute("BEGIN IMMEDIATE")
        for seq, guid, body in rows:
            req = Create.model_validate_json(body)
            self.numbers[0] += 1
            order_id = f"PurchaseOrder{self.numbers[0]}"
            lines = []
            for position, line in enumerate(req.PurchaseOrderItems or []):
                self.numbers[1] += 1
                lines.append((f"PurchaseOrderItem{self.numbers[1]}", order_id, position,
                              line.ItemId, line.TotalQuantity, line.Note, line.LineReference))
            self.db.execute("INSERT INTO purchase_order VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (order_id, req.VendorId, req.StockName, req.DeviceId, req.Status,
                             req.Reference, req.Notes, now))
            self.db.executemany("INSERT INTO purchase_order_item VALUES (?, ?, ?, ?, ?, ?, ?)",
                                lines)
            if req.Status == "Active":
                self.db.executemany(
                    "INSERT INTO ledger_transaction (order_id, order_item_id, kind, quantity,"
                    " at, request_guid) VALUES (?, ?, 'Purchase', ?, ?, ?)",
                    [(order_id, line[0], line[4], now, guid) for line in lines])
            result = {"PurchaseOrder": {"Id": order_id, "Status": "Created", "Errors": [],
                                        "PurchaseOrderItems": [{"Id": x[0], "Status": "Created"}
                                                               for x in lines]}}
            self.db.execute("UPDATE erp_request SET status = 'Completed', result = ? "
                            "WHERE seq = ?", (json.dumps(result), seq))
        self.db.execute("COMMIT")
        return len(rows)


def make_app(path: str, key: str) -> FastAPI:
    app = FastAPI()
    executor = Executor(path)
    executor.start()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"Status": "ok"}

    @app.post("/ERP/PurchaseOrder/Create")
    async def create(request: Request) -> Response:
        if request.headers.get("x-api-key") != key:
            return JSONResponse({"Message": "Authorization: wrong key"}, status_code=401)
        body = await request.body()
        try:
            Create.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"Errors": [str(e["loc"]) for e in exc.errors()]}, 422)
        guid = str(uuid.uuid4())
        row = (guid, body.decode(), dt.datetime.now(dt.UTC).isoformat())
        await asyncio.wrap_future(executor.submit(row))  # the 200 only after the commit
        return JSONResponse({"RequestGuid": guid})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.db, args.key), host="127.0.0.1", port=args.port,
                log_level="warning", http="httptools", loop="uvloop")
