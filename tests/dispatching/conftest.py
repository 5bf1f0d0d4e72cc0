"""Stand-in vendors (real SMTP/SFTP/HTTP servers on loopback), an API to create orders and a
Dispatcher to send them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.channels import ChannelSet
from dispatch.demo.world import StandinWorld
from dispatch.dispatching import run
from dispatch.dispatching.dispatcher import Dispatcher
from dispatch.dispatching.outcomes import Outcome
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

    def cli(self, *args: str) -> Any:
        """``dispatch ARGS --json`` on this database, in-process; its parsed output."""
        import contextlib
        import io
        import json
        import os

        from dispatch.cli import main

        out = io.StringIO()
        env = {"DISPATCH_DATABASE_URL": self.settings.database_url,
               "DISPATCH_TEMPLATES_DIR": str(self.settings.templates_dir)}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with contextlib.redirect_stdout(out):
                assert main(list(args)) == 0
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return json.loads(out.getvalue())

    def run_due(self, *, clock: Any = None, dry_run: bool = False, **kwargs: Any
                ) -> list[Outcome]:
        """The production run loop once, in this process (fresh channels, closed after);
        returns every send's outcome, in order per order."""
        outcomes: list[Outcome] = []

        async def go() -> None:
            async with ChannelSet(settings=self.settings) as channels:
                extra = {"clock": clock} if clock is not None else {}
                d = Dispatcher(self.engine, self.settings, channels, **extra)
                if dry_run:
                    outcomes.extend(await run.dry_run(d))
                else:
                    await run.run_due(d, on_order=lambda _o, outs: outcomes.extend(outs),
                                      **kwargs)

        asyncio.run(go())
        return outcomes

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
