"""The outbox side: claiming due dispatch jobs, recording attempts and outcomes.

Claiming is safe with several workers: PostgreSQL uses ``FOR UPDATE SKIP LOCKED``; SQLite
serialises writers (``BEGIN IMMEDIATE``), so the claiming UPDATE is atomic. A claim is a
lease (``claimed_until``) renewed before every attempt; a worker that dies loses it when it
expires. A job is only claimable when every earlier job of its order is done, so a vendor
never gets the cancellation before the purchase.

A delivery is terminal when Delivered, Unsupported, or Failed with no ``next_attempt_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, or_, select, update

from dispatch.store.tables import DELIVERIES, JOBS

TERMINAL = ("Delivered", "Unsupported")


def _due_jobs(now: dt.datetime, order_id: str | None):  # type: ignore[no-untyped-def]
    earlier = JOBS.alias("earlier")
    cond = and_(
        JOBS.c.status == "pending",
        JOBS.c.next_attempt_at <= now,
        or_(JOBS.c.claimed_until.is_(None), JOBS.c.claimed_until < now),
        ~exists().where(and_(earlier.c.order_id == JOBS.c.order_id,
                             earlier.c.number < JOBS.c.number, earlier.c.status != "done")),
    )
    if order_id is not None:
        cond = and_(cond, JOBS.c.order_id == order_id)
    return cond


def claim_jobs(
    conn: Connection,
    *,
    worker: str,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    order_id: str | None = None,
) -> list[int]:
    """Claim up to ``limit`` due jobs (oldest first) for ``worker``; returns their ids."""
    pick = select(JOBS.c.id).where(_due_jobs(now, order_id)).order_by(JOBS.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(JOBS).where(JOBS.c.id.in_(pick.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(JOBS.c.id))
    return sorted(int(i) for i in conn.execute(stmt).scalars())


def due_jobs(conn: Connection, *, now: dt.datetime, limit: int) -> list[Any]:
    """What would be claimed now (for --dry-run): no lock taken, nothing written."""
    return list(conn.execute(select(JOBS).where(_due_jobs(now, None))
                             .order_by(JOBS.c.id).limit(limit)))


def renew_claim(conn: Connection, *, job_id: int, worker: str, now: dt.datetime,
                lease: dt.timedelta) -> bool:
    result = conn.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
                          .values(claimed_until=now + lease))
    return result.rowcount == 1


def job_row(conn: Connection, *, job_id: int) -> Any:
    return conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()


def open_deliveries(conn: Connection, *, job_id: int, now: dt.datetime,
                    include_scheduled: bool = False) -> list[Any]:
    """The job's deliveries that may be attempted now: Pending, or Failed and due
    (``include_scheduled``: Failed with any retry scheduled, for an in-run retry)."""
    due = DELIVERIES.c.next_attempt_at.is_not(None) if include_scheduled \
        else DELIVERIES.c.next_attempt_at <= now
    return list(conn.execute(select(DELIVERIES).where(
        DELIVERIES.c.job_id == job_id,
        or_(DELIVERIES.c.status == "Pending", and_(DELIVERIES.c.status == "Failed", due)),
    ).order_by(DELIVERIES.c.id)))


def start_attempt(conn: Connection, *, delivery_ids: list[int], job_id: int, worker: str,
                  now: dt.datetime) -> int:
    """Count an attempt on deliveries still open, under this worker's claim of the job.

    Committed before anything is sent, so a crash after the send is visible as an attempt.
    Returns how many rows were taken (0: someone else owns them now; do not send).
    """
    owned = select(JOBS.c.id).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
    result = conn.execute(update(DELIVERIES).where(
        DELIVERIES.c.id.in_(delivery_ids),
        DELIVERIES.c.status.in_(("Pending", "Failed")),
        exists(owned),
    ).values(attempts=DELIVERIES.c.attempts + 1, last_attempt_at=now))
    return int(result.rowcount)


def keep_payload(conn: Connection, *, delivery_id: int, payload: str) -> None:
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id,
                                          DELIVERIES.c.payload.is_(None))
                 .values(payload=payload))


def record_delivered(conn: Connection, *, delivery_id: int, sha256: str, size: int,
                     evidence: dict[str, Any], now: dt.datetime) -> None:
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(
        status="Delivered", sha256=sha256, size=size, evidence=evidence, error=None,
        delivered_at=now, next_attempt_at=None))


def record_failed(conn: Connection, *, delivery_ids: list[int], error: str,
                  next_attempt_at: dt.datetime | None) -> None:
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(delivery_ids)).values(
        status="Failed", error=error, next_attempt_at=next_attempt_at))


def release_job(conn: Connection, *, job_id: int, worker: str, now: dt.datetime) -> str:
    """Give the claim back; the job is done when every delivery is terminal.

    Returns the job's new status ("done" or "pending").
    """
    due = conn.execute(select(func.min(DELIVERIES.c.next_attempt_at)).where(
        DELIVERIES.c.job_id == job_id,
        or_(DELIVERIES.c.status == "Pending",
            and_(DELIVERIES.c.status == "Failed", DELIVERIES.c.next_attempt_at.is_not(None))),
    )).scalar()
    pending = conn.execute(select(func.count()).select_from(DELIVERIES).where(
        DELIVERIES.c.job_id == job_id, DELIVERIES.c.status == "Pending")).scalar_one()
    if pending:
        due = now if due is None else min(due, now)
    values: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
    if due is None:
        values.update(status="done", finished_at=now, next_attempt_at=None)
    else:
        values.update(next_attempt_at=due)
    conn.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.claimed_by == worker)
                 .values(**values))
    return "done" if due is None else "pending"


def next_due(conn: Connection, *, now: dt.datetime) -> dt.datetime | None:
    """When the earliest claimable job becomes due (None: nothing is waiting).

    Jobs waiting for an earlier job of their order do not count (that one does); a job
    claimed by a worker counts from the end of its lease.
    """
    earlier = JOBS.alias("earlier")
    blocked = exists().where(and_(earlier.c.order_id == JOBS.c.order_id,
                                  earlier.c.number < JOBS.c.number, earlier.c.status != "done"))
    due = case((JOBS.c.claimed_until > now, JOBS.c.claimed_until),
               else_=JOBS.c.next_attempt_at)
    return conn.execute(select(func.min(due)).where(JOBS.c.status == "pending", ~blocked)
                        ).scalar()


def list_deliveries(conn: Connection, *, status: str | None = None,
                    order_id: str | None = None, limit: int = 1000) -> list[Any]:
    stmt = (select(DELIVERIES, JOBS.c.number, JOBS.c.vendor_id)
            .join(JOBS, JOBS.c.id == DELIVERIES.c.job_id))
    if status:
        stmt = stmt.where(DELIVERIES.c.status == status)
    if order_id:
        stmt = stmt.where(DELIVERIES.c.order_id == order_id)
    return list(conn.execute(stmt.order_by(DELIVERIES.c.id).limit(limit)))


def orders_of_jobs(conn: Connection, *, job_ids: list[int]) -> dict[int, str]:
    """job id -> order id, in one query."""
    if not job_ids:
        return {}
    return {int(i): o for i, o in conn.execute(
        select(JOBS.c.id, JOBS.c.order_id).where(JOBS.c.id.in_(job_ids)))}


def deliveries_of_jobs(conn: Connection, *, job_ids: list[int]) -> list[Any]:
    """Every delivery of these jobs (a batch's record for its artifact), in id order."""
    if not job_ids:
        return []
    return list(conn.execute(
        select(DELIVERIES, JOBS.c.number, JOBS.c.vendor_id)
        .join(JOBS, JOBS.c.id == DELIVERIES.c.job_id)
        .where(DELIVERIES.c.job_id.in_(job_ids)).order_by(DELIVERIES.c.id)))

