"""Engine construction and schema creation for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from dispatch import models
from dispatch.store.outbox import upgrade_statuses

COUNTERS = ("purchase_order", "purchase_order_item", "refdata_version")

_schema_lock = threading.Lock()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(database_url: str, *, create_schema: bool = True) -> Engine:
    """Build an engine with sensible pragmas (SQLite: WAL, NORMAL sync, busy timeout).

    SQLite in WAL mode with ``synchronous=NORMAL`` keeps every committed transaction across
    a process crash (kill -9); only an OS crash or power loss can drop the last commits.
    """
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's BEGIN be the only transaction control (pysqlite's implicit
            # transactions otherwise break SAVEPOINTs).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers take the lock up front (IMMEDIATE): a deferred transaction that reads
            # and then writes fails at once with SQLITE_BUSY when another writer got in
            # between. Readers (see ``reading``) begin deferred and never block writers.
            if conn.get_execution_options().get("readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        engine._dispatch_write_lock = threading.RLock()  # type: ignore[attr-defined]
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    if create_schema:
        init_schema(engine)
    return engine


def init_schema(engine: Engine) -> None:
    """Create missing tables and counters (idempotent; safe when several processes start)."""
    with _schema_lock:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                # Serialise concurrent start-ups on one database.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74201)")
                SQLModel.metadata.create_all(conn)
                _ensure_counters(conn)
                upgrade_statuses(conn)
                upgrade_columns(conn)
        else:
            SQLModel.metadata.create_all(engine)
            with engine.begin() as conn:
                _ensure_counters(conn)
                upgrade_statuses(conn)
                upgrade_columns(conn)


# Nullable columns added to tables after their first release: ``create_all`` creates missing
# tables but never alters existing ones, so a database made before gets them here.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item", "unit_code"), ("item", "gtin"),  # SPEC 2 turn 2: standard documents
    ("location", "country_code"), ("template", "xml"),
)


def upgrade_columns(conn: Connection) -> None:
    """Add the ``ADDED_COLUMNS`` an existing database lacks (idempotent; nullable, so rows
    already there stay valid)."""
    inspector = inspect(conn)
    for table_name, column_name in ADDED_COLUMNS:
        have = {c["name"] for c in inspector.get_columns(table_name)}
        if column_name in have:
            continue
        column = SQLModel.metadata.tables[table_name].c[column_name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE "{table_name}" ADD COLUMN "{column_name}" {kind}')


def _ensure_counters(conn: Connection) -> None:
    table = models.table_of(models.Counter)
    have = set(conn.execute(select(table.c.name)).scalars())
    missing = [{"name": name, "value": 0} for name in COUNTERS if name not in have]
    if missing:
        conn.execute(insert(table), missing)


def write_lock(engine: Engine) -> contextlib.AbstractContextManager[object]:
    """SQLite has one writer at a time: threads of this process queue on a lock (woken the
    moment it is free) instead of sleeping in SQLite's busy handler, which polls in steps of
    up to 100 ms. Other processes still meet ``busy_timeout``. PostgreSQL: no lock."""
    lock = getattr(engine, "_dispatch_write_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one write transaction: committed on success, rolled back on error."""
    with write_lock(engine), engine.begin() as conn:
        yield conn


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (SQLite: a deferred transaction that takes no write lock)."""
    with engine.connect() as conn:
        conn.execution_options(readonly=True)
        try:
            yield conn
        finally:
            conn.rollback()
