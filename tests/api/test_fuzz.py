"""Fuzz the ERP API from its own OpenAPI document, on SQLite and PostgreSQL.

All of it shares one set of checks (``_check_answer``):

* ``test_schema_fuzz``: schemathesis over every operation of the app's ``/openapi.json``:
  coverage phase (every boundary and violation the schema implies, unexpected methods, wrong
  content types, missing and odd auth headers) and fuzzing phase, positive and negative data,
  fixed seed, deterministic.
* ``test_edge_values_*``: valid bodies with one value replaced by something at a limit
  (int32/int64 bounds, strings at and past their maximum length in 4-byte characters, NUL,
  lone surrogates, odd unicode, date-times at the ends of the calendar) so that what passes
  the shape check reaches the executor and the database; a deterministic sweep over every
  field, hypothesis for random values, raw bytes no JSON encoder would produce.
* ``test_regression_*``: what the fuzzers found, pinned down.

Checks: no answer is a 5xx; every 4xx is ``{"Message", "Errors": ["<field path>: <message>"]}``
where the path names a field that was sent (or a query parameter, header, ``body``); every
200 to a POST carries a ``RequestGuid``, and the request, once executed, did not end with an
internal error (business failures are fine).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case

from tests.api.conftest import Api, order_body
from tests.conftest import API_KEY

SEED = 20240611
REF_VALUES = ["ACME", "BOLT", "CRANE", "Main", "Plant7", "DEV-1", "DEV-2", "DEV-7", "DRILL-5",
              "DRILL-8", "NUT-M8", "GLOVE-L", "standard-pdf", "standard-excel", "SITE-7",
              "New", "Active", "Cancelled", "PurchaseOrder1", "PurchaseOrder2",
              "PurchaseOrderItem1", "PurchaseOrderItem3"]


def _openapi() -> dict[str, Any]:
    """The app's own /openapi.json (the document does not depend on the database)."""
    from fastapi.testclient import TestClient

    from dispatch.api.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings("sqlite://"), engine=None, executor=None,  # type: ignore[arg-type]
                     run_executor=False)
    return TestClient(app).get("/openapi.json").json()


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {API_KEY}"},
        # Strings sometimes name real reference data, so bodies get past "unknown vendor".
        "dictionaries": {"refs": {"values": REF_VALUES}},
        "generation": {
            "mode": "all",  # positive and negative data
            "max-examples": 40,  # fuzzing phase, per operation; the coverage phase is exhaustive
            "deterministic": True,
            "database": "none",
            "dictionaries": {"string": {"dictionary": "refs", "probability": 0.3}},
        },
        "phases": {"stateful": {"enabled": False}},
    })


OPENAPI = _openapi()
schema = schemathesis.openapi.from_dict(OPENAPI, config=_config())


@pytest.fixture
def fuzz_api(api: Api) -> Api:
    # Something for the updates to find: PurchaseOrder1 (New) and PurchaseOrder2 (Active),
    # lines PurchaseOrderItem1..4.
    api.create_ok(order_body())
    api.create_ok(order_body(Status="Active"))
    return api


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_schema_fuzz(case: Case, fuzz_api: Api) -> None:
    response = case.call(app=fuzz_api.client.app)
    _check_answer(fuzz_api, response.status_code, response.text, _sent_json(case),
                  post=case.method.upper() == "POST")


# --- edge values on paths that reach the executor and the database -------------------------

INTS = [0, -1, 1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53 + 1, 2**63, 2**64, 10**30,
        1.0, 1.5, -0.0, 1e308, 1e-7, 0.12345, 99999999999999.9999, 1e14]
TEXTS = ["", " ", "a\x00b", "\ud800", "x\udfff", "\U0010ffff", "\uffff", "\ufeff", "\u2028\u202e",
         "e\u0301", "\x7f\x1b[31m\r\n", "'; DROP TABLE x; --%s", '\\"']
