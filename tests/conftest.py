"""Shared fixtures: databases (SQLite file, PostgreSQL when a server answers) and an API
client over the real app with the sample reference data loaded."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dispatch.settings import DEFAULT_TEMPLATES_DIR, DispatchSettings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = DEFAULT_TEMPLATES_DIR / "sample-refdata.yaml"
TEMPLATES_DIR = DEFAULT_TEMPLATES_DIR
API_KEY = "test-key-0123456789"
PG_ADMIN_URL = os.environ.get(
    "DISPATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    if not _pg_available():
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}")
    name = f"dispatch_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    from sqlmodel import SQLModel

    import dispatch.models  # noqa: F401 - registers the tables
    from dispatch.store.engine import make_engine

    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    from dispatch.store.engine import init_schema

    init_schema(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dispatch.db'}"
    url = request.getfixturevalue("pg_server")
    _reset_pg(url)
    return url


def make_settings(db_url: str, **overrides: object) -> DispatchSettings:
    return DispatchSettings(database_url=db_url, api_keys=API_KEY, **overrides)  # type: ignore[arg-type]
