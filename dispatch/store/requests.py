"""The erp_request table: durable accept, idempotency, claiming work, recording results."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from dispatch import models
from dispatch.models import utcnow
from dispatch.store.engine import reading

REQUESTS = models.table_of(models.ErpRequest)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with another endpoint or body."""


@dataclass(frozen=True)
class Accepted:
    guid: str
    replayed: bool  # True when an Idempotency-Key matched an earlier request


def accept_request(
    engine: Engine,
    *,
    kind: str,
    body: str,
    order_id: str | None,
    idempotency_key: str | None,
    body_hash: str,
) -> Accepted:
    """Store the request durably (committed before this returns) with status Created."""
    guid = str(uuid.uuid4())
    row = {"guid": guid, "kind": kind, "order_id": order_id, "body": body,
           "idempotency_key": idempotency_key, "body_hash": body_hash,
           "status": "Created", "received_at": utcnow()}
    try:
        with engine.begin() as conn:
            conn.execute(REQUESTS.insert(), [row])
    except IntegrityError:
        if idempotency_key is None:
            raise
        with reading(engine) as conn:
            earlier = conn.execute(
                select(REQUESTS.c.guid, REQUESTS.c.kind, REQUESTS.c.body_hash)
                .where(REQUESTS.c.idempotency_key == idempotency_key)).first()
        if earlier is None:  # pragma: no cover - the unique row cannot vanish
            raise
        if earlier.kind != kind or earlier.body_hash != body_hash:
            raise IdempotencyConflict(idempotency_key) from None
        return Accepted(earlier.guid, True)
    return Accepted(guid, False)


def find_request(conn: Connection, *, guid: str) -> Any:
    return conn.execute(
        select(REQUESTS.c.guid, REQUESTS.c.kind, REQUESTS.c.order_id, REQUESTS.c.status,
               REQUESTS.c.message, REQUESTS.c.result)
        .where(REQUESTS.c.guid == guid)).first()


def fetch_created(conn: Connection, *, limit: int) -> list[Any]:
    """The oldest requests not yet executed, in arrival order."""
    return list(conn.execute(
        select(REQUESTS.c.seq, REQUESTS.c.guid, REQUESTS.c.kind, REQUESTS.c.order_id,
               REQUESTS.c.body)
        .where(REQUESTS.c.status == "Created").order_by(REQUESTS.c.seq).limit(limit)))


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
    conn.execute(update(REQUESTS).where(REQUESTS.c.seq == seq).values(
        status=status, message=message, result=result, order_id=order_id, finished_at=now))


def count_by_status(conn: Connection) -> dict[str, int]:
    from sqlalchemy import func

    rows = conn.execute(select(REQUESTS.c.status, func.count()).group_by(REQUESTS.c.status))
    return {status: int(n) for status, n in rows}