DATES = ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
         "9999-12-31T23:59:59.999999Z", "2024-02-30T00:00:00Z", "2024-01-01", "2024-01-01T24:00:00",
         "2024-01-01T00:00:00+24:00", "1970-01-01T00:00:00", "2024-06-01T12:00:00.123456789Z",
         "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "now", 0, 1.5e9]
BASES: dict[str, dict[str, Any]] = {
    "Create": order_body(CustomIdPrefix="Edge", IsConsignment=True, Notes="n",
                         CustomShipToId="SITE-7", PurchaseOrderItems=[
                             {"ItemId": "DRILL-5", "TotalQuantity": 10, "Note": "n",
                              "LineReference": "L1"},
                             {"CustomItemId": "C-1", "CustomItemQuantity": 2,
                              "CustomItemPricePerPiece": 1.5}]),
    "UpdateQuantity": {"OrderId": "PurchaseOrder2", "PurchaseOrderItems": [
        {"Id": "PurchaseOrderItem3", "TotalQuantity": 20, "ReceivedQuantity": 1,
         "CancelledQuantity": 1, "ExpectedDate": "2030-01-01T00:00:00Z"},
        {"ItemId": "DRILL-8", "DeviceId": "DEV-1", "ReceivedQuantity": 1}]},
    "UpdateOrder": {"OrderId": "PurchaseOrder2", "ShippingDate": "2030-01-01T00:00:00Z",
                    "ReceivedByVendorDate": "2030-01-02T00:00:00+02:00",
                    "TrackingNumber": "T-1", "Reference": "r", "Notes": "n"},
    "GetRequestResult": {"requestGuid": "00000000-0000-0000-0000-000000000000"},
    "Get": {"orderId": "PurchaseOrder2"},
}

TEXT = st.one_of(
    st.sampled_from(TEXTS),
    st.builds(lambda n, c: c * n, st.sampled_from([10, 11, 50, 51, 60, 61, 400, 401, 4001]),
              st.sampled_from("xé€😀")),
    st.text(max_size=60))
ANYTHING = st.sampled_from([None, True, [], {}, [[[]]], {"Id": None}])


def _edge_values(original: Any) -> st.SearchStrategy[Any]:
    if isinstance(original, bool):
        return st.one_of(st.sampled_from([0, 1, "true", "false"]), ANYTHING)
    if isinstance(original, int | float):
        return st.one_of(st.sampled_from(INTS), st.integers(), st.floats(), TEXT, ANYTHING)
    if _is_date(original):
        return st.one_of(st.sampled_from(DATES), st.datetimes().map(lambda d: d.isoformat()),
                         TEXT, ANYTHING)
    return st.one_of(TEXT, st.sampled_from(INTS), st.sampled_from(DATES), ANYTHING)


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value) is not None


