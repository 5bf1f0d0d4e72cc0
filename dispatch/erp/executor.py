"""The request executor: one thread, one leader per database, requests in arrival order.

Only the process holding the executor lock executes (PostgreSQL: a session advisory lock;
SQLite: an flock beside the database file), so requests run strictly in arrival order even
with several ``dispatch serve`` processes on one database. Each batch is one transaction:
a request that fails leaves nothing behind, and nothing is lost when the process dies
(uncommitted requests stay ``Created`` and run after restart).

On SQLite, accepted requests are group-committed by a second thread into the accept journal
(``store.accept_journal``, a file of its own), so an accept never waits for the request
executing; the executor moves them into the database between batches.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dispatch.erp import queue as erp_requests
from dispatch.models import utcnow
from dispatch.store import erp_requests as request_store
from dispatch.store import orders as order_store
from dispatch.store.accept_journal import AcceptJournal, Journaled, journal_path
from dispatch.store.engine import reading, transaction
from dispatch.store.reference import SnapshotCache

log = logging.getLogger("dispatch.erp.executor")

PG_LOCK_KEY = 74202
JobsCallback = Callable[[list[tuple[str, int, str]]], None]


Accepted = request_store.Accepted
Waiter = Future[Accepted] | asyncio.Future[Accepted]
Answer = Accepted | BaseException  # what a waiter gets: its request, or why not


def _settle(settled: list[tuple[Waiter, Answer]]) -> None:
    """Resolve waiters; asyncio futures by one call into their event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, Answer]]] = {}
    for waiter, answer in settled:
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, answer))
        else:
            _answer(waiter, answer)
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, pairs)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _resolve(pairs: list[tuple[Waiter, Answer]]) -> None:
    for waiter, answer in pairs:
        if not waiter.done():  # done: cancelled, the client went away
            _answer(waiter, answer)


def _replay(row: dict[str, Any], earlier: request_store.KeyUse | None) -> Answer:
    """The answer to a row whose Idempotency-Key was used before."""
    if earlier is None:  # pragma: no cover - a unique key's row does not vanish
        return RuntimeError(f"Idempotency-Key {row['idempotency_key']!r} vanished")
    try:
        return request_store.replay(earlier, key=row["idempotency_key"], kind=row["kind"],
                                    body_hash=row["body_hash"])
    except request_store.IdempotencyConflict as conflict:
        return conflict


def _answer(waiter: Waiter, answer: Answer) -> None:
    if isinstance(answer, BaseException):
        waiter.set_exception(answer)
    else:
        waiter.set_result(answer)


class _RequestRaised(Exception):
    """A request raised unexpectedly in a batch run without savepoints."""


