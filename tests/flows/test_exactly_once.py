"""Exactly once (SPEC 6-7, issue 5 item 5): a delivery that succeeded is never sent again.

1. A dispatching process is SIGKILLed after the send reached the vendor and before the outcome
   was recorded; a restart (once the dead worker's lease expired) must not produce a second
   file or submission where the protocol can tell (SFTP: same name and sha256 already there;
   B2B: the same Idempotency-Key is replayed), and an email resend carries the same
   Message-ID.
2. Two ``dispatch-pending`` processes (the production flow: the one run loop, its Prefect
   task step) started at the same moment on one database never send the same delivery; on
   PostgreSQL one worker's claim is held uncommitted while the other claims
   (FOR UPDATE SKIP LOCKED), on SQLite the claims serialise.

The dispatching runs in child processes (``tests/flows/child_dispatch.py``) that run the
``dispatch-pending`` flow against the stand-in vendors and the Prefect API this test process
runs; a restart is the same flow run in this process; the crash point is deterministic
(the child kills itself right after the channel's real send returned), never a timing
guess.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL

from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.models import utcnow
from dispatch.orchestration import runtime
from dispatch.store import outbox
from dispatch.store.engine import reading
from flows.dispatch_pending import dispatch_pending
from tests.conftest import TEMPLATES_DIR
from tests.dispatching.conftest import Env, all_channels_order

ROOT = Path(__file__).resolve().parents[2]
LEASE = dt.timedelta(seconds=30)
EVENT_TIMEOUT = 60.0
CLAIM_TIMEOUT = 15.0  # a claim that does not wait for another one takes milliseconds


class Child:
    """A dispatching child process; its stdout lines (JSON events) are read by a thread."""

    def __init__(self, env: Env, log: Path, **config: Any) -> None:
        full = {"database_url": env.settings.database_url, "templates_dir": str(TEMPLATES_DIR),
                "settings": {**env.world.settings_overrides(),
                             "retry_delays": list(env.settings.retry_delays)},
                "lease_seconds": LEASE.total_seconds(), **config}
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.flows.child_dispatch", json.dumps(full)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, env={**os.environ, **env.world.env,
                            "PREFECT_API_URL": str(PREFECT_API_URL.value())})
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._events.put(json.loads(line))
            except ValueError:
                self._events.put({"event": "unexpected output", "line": line})
        self._events.put(None)

    def event(self, expected: str, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The next event; fails (with the child's stderr) at EOF, after ``timeout`` or if it
        is another one."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no '{expected}' event from the child within {timeout} s")
        assert event is not None, f"child exited early:\n{self.stderr()}"
        assert event["event"] == expected, (event, self.stderr())
        return event

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=EVENT_TIMEOUT)
        finally:
            self._stderr.close()

    def stderr(self) -> str:
        return self.log.read_text()  # the child writes to the file itself: nothing buffered

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def deliveries(env: Env, order_id: str | None = None) -> list[Any]:
    with reading(env.engine) as conn:
        return outbox.list_deliveries(conn, order_id=order_id, limit=100_000)


def jobs(env: Env) -> list[Any]:
    with reading(env.engine) as conn:
        return outbox.list_jobs(conn)


def run_pending(env: Env, clock: Any = utcnow) -> dict[str, int]:
    """A restarted dispatcher: the dispatch-pending flow in this process, with fresh
    channels and this clock; returns its sends by outcome."""
    runtime.install(runtime.Runtime(
        env.settings, env.engine,
        make_dispatcher=lambda engine, settings, channels: Dispatcher(
            engine, settings, channels, clock=clock)))
    try:
        counts: dict[str, int] = asyncio.run(dispatch_pending())
    finally:
        runtime.install(None)
    return counts


def after_lease() -> dt.datetime:
    """A clock past the dead worker's lease (the restart happens 'later')."""
    return utcnow() + LEASE + dt.timedelta(seconds=1)


def one_channel_order(channel: str) -> dict[str, Any]:
    options = all_channels_order()["SendOptions"]
    flags = {"email": "IsEmail", "sftp": "IsFtp", "b2b": "IsB2B"}
    return all_channels_order(SendOptions={**options, "Channel": {flags[channel]: True}})


def attachments(mail: Any) -> list[tuple[str, bytes]]:
    return [(part.get_filename(), part.get_payload(decode=True))
            for part in mail.message.iter_attachments()]


# -- 1. SIGKILL between the send and the record ------------------------------------------------

