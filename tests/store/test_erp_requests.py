"""The erp_request table: durable accept, idempotency, arrival order, recorded results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine

from dispatch.store import erp_requests as store
from dispatch.store.engine import reading, transaction


def _row(*, kind: str = "Create", body: str = '{"VendorId": "ACME"}', key: str | None = None,
         body_hash: str = "h1", order_id: str | None = None) -> dict[str, Any]:
    return store.new_row(kind=kind, body=body, order_id=order_id, idempotency_key=key,
                         body_hash=body_hash)


def _created(engine: Engine, limit: int = 100) -> list[store.StoredRequest]:
    with reading(engine) as conn:
        return store.fetch_created(conn, limit=limit)


def test_accepted_request_reads_back_as_created(engine: Engine) -> None:
    row = _row(kind="UpdateOrder", body='{"OrderId": "PO1"}', order_id="PO1")
    accepted = store.accept_request(engine, row=row)
    assert accepted == store.Accepted(row["guid"], replayed=False)
    with reading(engine) as conn:
        found = store.find_request(conn, guid=accepted.guid)
        unknown = store.find_request(conn, guid="no-such-guid")
    assert found == store.RequestRecord(guid=row["guid"], kind="UpdateOrder", order_id="PO1",
                                        status="Created", message=None, result=None)
    assert unknown is None
    assert _created(engine) == [store.StoredRequest(
        seq=1, guid=row["guid"], kind="UpdateOrder", order_id="PO1", body='{"OrderId": "PO1"}')]


def test_the_same_idempotency_key_and_request_is_stored_once(engine: Engine) -> None:
    first = store.accept_request(engine, row=_row(key="k-1"))
    again = store.accept_request(engine, row=_row(key="k-1"))
    assert again == store.Accepted(first.guid, replayed=True)
    with reading(engine) as conn:
        assert store.count_by_status(conn) == {"Created": 1}


@pytest.mark.parametrize("other", [{"body_hash": "h2"}, {"kind": "UpdateOrder"}])
def test_a_key_reused_for_another_request_is_a_conflict(engine: Engine, other: dict) -> None:
    store.accept_request(engine, row=_row(key="k-1"))
    with pytest.raises(store.IdempotencyConflict):
        store.accept_request(engine, row=_row(key="k-1", **other))
    with reading(engine) as conn:
        assert store.count_by_status(conn) == {"Created": 1}


def test_without_a_key_every_accept_is_a_new_request(engine: Engine) -> None:
    guids = {store.accept_request(engine, row=_row()).guid for _ in range(3)}
    assert len(guids) == 3
    with reading(engine) as conn:
        assert store.count_by_status(conn) == {"Created": 3}


def test_created_requests_come_in_arrival_order_up_to_the_limit(engine: Engine) -> None:
    rows = [_row(body=f'{{"n": {n}}}') for n in range(5)]
    with transaction(engine) as conn:
        store.insert_rows(conn, rows[:3])
    for row in rows[3:]:
        store.accept_request(engine, row=row)
    assert [r.guid for r in _created(engine)] == [row["guid"] for row in rows]
    assert [r.body for r in _created(engine, limit=2)] == ['{"n": 0}', '{"n": 1}']
    seqs = [r.seq for r in _created(engine)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


def test_inserted_rows_vanish_with_their_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(engine) as conn:
        store.insert_rows(conn, [_row(), _row()])
        raise RuntimeError("the batch failed")
    assert _created(engine) == []


def test_a_finished_request_shows_its_result_and_leaves_the_queue(engine: Engine) -> None:
    first, second = _row(), _row()
    for row in (first, second):
        store.accept_request(engine, row=row)
    queued = _created(engine)
    result = {"PurchaseOrder": {"Id": "PurchaseOrder1", "Status": "Created", "Errors": [],
                                "PurchaseOrderItems": []}}
    with transaction(engine) as conn:
        store.finish_request(conn, seq=queued[0].seq, status="Completed",
                             message="Created purchase order PurchaseOrder1", result=result,
                             order_id="PurchaseOrder1", now=dt.datetime(2024, 1, 1))
    with reading(engine) as conn:
        found = store.find_request(conn, guid=first["guid"])
        counts = store.count_by_status(conn)
    assert found == store.RequestRecord(
        guid=first["guid"], kind="Create", order_id="PurchaseOrder1", status="Completed",
        message="Created purchase order PurchaseOrder1", result=result)
    assert [r.guid for r in _created(engine)] == [second["guid"]]
    assert counts == {"Completed": 1, "Created": 1}
