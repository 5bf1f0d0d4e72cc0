"""POST /vendor/order-responses (SPEC 8) over HTTP, on SQLite and PostgreSQL: the official
Peppol examples adapted to the test's order, cXML ConfirmationRequests of each type, every
4xx path, idempotency, unmatched documents, and what the order detail shows."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.store import responses as store
from dispatch.store.engine import reading
from tests.conftest import API_KEY
from tests.dispatching.conftest import Env, all_channels_order
from tests.responses.conftest import ACME_KEY, BOLT_KEY, delivered_order, post
from tests.responses.documents import ADVANCED, ORDER_RESPONSE, SC1, SC2, cxml, peppol

THREE_LINES = [{"ItemId": "DRILL-5", "TotalQuantity": 10},
               {"ItemId": "DRILL-8", "TotalQuantity": 4},
               {"ItemId": "GLOVE-L", "TotalQuantity": 6}]


def acme_order(env: Env, **overrides: Any) -> tuple[str, list[str]]:
    return delivered_order(env, all_channels_order(PurchaseOrderItems=THREE_LINES, **overrides))


def bolt_order(env: Env) -> tuple[str, list[str]]:
    return delivered_order(env, {
        "VendorId": "BOLT", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "SendOptions": {"Channel": {"IsB2B": False, "IsFtp": False, "IsEmail": True},
                        "Email": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10},
                               {"ItemId": "NUT-M8", "TotalQuantity": 3}]})


def test_peppol_t76_conditionally_accepted_shows_on_the_order(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    before = answering.api.order(order_id)
    assert before["Response"]["Status"] == "Awaiting"
    assert before["Response"]["DispatchNumber"] == 1
    assert before["Response"]["DueBy"] is not None
    # The B2B stand-in answered each line with its orderId (seed 000).
    assert [line["VendorOrderId"] for line in before["PurchaseOrderItems"]] == \
        ["LP-1", "LP-2", "LP-3"]
    assert before["PurchaseOrderItems"][0]["ResponseStatus"] is None

    answer = post(answering, peppol(ORDER_RESPONSE, order_id=order_id, line_ids=lines))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["OrderId"] == order_id and body["Status"] == "ConditionallyAccepted"
    assert isinstance(body["ResponseId"], int)

    detail = answering.api.order(order_id)
    response = detail["Response"]
    assert response["Status"] == "ConditionallyAccepted"
    assert response["DispatchNumber"] == 1
    assert response["VendorOrderId"] == "101-111"  # SalesOrderID
    assert response["ReceivedAt"].endswith("Z")
    first, second, third = detail["PurchaseOrderItems"]
    # line 1: LineStatusCode 3, Quantity 10, its own promised period (EndDate)
    assert (first["ResponseStatus"], first["ConfirmedQuantity"], first["PromisedDate"]) == \
        ("ConditionallyAccepted", 10, "2018-08-12")
    # line 2: 5 = accepted as ordered; no dates of its own: the document's EndDate
    assert (second["ResponseStatus"], second["ConfirmedQuantity"], second["PromisedDate"]) == \
        ("Accepted", 4, "2013-07-16")
    assert third["ResponseStatus"] == "ConditionallyAccepted"
    assert first["VendorOrderId"] == "LP-1"  # the B2B answer's orderId wins per line
    # the order itself is untouched (the ERP decides)
    assert [line["TotalQuantity"] for line in detail["PurchaseOrderItems"]] == [10, 4, 6]
    assert detail["Status"] == "Active"


def test_same_document_twice_is_recorded_once(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    document = peppol(SC1, order_id=order_id, line_ids=lines[:2])
    first = post(answering, document)
    again = post(answering, document)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    with reading(answering.engine) as conn:
        rows = store.list_responses(conn, order_id=order_id)
        assert len(rows) == 1
        assert store.response_content(conn, response_id=rows[0].id) == document
    assert rows[0].lines[0]["ConfirmedQuantity"] == 5  # sc1: quantity reduced to 5


def test_peppol_t116_answers_the_change_it_names(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    # A change (ACME sends changes in this world): dispatch 2, delivered.
    result = answering.api.call("UpdateQuantity", {"OrderId": order_id,
                                "PurchaseOrderItems": [{"Id": lines[0], "TotalQuantity": 12}]})
    assert result["Status"] == "Completed", result
    answering.run_due()
    assert answering.api.order(order_id)["Response"]["DispatchNumber"] == 2

    unknown = post(answering, peppol(ADVANCED, order_id=order_id, line_ids=lines[:2],
                                     change=f"{order_id}-7"))
    assert unknown.status_code == 422
    assert unknown.json()["Message"].startswith("OrderChangeDocumentReference/ID:")

    ok = post(answering, peppol(ADVANCED, order_id=order_id, line_ids=lines[:2],
                                change=f"{order_id}-2"))
    assert ok.status_code == 200, ok.text
    detail = answering.api.order(order_id)
    assert detail["Response"]["Status"] == "ConditionallyAccepted"
    assert detail["Response"]["DispatchNumber"] == 2
    assert detail["PurchaseOrderItems"][1]["PromisedDate"] == "2022-05-25"
    # sc2: the change accepted (AP, no lines): every line accepted as ordered
    accepted = post(answering, peppol(SC2, order_id=order_id, change=f"{order_id}-2"))
    assert accepted.json()["Status"] == "Accepted"
    detail = answering.api.order(order_id)
    assert detail["Response"]["Status"] == "Accepted"
    assert [line["ConfirmedQuantity"] for line in detail["PurchaseOrderItems"]] == [12, 4, 6]
    assert detail["PurchaseOrderItems"][0]["PromisedDate"] == "2022-02-20"


@pytest.mark.parametrize(("kind", "status"), [
    ("accept", "Accepted"), ("reject", "Rejected"), ("detail", "ConditionallyAccepted"),
    ("allDetail", "ConditionallyAccepted"), ("except", "ConditionallyAccepted"),
    ("backordered", "ConditionallyAccepted"), ("replace", "ConditionallyAccepted")])
def test_cxml_confirmation_of_each_type(answering: Env, kind: str, status: str) -> None:
    order_id, _lines = bolt_order(answering)
    items = [] if kind in ("accept", "reject") else \
        [(1, 8, {"except": "detail", "replace": "detail", "allDetail": "allDetail",
                 "backordered": "backordered"}.get(kind, "detail"), "2024-06-01T00:00:00+00:00")]
    answer = post(answering, cxml(kind, order_id=order_id, items=items), BOLT_KEY,
                  content_type="text/xml")
    assert answer.status_code == 200, answer.text
    assert answer.json()["Status"] == status
    detail = answering.api.order(order_id)
    assert detail["Response"]["Status"] == status
    assert detail["Response"]["VendorOrderId"] == "SO-77"
    assert detail["Response"]["DueBy"] is None  # BOLT has no deadline
    first, second = detail["PurchaseOrderItems"]
    if kind == "accept":
        assert (first["ConfirmedQuantity"], second["ConfirmedQuantity"]) == (10, 3)
        assert first["ResponseStatus"] == second["ResponseStatus"] == "Accepted"
    elif kind == "reject":
        assert first["ConfirmedQuantity"] == second["ConfirmedQuantity"] == 0
    else:
        assert (first["ConfirmedQuantity"], first["PromisedDate"]) == (8, "2024-06-01")
        if kind in ("detail", "allDetail"):  # unmentioned lines keep their state
            assert second["ResponseStatus"] is None
        else:  # except/replace/backordered: unmentioned lines accepted as ordered
            assert (second["ResponseStatus"], second["ConfirmedQuantity"]) == ("Accepted", 3)


def test_cxml_line_by_purchase_order_item_id(answering: Env) -> None:
    order_id, lines = bolt_order(answering)
    document = cxml("detail", order_id=order_id, items=[(99, 2, "detail", None)])
    document = document.replace(
        b"<UnitOfMeasure>EA</UnitOfMeasure></ConfirmationStatus>",
        b"<UnitOfMeasure>EA</UnitOfMeasure><Extrinsic name=\"PurchaseOrderItemId\">"
        + lines[1].encode() + b"</Extrinsic></ConfirmationStatus>")
    answer = post(answering, document, BOLT_KEY)
    assert answer.status_code == 200, answer.text
    assert answering.api.order(order_id)["PurchaseOrderItems"][1]["ConfirmedQuantity"] == 2


def test_rejection_is_announced(answering: Env) -> None:
    heard: list[tuple[str, list[str], dict[str, Any]]] = []
    answering.api.client.app.state.response_announcer = \
        lambda order, events, payload: heard.append((order, list(events), payload))
    order_id, _lines = bolt_order(answering)
    document = cxml("reject", order_id=order_id)
    assert post(answering, document, BOLT_KEY).status_code == 200
    assert post(answering, document, BOLT_KEY).status_code == 200  # again: no new events
    assert heard == [(order_id, ["purchase-order.response-received",
                                 "purchase-order.rejected"],
                      {"order_id": order_id, "vendor_id": "BOLT", "response_id": heard[0][2][
                          "response_id"], "status": "Rejected", "dispatch_number": 1})]


# --- 401 --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key", API_KEY])
def test_401_without_the_vendors_key(answering: Env, key: str | None) -> None:
    order_id, lines = acme_order(answering)
    answer = post(answering, peppol(SC1, order_id=order_id, line_ids=lines), key)
    assert answer.status_code == 401
    with reading(answering.engine) as conn:
        assert store.list_responses(conn) == []


def test_vendor_key_is_not_an_erp_key(answering: Env) -> None:
    answer = answering.api.client.get("/ERP/PurchaseOrder/Get", params={"orderId": "x"},
                                      headers={"Authorization": f"Bearer {ACME_KEY}"})
    assert answer.status_code == 401


# --- 400 --------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<OrderResponse xmlns="urn:oasis:names:specification:ubl:schema:xsd:OrderResponse-2">&lol3;
</OrderResponse>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE OrderResponse [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OrderResponse xmlns="urn:oasis:names:specification:ubl:schema:xsd:OrderResponse-2">&xxe;
</OrderResponse>"""
XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]><r/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE cXML SYSTEM "file:///etc/passwd"><cXML>&xxe;</cXML>"""


@pytest.mark.parametrize(("body", "says"), [
    (b"", "body: empty"),
    (b"<OrderResponse", "not well-formed"),
    (b"{\"json\": true}", "not well-formed"),
    (BILLION_LAUGHS, "ENTITY"),
    (XXE, "ENTITY"),
    (XXE_PARAMETER, "ENTITY"),
    (EXTERNAL_DTD, "not well-formed"),
    (b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>",
     "not a UBL OrderResponse"),
    (b"<cXML><Request><OrderRequest/></Request></cXML>", "ConfirmationRequest: missing"),
])
def test_400_for_what_is_not_a_response(answering: Env, body: bytes, says: str) -> None:
    answer = post(answering, body)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["Message"]
    with reading(answering.engine) as conn:
        assert store.list_responses(conn) == []


def test_400_names_missing_elements(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    document = peppol(SC1, order_id=order_id, line_ids=lines)
    no_code = document.replace(b"<cbc:OrderResponseCode>CA</cbc:OrderResponseCode>", b"")
    assert post(answering, no_code).json()["Message"].startswith("OrderResponseCode: missing")
    bad_code = document.replace(b">CA<", b">ZZ<")
    assert post(answering, bad_code).json()["Message"].startswith("OrderResponseCode: 'ZZ'")
    no_order = document.replace(f"<cbc:ID>{order_id}</cbc:ID>".encode(), b"")
    assert post(answering, no_order).json()["Message"].startswith("OrderReference/ID: missing")
    not_peppol = document.replace(b"order_response_advanced:3", b"order_response:9")
    assert post(answering, not_peppol).json()["Message"].startswith("CustomizationID:")
    cxml_no_order = cxml("accept", order_id=order_id).replace(
        f' orderID="{order_id}"'.encode(), b"")
    answer = post(answering, cxml_no_order)
    assert (answer.status_code, answer.json()["Message"][:31]) == \
        (400, "OrderReference@orderID: missing")


# --- 422: unmatched, kept, listed, never applied ---------------------------------------


def test_422_unmatched_documents_are_kept_and_never_applied(answering: Env) -> None:
    order_id, lines = acme_order(answering)
    bolt_id, _ = bolt_order(answering)
    cases = [
        (peppol(SC1, order_id="NoSuchOrder", line_ids=lines), "OrderReference/ID: no purchase"),
        (peppol(SC1, order_id=bolt_id, line_ids=lines), "OrderReference/ID: purchase order"),
        (peppol(SC1, order_id=order_id, line_ids=[lines[0], "PurchaseOrderItem999999"]),
         "OrderLine[2]/LineItem/ID: no line 'PurchaseOrderItem999999'"),
        (peppol(ADVANCED, order_id=order_id, line_ids=lines, change=f"{order_id}-9"),
         "OrderChangeDocumentReference/ID:"),
    ]
    for document, says in cases:
        answer = post(answering, document)
        assert answer.status_code == 422, answer.text
        assert answer.json()["Message"].startswith(says), answer.json()
        again = post(answering, document)
        assert again.status_code == 422 and again.json() == answer.json()
    detail = answering.api.order(order_id)
    assert detail["Response"]["Status"] == "Awaiting"
    assert all(line["ResponseStatus"] is None for line in detail["PurchaseOrderItems"])
    with reading(answering.engine) as conn:
        kept = store.list_responses(conn, unmatched=True)
    assert len(kept) == len(cases)
    assert not any(r.matched for r in kept)


def test_422_for_a_dispatch_never_delivered(answering: Env) -> None:
    order_id = answering.order(all_channels_order(PurchaseOrderItems=THREE_LINES))
    # nothing sent yet
    answer = post(answering, peppol(SC2, order_id=order_id))
    assert answer.status_code == 422
    assert "no delivered dispatch" in answer.json()["Message"]


def test_an_order_without_responses_configured_is_not_expected(answering: Env) -> None:
    crane = delivered_order(answering, {
        "VendorId": "CRANE", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "SendOptions": {"Channel": {"IsB2B": False, "IsFtp": False, "IsEmail": True},
                        "Email": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "NUT-M8", "TotalQuantity": 1}]})[0]
    assert answering.api.order(crane)["Response"] == {
        "Status": "NotExpected", "DispatchNumber": None, "DueBy": None, "ReceivedAt": None,
        "VendorOrderId": None}
