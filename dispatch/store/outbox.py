"""The outbox: claiming due dispatch jobs, reading what a send needs, recording attempts.

Claiming is safe with several workers: PostgreSQL uses ``FOR UPDATE SKIP LOCKED``; SQLite
serialises writers (``BEGIN IMMEDIATE``), so the claiming UPDATE is atomic. A claim is a
lease (``claimed_until``) renewed before every attempt; a worker that dies loses it when it
expires. A job is only claimable when every earlier job of its order is done, so a vendor
never gets the cancellation before the purchase.

One retry clock: a delivery that may still be attempted is ``Pending`` with
``next_attempt_at`` (now for a new one, later after a retryable failure); its job's
``next_attempt_at`` is the earliest of them. Final: Delivered, Failed, Unsupported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, or_, select, update

from dispatch.store.tables import DELIVERIES, JOBS
from dispatch.vocabulary import (
    Channel,
    DeliveryStatus,
    DispatchKind,
    DocumentFormat,
    JobStatus,
)

PENDING = DeliveryStatus.PENDING


@dataclass(frozen=True)
class JobRow:
    """A dispatch job (outbox row)."""

    id: int
    order_id: str
    vendor_id: str
    kind: DispatchKind
    number: int
    replaces_number: int | None
    changes: list[dict[str, Any]] | None
    status: JobStatus
    created_at: dt.datetime
    claimed_by: str | None = None
    claimed_until: dt.datetime | None = None


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery with its dispatch's number and vendor (what every view shows)."""

    id: int
    job_id: int
    order_id: str
    vendor_id: str
    kind: DispatchKind
    number: int
    channel: Channel
    format: DocumentFormat | None
    template_name: str | None
    document_name: str | None
    order_item_id: str | None
    quantity: int | None
    payload: str | None
    target: str
    idempotency_key: str
    group_key: str | None
    status: DeliveryStatus
    attempts: int
    error: str | None
    sha256: str | None
    size: int | None
    evidence: dict[str, Any] | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


def _job(row: Any) -> JobRow:
    return JobRow(row.id, row.order_id, row.vendor_id, DispatchKind(row.kind), row.number,
                  row.replaces_number, row.changes, JobStatus(row.status), row.created_at,
                  row.claimed_by, row.claimed_until)


def _delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(
        row.id, row.job_id, row.order_id, row.vendor_id, DispatchKind(row.kind), row.number,
        Channel(row.channel), DocumentFormat(row.format) if row.format else None,
        row.template_name, row.document_name, row.order_item_id, row.quantity, row.payload,
        row.target, row.idempotency_key, row.group_key, DeliveryStatus(row.status),
        row.attempts, row.error, row.sha256, row.size, row.evidence, row.next_attempt_at,
        row.delivered_at)


_DELIVERY_VIEW = (select(DELIVERIES, JOBS.c.number, JOBS.c.vendor_id)
                  .join(JOBS, JOBS.c.id == DELIVERIES.c.job_id))
_EARLIER = JOBS.alias("earlier")
_BLOCKED = exists().where(and_(_EARLIER.c.order_id == JOBS.c.order_id,
                               _EARLIER.c.number < JOBS.c.number,
                               _EARLIER.c.status != JobStatus.DONE))


def _claimable(now: dt.datetime, order_id: str | None) -> Any:
    cond = and_(JOBS.c.status == JobStatus.PENDING, JOBS.c.next_attempt_at <= now,
                or_(JOBS.c.claimed_until.is_(None), JOBS.c.claimed_until < now), ~_BLOCKED)
    return cond if order_id is None else and_(cond, JOBS.c.order_id == order_id)


# -- claiming --------------------------------------------------------------------------------

