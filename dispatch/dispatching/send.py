"""One send: render, count the attempt, send through the channel, record.

A send is one email message (all its documents, one Message-ID), one file (FTP/SFTP) or one
B2B line. Rendering comes first (same bytes on every retry: the context is the job's, a B2B
body is kept from its first attempt); the attempt is counted in the database, committed
before any byte leaves; the channel sends with the delivery's durable idempotency key; then
``Delivered`` with the evidence is recorded, or the error with the next attempt's time
(the delivery stays ``Pending``), or ``Failed`` when no attempt is left. Never raises for a
delivery failure; the database is the only retry clock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dispatch.channels import Envelope, Evidence
from dispatch.channels.base import error_text, target_secrets
from dispatch.dispatching.dispatcher import Dispatcher, off_loop
from dispatch.dispatching.job import Job, SendGroup
from dispatch.dispatching.outcomes import Outcome
from dispatch.dispatching.render import render_group
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.rules.retry import max_attempts, next_attempt_at
from dispatch.store import outbox
from dispatch.store.engine import transaction
from dispatch.vocabulary import Channel, DeliveryStatus, SendStatus

log = logging.getLogger("dispatch.send")


def _outcome(job: Job, group: SendGroup, status: SendStatus, attempts: int,
             **details: object) -> Outcome:
    row = job.row
    return Outcome(row.order_id, row.vendor_id, row.kind, row.number, group.channel,
                   group.formats, group.first.target, status, attempts, **details)  # type: ignore[arg-type]


async def send_group(d: Dispatcher, job: Job, group: SendGroup, *, dry_run: bool = False
                     ) -> Outcome:
    """Render, count the attempt, send, record (dry run: render only, write nothing)."""
    first = group.first
    try:
        target, documents = await render_group(d, job, group)
    except DeliveryError as exc:
        if dry_run:
            return _outcome(job, group, SendStatus.FAILED, first.attempts, error=str(exc))
        return await off_loop(_failed, d, job, group, exc, attempts=first.attempts + 1,
                              count_attempt=True)
    if dry_run:
        size = sum(doc.size for doc in documents)
        return _outcome(job, group, SendStatus.SKIPPED, first.attempts,
                        error=f"dry run: {len(documents)} document(s), {size} bytes")
    if first.attempts >= max_attempts(d.settings.retry_delays):
        # Every attempt was started but none recorded an outcome (the process died during
        # the send each time): stop here rather than resend for ever.
        return await off_loop(_failed, d, job, group, DeliveryError(
            f"{first.attempts} attempt(s) started without a recorded outcome (the sending "
            "process died?); not sent again automatically: check with the vendor, then "
            "`dispatch resend`", retryable=False), attempts=first.attempts)
    if not await off_loop(_start_attempt, d, job, group, documents):
        return _outcome(job, group, SendStatus.SKIPPED, first.attempts,
                        error="another worker owns this job now")
    attempts = first.attempts + 1
    envelope = Envelope(idempotency_key=first.idempotency_key, order_id=job.row.order_id,
                        kind=job.row.kind, version=job.row.number,
                        message_id=first.group_key if group.channel is Channel.EMAIL else None)
    try:
        evidence = await d.channels.for_target(target).send(target, documents, envelope)
    except DeliveryError as exc:
        return await off_loop(_failed, d, job, group, exc, attempts=attempts)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or an unmapped library error: retryable, but loud
        secrets = target_secrets(target, settings=d.settings)
        text = "unexpected " + error_text(exc, secrets=secrets)
        log.error("unexpected error sending %s of %s: %s", group.label, job.name,
                  error_text(exc, secrets=secrets, traceback=True))
        return await off_loop(_failed, d, job, group, DeliveryError(text, retryable=True),
                              attempts=attempts)
    record = evidence.as_dict()
    await off_loop(_delivered, d, group, documents, evidence, record)
    return _outcome(job, group, SendStatus.DELIVERED, attempts, sha256=evidence.sha256,
                    evidence=record)


def _delivered(d: Dispatcher, group: SendGroup, documents: list[Document], evidence: Evidence,
               record: dict[str, Any]) -> None:
    """Record every document of the send Delivered with its proof, in one commit."""
    proofs = {p.name: p for p in evidence.documents}
    now = d.clock()
    with transaction(d.engine) as conn:
        for row, document in zip(group.deliveries, documents, strict=True):
            p = proofs.get(document.name)
            outbox.record_delivered(
                conn, delivery_id=row.id, sha256=p.sha256 if p else evidence.sha256,
                size=p.size if p else evidence.size, evidence=record, now=now)


def _start_attempt(d: Dispatcher, job: Job, group: SendGroup, documents: list[Document]
                   ) -> bool:
    """Renew the claim and count the attempt (and keep a B2B body) in one commit."""
    now = d.clock()
    with transaction(d.engine) as conn:
        outbox.renew_claim(conn, job_id=job.row.id, worker=d.worker, now=now,
                           lease=d.lease_length)
        taken = outbox.start_attempt(conn, delivery_ids=group.ids, job_id=job.row.id,
                                     worker=d.worker, now=now)
        if taken and group.channel is Channel.B2B and not group.first.payload:
            outbox.keep_payload(conn, delivery_id=group.first.id,
                                payload=documents[0].content.decode())
    return taken > 0


def _failed(d: Dispatcher, job: Job, group: SendGroup, exc: DeliveryError, *, attempts: int,
            count_attempt: bool = False) -> Outcome:
    """Record a failed attempt: Pending until the next one is due, or Failed for good."""
    now = d.clock()
    due = next_attempt_at(attempts=attempts, delays=d.settings.retry_delays, now=now,
                          retryable=exc.retryable)
    with transaction(d.engine) as conn:
        if count_attempt:
            outbox.start_attempt(conn, delivery_ids=group.ids, job_id=job.row.id,
                                 worker=d.worker, now=now)
        status = outbox.record_failed(conn, delivery_ids=group.ids, error=str(exc),
                                      next_attempt_at=due)
    final = status is DeliveryStatus.FAILED
    return _outcome(job, group, SendStatus.FAILED if final else SendStatus.RETRYING, attempts,
                    error=str(exc), next_attempt_at=due)
