"""An API client over HTTP (TestClient) with the executor driven by the test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.erp.executor import RequestExecutor
from dispatch.reference_data import read_reference_file
from dispatch.store.engine import make_engine
from dispatch.store.reference import upsert_reference_data
from tests.conftest import API_KEY, SAMPLE, TEMPLATES_DIR, make_settings


class Api:
    """Thin helper: POST a request, run the executor, read the result back over HTTP."""

    def __init__(self, client: TestClient, executor: RequestExecutor, engine: Any) -> None:
        self.client = client
        self.executor = executor
        self.engine = engine

    def post(self, endpoint: str, body: Any, **headers: str) -> Any:
        return self.client.post(f"/ERP/PurchaseOrder/{endpoint}", json=body, headers=headers)

    def submit(self, endpoint: str, body: Any, **headers: str) -> str:
        response = self.post(endpoint, body, **headers)
        assert response.status_code == 200, response.text
        return response.json()["RequestGuid"]

    def result(self, guid: str) -> dict[str, Any]:
        response = self.client.get("/ERP/PurchaseOrder/GetRequestResult",
                                   params={"requestGuid": guid})
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, endpoint: str, body: Any) -> dict[str, Any]:
        """Submit, execute everything pending, return the request's result."""
        guid = self.submit(endpoint, body)
        self.executor.run_pending()
        return self.result(guid)

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.client.get("/ERP/PurchaseOrder/Get", params={"orderId": order_id})
        assert response.status_code == 200, response.text
        return response.json()

    def create_ok(self, body: dict[str, Any]) -> dict[str, Any]:
        result = self.call("Create", body)
        assert result["Status"] == "Completed", result
        return result


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    settings = make_settings(db_url)
    engine = make_engine(db_url)
    upsert_reference_data(engine, read_reference_file(SAMPLE), source=str(SAMPLE),
                          templates_dir=TEMPLATES_DIR, check_template=None)
    executor = RequestExecutor(engine)
    app = create_app(settings, engine=engine, executor=executor, run_executor=False)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield Api(client, executor, engine)
    engine.dispose()


def order_body(**overrides: Any) -> dict[str, Any]:
    """A valid Create body for vendor ACME (email PDF + XML) with two lines."""
    body: dict[str, Any] = {
        "VendorId": "ACME",
        "StockName": "Main",
        "DeviceId": "DEV-1",
        "Status": "New",
        "Reference": "PO from ERP 4711",
        "SendOptions": {
            "Channel": {"IsB2B": False, "IsFtp": False, "IsEmail": True},
            "Email": {"IsXml": True, "IsPdf": True, "IsExcel": False,
                      "PdfTemplate": "standard-pdf"},
        },
        "PurchaseOrderItems": [
            {"ItemId": "DRILL-5", "TotalQuantity": 10, "LineReference": "L1"},
            {"ItemId": "DRILL-8", "TotalQuantity": 4},
        ],
    }
    body.update(overrides)
    return body
