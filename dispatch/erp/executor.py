"""The request executor: one thread, one leader per database, requests in arrival order.

Only the process holding the executor lock executes (PostgreSQL: a session advisory lock;
SQLite: an flock beside the database file), so requests run strictly in arrival order even
with several ``dispatch serve`` processes on one database. Each batch is one transaction
with a SAVEPOINT per request: a request that fails leaves nothing behind, and nothing is
lost when the process dies (uncommitted requests stay ``Created`` and run after restart).
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
from dispatch.store.engine import is_sqlite, transaction
from dispatch.store.reference import SnapshotCache

log = logging.getLogger("dispatch.erp.executor")

PG_LOCK_KEY = 74202
JobsCallback = Callable[[list[tuple[str, int, str]]], None]


Waiter = Future[None] | asyncio.Future[None]


def _settle(waiters: list[Waiter], exc: BaseException | None) -> None:
    """Resolve the waiters of stored (``exc`` None) or failed rows; asyncio futures by one
    call into their event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiter in waiters:
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append(waiter)
        elif exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _resolve(futures: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for future in futures:
        if future.done():  # cancelled: the client went away
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)


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
        self._on_jobs = on_jobs
        self._cache = SnapshotCache()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = LeaderLock(engine)
        self._is_leader = False
        self.queued: set[str] = set()  # fetched, waiting in this process: "Ready"
        self.running: str | None = None  # executing now: "Running"
        # Group commit: the API hands accepted rows to this thread, which stores everything
        # waiting in one transaction between batches (the event loop never waits for SQLite).
        self._inbox: list[tuple[dict[str, Any], Waiter]] = []
        self._inbox_lock = threading.Lock()
        # The shape-validated request of each row stored by group commit, by GUID, so it is
        # not parsed and validated a second time to execute it (after a restart, or on a
        # replayed batch, the stored body is parsed again: the same request).
        self._parsed: dict[str, Any] = {}
        self.accepting = False  # True while this thread runs as the leader
        # Only SQLite gains (one writer: accepts otherwise queue behind batches); on
        # PostgreSQL accepts run concurrently and group commit made them slower (bench).
        self.group_commit = is_sqlite(engine)

    # -- status as the API reports it ------------------------------------------------------
    def live_status(self, guid: str) -> str | None:
        if guid == self.running:
            return "Running"
        if guid in self.queued:
            return "Ready"
        return None

    def notify(self) -> None:
        self._wake.set()

    def submit(self, row: dict[str, Any], model: Any = None) -> Future[None]:
        """Queue a request row for storing; the future resolves once it is committed.
        ``model``: the request as validated from the row's body (kept to execute it)."""
        future: Future[None] = Future()
        try:
            self._enqueue(row, model, future)
        except RuntimeError as exc:
            future.set_exception(exc)
        return future

    async def store(self, row: dict[str, Any], model: Any = None) -> None:
        """``submit`` from the event loop: returns once the row is committed. The waiters of
        one group commit are woken by one call into their loop, not one each (every
        ``call_soon_threadsafe`` writes the loop's self-pipe, a syscall that hands the GIL
        over). Raises RuntimeError when the executor is not running."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(row, model, waiter)
        await waiter

    def _enqueue(self, row: dict[str, Any], model: Any, waiter: Waiter) -> None:
        with self._inbox_lock:
            if not self.accepting:
                raise RuntimeError("the request executor is not running")
            self._inbox.append((row, waiter))
            if model is not None:
                self._parsed[row["guid"]] = model
        self._wake.set()

    def _flush_inbox(self) -> int:
        with self._inbox_lock:
            items, self._inbox = self._inbox, []
        if not items:
            return 0
        try:
            with transaction(self._engine) as conn:
                request_store.insert_rows(conn, [row for row, _ in items])
        except Exception as exc:
            for row, _ in items:
                self._parsed.pop(row["guid"], None)
            _settle([waiter for _, waiter in items], exc)
            raise
        _settle([waiter for _, waiter in items], None)
        return len(items)

    def _close_inbox(self) -> None:
        with self._inbox_lock:
            self.accepting = False
            items, self._inbox = self._inbox, []
            self._parsed.clear()
        _settle([waiter for _, waiter in items], RuntimeError("the request executor stopped"))

    # -- running -----------------------------------------------------------------------------
    def run_pending(self) -> int:
        """Execute every stored request now (this thread); returns how many ran."""
        total = 0
        while True:
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
        self._thread = threading.Thread(target=self._loop, name="request-executor",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._lock.release()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if not self._is_leader:
                        self._is_leader = self._lock.acquire()
                        self.accepting = self._is_leader
                    if self._is_leader:
                        # One batch at a time, storing what the API accepted in between, so
                        # a backlog never delays an accept by more than one batch. Both each
                        # turn: with `stored or run_batch()` a steady stream of accepts kept
                        # the executor storing them in tiny transactions and executing
                        # nothing (bench/RESULTS.md, issue 13).
                        self._wake.clear()
                        stored = self._flush_inbox()
                        if self._run_batch() or stored:
                            continue
                except Exception:
                    log.exception("request executor error; retrying")
                    self._close_inbox()
                    self._is_leader = False
                    self._lock.release()
                    self._stop.wait(1.0)
                    continue
                self._wake.wait(self._poll)
        finally:
            self._close_inbox()
