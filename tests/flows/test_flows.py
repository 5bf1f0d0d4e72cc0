"""dispatch-order and dispatch-pending as Prefect flows: outcomes, retries, artifacts."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.orchestration import runtime
from flows.dispatch_order import dispatch_order
from flows.dispatch_pending import dispatch_pending
from tests.dispatching.conftest import Env, all_channels_order
from tests.dispatching.test_dispatching import Clock


def test_dispatch_order_delivers_and_names_the_run(installed: Env) -> None:
    order_id = installed.order(all_channels_order())
    state = asyncio.run(dispatch_order(f"purchase-order.{order_id}",
                                       event="purchase-order.activated", return_state=True))
    rows = state.result()
    assert {r["status"] for r in rows} == {"Delivered"} and len(rows) == 6  # deliveries

    async def run_info():  # noqa: ANN202
        async with get_client() as client:
            run = await client.read_flow_run(state.state_details.flow_run_id)
            artifacts = await client.read_artifacts()
            return run, artifacts

    run, artifacts = asyncio.run(run_info())
    assert run.name == f"{order_id}-purchase-1"
    assert set(run.tags) >= {"vendor:ACME", "channel:Email", "channel:FTP", "channel:B2B"}
    assert any(a.key == f"dispatch-{order_id.lower()}" for a in artifacts)
    assert all(r["Status"] == "Delivered" for r in installed.api.order(order_id)["Deliveries"])


def test_dispatch_order_leaves_a_retry_to_the_database_clock(installed: Env) -> None:
    """No worker slot sleeps through a retry delay: the run ends, the delivery is Pending
    with its error and NextAttemptAt (SPEC 3), and a later run (here: the clock moved on)
    sends it."""
    order_id = installed.order(all_channels_order(
        SendOptions={"Channel": {"IsB2B": True}},
        PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 2}]))
    installed.world.b2b.fail_next(503)
    clock = Clock()
    runtime.install(runtime.Runtime(installed.settings, installed.engine,
                                    make_dispatcher=functools.partial(Dispatcher, clock=clock)))
    state = asyncio.run(dispatch_order(order_id, return_state=True))
    assert state.is_completed(), state.message
    (row,) = state.result()
    assert (row["status"], row["attempts"]) == ("Pending", 1) and "503" in row["error"]
    assert row["next_attempt"]
    detail = installed.api.order(order_id)["Deliveries"][0]
    assert (detail["Status"], detail["Attempts"]) == ("Pending", 1)
    assert detail["NextAttemptAt"] and "503" in detail["Error"]
    assert asyncio.run(dispatch_order(order_id)) == []  # not due yet: nothing claimed
    clock.advance(1)
    (row,) = asyncio.run(dispatch_order(order_id, reason="retry"))
    assert (row["status"], row["attempts"], row["error"]) == ("Delivered", 2, "")
    assert len(installed.world.b2b.submissions) == 1


def test_dispatch_order_fails_visibly_on_a_permanent_error(installed: Env) -> None:
    order_id = installed.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}}))
    installed.world.b2b.fail_next(400, times=2)
    state = asyncio.run(dispatch_order(order_id, return_state=True))
    assert state.is_failed()
    assert "400" in state.message and order_id in state.message and "ACME" in state.message
    rows = installed.api.order(order_id)["Deliveries"]
    assert all(r["Status"] == "Failed" and r["Attempts"] == 1 for r in rows)


def test_dispatch_pending_claims_everything_due(installed: Env) -> None:
    ids = [installed.order(all_channels_order()) for _ in range(3)]
    counts = asyncio.run(dispatch_pending(concurrency=2))
    assert counts == {"Delivered": 12}
    assert len(installed.world.smtp.messages) == 3
    assert asyncio.run(dispatch_pending()) == {}  # nothing left, nothing sent twice
    for order_id in ids:
        assert {r["Status"] for r in installed.api.order(order_id)["Deliveries"]} == {
            "Delivered"}


@pytest.mark.parametrize("dry_run", [True])
def test_dispatch_pending_dry_run(installed: Env, dry_run: bool) -> None:
    installed.order(all_channels_order())
    counts = asyncio.run(dispatch_pending(dry_run=dry_run))
    assert counts == {"Skipped": 4}
    assert installed.world.smtp.messages == [] and installed.world.b2b.submissions == []


def b2b_order(quantity: int = 2) -> dict[str, Any]:
    return all_channels_order(SendOptions={"Channel": {"IsB2B": True}},
                              PurchaseOrderItems=[{"ItemId": "DRILL-5",
                                                   "TotalQuantity": quantity}])


async def _run_details(flow_run_id: Any, tasks_expected: int
                       ) -> tuple[Any, list[Any], list[Any], list[Any]]:
    """The run, its task runs, artifacts and logs, once the Prefect server has recorded
    them (task-run states reach it as events, recorded asynchronously)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()
    deadline = time.monotonic() + 60
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        while True:
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if len(tasks) >= tasks_expected and all(t.state and t.state.is_final()
                                                    for t in tasks):
                break
            assert time.monotonic() < deadline, f"task runs not recorded: {tasks}"
            await asyncio.sleep(0.05)  # polling the server for a condition, not a guess
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = await client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return run, tasks, artifacts, logs


