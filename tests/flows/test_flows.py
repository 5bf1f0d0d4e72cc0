"""dispatch-order and dispatch-pending as Prefect flows: outcomes, retries, artifacts."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client

from flows.dispatch_order import dispatch_order
from flows.dispatch_pending import dispatch_pending
from tests.dispatching.conftest import Env, all_channels_order


def test_dispatch_order_delivers_and_names_the_run(installed: Env) -> None:
    order_id = installed.order(all_channels_order())
    state = asyncio.run(dispatch_order(f"purchase-order.{order_id}",
                                       event="purchase-order.activated", return_state=True))
    rows = state.result()
    assert {r["status"] for r in rows} == {"Delivered"} and len(rows) == 4

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


def test_dispatch_order_retries_a_transient_failure(installed: Env) -> None:
    order_id = installed.order(all_channels_order(
        SendOptions={"Channel": {"IsB2B": True}},
        PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 2}]))
    installed.world.b2b.fail_next(503)
    rows = asyncio.run(dispatch_order(order_id))
    assert [r["status"] for r in rows] == ["Delivered"]
    assert rows[0]["attempts"] == 2
    row = installed.api.order(order_id)["Deliveries"][0]
    assert (row["Status"], row["Attempts"]) == ("Delivered", 2)
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