@pytest.mark.parametrize("channel", ["sftp", "b2b", "email"])
def test_sigkill_between_send_and_record_never_sends_twice(
        env: Env, channel: str, tmp_path: Path) -> None:
    world = env.world
    order_id = env.order(one_channel_order(channel))
    child = Child(env, tmp_path / "child.err", worker="doomed-worker", kill_after_send=channel)
    try:
        child.event("ready")
        assert child.event("first-claim")["claimed"] == [j.id for j in jobs(env)]
        sent = child.event("sent")  # the vendor has it now; the child is dying
        assert child.wait() == -signal.SIGKILL, child.stderr()
    finally:
        child.kill()
    key = sent["idempotency_key"]

    # The crash left the attempt counted (committed before the send) and no outcome.
    rows = deliveries(env, order_id)
    crashed = [r for r in rows if r.idempotency_key == key
               or (channel == "email" and r.group_key == rows[0].group_key)]
    assert crashed and all((r.status, r.attempts, r.evidence) == ("Pending", 1, None)
                           for r in crashed), crashed
    job = jobs(env)[0]
    assert (job.status, job.claimed_by) == ("Pending", "doomed-worker")
    assert job.claimed_until > utcnow()

    # What reached the vendor before the kill.
    inbox = world.inbox()
    if channel == "sftp":
        name = f"{order_id}_purchase_1.xml"
        first = (inbox / name).stat()
        assert hashlib.sha256((inbox / name).read_bytes()).hexdigest() \
            == sent["evidence"]["sha256"]
    elif channel == "b2b":
        assert [s.idempotency_key for s in world.b2b.submissions] == [key]
    else:
        assert [m.message_id for m in world.smtp.messages] == [crashed[0].group_key]

    # While the dead worker's lease runs nobody takes the job over (it might still be sending).
    assert run_pending(env) == {}
    assert len(world.smtp.messages) + len(world.b2b.submissions) + len(list(inbox.iterdir())) \
        == 1

    # Restart after the lease expired: everything ends Delivered, nothing new at the vendor.
    counts = run_pending(env, clock=after_lease)
    assert list(counts) == ["Delivered"], counts
    rows = deliveries(env, order_id)
    assert {r.status for r in rows} == {"Delivered"}
    crashed_ids = {c.id for c in crashed}
    again = [r for r in rows if r.id in crashed_ids]
    assert {r.attempts for r in again} == {2}  # the crashed send was attempted once more
    assert all(r.attempts == 1 for r in rows if r.id not in crashed_ids)  # B2B's other line

    if channel == "sftp":
        # One file, untouched by the restart (same inode and mtime: not re-uploaded, not
        # renamed over), recorded as already present with the first send's sha256.
        assert sorted(p.name for p in inbox.iterdir()) == [name]
        now = (inbox / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
        (row,) = again
        assert row.evidence["already_present"] is True
        assert "already present" in row.evidence["remote"]["note"]
        assert row.sha256 == row.evidence["sha256"] == sent["evidence"]["sha256"] \
            == hashlib.sha256((inbox / name).read_bytes()).hexdigest()
    elif channel == "b2b":
        # The crashed line was POSTed again with the same Idempotency-Key and the vendor
        # replayed its first answer: still one submission per customerReference.
        line_ids = [line["Id"] for line in env.api.order(order_id)["PurchaseOrderItems"]]
        subs = world.b2b.submissions
        assert sorted(s.body["customerReference"] for s in subs) == sorted(
            f"{order_id}/{line}" for line in line_ids)
        assert sorted(s.idempotency_key for s in subs) == sorted(r.idempotency_key for r in rows)
        assert world.b2b.requests == len(subs) + 1  # the one extra request was the replay
        (row,) = again
        answer = json.loads(row.evidence["remote"]["body"])
        first_answer = json.loads(sent["evidence"]["remote"]["body"])
        assert answer == {**first_answer, "replayed": True}
        assert row.evidence["remote"]["idempotency_key"] == key
        assert row.sha256 == sent["evidence"]["sha256"]  # byte-identical body
    else:
        # SMTP has no idempotency: the relay cannot refuse a duplicate, so the vendor gets the
        # message twice. What the protocol allows is that the resend is recognisable: the
        # SAME Message-ID (the delivery's durable group_key) and the same attachments.
        messages = world.smtp.messages
        assert len(messages) == 2
        assert {m.message_id for m in messages} == {crashed[0].group_key}
        assert attachments(messages[0]) == attachments(messages[1])
        assert {r.evidence["remote"]["message_id"] for r in again} == {crashed[0].group_key}
        sent_docs = {d["name"]: d["sha256"] for d in sent["evidence"]["documents"]}
        assert {r.document_name: r.sha256 for r in again} == sent_docs

    # And never again, however late the next run is.
    assert run_pending(env, clock=lambda: after_lease() + dt.timedelta(days=1)) == {}
    assert [j.status for j in jobs(env)] == ["Done"]
    assert len(world.smtp.messages) == (2 if channel == "email" else 0)
    assert len(world.b2b.submissions) == (2 if channel == "b2b" else 0)


# -- 2. Two dispatch-pending at once -------------------------------------------------------------

ORDERS = 40
WORKERS = 2


def create_orders(env: Env, count: int) -> list[str]:
    """``count`` all-channel orders; every 8th is created Cancelled (purchase, then a
    cancellation job that may only go once the purchase is done)."""
    guids = [env.api.submit("Create", all_channels_order(
        Status="Cancelled" if i % 8 == 7 else "Active", Reference=f"ERP {i}"))
        for i in range(count)]
    env.api.executor.run_pending()
    results = [env.api.result(guid) for guid in guids]
    assert all(r["Status"] == "Completed" for r in results), results
    return [r["PurchaseOrder"]["Id"] for r in results]


def test_concurrent_dispatch_pending_sends_every_delivery_once(env: Env, tmp_path: Path
                                                               ) -> None:
    world = env.world
    order_ids = create_orders(env, ORDERS)
    all_jobs = [j.id for j in jobs(env)]
    postgres = env.engine.dialect.name == "postgresql"
    # A small claim batch, so that the workers interleave their claims instead of the first
    # one taking every job in one statement. On PostgreSQL worker-0 keeps its first claim's
    # transaction open until worker-1 has claimed: two claims provably in flight at once.
    children = [Child(env, tmp_path / f"worker-{i}.err", worker=f"worker-{i}", barrier=True,
                      hold_first_claim=postgres and i == 0, limit=3, concurrency=4)
                for i in range(WORKERS)]
    try:
        for child in children:
            child.event("ready")  # imported, connected
        for child in children:
            child.event("claiming")  # in its flow run, at its first claim, waiting on stdin
        if postgres:
            holder, other = children
            holder.tell("go")
            held = holder.event("holding")["claimed"]
            other.tell("go")
            # FOR UPDATE SKIP LOCKED: worker-1 claims other jobs at once, it neither waits for
            # worker-0's uncommitted claim nor takes the same jobs.
            first = other.event("first-claim", timeout=CLAIM_TIMEOUT)["claimed"]
            assert len(held) == len(first) == 3 and not set(held) & set(first), (held, first)
            holder.tell("commit")
        else:  # SQLite serialises the claims (BEGIN IMMEDIATE): both start at the same moment
            for child in children:
                child.tell("go")
            firsts = [child.event("first-claim")["claimed"] for child in children]
            assert all(firsts) and not set(firsts[0]) & set(firsts[1]), firsts
        results = [child.event("done") for child in children]
        assert [child.wait() for child in children] == [0] * WORKERS, \
            [child.stderr() for child in children]
    finally:
        for child in children:
            child.kill()

    # Both workers did part of the work, and no job was claimed by two of them.
    claimed = [r["claimed"] for r in results]
    assert all(len(ids) >= 1 for ids in claimed), claimed
    assert sorted(sum(claimed, [])) == sorted(all_jobs)
    counts = [r["counts"] for r in results]
    assert all(list(c) == ["Delivered"] for c in counts), counts

    rows = deliveries(env)
    assert {r.order_id for r in rows} == set(order_ids)
    sent = [r for r in rows if r.status != "Unsupported"]  # B2B cancellations: not sendable
    assert {r.status for r in sent} == {"Delivered"}
    assert Counter(r.attempts for r in sent) == {1: len(sent)}  # no delivery attempted twice
    assert all(r.attempts == 0 for r in rows if r.status == "Unsupported")
    assert {j.status for j in jobs(env)} == {"Done"}

    # Email: one message per Message-ID, exactly the dispatches that have email.
    groups = {r.group_key: r for r in sent if r.channel == "Email"}
    received = [(m.message_id, m.message) for m in world.smtp.messages]  # parsed once
    message_ids = [message_id for message_id, _ in received]
    assert len(message_ids) == len(groups) == len(set(message_ids))
    assert set(message_ids) == set(groups)
    # in arrival order, a cancellation never reaches the vendor before its purchase
    kinds: dict[str, list[str]] = {}
    for message_id, message in received:
        row = groups[message_id]
        assert str(message["Subject"]).startswith("CANCELLATION") == (row.kind == "cancellation")
        kinds.setdefault(row.order_id, []).append(row.kind)
    assert all(k in (["purchase"], ["purchase", "cancellation"]) for k in kinds.values()), kinds
    assert sum(k == ["purchase", "cancellation"] for k in kinds.values()) == ORDERS // 8

    # SFTP: each file once, uploaded (never "already present": nobody raced to it first).
    files = [r for r in sent if r.channel == "FTP"]
    assert sorted(p.name for p in world.inbox().iterdir()) == sorted(
        r.document_name for r in files)
    assert not any(r.evidence["already_present"] for r in files)
    for row in files:
        data = (world.inbox() / row.document_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256

    # B2B: one submission per line with distinct Idempotency-Keys, and no replay (a replay
    # would mean a second POST of the same delivery).
    b2b = [r for r in sent if r.channel == "B2B"]
    subs = world.b2b.submissions
    refs = [s.body["customerReference"] for s in subs]
    assert len(refs) == len(set(refs)) == len(b2b)
    assert sorted(s.idempotency_key for s in subs) == sorted(r.idempotency_key for r in b2b)
    assert world.b2b.requests == len(subs)

    assert sum(c["Delivered"] for c in counts) == len(groups) + len(files) + len(b2b)
