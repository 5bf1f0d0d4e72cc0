"""Flow ``collect-responses`` (SPEC 8) in-process: an overdue order is flagged once, the
overdue event is emitted, the ``vendor-responses`` artifact counts it, and the reminder is
sent by a ``dispatch-order`` run named ``{OrderId}-reminder``. The clock is the database:
the delivery is dated back past the window (no sleeping)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import select, update

from dispatch.store.engine import transaction
from dispatch.store.tables import DELIVERIES
from flows.collect_responses import collect_responses
from flows.dispatch_order import dispatch_order
from tests.dispatching.conftest import Env, all_channels_order
from tests.responses.conftest import load_responses


def test_overdue_order_is_reminded_through_the_flows(installed: Env) -> None:
    load_responses(installed, ACME={"key_env": "ACME_RESPONSE_KEY", "within": "30m"})
    order_id = installed.order(all_channels_order())
    installed.run_due()
    with transaction(installed.engine) as conn:
        rows = conn.execute(select(DELIVERIES.c.id, DELIVERIES.c.delivered_at)
                            .where(DELIVERIES.c.order_id == order_id)).all()
        for row_id, at in rows:
            conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == row_id)
                         .values(delivered_at=at - dt.timedelta(hours=1)))

    first = asyncio.run(collect_responses())
    assert first == {"overdue": [{"order_id": order_id, "reminder_number": 2}], "files": []}
    assert asyncio.run(collect_responses())["overdue"] == []  # once

    async def artifact() -> list[dict[str, object]]:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["vendor-responses"])))
        assert found, "the vendor-responses artifact"
        # The harness's Prefect API is shared by the whole session: other tests' runs made
        # this keyed artifact too; this run's version is the newest.
        data = max(found, key=lambda a: a.created).data
        return data if isinstance(data, list) else json.loads(str(data))

    acme = next(r for r in asyncio.run(artifact()) if r["vendor"] == "ACME")
    assert (acme["overdue"], acme["awaiting"]) == (1, 0)

    rows = asyncio.run(dispatch_order(order_id, reason="reminder"))
    assert [(r["dispatch"], r["status"]) for r in rows] == [("reminder #2", "Delivered")]
    detail = installed.api.order(order_id)
    assert detail["Response"]["Status"] == "Overdue"
    assert [d["Status"] for d in detail["Deliveries"] if d["Kind"] == "reminder"] == \
        ["Delivered"]
