"""The accept journal: where accepted ERP requests wait on SQLite until the executor takes
them (SPEC 9: no head-of-line blocking).

SQLite has one writer per database file. Stored in the main database, an accepted POST
waits for the transaction of the request executing (a 2,000-line Create or UpdateQuantity
holds it a noticeable time) before its 200 can go out. The journal is a second SQLite file
beside the database (``<database>.accepts``) with a write lock of its own, held only for
the group commit of accepts: the 200 goes out once the row is committed there, and the
executor moves rows into ``erp_request`` (in journal order, which is arrival order across
processes) between requests.

Crash safety: a row leaves the journal only after the main database committed it; a move
interrupted between the two commits is repeated, and rows whose GUID the main database has
already are skipped. Idempotency keys stay in the journal after a move (the body is
dropped), so a retried key finds its request wherever it is.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dispatch.store.erp_requests import KeyUse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    guid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    order_id TEXT,
    body TEXT,
    idempotency_key TEXT UNIQUE,
    body_hash TEXT,
    received_at TEXT NOT NULL,
    moved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_accepted_waiting ON accepted (moved, seq);
"""
_COLUMNS = ("guid", "kind", "order_id", "body", "idempotency_key", "body_hash", "received_at")
_INSERT = (f"INSERT INTO accepted ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))})")


@dataclass(frozen=True, slots=True)
class Journaled:
    """A request as the journal holds it (``body`` None once moved)."""

    seq: int
    guid: str
    kind: str
    order_id: str | None
    body_hash: str | None
    moved: bool


def journal_path(engine: Engine) -> Path | None:
    """The journal file of a SQLite database file; None for PostgreSQL or ``:memory:``
    (PostgreSQL writers do not queue behind one another: accepts go to the main database)."""
    if engine.dialect.name != "sqlite":
        return None
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{Path(database).expanduser().resolve()}.accepts")


class AcceptJournal:
    """One journal file; thread-safe. Two connections (writing, reading), each behind its
    own lock, opened on first use and closed by ``close`` (a later use opens them again):
    a WAL connection holds three file descriptors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None

    @property
    def _writer(self) -> sqlite3.Connection:  # call with _write_lock held
        if self._w is None:
            self._w = self._connect()
        return self._w

    @property
    def _reader(self) -> sqlite3.Connection:  # call with _read_lock held
        if self._r is None:
            self._r = self._connect()
        return self._r

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the main database: survives kill -9
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        return conn

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            for conn in (self._w, self._r):
                if conn is not None:
                    conn.close()
            self._w = self._r = None

    # -- accepting ------------------------------------------------------------------------
    def append(self, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
        """Commit ``rows`` (``erp_requests.new_row``) in one transaction. Returns, per row,
        True when stored, False when its Idempotency-Key was in the journal already (the
        caller looks the earlier request up with ``find_key``)."""
        stored: list[bool] = []
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                plain = [_values(row) for row in rows if row["idempotency_key"] is None]
                if len(plain) == len(rows):
                    conn.executemany(_INSERT, plain)
                    stored = [True] * len(rows)
                else:
                    for row in rows:
                        if row["idempotency_key"] is None:
                            conn.execute(_INSERT, _values(row))
                            stored.append(True)
                        else:
                            cur = conn.execute(
                                _INSERT + " ON CONFLICT (idempotency_key) DO NOTHING",
                                _values(row))
                            stored.append(cur.rowcount == 1)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return stored

    def find_key(self, key: str) -> KeyUse | None:
        found = self._find("idempotency_key", key)
        return None if found is None else KeyUse(found.guid, found.kind, found.body_hash)

    def find(self, guid: str) -> Journaled | None:
        return self._find("guid", guid)

    def _find(self, column: str, value: str) -> Journaled | None:
        with self._read_lock:
            row = self._reader.execute(
                f"SELECT seq, guid, kind, order_id, body_hash, moved FROM accepted "  # noqa: S608
                f"WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            return None
        seq, guid, kind, order_id, body_hash, moved = row
        return Journaled(seq, guid, kind, order_id, body_hash, bool(moved))

    def waiting_count(self) -> int:
        with self._read_lock:
            return int(self._reader.execute(
                "SELECT count(*) FROM accepted WHERE moved = 0").fetchone()[0])

    # -- the executor's side ----------------------------------------------------------------
    def waiting(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest rows not yet moved, as ``(journal seq, erp_request row)``."""
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT seq, {', '.join(_COLUMNS)} FROM accepted WHERE moved = 0 "  # noqa: S608
                "ORDER BY seq LIMIT ?", (limit,)).fetchall()
        out = []
        for seq, *values in rows:
            row = dict(zip(_COLUMNS, values, strict=True))
            row["received_at"] = dt.datetime.fromisoformat(row["received_at"])
            row["status"] = "Created"
            out.append((seq, row))
        return out

    def forget(self, seqs: Sequence[int]) -> None:
        """Rows the main database committed: deleted, or kept without body when keyed."""
        if not seqs:
            return
        params = [(seq,) for seq in seqs]
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM accepted WHERE seq = ? "
                                 "AND idempotency_key IS NULL", params)
                conn.executemany("UPDATE accepted SET moved = 1, body = NULL WHERE seq = ?",
                                 params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def _values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    received = row["received_at"]
    return (row["guid"], row["kind"], row["order_id"], row["body"], row["idempotency_key"],
            row["body_hash"], received.isoformat() if received is not None else None)
