"""The accept journal (SQLite): accepts committed beside the database, moved into it in
arrival order, exactly once, with idempotency keys honoured wherever the request is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from dispatch.api.app import create_app
from dispatch.erp import queue as erp_queue
from dispatch.erp.executor import RequestExecutor
from dispatch.erp.schemas import REQUEST_MODELS
from dispatch.reference_data import read_reference_file
from dispatch.store import erp_requests as request_store
from dispatch.store.accept_journal import AcceptJournal, journal_path
from dispatch.store.engine import make_engine, reading, transaction
from dispatch.store.reference import upsert_reference_data
from tests.api.conftest import order_body
from tests.api.test_crash import executor_lock_held
from tests.conftest import API_KEY, SAMPLE, TEMPLATES_DIR, make_settings


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'dispatch.db'}")
    upsert_reference_data(engine, read_reference_file(SAMPLE), source=str(SAMPLE),
                          templates_dir=TEMPLATES_DIR, check_template=None)
    yield engine
    engine.dispose()


def create_row(reference: str, key: str | None = None) -> dict[str, Any]:
    body = json.dumps(order_body(Status="Active", Reference=reference)).encode()
    model = REQUEST_MODELS["Create"].model_validate_json(body)
    return erp_queue.request_row(kind="Create", raw=body, model=model, idempotency_key=key)


def references_in_order(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(text(
            "SELECT reference FROM purchase_order ORDER BY CAST(substr(id, 14) AS INTEGER)"))
            .scalars())


def test_only_sqlite_files_have_a_journal(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    expected = Path(f"{engine.url.database}.accepts").resolve() \
        if db_url.startswith("sqlite") else None
    assert journal_path(engine) == expected
    engine.dispose()
    assert journal_path(create_engine("sqlite://")) is None


def test_journaled_requests_run_in_arrival_order_after_a_restart(engine: Engine) -> None:
    path = journal_path(engine)
    assert path is not None
    journal = AcceptJournal(path)  # a process that accepted, then died before any move
    assert journal.append([create_row(f"r{i}") for i in range(5)]) == [True] * 5
    journal.close()

    executor = RequestExecutor(engine)
    assert executor.journal is not None and executor.journal.waiting_count() == 5
    assert executor.run_pending() == 5
    assert references_in_order(engine) == [f"r{i}" for i in range(5)]
    assert executor.journal.waiting_count() == 0
    assert executor.run_pending() == 0  # moved once, executed once
    executor.stop()


def test_a_move_repeated_after_a_crash_stores_nothing_twice(engine: Engine) -> None:
    executor = RequestExecutor(engine)
    journal = executor.journal
    assert journal is not None
    journal.append([create_row(f"r{i}") for i in range(3)])
    # The crash: the database committed the move, the journal never heard of it.
    with transaction(engine) as conn:
        request_store.insert_moved(conn, [row for _, row in journal.waiting(10)])
    journal.append([create_row("r3")])
    assert executor.run_pending() == 4
    assert references_in_order(engine) == ["r0", "r1", "r2", "r3"]
    with reading(engine) as conn:
        assert request_store.count_by_status(conn) == {"Completed": 4}
    executor.stop()


def serving(engine: Engine, **kwargs: Any) -> tuple[TestClient, RequestExecutor]:
    """The API with its accept and executor threads (started when the client enters)."""
    executor = RequestExecutor(engine, poll_seconds=0.05)
    app = create_app(make_settings(str(engine.url)), engine=engine, executor=executor,
                     **kwargs)
    return TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}), executor


def post(client: TestClient, reference: str, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/ERP/PurchaseOrder/Create", headers=headers,
                       json=order_body(Status="Active", Reference=reference))


def result(client: TestClient, guid: str) -> dict[str, Any]:
    response = client.get("/ERP/PurchaseOrder/GetRequestResult", params={"requestGuid": guid})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_accept_waiting_in_the_journal_answers_created(engine: Engine) -> None:
    client, executor = serving(engine)
    # Another process leads: this one accepts into the journal, and nothing moves.
    with executor_lock_held(str(engine.url)), client:
        response = post(client, "waiting")
        assert response.status_code == 200
        guid = response.json()["RequestGuid"]
        assert executor.find_accepted(guid) is not None
        with reading(engine) as conn:
            assert request_store.find_request(conn, guid=guid) is None
        answer = result(client, guid)
        assert (answer["Status"], answer["Message"]) == (
            "Created", "Received; waiting to be queued for execution")
        again = post(client, "keyed", key="K-1")
        assert again.status_code == 200
        assert post(client, "keyed", key="K-1").json() == again.json()  # replay, in journal
        conflict = post(client, "other body", key="K-1")
        assert conflict.status_code == 422 and "Idempotency-Key" in conflict.text
    # Once the lock is free, this process leads: both run, in arrival order.
    RequestExecutor(engine).run_pending()
    with client:
        assert result(client, guid)["Status"] == "Completed"
    assert references_in_order(engine) == ["waiting", "keyed"]


def test_a_key_is_found_after_its_request_moved_and_ran(engine: Engine) -> None:
    client, executor = serving(engine, run_executor=False)
    with client:
        # No accept thread: stored straight into the database (as before the journal).
        direct = post(client, "direct", key="K-direct").json()["RequestGuid"]
        executor.start()
        try:
            first = post(client, "journaled", key="K-journal").json()["RequestGuid"]
            executor.stop()  # drains the accept thread; the journal keeps what was accepted
            executor = RequestExecutor(engine)
            client.app.state.executor = executor  # type: ignore[attr-defined]
            executor.run_pending()
            assert result(client, first)["Status"] == "Completed"
            executor.start()
            assert post(client, "journaled", key="K-journal").json()["RequestGuid"] == first
            assert post(client, "direct", key="K-direct").json()["RequestGuid"] == direct
            assert post(client, "changed", key="K-direct").status_code == 422
        finally:
            executor.stop()
    assert references_in_order(engine) == ["direct", "journaled"]


def test_a_request_moved_between_the_two_reads_is_still_found(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    client, executor = serving(engine, run_executor=False)
    assert executor.journal is not None
    row = create_row("racing")
    executor.journal.append([row])
    real_find = executor.find_accepted

    def moved_meanwhile(guid: str) -> Any:
        # The leader moves it after the API missed it in the database, before the journal
        # read: the journal no longer has it, the database does.
        executor._move_journal()
        return real_find(guid)

    monkeypatch.setattr(executor, "find_accepted", moved_meanwhile)
    with client:
        answer = result(client, row["guid"])
    assert answer["Status"] == "Created"
    assert answer["PurchaseOrder"]["Id"] is None