def claim_jobs(conn: Connection, *, worker: str, now: dt.datetime, lease: dt.timedelta,
               limit: int, order_id: str | None = None) -> list[tuple[int, str]]:
    """Claim up to ``limit`` due jobs (oldest first) for ``worker``: (job id, order id)."""
    pick = select(JOBS.c.id).where(_claimable(now, order_id)).order_by(JOBS.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(JOBS).where(JOBS.c.id.in_(pick.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(JOBS.c.id, JOBS.c.order_id))
    return sorted((int(i), o) for i, o in conn.execute(stmt))


def due_jobs(conn: Connection, *, now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """What would be claimed now (dry run): nothing locked, nothing written."""
    return [(int(i), o) for i, o in conn.execute(
        select(JOBS.c.id, JOBS.c.order_id).where(_claimable(now, None))
        .order_by(JOBS.c.id).limit(limit))]


def next_due(conn: Connection, *, now: dt.datetime, order_id: str | None = None
             ) -> dt.datetime | None:
    """When the earliest claimable job is due (None: nothing waits). Jobs waiting for an
    earlier job of their order do not count; a claimed job counts from its lease's end."""
    due = case((JOBS.c.claimed_until > now, JOBS.c.claimed_until), else_=JOBS.c.next_attempt_at)
    stmt = select(func.min(due)).where(JOBS.c.status == JobStatus.PENDING, ~_BLOCKED)
    if order_id is not None:
        stmt = stmt.where(JOBS.c.order_id == order_id)
    value: dt.datetime | None = conn.execute(stmt).scalar()
    return value


def renew_claim(conn: Connection, *, job_id: int, worker: str, now: dt.datetime,
                lease: dt.timedelta) -> bool:
    result = conn.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
                          .values(claimed_until=now + lease))
    return result.rowcount == 1


def release_job(conn: Connection, *, job_id: int, worker: str, now: dt.datetime) -> JobStatus:
    """Give the claim back: Done when no delivery is Pending, else due at the earliest
    ``next_attempt_at`` of its Pending deliveries."""
    due = conn.execute(select(func.min(DELIVERIES.c.next_attempt_at)).where(
        DELIVERIES.c.job_id == job_id, DELIVERIES.c.status == PENDING)).scalar()
    values: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
    if due is None:
        values.update(status=JobStatus.DONE, finished_at=now, next_attempt_at=None)
    else:
        values.update(next_attempt_at=due)
    conn.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
                 .values(**values))
    return JobStatus.DONE if due is None else JobStatus.PENDING


# -- reading a job -----------------------------------------------------------------------------

def job_row(conn: Connection, *, job_id: int) -> JobRow | None:
    row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
    return _job(row) if row is not None else None


def due_deliveries(conn: Connection, *, job_id: int, now: dt.datetime) -> list[DeliveryRow]:
    """The job's deliveries that may be attempted now (Pending and due), in id order."""
    return [_delivery(r) for r in conn.execute(_DELIVERY_VIEW.where(
        DELIVERIES.c.job_id == job_id, DELIVERIES.c.status == PENDING,
        DELIVERIES.c.next_attempt_at <= now).order_by(DELIVERIES.c.id))]


# -- recording -------------------------------------------------------------------------------

def start_attempt(conn: Connection, *, delivery_ids: Sequence[int], job_id: int, worker: str,
                  now: dt.datetime) -> int:
    """Count an attempt on deliveries still Pending, under this worker's claim of the job.

    Committed before anything is sent, so a crash after the send is visible as an attempt.
    Returns how many rows were taken (0: someone else owns them now; do not send).
    """
    owned = select(JOBS.c.id).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
    result = conn.execute(update(DELIVERIES).where(
        DELIVERIES.c.id.in_(delivery_ids), DELIVERIES.c.status == PENDING, exists(owned),
    ).values(attempts=DELIVERIES.c.attempts + 1, last_attempt_at=now))
    return int(result.rowcount)


def keep_payload(conn: Connection, *, delivery_id: int, payload: str) -> None:
    """The exact body of a first attempt, kept for every retry (same bytes, same key)."""
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id,
                                          DELIVERIES.c.payload.is_(None))
                 .values(payload=payload))


def record_delivered(conn: Connection, *, delivery_id: int, sha256: str, size: int,
                     evidence: dict[str, Any], now: dt.datetime) -> None:
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(
        status=DeliveryStatus.DELIVERED, sha256=sha256, size=size, evidence=evidence,
        error=None, delivered_at=now, next_attempt_at=None))


def record_failed(conn: Connection, *, delivery_ids: Sequence[int], error: str,
                  next_attempt_at: dt.datetime | None) -> DeliveryStatus:
    """A failed attempt: Pending with the error until ``next_attempt_at``, or Failed for
    good when there is none (SPEC 3)."""
    status = PENDING if next_attempt_at is not None else DeliveryStatus.FAILED
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(delivery_ids)).values(
        status=status, error=error, next_attempt_at=next_attempt_at))
    return status


# -- views -------------------------------------------------------------------------------------

def list_deliveries(conn: Connection, *, status: DeliveryStatus | None = None,
                    waiting: bool = False, order_id: str | None = None,
                    job_ids: Sequence[int] | None = None, limit: int = 1000
                    ) -> list[DeliveryRow]:
    """Deliveries in id order; ``waiting``: Pending after a failed attempt (a retry is
    scheduled); ``job_ids``: only those jobs' (a batch's record)."""
    stmt = _DELIVERY_VIEW
    if status is not None:
        stmt = stmt.where(DELIVERIES.c.status == status)
    if waiting:
        stmt = stmt.where(DELIVERIES.c.status == PENDING, DELIVERIES.c.error.is_not(None))
    if order_id:
        stmt = stmt.where(DELIVERIES.c.order_id == order_id)
    if job_ids is not None:
        stmt = stmt.where(DELIVERIES.c.job_id.in_(list(job_ids)))
    return [_delivery(r) for r in conn.execute(stmt.order_by(DELIVERIES.c.id).limit(limit))]


def list_jobs(conn: Connection, *, order_id: str | None = None) -> list[JobRow]:
    stmt = select(JOBS).order_by(JOBS.c.id)
    if order_id:
        stmt = stmt.where(JOBS.c.order_id == order_id)
    return [_job(r) for r in conn.execute(stmt)]


def upgrade_statuses(conn: Connection) -> None:
    """Rows written before the vocabulary was fixed: lowercase job statuses, and a retry
    waiting as ``Failed`` (SPEC 3 now says ``Pending``). Idempotent, cheap when clean."""
    for old, new in (("pending", JobStatus.PENDING), ("done", JobStatus.DONE)):
        conn.execute(update(JOBS).where(JOBS.c.status == old).values(status=new))
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.status == DeliveryStatus.FAILED,
                                          DELIVERIES.c.next_attempt_at.is_not(None))
                 .values(status=PENDING))
