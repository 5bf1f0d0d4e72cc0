"""ERP API limits (SPEC 9) through HTTP: body size, media type, duplicate keys, line count.

In-process (TestClient) for the answers; tests/hostile/test_slow_clients.py runs a real
uvicorn for what only a socket shows (refused before the body is read, timeouts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.erp.executor import RequestExecutor
from dispatch.reference_data import read_reference_file
from dispatch.settings import DispatchSettings
from dispatch.store.engine import make_engine
from dispatch.store.reference import upsert_reference_data
from tests.conftest import API_KEY, SAMPLE, TEMPLATES_DIR

MAX_LINES = 5
MAX_BODY = 16 * 1024
CREATE = "/ERP/PurchaseOrder/Create"
UPDATE_QUANTITY = "/ERP/PurchaseOrder/UpdateQuantity"
JSON = {"Content-Type": "application/json"}


def build_app(db: Path, **overrides: Any) -> Any:
    url = f"sqlite:///{db}"
    settings = DispatchSettings(database_url=url, api_keys=API_KEY,  # type: ignore[arg-type]
                                **overrides)
    engine = make_engine(url)
    upsert_reference_data(engine, read_reference_file(SAMPLE, secrets=None),
                          source=str(SAMPLE), templates_dir=TEMPLATES_DIR)
    return create_app(settings, engine=engine, executor=RequestExecutor(engine),
                      run_executor=False, secrets=None)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(tmp_path / "api.db", max_lines=MAX_LINES, max_body_bytes=MAX_BODY)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as test_client:
        yield test_client


def order(lines: int) -> dict[str, Any]:
    return {"VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1",
            "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 1}] * lines}


def errors(response: Any) -> list[str]:
    body = response.json()
    assert isinstance(body["Message"], str) and body["Errors"], body
    return list(body["Errors"])


# --- line count --------------------------------------------------------------------------


def test_create_with_more_lines_than_the_limit_is_a_shape_error(client: TestClient) -> None:
    assert client.post(CREATE, json=order(MAX_LINES)).status_code == 200
    response = client.post(CREATE, json=order(MAX_LINES + 1))
    assert response.status_code == 422
    assert errors(response) == [
        f"PurchaseOrderItems: {MAX_LINES + 1} entries; at most {MAX_LINES} per request "
        "(DISPATCH_MAX_LINES); split it into several requests"]


def test_update_quantity_with_more_entries_than_the_limit_is_a_shape_error(
        client: TestClient) -> None:
    entries = [{"Id": f"PurchaseOrderItem{n}", "TotalQuantity": 2} for n in range(50)]
    response = client.post(UPDATE_QUANTITY, json={"OrderId": "PurchaseOrder1",
                                                  "PurchaseOrderItems": entries})
    assert response.status_code == 422
    assert errors(response)[0].startswith("PurchaseOrderItems: 50 entries; at most 5 ")


def test_the_schema_documents_the_line_limit(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("CreateRequest", "UpdateQuantityRequest"):
        assert schemas[name]["properties"]["PurchaseOrderItems"]["maxItems"] == MAX_LINES


# --- duplicate keys ----------------------------------------------------------------------


def test_a_duplicate_key_is_named(client: TestClient) -> None:
    raw = b'{"VendorId": "ACME", "StockName": "Main", "VendorId": "BOLT"}'
    response = client.post(CREATE, content=raw, headers=JSON)
    assert response.status_code == 422
    assert errors(response) == ['body: duplicate key "VendorId" in a JSON object; '
                                "send each key once"]


def test_a_nested_duplicate_key_is_named_with_its_path(client: TestClient) -> None:
    raw = (b'{"VendorId": "ACME", "PurchaseOrderItems": [{"ItemId": "DRILL-5"}, '
           b'{"ItemId": "DRILL-5", "TotalQuantity": 1, "TotalQuantity": 1000}]}')
    response = client.post(CREATE, content=raw, headers=JSON)
    assert response.status_code == 422
    assert errors(response)[0].startswith(
        'PurchaseOrderItems[1]: duplicate key "TotalQuantity"')


def test_malformed_json_still_gets_the_shape_answer(client: TestClient) -> None:
    response = client.post(CREATE, content=b'{"VendorId": ', headers=JSON)
    assert response.status_code == 422
    assert errors(response)[0].startswith("body: not valid JSON")


# --- media type --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_post_that_is_not_json_gets_415(client: TestClient, content_type: str | None
                                          ) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(CREATE, content=json.dumps(order(1)).encode(), headers=headers)
    assert response.status_code == 415
    shown = f"Content-Type {content_type.split(';')[0]}" if content_type else "no Content-Type"
    assert errors(response) == [f"body: {shown}; send application/json "
                                f"(Content-Type: application/json) to {CREATE}"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.erp+json"])
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(CREATE, content=json.dumps(order(1)).encode(),
                           headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


# --- body size ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    raw = json.dumps({**order(1), "Notes": "x" * MAX_BODY}).encode()
    response = client.post(CREATE, content=raw, headers=JSON)
    assert response.status_code == 413
    assert errors(response) == [f"body: {len(raw)} bytes, at most {MAX_BODY} bytes "
                                "(DISPATCH_MAX_BODY_BYTES); split the request"]
    assert response.headers["connection"] == "close"


def test_a_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"Notes": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(CREATE, content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert errors(response)[0].startswith(f"body: more, at most {MAX_BODY} bytes")


def test_a_wrong_key_is_401_before_any_limit(client: TestClient) -> None:
    raw = b"x" * (MAX_BODY + 1)
    response = client.post(CREATE, content=raw, headers={"Authorization": "Bearer wrong",
                                                         "Content-Type": "text/plain"})
    assert response.status_code == 401
    assert response.headers["connection"] == "close"  # the unread body is not read
