"""The erp_request table: durable accept, idempotency, claiming work, recording results."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from dispatch.models import utcnow
from dispatch.store.engine import reading, transaction
from dispatch.store.tables import REQUESTS


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with another endpoint or body."""


@dataclass(frozen=True)
class Accepted:
    """What accepting a request stored: its GUID, or the GUID an Idempotency-Key matched."""

    guid: str
    replayed: bool  # True when an Idempotency-Key matched an earlier request


@dataclass(frozen=True, slots=True)
class KeyUse:
    """The request an Idempotency-Key was first used with."""

    guid: str
    kind: str
    body_hash: str | None


def replay(earlier: KeyUse, *, key: str, kind: str, body_hash: str | None) -> Accepted:
    """The answer to a request whose Idempotency-Key ``key`` was used before: the earlier
    request's GUID, or IdempotencyConflict when that was another endpoint or body."""
    if earlier.kind != kind or earlier.body_hash != body_hash:
        raise IdempotencyConflict(key)
    return Accepted(earlier.guid, True)


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request waiting to be executed (its body as received)."""

    seq: int
    guid: str
    kind: str
    order_id: str | None
    body: str


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request's state: ``message`` and ``result`` are set once it finished."""

    guid: str
    kind: str
    order_id: str | None
    status: str
    message: str | None
    result: dict[str, Any] | None


def _columns(record: type) -> list[Any]:
    """The erp_request columns named like the record's fields, in field order."""
    return [REQUESTS.c[field.name] for field in fields(record)]


# Hot statements are built once: building them per call was half the executor's CPU
# (bench/RESULTS.md, API section).
_INSERT = REQUESTS.insert()
_INSERT_OR_IGNORE = REQUESTS.insert().prefix_with("OR IGNORE", dialect="sqlite")
_FETCH: dict[int, Any] = {}
_FINISH = update(REQUESTS).where(REQUESTS.c.seq == bindparam("b_seq")).values(
    status=bindparam("b_status"), message=bindparam("b_message"), result=bindparam("b_result"),
    order_id=bindparam("b_order_id"), finished_at=bindparam("b_finished_at"))
_FIND = select(*_columns(RequestRecord)).where(REQUESTS.c.guid == bindparam("g"))


# GUIDs from a pool of os.urandom bytes: uuid4() makes a getrandom() call per request, and
# the event loop thread that releases the GIL for it waits up to a switch interval for the
# executor thread to give it back (uuid4 was 14 % of the accept path's samples; issue 13).
_GUID_POOL_BYTES = 16 * 256
_guid_lock = threading.Lock()
_guid_pool = b""
_guid_next = 0


def _forget_guid_pool() -> None:
    global _guid_pool, _guid_next
    _guid_pool, _guid_next = b"", 0  # a forked child must not repeat its parent's GUIDs


os.register_at_fork(after_in_child=_forget_guid_pool)


def new_guid() -> str:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes it."""
    global _guid_pool, _guid_next
    with _guid_lock:
        if _guid_next >= len(_guid_pool):
            _guid_pool, _guid_next = os.urandom(_GUID_POOL_BYTES), 0
        raw = _guid_pool[_guid_next:_guid_next + 16]
        _guid_next += 16
    return str(uuid.UUID(bytes=raw, version=4))


def new_row(*, kind: str, body: str, order_id: str | None, idempotency_key: str | None,
            body_hash: str | None) -> dict[str, Any]:
    """The erp_request row of a newly received request (status Created, a fresh GUID)."""
    return {"guid": new_guid(), "kind": kind, "order_id": order_id, "body": body,
            "idempotency_key": idempotency_key, "body_hash": body_hash,
            "status": "Created", "received_at": utcnow()}


def insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store new request rows (``new_row``) inside the caller's transaction."""
    conn.execute(_INSERT, rows)


