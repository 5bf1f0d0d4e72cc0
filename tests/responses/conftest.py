"""A world of stand-in vendors where ACME and BOLT answer orders (``responses:``), with
an API client and the production run loop (tests/dispatching/conftest.py's ``env``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from dispatch.reference_data import parse_reference_text
from dispatch.store.reference import upsert_reference_data
from tests.conftest import TEMPLATES_DIR
from tests.dispatching.conftest import Env, env, world  # noqa: F401 - fixtures

ACME_KEY = "acme-response-key-5b1e"
BOLT_KEY = "bolt-response-key-9c2d"


def load_responses(env: Env, **blocks: dict[str, Any]) -> None:  # noqa: F811
    """Give vendors a ``responses:`` block (by vendor id) in the world's reference data."""
    data = env.world.reference_data_dict()
    for vendor in data["vendors"]:
        if vendor["id"] in blocks:
            vendor["responses"] = blocks[vendor["id"]]
            vendor["send_changes"] = True
    upsert_reference_data(env.engine, parse_reference_text(yaml.safe_dump(data), "test"),
                          source="test", templates_dir=TEMPLATES_DIR)


@pytest.fixture
def answering(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:  # noqa: F811
    """``env`` with ACME (within 1h) and BOLT (no deadline) answering by HTTP."""
    monkeypatch.setenv("ACME_RESPONSE_KEY", ACME_KEY)
    monkeypatch.setenv("BOLT_RESPONSE_KEY", BOLT_KEY)
    load_responses(env, ACME={"key_env": "ACME_RESPONSE_KEY", "within": "1h"},
                   BOLT={"key_env": "BOLT_RESPONSE_KEY"})
    yield env


def post(env: Env, body: bytes, key: str | None = ACME_KEY, *,  # noqa: F811
         content_type: str = "application/xml") -> Any:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {key}" if key else ""}
    return env.api.client.post("/vendor/order-responses", content=body, headers=headers)


def delivered_order(env: Env, body: dict[str, Any]) -> tuple[str, list[str]]:  # noqa: F811
    """Create an order (Active), send it, return its id and line ids."""
    order_id = env.order(body)
    env.run_due()
    detail = env.api.order(order_id)
    assert all(d["Status"] == "Delivered" for d in detail["Deliveries"]), detail["Deliveries"]
    return order_id, [line["Id"] for line in detail["PurchaseOrderItems"]]
