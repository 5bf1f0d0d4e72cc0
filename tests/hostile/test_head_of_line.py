"""One request never holds up the others (SPEC 9), asserted on order of events, not times.

- While a 2,000-line request executes, another POST is answered: the executor's run of
  the big request is held (a hook around ``erp.queue.execute``) until the small POST's 200
  arrives, or a guard runs out. Both then complete, in arrival order. On SQLite the accept
  is committed in the accept journal, whose write lock the executing request does not hold.
- While a 2,000-line order's PDF renders, another order's email is sent: the big PDF's
  render (a hook around ``render_document``) does not return until the one-line order's
  email was recorded Delivered, or a guard runs out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import dispatch.documents as documents
from dispatch.api.app import create_app
from dispatch.erp import queue as erp_queue
from dispatch.erp.executor import RequestExecutor
from dispatch.reference_data import read_reference_file
from dispatch.store.engine import make_engine
from dispatch.store.reference import upsert_reference_data
from tests.api.conftest import order_body
from tests.conftest import API_KEY, SAMPLE, TEMPLATES_DIR, make_settings
from tests.dispatching.conftest import Env, env, world  # noqa: F401 - fixtures

BIG = 2000
GUARD = 3.0  # seconds a held step waits for the other one before giving up (then: fail)
POLL = 30.0  # seconds for the executor to finish everything once released


class Held:
    """Holds the executor inside the execution of the request with the most lines."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.order: list[str] = []  # request GUIDs as the executor starts them

    def wrap(self, real: Any) -> Any:
        def execute(conn: Any, *, kind: str, body: str, guid: str, **kwargs: Any) -> Any:
            self.order.append(guid)
            if body.count('"TotalQuantity"') >= BIG and not self.started.is_set():
                self.started.set()
                self.release.wait(GUARD * 2)
            return real(conn, kind=kind, body=body, guid=guid, **kwargs)
        return execute


@pytest.fixture
def live(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Held]]:
    """The API with its executor thread running (group commit on SQLite), the hook set."""
    engine = make_engine(db_url)
    upsert_reference_data(engine, read_reference_file(SAMPLE), source=str(SAMPLE),
                          templates_dir=TEMPLATES_DIR, check_template=None)
    held = Held()
    monkeypatch.setattr(erp_queue, "execute", held.wrap(erp_queue.execute))
    executor = RequestExecutor(engine, poll_seconds=0.05)
    app = create_app(make_settings(db_url), engine=engine, executor=executor)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client, held
        held.release.set()
    engine.dispose()


def wait_result(client: TestClient, guid: str) -> dict[str, Any]:
    deadline = time.monotonic() + POLL
    while True:
        result = client.get("/ERP/PurchaseOrder/GetRequestResult",
                            params={"requestGuid": guid}).json()
        if result["Status"] in ("Completed", "Failed"):
            return result
        assert time.monotonic() < deadline, f"request {guid} still {result['Status']}"
        time.sleep(0.02)


def big_create() -> dict[str, Any]:
    return order_body(Status="Active", PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 10 + i} for i in range(BIG)])


@pytest.mark.parametrize("big_kind", ["Create", "UpdateQuantity"])
def test_a_post_is_answered_while_a_2000_line_request_executes(
        live: tuple[TestClient, Held], big_kind: str) -> None:
    client, held = live
    if big_kind == "UpdateQuantity":
        held.started.set()  # the setup Create below runs unheld
        setup = client.post("/ERP/PurchaseOrder/Create", json=big_create()).json()
        order = wait_result(client, setup["RequestGuid"])["PurchaseOrder"]
        held.started.clear()
        big = {"OrderId": order["Id"], "PurchaseOrderItems": [
            {"Id": line["Id"], "TotalQuantity": 5000} for line in order["PurchaseOrderItems"]]}
    else:
        big = big_create()

    big_guid = client.post(f"/ERP/PurchaseOrder/{big_kind}", json=big).json()["RequestGuid"]
    assert held.started.wait(GUARD), "the executor did not start the big request"
    answered: dict[str, Any] = {}
    answered_event = threading.Event()

    def small_post() -> None:
        response = client.post("/ERP/PurchaseOrder/Create", json=order_body())
        answered.update(status=response.status_code, body=response.json(),
                        big_running=not held.release.is_set())
        answered_event.set()

    poster = threading.Thread(target=small_post)
    poster.start()
    in_time = answered_event.wait(GUARD)  # while the big request is held mid-execution
    held.release.set()
    poster.join(POLL)

    big_result = wait_result(client, big_guid)
    small_result = wait_result(client, answered["body"]["RequestGuid"])
    assert big_result["Status"] == "Completed", big_result["Message"]
    assert small_result["Status"] == "Completed", small_result["Message"]
    assert held.order.index(big_guid) < held.order.index(answered["body"]["RequestGuid"])
    assert answered["status"] == 200
    assert in_time and answered["big_running"], (
        "the small POST's 200 came only after the big request finished")


# -- rendering -------------------------------------------------------------------------------

def test_an_email_is_sent_while_a_2000_line_pdf_renders(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    big_id = env.order({
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "SendOptions": {"Channel": {"IsEmail": True},
                        "Email": {"IsPdf": True, "PdfTemplate": "standard-pdf"}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 1 + i}
                               for i in range(BIG)]})
    small_id = env.order({
        "VendorId": "BOLT", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "SendOptions": {"Channel": {"IsEmail": True}, "Email": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "NUT-M8", "TotalQuantity": 3}]})

    big_started, small_sent = threading.Event(), threading.Event()
    events: list[str] = []
    real_render = documents.render_document

    def render_document(context: Any, **kwargs: Any) -> Any:
        big = context.order.Id == big_id and kwargs.get("format") == "PDF"
        if big:
            events.append("big PDF render started")
            big_started.set()
        elif context.order.Id == small_id:
            big_started.wait(GUARD * 4)  # the small order goes second, deterministically
        document = real_render(context, **kwargs)
        if big:
            # Finish only once the small order's email went out: if rendering held up the
            # run loop, it never would, and the guard ends the wait.
            events.append("big PDF rendered, email already sent" if small_sent.wait(GUARD * 4)
                          else "big PDF rendered, email NOT sent")
        return document

    def on_order(order_id: str, outcomes: list[Any]) -> None:
        if order_id == small_id and all(o.status == "Delivered" for o in outcomes):
            events.append("small email delivered")
            small_sent.set()

    monkeypatch.setattr(documents, "render_document", render_document)
    from dispatch.dispatching import run as run_module

    real_run_due = run_module.run_due

    async def run_due(d: Any, **kwargs: Any) -> Any:
        inner = kwargs.pop("on_order", None)

        def both(order_id: str, outcomes: list[Any]) -> None:
            on_order(order_id, outcomes)
            if inner is not None:
                inner(order_id, outcomes)
        return await real_run_due(d, on_order=both, **kwargs)

    monkeypatch.setattr(run_module, "run_due", run_due)
    outcomes = env.run_due(concurrency=8)
    assert events == ["big PDF render started", "small email delivered",
                      "big PDF rendered, email already sent"], events
    assert {o.order_id: o.status for o in outcomes} == {big_id: "Delivered",
                                                        small_id: "Delivered"}
    assert len(env.world.smtp.messages) == 2
    delivered = {row["order"]: row["delivered_at"] for row in env.cli(
        "deliveries", "--json", "--limit", "1000") if row["status"] == "Delivered"}
    assert delivered[small_id] < delivered[big_id]
