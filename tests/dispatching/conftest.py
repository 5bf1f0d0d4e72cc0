"""Stand-in vendors (real SMTP/SFTP/HTTP servers on loopback), an API to create orders and a
Dispatcher to send them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.demo.world import StandinWorld
from dispatch.dispatching.core import Dispatcher
from dispatch.erp.executor import RequestExecutor
from dispatch.settings import DispatchSettings
from dispatch.store.engine import make_engine
from dispatch.store.reference import upsert_reference_data
from tests.api.conftest import Api
from tests.conftest import API_KEY, TEMPLATES_DIR


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinWorld]:
    with StandinWorld(tmp_path / "vendors") as w:
        for name, value in w.env.items():
            monkeypatch.setenv(name, value)
        yield w


class Env:
    def __init__(self, api: Api, settings: DispatchSettings, world: StandinWorld) -> None:
        self.api, self.settings, self.world = api, settings, world
        self.engine = api.engine

    def dispatcher(self, **kwargs: Any) -> Dispatcher:
        return Dispatcher(self.engine, self.settings, **kwargs)

    def order(self, body: dict[str, Any]) -> str:
        result = self.api.call("Create", body)
        assert result["Status"] == "Completed", result
        return result["PurchaseOrder"]["Id"]


@pytest.fixture
def env(db_url: str, world: StandinWorld) -> Iterator[Env]:
    settings = DispatchSettings(database_url=db_url, api_keys=API_KEY,  # type: ignore[arg-type]
                                templates_dir=TEMPLATES_DIR, retry_delays=[0.2, 0.2],
                                **world.settings_overrides())
    engine = make_engine(db_url)
    upsert_reference_data(engine, world.reference_data(), source="world",
                          templates_dir=TEMPLATES_DIR)
    executor = RequestExecutor(engine)
    app = create_app(settings, engine=engine, executor=executor, run_executor=False)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield Env(Api(client, executor, engine), settings, world)
    engine.dispose()


def all_channels_order(**overrides: Any) -> dict[str, Any]:
    """ACME, Active, email PDF+Excel+XML, SFTP XML, B2B: every channel at once."""
    body: dict[str, Any] = {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "CustomShipToId": "SITE-7", "Reference": "ERP 4711",
        "SendOptions": {
            "Channel": {"IsB2B": True, "IsFtp": True, "IsEmail": True},
            "FTP": {"IsXml": True},
            "Email": {"IsXml": True, "IsPdf": True, "IsExcel": True,
                      "PdfTemplate": "standard-pdf", "ExcelTemplate": "standard-excel"},
        },
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10, "Note": "=SUM(A1)"},
                               {"ItemId": "GLOVE-L", "TotalQuantity": 4}],
    }
    body.update(overrides)
    return body
