"""Dispatch jobs -> documents -> deliveries, with idempotency and outcome recording.

The unit of work is a *send*: one email message (all its documents, one Message-ID), one
file (FTP/SFTP) or one B2B line. For each send: render (same bytes on every retry), count
the attempt in the database (committed before any byte leaves), send with the delivery's
durable idempotency key, then record ``Delivered`` with the evidence or ``Failed`` with
the error and, when a retry can help and attempts remain, when it is due.

Prefect sits above this module (``flows/``); the same functions run without it (the plain
loop of ``bench/dispatch.py``, the tests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from dispatch.channels import ChannelSet, Envelope
from dispatch.dispatching.loading import atelier_codes, document_context, ship_to_address
from dispatch.dispatching.outcomes import Outcome
from dispatch.documents.b2b_line import (
    B2BLine,
    customer_reference,
    delivery_window,
    submit_document,
)
from dispatch.documents.base import Document
from dispatch.documents.context import DocumentContext
from dispatch.errors import DeliveryError, DispatchError
from dispatch.models import utcnow
from dispatch.reference_data import VendorB2B, VendorEmail, VendorFtp
from dispatch.rules.retry import max_attempts, next_attempt_at
from dispatch.settings import DispatchSettings
from dispatch.store import jobs as job_store
from dispatch.store.engine import reading, transaction
from dispatch.store.orders import LINES, ORDERS
from dispatch.store.reference import VENDORS, template_file_of

log = logging.getLogger("dispatch.dispatching.core")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Send:
    """One send of a job: the delivery rows it covers and where it goes."""

    channel: str  # B2B | FTP | Email
    rows: list[Any]

    @property
    def ids(self) -> list[int]:
        return [row.id for row in self.rows]

    @property
    def label(self) -> str:
        first = self.rows[0]
        if self.channel == "B2B":
            return f"B2B line {first.order_item_id}"
        formats = "+".join(row.format for row in self.rows)
        return f"{self.channel} {formats}"


@dataclass
class Job:
    """A claimed dispatch job with what is needed to send it."""

    id: int
    order_id: str
    vendor_id: str
    kind: str
    number: int
    created_at: dt.datetime
    sends: list[Send]
    ctx: DocumentContext
    vendor: Any
    ship_to: dict[str, Any] | None
    codes: dict[str, int | None]
    lines: dict[str, Any]
    documents: dict[tuple[str, str | None], Document] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.order_id}-{self.kind}-{self.number}"


def group_sends(rows: Sequence[Any]) -> list[Send]:
    """Email rows sharing a Message-ID travel together; everything else alone."""
    sends: list[Send] = []
    by_group: dict[str, Send] = {}
    for row in rows:
        if row.channel == "Email" and row.group_key:
            send = by_group.get(row.group_key)
            if send is None:
                send = by_group[row.group_key] = Send("Email", [])
                sends.append(send)
            send.rows.append(row)
        else:
            sends.append(Send(row.channel, [row]))
    return sends


class Dispatcher:
    """Claims, renders, sends and records. One per process (or per flow run)."""

    def __init__(self, engine: Engine, settings: DispatchSettings, *,
                 channels: ChannelSet | None = None, worker: str | None = None,
                 lease: dt.timedelta | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock  # naive UTC now; tests pass a controllable one
        self.settings = settings
        # Connections belong to an event loop: a ChannelSet we create is closed at the end of
        # each run_pending()/dry_run(); one passed in is the caller's to close.
        self._owns_channels = channels is None
        self.channels = channels or ChannelSet(settings=settings)
        self.worker = worker or worker_name()
        longest = sum(settings.retry_delays) + 300
        self.lease = lease or dt.timedelta(seconds=max(600, longest))

    # -- claiming ----------------------------------------------------------------------------
    def claim(self, *, order_id: str | None = None, limit: int = 100) -> list[int]:
        with transaction(self.engine) as conn:
            return job_store.claim_jobs(conn, worker=self.worker, now=self.clock(),
                                        lease=self.lease, limit=limit, order_id=order_id)

    def load(self, job_id: int, *, include_scheduled: bool = False) -> Job:
        """The claimed job with its open deliveries grouped into sends, and its context."""
        now = self.clock()
        with reading(self.engine) as conn:
            row = job_store.job_row(conn, job_id=job_id)
            rows = job_store.open_deliveries(conn, job_id=job_id, now=now,
                                             include_scheduled=include_scheduled)
            ctx = document_context(
                conn, order_id=row.order_id, kind=row.kind, number=row.number,
                replaces_number=row.replaces_number, changes=row.changes,
                generated_at=row.created_at, buyer_name=self.settings.buyer_name)
            order = conn.execute(ORDERS.select().where(ORDERS.c.id == row.order_id)).one()
            vendor = conn.execute(VENDORS.select()
                                  .where(VENDORS.c.id == row.vendor_id)).first()
            needs_b2b = any(r.channel == "B2B" for r in rows)
            ship_to = ship_to_address(conn, location_id=order.custom_ship_to_id) \
                if needs_b2b else None
            codes = atelier_codes(conn, vendor_id=row.vendor_id) if needs_b2b else {}
            lines = {line.id: line for line in conn.execute(
                LINES.select().where(LINES.c.order_id == row.order_id))}
        return Job(row.id, row.order_id, row.vendor_id, row.kind, row.number, row.created_at,
                   group_sends(rows), ctx, vendor, ship_to, codes, lines)

    def release(self, job: Job) -> str:
        with transaction(self.engine) as conn:
            return job_store.release_job(conn, job_id=job.id, worker=self.worker, now=self.clock())

    # -- one send ------------------------------------------------------------------------------
    def documents_for(self, job: Job, send: Send) -> tuple[Any, list[Document]]:
        """The vendor target and the exact bytes of a send (rendered once per job)."""
        if send.channel == "B2B":
            row = send.rows[0]
            if row.payload:
                return self._target(job, "b2b"), [Document(
                    name=customer_reference(job.order_id, row.order_item_id),
                    content=row.payload.encode(), media_type="application/json", format="JSON")]
            line = job.lines[row.order_item_id]
            code = job.codes.get(line.item_id) if line.item_id else None
            if code is None:
                raise DeliveryError(
                    f"B2B line {line.id}: item '{line.item_id or line.custom_item_id}' has no "
                    f"atelier_code for vendor '{job.vendor_id}'; add it and resend",
                    retryable=False)
            start, end = delivery_window(line.expected_date, now=job.created_at,
                                         window_days=self.settings.b2b_delivery_window_days)
            b2b = (job.vendor.b2b or {}) if job.vendor is not None else {}
            document = submit_document(B2BLine(
                customer_reference=customer_reference(job.order_id, line.id),
                quantity=row.quantity, atelier_code=code, from_date=start, to_date=end,
                delivery_location=job.ship_to, invoice_address=b2b.get("invoice_address")))
            return self._target(job, "b2b"), [document]
        documents = []
        for row in send.rows:
            key = (row.format, row.template_name)
            if key not in job.documents:
                job.documents[key] = self._render(job, row)
            documents.append(job.documents[key])
        return self._target(job, "email" if send.channel == "Email" else "ftp"), documents

    def _render(self, job: Job, row: Any) -> Document:
        template_file = None
        if row.template_name:
            with reading(self.engine) as conn:
                template_file = template_file_of(conn, name=row.template_name)
            if template_file is None:
                raise DeliveryError(f"template '{row.template_name}' no longer exists; load it "
                                    "again with `dispatch load`", retryable=False)
        # Imported here: reportlab/openpyxl cost ~1 s of start-up in every server-mode flow
        # run process, and B2B-only runs never need them.
        from dispatch.documents import render_document

        try:
            return render_document(job.ctx, format=row.format, template_file=template_file,
                                   templates_dir=self.settings.templates_dir,
                                   template_name=row.template_name)
        except DispatchError as exc:  # TemplateError / RenderError: no retry will help
            raise DeliveryError(f"rendering {row.document_name}: {exc}", retryable=False) \
                from exc

    def _target(self, job: Job, kind: str) -> Any:
        config = getattr(job.vendor, kind, None) if job.vendor is not None else None
        if not config:
            raise DeliveryError(f"vendor '{job.vendor_id}' has no {kind} configured any more; "
                                "configure it with `dispatch load` and resend", retryable=False)
        models: dict[str, type[BaseModel]] = {"b2b": VendorB2B, "email": VendorEmail,
                                              "ftp": VendorFtp}
        model = models[kind]
        return model.model_validate(config)

    async def send(self, job: Job, send: Send, *, dry_run: bool = False) -> Outcome:
        """Render, count the attempt, send, record. Never raises for a delivery failure."""
        first = send.rows[0]
        formats = "+".join(r.format or "line" for r in send.rows)
        base = dict(order_id=job.order_id, vendor_id=job.vendor_id, kind=job.kind,
                    number=job.number, channel=send.channel, formats=formats,
                    target=first.target)
        try:
            target, documents = self.documents_for(job, send)
        except DeliveryError as exc:
            if dry_run:
                return Outcome(**base, status="Failed", attempts=first.attempts, error=str(exc))
            return self._failed(job, send, exc, base, count_attempt=True)
        if dry_run:
            size = sum(d.size for d in documents)
            return Outcome(**base, status="Skipped", attempts=first.attempts,
                           error=f"dry run: {len(documents)} document(s), {size} bytes")
        limit = max_attempts(self.settings.retry_delays)
        if first.attempts >= limit:
            # Every attempt was started but none recorded an outcome (the process died during
            # the send each time): stop here rather than resend for ever.
            exhausted = DeliveryError(
                f"{first.attempts} attempt(s) started without a recorded outcome (the sending "
                "process died?); not sent again automatically: check with the vendor, then "
                "`dispatch resend`", retryable=False)
            return self._failed(job, send, exhausted, base, attempts=first.attempts)
        now = self.clock()
        with transaction(self.engine) as conn:
            job_store.renew_claim(conn, job_id=job.id, worker=self.worker, now=now,
                                  lease=self.lease)
            taken = job_store.start_attempt(conn, delivery_ids=send.ids, job_id=job.id,
                                            worker=self.worker, now=now)
            if taken and send.channel == "B2B" and not first.payload:
                job_store.keep_payload(conn, delivery_id=first.id,
                                       payload=documents[0].content.decode())
        if taken == 0:
            return Outcome(**base, status="Skipped", attempts=first.attempts,
                           error="another worker owns this job now")
        attempts = first.attempts + 1
        envelope = Envelope(idempotency_key=first.idempotency_key, order_id=job.order_id,
                            kind=job.kind, version=job.number,
                            message_id=first.group_key if send.channel == "Email" else None)
        try:
            channel = self.channels.for_target(target)
            evidence = await channel.send(target, documents, envelope)
        except DeliveryError as exc:
            return self._failed(job, send, exc, base, attempts=attempts)
        except Exception as exc:  # a bug or an unmapped library error: retryable, but loud
            log.exception("unexpected error sending %s of %s", send.label, job.name)
            error = DeliveryError(f"unexpected {type(exc).__name__}: {exc}", retryable=True)
            return self._failed(job, send, error, base, attempts=attempts)
        proofs = {p.name: p for p in evidence.documents}
        record = evidence.as_dict()
        now = self.clock()
        with transaction(self.engine) as conn:
            for row, document in zip(send.rows, documents, strict=True):
                p = proofs.get(document.name)
                job_store.record_delivered(
                    conn, delivery_id=row.id, sha256=p.sha256 if p else evidence.sha256,
                    size=p.size if p else evidence.size, evidence=record, now=now)
        outcome = Outcome(**base, status="Delivered", attempts=attempts,
                          sha256=evidence.sha256, evidence=record)
        log.info("%s", outcome.summary())
        return outcome

    def _failed(self, job: Job, send: Send, exc: DeliveryError, base: dict[str, Any], *,
                attempts: int | None = None, count_attempt: bool = False) -> Outcome:
        now = self.clock()
        first = send.rows[0]
        if attempts is None:
            attempts = first.attempts + (1 if count_attempt else 0)
        due = next_attempt_at(attempts=attempts, delays=self.settings.retry_delays, now=now,
                              retryable=exc.retryable)
        with transaction(self.engine) as conn:
            if count_attempt:
                job_store.start_attempt(conn, delivery_ids=send.ids, job_id=job.id,
                                        worker=self.worker, now=now)
            job_store.record_failed(conn, delivery_ids=send.ids, error=str(exc),
                                    next_attempt_at=due)
        outcome = Outcome(**base, status="Failed", attempts=attempts, error=str(exc),
                          retryable=exc.retryable, next_attempt_at=due)
        log.warning("%s", outcome.summary())
        return outcome

    async def dry_run(self, *, limit: int = 1000) -> list[Outcome]:
        """What would be sent where, rendered, without claiming, writing or any network I/O."""
        with reading(self.engine) as conn:
            rows = job_store.due_jobs(conn, now=self.clock(), limit=limit)
        outcomes: list[Outcome] = []
        for row in rows:
            job = self.load(row.id)
            outcomes += [await self.send(job, send, dry_run=True) for send in job.sends]
        return outcomes

    # -- the plain loop ------------------------------------------------------------------------
    async def run_job(self, job_id: int, *, dry_run: bool = False) -> list[Outcome]:
        job = self.load(job_id)
        try:
            return [await self.send(job, send, dry_run=dry_run) for send in job.sends]
        finally:
            if not dry_run:
                self.release(job)

    def claim_by_order(self, *, limit: int, order_id: str | None = None
                       ) -> dict[str, list[int]]:
        """Claim due jobs, grouped by order (each order's jobs in dispatch order)."""
        job_ids = self.claim(limit=limit, order_id=order_id)
        with reading(self.engine) as conn:
            orders = job_store.orders_of_jobs(conn, job_ids=job_ids)
        by_order: dict[str, list[int]] = {}
        for job_id in job_ids:
            by_order.setdefault(orders[job_id], []).append(job_id)
        return by_order

    def recorded(self, job_ids: list[int]) -> list[Any]:
        """Every delivery of these jobs as the database has it (the record of a batch)."""
        with reading(self.engine) as conn:
            return job_store.deliveries_of_jobs(conn, job_ids=job_ids)

    def recorded_outcomes(self, job_ids: list[int], *, reason: str) -> list[Outcome]:
        """The sends of these jobs as recorded, for when their outcomes were lost (a crashed
        task): Delivered stays Delivered, anything else counts as Failed with ``reason``
        unless an error was recorded; Unsupported rows were never sends."""
        return [Outcome(row.order_id, row.vendor_id, row.kind, row.number, row.channel,
                        row.format or "line", row.target,
                        "Delivered" if row.status == "Delivered" else "Failed", row.attempts,
                        error=row.error or reason, next_attempt_at=row.next_attempt_at)
                for row in self.recorded(job_ids) if row.status != "Unsupported"]

    async def run_order_jobs(self, job_ids: list[int]) -> list[Outcome]:
        """One order's claimed jobs, in order."""
        results: list[Outcome] = []
        for job_id in job_ids:
            results += await self.run_job(job_id)
        return results

    async def run_pending(self, *, limit: int = 1000, concurrency: int = 8,
                          order_id: str | None = None,
                          on_outcome: Callable[[Outcome], None] | None = None
                          ) -> list[Outcome]:
        """Claim due jobs and run them until none is due: orders concurrently, each order's
        jobs in order (a cancellation is claimable only once the purchase is done).

        Returns every outcome; with ``on_outcome`` each is handed to it instead and none is
        kept (a run of any size in bounded memory: pass ``Tally().add``).
        """
        outcomes: list[Outcome] = []
        record = on_outcome or outcomes.append
        try:
            while True:
                by_order = self.claim_by_order(limit=limit, order_id=order_id)
                if not by_order:
                    return outcomes
                await self._run_orders(by_order, concurrency, record)
        finally:
            if self._owns_channels:
                await self.channels.aclose()

    async def _run_orders(self, by_order: dict[str, list[int]], concurrency: int,
                          record: Callable[[Outcome], None]) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one_order(ids: list[int]) -> None:
            async with gate:
                for outcome in await self.run_order_jobs(ids):
                    record(outcome)

        await asyncio.gather(*(one_order(ids) for ids in by_order.values()))