class LeaderLock:
    """Held by at most one executor per database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._engine.dialect.name == "postgresql":
            if self._conn is None:
                self._conn = self._engine.raw_connection()
            try:
                cur = self._conn.cursor()
                cur.execute("SELECT pg_try_advisory_lock(%s)", (PG_LOCK_KEY,))
                got = bool(cur.fetchone()[0])
                self._conn.commit()
            except Exception:
                self.release()
                raise
            return got
        database = make_url(str(self._engine.url)).database
        if not database or database == ":memory:":
            return True
        if self._fd is None:
            path = Path(database).expanduser().resolve()
            self._fd = os.open(f"{path}.executor.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # closing the session frees the advisory lock
            except Exception:  # pragma: no cover - connection already gone
                pass
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing frees the flock
            self._fd = None


class RequestExecutor:
    """Executes stored requests in order; ``notify()`` wakes it when one was accepted."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 64,
        poll_seconds: float = 0.5,
        max_transaction_seconds: float = 0.01,
        on_jobs: JobsCallback | None = None,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._max_tx = max_transaction_seconds
        self._move_limit = 512  # accepted requests moved from the journal per transaction
        self._on_jobs = on_jobs
        self._cache = SnapshotCache()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = LeaderLock(engine)
        self._is_leader = False
        self.queued: set[str] = set()  # fetched, waiting in this process: "Ready"
        self.running: str | None = None  # executing now: "Running"
        # Group commit (SQLite): the API hands accepted rows to the accept thread, which
        # commits everything waiting into the accept journal in one transaction (the event
        # loop never waits for SQLite, nor an accept for the request executing).
        path = journal_path(engine)
        self.journal = AcceptJournal(path) if path is not None else None
        self._inbox: list[tuple[dict[str, Any], Waiter]] = []
        self._inbox_lock = threading.Lock()
        self._accept_wake = threading.Event()
        self._accept_thread: threading.Thread | None = None
        # The shape-validated request of each row accepted here, by GUID, so the leader
        # does not parse and validate it a second time to execute it (after a restart, or
        # on a replayed batch, the stored body is parsed again: the same request).
        self._parsed: dict[str, Any] = {}
        self.accepting = False  # True while the accept thread runs
        # Only SQLite gains (one writer: accepts otherwise queue behind batches); on
        # PostgreSQL accepts run concurrently and group commit made them slower (bench).
        self.group_commit = self.journal is not None

    # -- status as the API reports it ------------------------------------------------------
    def live_status(self, guid: str) -> str | None:
        if guid == self.running:
            return "Running"
        if guid in self.queued:
            return "Ready"
        return None

    def notify(self) -> None:
        self._wake.set()

    def submit(self, row: dict[str, Any], model: Any = None) -> Future[Accepted]:
        """Queue a request row for storing; the future resolves once it is committed (or
        raises ``IdempotencyConflict``). ``model``: the request as validated from the row's
        body (kept to execute it)."""
        future: Future[Accepted] = Future()
        try:
            self._enqueue(row, model, future)
        except RuntimeError as exc:
            future.set_exception(exc)
        return future

    async def store(self, row: dict[str, Any], model: Any = None) -> Accepted:
        """``submit`` from the event loop: returns once the row is committed. The waiters of
        one group commit are woken by one call into their loop, not one each (every
        ``call_soon_threadsafe`` writes the loop's self-pipe, a syscall that hands the GIL
        over). Raises RuntimeError when the accept thread is not running."""
        waiter: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._enqueue(row, model, waiter)
        return await waiter

    def find_accepted(self, guid: str) -> Journaled | None:
        """A request still in the accept journal (not yet in the database)."""
        return None if self.journal is None else self.journal.find(guid)

    def _enqueue(self, row: dict[str, Any], model: Any, waiter: Waiter) -> None:
        with self._inbox_lock:
            if not self.accepting:
                raise RuntimeError("the request executor is not running")
            self._inbox.append((row, waiter))
            if model is not None and self._is_leader:
                self._parsed[row["guid"]] = model
        self._accept_wake.set()

    def _accept_loop(self) -> None:
        assert self.journal is not None
        while True:
            self._accept_wake.wait()
            self._accept_wake.clear()
            try:
                if self._flush_inbox():
                    self._wake.set()  # the executor moves them into the database
            except Exception:  # answered to the waiters; the next accepts try again
                log.exception("storing accepted requests in %s failed", self.journal.path)
            with self._inbox_lock:
                if not self.accepting and not self._inbox:
                    return

    def _flush_inbox(self) -> int:
        assert self.journal is not None
        with self._inbox_lock:
            items, self._inbox = self._inbox, []
        if not items:
            return 0
        rows = [row for row, _ in items]
        try:
            known = self._keys_in_database(rows)
            fresh = [row for row in rows if row["idempotency_key"] not in known]
            stored = dict(zip((row["guid"] for row in fresh), self.journal.append(fresh),
                              strict=True))
            answers: list[Answer] = []
            for row in rows:
                if stored.get(row["guid"]):
                    answers.append(Accepted(row["guid"], False))
                    continue
                self._parsed.pop(row["guid"], None)
                earlier = known.get(row["idempotency_key"]) or self.journal.find_key(
                    row["idempotency_key"])
                answers.append(_replay(row, earlier))
        except Exception as exc:
            for row in rows:
                self._parsed.pop(row["guid"], None)
            _settle([(waiter, exc) for _, waiter in items])
            raise
        _settle([(waiter, answer) for (_, waiter), answer in zip(items, answers, strict=True)])
        return sum(stored.values())

    def _keys_in_database(self, rows: list[dict[str, Any]]) -> dict[str, request_store.KeyUse]:
        """Idempotency keys of ``rows`` that requests stored straight into the database
        (accepted without the journal: before it existed, or while no accept thread ran)."""
        keys = [row["idempotency_key"] for row in rows if row["idempotency_key"] is not None]
        if not keys:
            return {}
        with reading(self._engine) as conn:
            return request_store.find_keys(conn, keys)

    def _close_inbox(self) -> None:
        with self._inbox_lock:
            self.accepting = False
            items, self._inbox = self._inbox, []
            self._parsed.clear()
        _settle([(waiter, RuntimeError("the request executor stopped")) for _, waiter in items])

    def _move_journal(self) -> int:
        """Move accepted requests from the journal into the database (one transaction, in
        journal order); they leave the journal once committed there."""
        if self.journal is None:
            return 0
        waiting = self.journal.waiting(self._move_limit)
        if not waiting:
            return 0
        with transaction(self._engine) as conn:
            request_store.insert_moved(conn, [row for _, row in waiting])
        self.journal.forget([seq for seq, _ in waiting])
        return len(waiting)

    # -- running -----------------------------------------------------------------------------
    def run_pending(self) -> int:
        """Execute every stored request now (this thread); returns how many ran."""
        total = 0
        while True:
            self._move_journal()
            done = self._run_batch()
            total += done
            if done == 0:
                return total

    def _run_batch(self) -> int:
        # Requests run without a SAVEPOINT each (the savepoints were ~15 % of the executor's
        # CPU: bench/RESULTS.md, issue 13). A request that raises unexpectedly rolls the
        # whole batch back, and the batch runs again with a SAVEPOINT per request, so only
        # that request fails and nothing of it is applied.
        try:
            try:
                done, jobs = self._execute_batch(isolated=False)
            except _RequestRaised:
                done, jobs = self._execute_batch(isolated=True)
        finally:
            self.running = None
            self.queued.clear()
        if jobs and self._on_jobs is not None:
            try:
                self._on_jobs(jobs)
            except Exception:  # the outbox row is committed; dispatch-pending picks it up
                log.exception("post-commit notification of %d dispatch job(s) failed", len(jobs))
        return done

    def _execute_batch(self, *, isolated: bool) -> tuple[int, list[tuple[str, int, str]]]:
        """One transaction: the oldest stored requests, executed in order, with their
        outcomes. ``isolated``: a SAVEPOINT per request, and one that raises fails alone;
        otherwise it raises ``_RequestRaised`` (and the transaction rolls back)."""
        done = 0
        jobs: list[tuple[str, int, str]] = []
        finished: list[dict[str, Any]] = []
        with transaction(self._engine) as conn:
            rows = request_store.fetch_created(conn, limit=self._batch_size)
            if not rows:
                return 0, jobs
            self.queued.update(row.guid for row in rows)
            ref = self._cache.get(conn)
            numbers = order_store.Numbers(conn)
            started = time.monotonic()
            for row in rows:
                self.running = row.guid
                now = utcnow()
                savepoint = conn.begin_nested() if isolated else None
                mark = numbers.mark()
                try:
                    result = erp_requests.execute(conn, kind=row.kind, body=row.body,
                                                  guid=row.guid, ref=ref, now=now,
                                                  numbers=numbers,
                                                  model=self._parsed.pop(row.guid, None))
                    if savepoint is not None:
                        savepoint.commit()
                except Exception as exc:
                    if savepoint is None:
                        raise _RequestRaised(row.guid) from exc
                    savepoint.rollback()
                    numbers.reset(mark)
                    log.exception("request %s (%s) failed unexpectedly", row.guid, row.kind)
                    result = erp_requests.internal_failure(row.order_id, exc)
                finished.append({"seq": row.seq, "status": result.status,
                                 "message": result.message, "result": result.result,
                                 "order_id": result.order_id, "now": now})
                jobs.extend(result.new_jobs)
                done += 1
                if time.monotonic() - started > self._max_tx:
                    break  # keep the write lock short: accepts are waiting on it
            numbers.flush()
            request_store.finish_requests(conn, finished)
        return done, jobs

    def start(self) -> None:
        if self.journal is not None:
            self.accepting = True
            self._accept_thread = threading.Thread(target=self._accept_loop,
                                                   name="request-accepts", daemon=True)
            self._accept_thread.start()
        self._thread = threading.Thread(target=self._loop, name="request-executor",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._inbox_lock:
            self.accepting = False  # what was accepted is still stored (the loop drains)
        self._accept_wake.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        self._close_inbox()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._lock.release()
        self.close_files()

    def close_files(self) -> None:
        """Close the accept journal's connections (reopened if used again)."""
        if self.journal is not None:
            self.journal.close()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if not self._is_leader:
                        self._is_leader = self._lock.acquire()
                    if self._is_leader:
                        # One batch at a time, moving what was accepted in between. Both
                        # each turn: with `moved or run_batch()` a steady stream of accepts
                        # kept the executor storing them in tiny transactions and executing
                        # nothing (bench/RESULTS.md, issue 13).
                        self._wake.clear()
                        moved = self._move_journal()
                        if self._run_batch() or moved:
                            continue
                except Exception:
                    log.exception("request executor error; retrying")
                    self._is_leader = False
                    self._parsed.clear()
                    self._lock.release()
                    self._stop.wait(1.0)
                    continue
                self._wake.wait(self._poll)
        finally:
            self._parsed.clear()
