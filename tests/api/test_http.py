"""Auth, shape validation (400/422 naming fields), Idempotency-Key, 404s, request status."""

from __future__ import annotations

import re

import pytest

from dispatch.store.engine import reading
from dispatch.store.erp_requests import count_by_status
from tests.api.conftest import Api, order_body

ENDPOINTS = [("post", "Create"), ("post", "UpdateQuantity"), ("post", "UpdateOrder"),
             ("get", "GetRequestResult?requestGuid=x"), ("get", "Get?orderId=x")]


def _recorded(api: Api) -> int:
    with reading(api.engine) as conn:
        return sum(count_by_status(conn).values())


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"X-Api-Key": "wrong"}, {"Authorization": "Basic abc"}])
def test_missing_or_wrong_key_is_401_and_records_nothing(api: Api, method, path, headers) -> None:
    client = api.client
    saved = client.headers.pop("Authorization")
    try:
        response = getattr(client, method)(f"/ERP/PurchaseOrder/{path}", headers=headers,
                                           **({"json": order_body()} if method == "post" else {}))
    finally:
        client.headers["Authorization"] = saved
    assert response.status_code == 401
    assert "Authorization" in response.json()["Message"]
    assert _recorded(api) == 0


def test_x_api_key_header_works(api: Api) -> None:
    saved = api.client.headers.pop("Authorization")
    try:
        response = api.client.post("/ERP/PurchaseOrder/Create", json=order_body(),
                                   headers={"X-Api-Key": saved.split()[1]})
    finally:
        api.client.headers["Authorization"] = saved
    assert response.status_code == 200 and "RequestGuid" in response.json()


SHAPES = [
    ({"VendorId": 5}, "VendorId"),
    ({"PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 1.5}]},
     "PurchaseOrderItems[0].TotalQuantity"),
    ({"PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": "3"}]},
     "PurchaseOrderItems[0].TotalQuantity"),
    ({"PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 2**40}]},
     "PurchaseOrderItems[0].TotalQuantity"),
    ({"Reference": "x" * 401}, "Reference"),
    ({"Notes": "x" * 4001}, "Notes"),
    ({"VendorId": "V" * 51}, "VendorId"),
    ({"Status": "Closed"}, "Status"),
    ({"CustomIdPrefix": "abc1"}, "CustomIdPrefix"),
    ({"CustomIdPrefix": "abcdefghijk"}, "CustomIdPrefix"),
    ({"Colour": "red"}, "Colour"),
    ({"SendOptions": {"Channel": {"IsFax": True}}}, "SendOptions.Channel.IsFax"),
    ({"SendOptions": {"Channel": {"IsEmail": "yes"}}}, "SendOptions.Channel.IsEmail"),
    ({"IsConsignment": 1}, "IsConsignment"),
    ({"PurchaseOrderItems": [{"CustomItemId": "C", "CustomItemPricePerPiece": "1.5"}]},
     "PurchaseOrderItems[0].CustomItemPricePerPiece"),
    ({"Notes": "nul\u0000byte"}, "Notes"),
    ({"PurchaseOrderItems": {"ItemId": "x"}}, "PurchaseOrderItems"),
]


@pytest.mark.parametrize(("change", "field"), SHAPES, ids=[s[1] + str(i) for i, s in
                                                           enumerate(SHAPES)])
def test_create_shape_errors_name_the_field(api: Api, change: dict, field: str) -> None:
    response = api.post("Create", order_body(**change))
    assert response.status_code in (400, 422), response.text
    errors = response.json()["Errors"]
    assert any(e.startswith(f"{field}:") for e in errors), errors
    assert _recorded(api) == 0


def test_several_shape_errors_are_all_named(api: Api) -> None:
    response = api.post("UpdateQuantity", {"OrderId": 7, "PurchaseOrderItems": [
        {"Id": "x", "ReceivedQuantity": "a"}, {"ExpectedDate": "not a date"}]})
    assert response.status_code == 422
    fields = {e.split(":")[0] for e in response.json()["Errors"]}
    assert fields == {"OrderId", "PurchaseOrderItems[0].ReceivedQuantity",
                      "PurchaseOrderItems[1].ExpectedDate"}