def test_dispatch_pending_groups_orders_into_named_tasks_with_a_batch_artifact(
        installed: Env) -> None:
    ids = [installed.order(all_channels_order()) for _ in range(5)]
    state = asyncio.run(dispatch_pending(concurrency=2, orders_per_task=2, return_state=True))
    assert state.is_completed(), state.message
    assert state.result() == {"Delivered": 20}  # 4 sends per order
    run, tasks, artifacts, logs = asyncio.run(_run_details(state.state_details.flow_run_id, 3))

    # 5 orders, at most 2 per task, every order in exactly one task, named after its orders
    assert sorted(len(t.name.split(", ")) for t in tasks) == [1, 2, 2]
    named = sorted(order for t in tasks for order in t.name.split(", "))
    assert named == sorted(ids)
    assert {t.state.type.value for t in tasks} == {"COMPLETED"}

    # one artifact for the batch: every delivery (6 per order) with its evidence
    (artifact,) = artifacts
    assert artifact.key == "dispatch-pending" and artifact.type == "table"
    rows = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
    assert len(rows) == 30 and {r["status"] for r in rows} == {"Delivered"}
    assert {r["order"] for r in rows} == set(ids)
    assert all(len(r["sha256"]) == 64 and r["remote"] for r in rows)
    assert "Batch 1: 5 order(s), 30 deliveries" in artifact.description

    # a log line per order saying what went where, and the batch's progress
    messages = [log.message for log in logs]
    for order_id in ids:
        (line,) = [m for m in messages if m.startswith(f"{order_id} purchase #1 to ACME:")]
        assert "Email XML+PDF+Excel delivered to" in line and "B2B line delivered" in line
    assert any(m.startswith("batch 1 done: 20 Delivered; 5 order(s) so far") for m in messages)


def test_dispatch_pending_shows_a_failed_send_in_its_task_logs_and_result(
        installed: Env) -> None:
    ids = [installed.order(b2b_order()) for _ in range(3)]
    installed.world.b2b.fail_next(400)  # permanent: the first B2B request of the run
    state = asyncio.run(dispatch_pending(concurrency=3, orders_per_task=1, return_state=True))
    assert state.is_failed()
    failed = [o for o in ids
              if installed.api.order(o)["Deliveries"][0]["Status"] == "Failed"]
    assert len(failed) == 1
    bad = failed[0]
    assert bad in state.message and "ACME" in state.message and "400" in state.message
    _, tasks, _, logs = asyncio.run(_run_details(state.state_details.flow_run_id, 3))
    by_name = {t.name: t for t in tasks}
    assert set(by_name) == set(ids)
    assert by_name[bad].state.type.value == "FAILED"
    assert bad in by_name[bad].state.message and "via B2B" in by_name[bad].state.message
    assert {by_name[o].state.type.value for o in ids if o != bad} == {"COMPLETED"}
    errors = [log.message for log in logs if log.level >= 40]
    assert any(bad in m and "ACME" in m and "B2B" in m and "400" in m for m in errors)
    # the others were delivered, and a second run has nothing left (no retry for a 400)
    assert asyncio.run(dispatch_pending()) == {}
    assert len(installed.world.b2b.submissions) == 2


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"orders_per_task": 0}, {"limit": -1}])
def test_dispatch_pending_refuses_parameters_below_one(installed: Env,
                                                        bad: dict[str, int]) -> None:
    installed.order(b2b_order())
    state = asyncio.run(dispatch_pending(**bad, return_state=True))
    (name,) = bad
    assert state.is_failed() and f"{name} must be at least 1" in state.message
    assert installed.world.b2b.submissions == []  # nothing claimed, nothing sent