def insert_moved(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store rows moved from the accept journal, in order, skipping GUIDs stored already (a
    move repeated after a crash between its two commits). A row whose Idempotency-Key a
    request stored straight into the database took meanwhile (a race the journal cannot
    see) is stored Failed, so its GUID still answers."""
    if not rows:
        return
    stored = conn.execute(_INSERT_OR_IGNORE, rows).rowcount
    if stored == len(rows):
        return
    guids = [row["guid"] for row in rows]
    have = set(conn.execute(select(REQUESTS.c.guid).where(REQUESTS.c.guid.in_(guids)))
               .scalars())
    lost = [row for row in rows if row["guid"] not in have]
    if lost:
        now = utcnow()
        insert_rows(conn, [{**row, "idempotency_key": None, "status": "Failed",
                            "finished_at": now, "result": {"PurchaseOrder": {
                                "Id": row["order_id"], "Status": "None", "Errors": [],
                                "PurchaseOrderItems": []}},
                            "message": f"Idempotency-Key: '{row['idempotency_key']}' was used "
                                       "by another request at the same moment; use a new key"}
                           for row in lost])


def find_keys(conn: Connection, keys: Sequence[str]) -> dict[str, KeyUse]:
    """The stored requests these Idempotency-Keys were used with, by key."""
    return {key: KeyUse(guid, kind, body_hash) for key, guid, kind, body_hash in conn.execute(
        select(REQUESTS.c.idempotency_key, REQUESTS.c.guid, REQUESTS.c.kind,
               REQUESTS.c.body_hash).where(REQUESTS.c.idempotency_key.in_(keys)))}


def accept_request(engine: Engine, *, row: dict[str, Any]) -> Accepted:
    """Store the request durably (committed before this returns) with status Created."""
    idempotency_key, kind, body_hash = row["idempotency_key"], row["kind"], row["body_hash"]
    try:
        with transaction(engine) as conn:
            insert_rows(conn, [row])
    except IntegrityError:
        if idempotency_key is None:
            raise
        with reading(engine) as conn:
            earlier = find_keys(conn, [idempotency_key]).get(idempotency_key)
        if earlier is None:  # pragma: no cover - the unique row cannot vanish
            raise
        return replay(earlier, key=idempotency_key, kind=kind, body_hash=body_hash)
    return Accepted(row["guid"], False)


def find_request(conn: Connection, *, guid: str) -> RequestRecord | None:
    """The request ``guid`` as stored (its result once finished); None when unknown."""
    row = conn.execute(_FIND, {"g": guid}).first()
    return None if row is None else RequestRecord(*row)


def fetch_created(conn: Connection, *, limit: int) -> list[StoredRequest]:
    """The oldest requests not yet executed, in arrival order."""
    stmt = _FETCH.get(limit)
    if stmt is None:
        stmt = _FETCH[limit] = (select(*_columns(StoredRequest))
                                .where(REQUESTS.c.status == "Created")
                                .order_by(REQUESTS.c.seq).limit(limit))
    return [StoredRequest(*row) for row in conn.execute(stmt)]


def finish_request(
    conn: Connection,
    *,
    seq: int,
    status: str,
    message: str,
    result: dict[str, Any],
    order_id: str | None,
    now: dt.datetime,
) -> None:
    """Record a request's outcome (inside the transaction that applied it)."""
    conn.execute(_FINISH, {"b_seq": seq, "b_status": status, "b_message": message,
                           "b_result": result, "b_order_id": order_id, "b_finished_at": now})


def finish_requests(conn: Connection, finished: Sequence[Mapping[str, Any]]) -> None:
    """Record the outcomes of a batch of requests in one statement (inside the transaction
    that applied them); each mapping has ``finish_request``'s keyword arguments."""
    if finished:
        conn.execute(_FINISH, [
            {"b_seq": f["seq"], "b_status": f["status"], "b_message": f["message"],
             "b_result": f["result"], "b_order_id": f["order_id"], "b_finished_at": f["now"]}
            for f in finished])


def count_by_status(conn: Connection) -> dict[str, int]:
    """How many requests are in each status."""
    rows = conn.execute(select(REQUESTS.c.status, func.count()).group_by(REQUESTS.c.status))
    return {status: int(n) for status, n in rows}