def test_update_order_refuses_new_and_closed_as_shape(api: Api) -> None:
    for status in ("New", "Closed", "active"):
        response = api.post("UpdateOrder", {"OrderId": "PO1", "Status": status})
        assert response.status_code == 422
        assert response.json()["Errors"][0].startswith("Status:")


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"", b'"text"', b"\xff\xfe"])
def test_malformed_bodies(api: Api, raw: bytes) -> None:
    response = api.client.post("/ERP/PurchaseOrder/Create", content=raw,
                               headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.json()["Errors"][0].startswith("body:")
    assert _recorded(api) == 0


def test_missing_values_are_business_errors_not_shape(api: Api) -> None:
    result = api.call("Create", {})
    assert result["Status"] == "Failed"
    errors = result["PurchaseOrder"]["Errors"]
    assert {e.split(":")[0] for e in errors} == {"VendorId", "StockName", "PurchaseOrderItems"}


def test_unknown_guid_and_order_are_404(api: Api) -> None:
    r = api.client.get("/ERP/PurchaseOrder/GetRequestResult",
                       params={"requestGuid": "00000000-0000-0000-0000-000000000000"})
    assert r.status_code == 404 and r.json()["Errors"][0].startswith("requestGuid:")
    r = api.client.get("/ERP/PurchaseOrder/Get", params={"orderId": "PurchaseOrder77"})
    assert r.status_code == 404 and r.json()["Errors"][0].startswith("orderId:")
    r = api.client.get("/ERP/PurchaseOrder/Get")
    assert r.status_code == 422 and r.json()["Errors"][0].startswith("orderId:")


def test_status_goes_created_then_completed(api: Api) -> None:
    guid = api.submit("Create", order_body())
    pending = api.result(guid)
    assert pending["Status"] == "Created"
    assert pending["PurchaseOrder"]["Status"] == "None"
    api.executor.run_pending()
    assert api.result(guid)["Status"] == "Completed"


def test_idempotency_key_returns_the_same_guid_and_executes_once(api: Api) -> None:
    first = api.post("Create", order_body(), **{"Idempotency-Key": "erp-42"})
    again = api.post("Create", order_body(), **{"Idempotency-Key": "erp-42"})
    assert first.status_code == again.status_code == 200
    assert first.json()["RequestGuid"] == again.json()["RequestGuid"]
    api.executor.run_pending()
    third = api.post("Create", order_body(), **{"Idempotency-Key": "erp-42"})
    assert third.json()["RequestGuid"] == first.json()["RequestGuid"]
    api.executor.run_pending()
    assert _recorded(api) == 1
    assert api.create_ok(order_body())["PurchaseOrder"]["Id"] == "PurchaseOrder2"


def test_idempotency_key_reused_for_another_body_is_refused(api: Api) -> None:
    api.post("Create", order_body(), **{"Idempotency-Key": "erp-43"})
    other = api.post("Create", order_body(Reference="other"), **{"Idempotency-Key": "erp-43"})
    assert other.status_code == 422
    assert other.json()["Errors"][0].startswith("Idempotency-Key:")
    assert _recorded(api) == 1


def test_openapi_documents_the_request_bodies(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/ERP/PurchaseOrder/Create"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/CreateRequest")
    create = spec["components"]["schemas"]["CreateRequest"]
    assert create["additionalProperties"] is False
    assert "PurchaseOrderItems" in create["properties"]


def test_docs_work_offline(api: Api) -> None:
    """SPEC 9 / issue 12: /docs loads Swagger UI from this service, not a CDN."""
    client = api.client
    page = client.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    assert "cdn" not in page.text.lower()
    for asset in assets:
        answer = client.get(asset, headers={"Authorization": ""})
        assert answer.status_code == 200 and len(answer.content) > 500, asset


def test_a_request_that_raises_fails_alone_in_its_batch(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches run without savepoints until a request raises: then the batch runs again with
    one per request, so that request fails with nothing applied and its neighbours complete."""
    from dispatch.store import orders as order_store

    write_effects = order_store.write_effects
    guids: list[str] = []

    def failing(conn, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["request_guid"] == guids[1]:  # after its order and lines were written
            raise RuntimeError("disk on fire")
        return write_effects(conn, **kwargs)

    monkeypatch.setattr(order_store, "write_effects", failing)
    guids += [api.submit("Create", order_body(Status="Active")) for _ in range(3)]
    assert api.executor.run_pending() == 3
    first, failed, third = (api.result(guid) for guid in guids)
    assert first["Status"] == third["Status"] == "Completed", (first, third)
    assert failed["Status"] == "Failed" and "internal error" in failed["Message"], failed
    assert failed["PurchaseOrder"]["Status"] == "None"
    assert [first["PurchaseOrder"]["Id"], third["PurchaseOrder"]["Id"]] == \
        ["PurchaseOrder1", "PurchaseOrder2"]  # the failed request's numbers are reused
    assert api.client.get("/ERP/PurchaseOrder/Get",
                          params={"orderId": "PurchaseOrder3"}).status_code == 404
    for result in (first, third):
        detail = api.order(result["PurchaseOrder"]["Id"])
        assert len(detail["Transactions"]) == 2 and len(detail["Deliveries"]) == 2