def _leaves(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, dict):
        return [leaf for key, value in document.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(document, list):
        return [leaf for i, value in enumerate(document) for leaf in _leaves(value, (*path, i))]
    return [path]


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    _get(copy, path[:-1])[path[-1]] = value
    return copy


def test_edge_bases_are_valid(fuzz_api: Api) -> None:
    """The sweep starts from bodies that complete, so a value that passes the shape check
    really reaches the writes."""
    for endpoint in ("Create", "UpdateQuantity", "UpdateOrder"):
        result = fuzz_api.call(endpoint, BASES[endpoint])
        assert result["Status"] == "Completed", result


def _max_length(endpoint: str, path: tuple[Any, ...]) -> int:
    """The field's maxLength in the OpenAPI document (a query parameter's, or a body path's)."""
    operation = next(op for url, item in OPENAPI["paths"].items() if url.endswith(f"/{endpoint}")
                     for op in item.values())
    if "parameters" in operation:
        node = next(p["schema"] for p in operation["parameters"] if p["name"] == path[0])
        return int(node["maxLength"])
    node = operation["requestBody"]["content"]["application/json"]["schema"]
    for key in path:
        node = _deref(node)
        node = node["items"] if isinstance(key, int) else node["properties"][key]
    node = _deref(node)
    return int(node.get("maxLength", 10))  # CustomIdPrefix: a pattern of at most 10


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = OPENAPI["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in node:
            node = next(n for n in node["anyOf"] if n.get("type") != "null")
        else:
            return node


def _curated(endpoint: str, path: tuple[Any, ...], original: Any) -> list[Any]:
    """The edge values worth trying for a field whose valid value is ``original``."""
    odd = [None, True, [], {}]
    if isinstance(original, bool):
        return [0, 1, "true", *odd]
    if isinstance(original, int | float):
        return [*INTS, "1", *odd]
    if _is_date(original):
        return [*DATES, *odd]
    limit = _max_length(endpoint, path)
    # At the limit and one past it, in 4-byte characters (PostgreSQL counts characters).
    return [*TEXTS, "😀" * limit, "😀" * (limit + 1), "x" * (limit + 1), 7, *odd]


def _send(api: Api, endpoint: str, sent: Any, key: str | None = None) -> None:
    if endpoint.startswith("Get"):
        # Percent-encoded by hand: a lone surrogate goes out as the bytes a sloppy client sends.
        texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in sent.items()}
        query = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}"
                         for k, v in texts.items())
        response = api.client.get(f"/ERP/PurchaseOrder/{endpoint}?{query}")
        _check_answer(api, response.status_code, response.text, sent, post=False)
        return
    headers = {"Content-Type": b"application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key.encode()
    raw = json.dumps(sent, ensure_ascii=True).encode()  # lone surrogates go as "\ud800"
    response = api.client.post(f"/ERP/PurchaseOrder/{endpoint}", content=raw, headers=headers)
    _check_answer(api, response.status_code, response.text, sent, post=True)


@pytest.mark.parametrize("endpoint", sorted(BASES))
def test_edge_values_sweep(fuzz_api: Api, endpoint: str) -> None:
    """Every field of a valid body, one at a time, set to each of its curated edge values."""
    base = BASES[endpoint]
    for path in _leaves(base):
        for value in _curated(endpoint, path, _get(base, path)):
            _send(fuzz_api, endpoint, _replace(base, path, value))


def test_edge_idempotency_keys(fuzz_api: Api) -> None:
    for key in ["k-1", " ", "\x7f", "é", "é" * 201, "😀" * 50, "x" * 200]:
        _send(fuzz_api, "UpdateOrder", BASES["UpdateOrder"], key)


RAW_BODIES = [
    b"", b"null", b"[]", b"0", b'"x"', b"{", b"{}}", b'{"Notes": "a"} x', b"\xef\xbb\xbf{}",
    b'{"Notes": "\xff"}', b'{"Notes": "\xed\xa0\x80"}', b'{"Notes": "\\ud800"}',
    b'{"Notes": "\\u0000"}', b'{"Notes": "a", "Notes": 5}', b'{"Notes": NaN}',
    b'{"Notes":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"PurchaseOrderItems": [{"TotalQuantity": ' + b"9" * 5000 + b"}]}",
    b'{"PurchaseOrderItems": [{"CustomItemPricePerPiece": 1e400}]}',
    b'{"PurchaseOrderItems": [{"CustomItemPricePerPiece": -Infinity}]}',
    b'{"PurchaseOrderItems": [{"ExpectedDate": "9999-12-31T23:59:59-01:00"}]}',
]


def test_edge_raw_bodies(fuzz_api: Api) -> None:
    """Bytes no JSON encoder would produce: invalid UTF-8, escaped surrogates and NUL, NaN,
    nesting and numbers past the parser's limits."""
    for endpoint, raw in itertools.product(["Create", "UpdateQuantity", "UpdateOrder"],
                                           RAW_BODIES):
        response = fuzz_api.client.post(f"/ERP/PurchaseOrder/{endpoint}", content=raw,
                                        headers={"Content-Type": "application/json"})
        try:
            sent = json.loads(raw)
        except (ValueError, RecursionError):
            sent = None
        _check_answer(fuzz_api, response.status_code, response.text, sent, post=True)


@given(data=st.data())
@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_edge_values_random(fuzz_api: Api, data: st.DataObject) -> None:
    """As the sweep, with random text, integers, floats and date-times."""
    endpoint = data.draw(st.sampled_from(sorted(BASES)), label="endpoint")
    base = BASES[endpoint]
    path = data.draw(st.sampled_from(_leaves(base)), label="path")
    _send(fuzz_api, endpoint,
          _replace(base, path, data.draw(_edge_values(_get(base, path)), label="value")))


# --- regressions: what the fuzzers found ---------------------------------------------------


def test_regression_a_valid_key_counts_whatever_the_header_order(api: Api) -> None:
    """Was: only the last credential header counted, so a valid bearer token followed by an
    empty X-Api-Key (as schemathesis sends for the apiKey scheme) was refused with 401."""
    bearer = api.client.headers.pop("Authorization")
    try:
        for headers, status in [
            ([("Authorization", bearer), ("X-Api-Key", "")], 404),
            ([("X-Api-Key", ""), ("Authorization", bearer)], 404),
            ([("X-Api-Key", API_KEY), ("Authorization", "Bearer wrong")], 404),
            ([("X-Api-Key", ""), ("Authorization", "Bearer ")], 401),
            ([("X-Api-Key", "wrong"), ("Authorization", "Bearer wrong")], 401),
        ]:
            response = api.client.get("/ERP/PurchaseOrder/Get", params={"orderId": "nope"},
                                      headers=headers)
            assert response.status_code == status, (headers, response.text)
    finally:
        api.client.headers["Authorization"] = bearer


def test_regression_wrong_method_and_unknown_path_name_what_is_wrong(api: Api) -> None:
    """Was: FastAPI's {"detail": "Method Not Allowed"} / {"detail": "Not Found"}."""
    response = api.client.put("/ERP/PurchaseOrder/Get", params={"orderId": "x"})
    assert response.status_code == 405 and response.headers["allow"] == "GET"
    assert response.json()["Errors"] == [
        "method: PUT is not allowed on /ERP/PurchaseOrder/Get; use GET"]
    response = api.client.get("/ERP/PurchaseOrder/Delete")
    assert response.status_code == 404
    assert response.json()["Errors"][0].startswith("path: no endpoint /ERP/PurchaseOrder/Delete")


def test_regression_a_date_out_of_range_once_in_utc_is_a_shape_error(api: Api) -> None:
    """Was: 500 (OverflowError converting 0001-01-01T00:00:00+01:00 to UTC)."""
    for endpoint, body, field in [
        ("UpdateQuantity", {"OrderId": "PurchaseOrder1", "PurchaseOrderItems": [
            {"Id": "PurchaseOrderItem1", "ExpectedDate": "0001-01-01T00:00:00+01:00"}]},
         "PurchaseOrderItems[0].ExpectedDate"),
        ("UpdateOrder", {"OrderId": "PurchaseOrder1",
                         "ShippingDate": "9999-12-31T23:59:59-01:00"}, "ShippingDate"),
    ]:
        response = api.post(endpoint, body)
        assert response.status_code == 422, response.text
        assert response.json()["Errors"] == [
            f"{field}: Value error, out of range once converted to UTC (years 1-9999)"]


def test_regression_nul_in_a_query_parameter_is_a_shape_error(api: Api) -> None:
    """Was: 500 on PostgreSQL (text fields cannot contain NUL bytes)."""
    for endpoint, name in [("Get", "orderId"), ("GetRequestResult", "requestGuid")]:
        response = api.client.get(f"/ERP/PurchaseOrder/{endpoint}", params={name: "a\x00b"})
        assert response.status_code == 422, response.text
        assert response.json()["Errors"] == [
            f"{name}: Value error, must not contain NUL characters"]


def test_regression_odd_keys_keep_their_path(api: Api) -> None:
    """Was: a key named "body" (or "query", ...) vanished from the path, and a key with
    odd characters made the path unreadable ("x: y: unknown field")."""
    response = api.post("Create", order_body(
        SendOptions={"Channel": {"body": True}, "x: y": 1}, **{"": 2}))
    assert response.status_code == 422
    unknown = "unknown field; remove it (see the schema at /openapi.json)"
    assert sorted(response.json()["Errors"]) == sorted([
        f'[""]: {unknown}', f"SendOptions.Channel.body: {unknown}",
        f'SendOptions["x: y"]: {unknown}'])


def test_regression_price_is_documented_as_the_number_it_must_be(api: Api) -> None:
    """Was: documented as number or string; a string is refused (schemathesis sent "")."""
    document = api.client.get("/openapi.json").json()
    item = document["components"]["schemas"]["CreateItem"]["properties"]
    assert {s.get("type") for s in item["CustomItemPricePerPiece"]["anyOf"]} == {"number", "null"}


# --- the checks ---------------------------------------------------------------------------

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
QUOTED = r'"(?:[^"\\]|\\.)*"'
SEGMENT = re.compile(rf"\.({NAME})|({NAME})|\[(\d+)\]|\[({QUOTED})\]")
PATH = re.compile(rf"((?:{NAME}|\[\d+\]|\[{QUOTED}\])(?:\.{NAME}|\[\d+\]|\[{QUOTED}\])*): \S")
NOT_IN_BODY = ("body", "requestGuid", "orderId", "Idempotency-Key", "Authorization", "method",
               "path")


def _check_answer(api: Api, status: int, text: str, sent: Any, *, post: bool) -> None:
    assert status < 500, (status, text, sent)
    answer = json.loads(text)
    if 400 <= status < 500:
        _check_errors_named(answer, sent, status)
    elif status == 200 and post:
        guid = answer["RequestGuid"]
        assert isinstance(guid, str) and guid, answer
        api.executor.run_pending()
        result = api.result(guid)
        assert result["Status"] in ("Completed", "Failed"), result
        assert "internal error" not in result["Message"], (sent, result)


def _check_errors_named(answer: Any, sent: Any, status: int) -> None:
    """{"Message", "Errors": ["<field path>: <message>", ...]}: each path is a key/index path
    into the JSON that was sent, or one of NOT_IN_BODY."""
    assert isinstance(answer, dict) and isinstance(answer.get("Message"), str), answer
    errors = answer.get("Errors")
    assert isinstance(errors, list) and errors, answer
    for message in errors:
        assert isinstance(message, str), answer
        if message.startswith(tuple(f"{name}: " for name in NOT_IN_BODY)):
            continue
        match = PATH.match(message)
        assert match, f"no field path in {message!r}"
        assert _resolves(sent, _segments(match.group(1))), f"{message!r} names no field of {sent!r}"
    if status == 401:
        assert errors[0].startswith("Authorization: "), answer


def _segments(path: str) -> list[str | int]:
    """'A.B[0]["odd key"]' -> ['A', 'B', 0, 'odd key']"""
    return [int(index) if index else json.loads(quoted) if quoted else dotted or name
            for dotted, name, index, quoted in SEGMENT.findall(path)]


def _resolves(document: Any, segments: list[str | int]) -> bool:
    for segment in segments:
        if isinstance(segment, int) and isinstance(document, list) and segment < len(document):
            document = document[segment]
        elif isinstance(segment, str) and isinstance(document, dict) and segment in document:
            document = document[segment]
        else:
            return False
    return True


def _sent_json(case: Case) -> Any:
    body = case.body
    return body if body is None or isinstance(body, dict | list | str | int | float) else None

