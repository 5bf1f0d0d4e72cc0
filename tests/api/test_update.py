"""UpdateQuantity and UpdateOrder over HTTP: rules, transactions, changes, auto-close."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.rules.ledger import ledger_violations
from dispatch.rules.types import LineState
from tests.api.conftest import Api, order_body


def _active(api: Api, **overrides: Any) -> dict[str, Any]:
    return api.create_ok(order_body(Status="Active", **overrides))["PurchaseOrder"]


def _qty(api: Api, order_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return api.call("UpdateQuantity", {"OrderId": order_id, "PurchaseOrderItems": list(items)})


def assert_ledger(detail: dict[str, Any]) -> None:
    lines = [LineState(x["Id"], 0, x["ItemId"], x["DeviceId"], x["CustomItemId"],
                       x["TotalQuantity"], x["ReceivedQuantity"], x["CancelledQuantity"])
             for x in detail["PurchaseOrderItems"]]
    txs = [(t["Kind"], t["PurchaseOrderItemId"], t["Quantity"]) for t in detail["Transactions"]]
    assert ledger_violations(detail["Status"], lines, txs) == []


def test_receive_cancel_and_raise_on_active(api: Api) -> None:
    po = _active(api)
    l1, l2 = (i["Id"] for i in po["PurchaseOrderItems"])
    result = _qty(api, po["Id"], {"ItemId": "DRILL-5", "TotalQuantity": 12, "ReceivedQuantity": 5},
                  {"Id": l2, "CancelledQuantity": 1, "ExpectedDate": "2030-05-01T08:00:00Z"})
    assert result["Status"] == "Completed", result
    assert result["PurchaseOrder"]["Status"] == "Updated"
    assert [(i["Id"], i["Status"]) for i in result["PurchaseOrder"]["PurchaseOrderItems"]] == [
        (l1, "Updated"), (l2, "Updated")]
    detail = api.order(po["Id"])
    lines = {x["Id"]: x for x in detail["PurchaseOrderItems"]}
    assert (lines[l1]["TotalQuantity"], lines[l1]["ReceivedQuantity"]) == (12, 5)
    assert lines[l2]["CancelledQuantity"] == 1
    assert lines[l2]["ExpectedDate"] == "2030-05-01T08:00:00.000Z"
    new = [(t["Kind"], t["PurchaseOrderItemId"], t["Quantity"]) for t in detail["Transactions"][2:]]
    assert sorted(new) == sorted([("Purchase", l1, 2), ("Receive", l1, 5), ("Cancel", l2, 1)])
    assert_ledger(detail)
    # ACME has send_changes: false -> no change dispatch
    assert {d["Kind"] for d in detail["Deliveries"]} == {"purchase"}


def test_change_dispatch_when_vendor_sends_changes(api: Api) -> None:
    po = _active(api, VendorId="BOLT", SendOptions={
        "Channel": {"IsEmail": True}, "Email": {"IsXml": True}},
        PurchaseOrderItems=[{"ItemId": "NUT-M8", "TotalQuantity": 10}])
    line = po["PurchaseOrderItems"][0]["Id"]
    assert _qty(api, po["Id"], {"Id": line, "TotalQuantity": 15})["Status"] == "Completed"
    assert _qty(api, po["Id"], {"Id": line, "ReceivedQuantity": 1})["Status"] == "Completed"
    deliveries = api.order(po["Id"])["Deliveries"]
    assert [(d["Kind"], d["DispatchNumber"]) for d in deliveries] == [
        ("purchase", 1), ("change", 2)]  # receiving alone sends nothing
    assert deliveries[1]["DocumentName"] == f"{po['Id']}_change_2.xml"


@pytest.mark.parametrize(("item", "body", "expected"), [
    ("DRILL-8", {"TotalQuantity": 9},
     "TotalQuantity: cannot increase on an Active order: item 'DRILL-8' is not quoted"),
    ("DRILL-5", {"TotalQuantity": 5}, "TotalQuantity: cannot decrease on an Active order"),
    ("DRILL-5", {"ReceivedQuantity": 8, "CancelledQuantity": 3},
     ": ReceivedQuantity + CancelledQuantity (8 + 3) exceeds TotalQuantity (10)"),
    ("DRILL-5", {"ReceivedQuantity": -1}, "ReceivedQuantity: cannot decrease (0 -> -1)"),
])
def test_quantity_rules_on_active(api: Api, item: str, body: dict, expected: str) -> None:
    po = _active(api)
    result = _qty(api, po["Id"], {"ItemId": item, **body})
    assert result["Status"] == "Failed"
    errors = result["PurchaseOrder"]["PurchaseOrderItems"][0]["Errors"]
    assert any(expected in e and e.startswith("PurchaseOrderItems[0]") for e in errors), errors
    assert len(api.order(po["Id"])["Transactions"]) == 2  # nothing applied


def test_received_never_decreases(api: Api) -> None:
    po = _active(api)
    first = _qty(api, po["Id"], {"ItemId": "DRILL-5", "ReceivedQuantity": 4})
    assert first["Status"] == "Completed"
    result = _qty(api, po["Id"], {"ItemId": "DRILL-5", "ReceivedQuantity": 3})
    assert result["Status"] == "Failed"
    assert "ReceivedQuantity: cannot decrease (4 -> 3)" in result["PurchaseOrder"]["Errors"][0]


def test_a_failing_line_rolls_back_the_whole_request(api: Api) -> None:
    po = _active(api)
    result = _qty(api, po["Id"], {"ItemId": "DRILL-5", "ReceivedQuantity": 2},
                  {"ItemId": "GHOST", "ReceivedQuantity": 1})
    assert result["Status"] == "Failed"
    items = result["PurchaseOrder"]["PurchaseOrderItems"]
    assert items[0]["Errors"] == [] and items[0]["Status"] == "None"
    assert items[1]["Errors"][0].startswith("PurchaseOrderItems[1].ItemId: order")
    assert api.order(po["Id"])["PurchaseOrderItems"][0]["ReceivedQuantity"] == 0


def test_overstock_vendor_may_raise_unquoted_items(api: Api) -> None:
    po = _active(api, VendorId="BOLT", SendOptions=None,
                 PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 2}])  # not quoted
    assert _qty(api, po["Id"], {"ItemId": "DRILL-5", "TotalQuantity": 3})["Status"] == "Completed"


def test_reference_by_item_needs_device_on_stock_level_orders(api: Api) -> None:
    po = _active(api, DeviceId=None, PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 1, "DeviceId": "DEV-1"},
        {"ItemId": "DRILL-5", "TotalQuantity": 2, "DeviceId": "DEV-2"}])
    no_device = _qty(api, po["Id"], {"ItemId": "DRILL-5", "ReceivedQuantity": 1})
    assert no_device["Status"] == "Failed"
    assert "DeviceId: required for a stock-level order" in no_device["PurchaseOrder"]["Errors"][0]
    ok = _qty(api, po["Id"], {"ItemId": "DRILL-5", "DeviceId": "DEV-2", "ReceivedQuantity": 1})
    assert ok["Status"] == "Completed"
    assert ok["PurchaseOrder"]["PurchaseOrderItems"][0]["Id"] == po["PurchaseOrderItems"][1]["Id"]


def test_reference_by_item_is_ambiguous_with_two_lines(api: Api) -> None:
    po = _active(api, PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 1},
                                          {"ItemId": "DRILL-5", "TotalQuantity": 2}])
    result = _qty(api, po["Id"], {"ItemId": "DRILL-5", "ReceivedQuantity": 1})
    assert result["Status"] == "Failed"
    assert "has 2 lines of item 'DRILL-5'; reference the line by Id" in \
        result["PurchaseOrder"]["Errors"][0]


def test_id_with_item_id_is_refused(api: Api) -> None:
    po = _active(api)
    line = po["PurchaseOrderItems"][0]["Id"]
    result = _qty(api, po["Id"], {"Id": line, "ItemId": "DRILL-5", "ReceivedQuantity": 1})
    assert result["Status"] == "Failed"
    assert result["PurchaseOrder"]["Errors"][0].startswith("PurchaseOrderItems[0].Id:")


def test_unknown_order(api: Api) -> None:
    result = _qty(api, "PurchaseOrder999", {"ItemId": "DRILL-5", "ReceivedQuantity": 1})
    assert result["Status"] == "Failed"
    assert result["PurchaseOrder"]["Errors"] == [
        "OrderId: order 'PurchaseOrder999' does not exist"]


def test_auto_close_when_everything_received_or_cancelled(api: Api) -> None:
    po = _active(api)
    l1, l2 = (i["Id"] for i in po["PurchaseOrderItems"])
    _qty(api, po["Id"], {"Id": l1, "ReceivedQuantity": 10})
    assert api.order(po["Id"])["Status"] == "Active"
    _qty(api, po["Id"], {"Id": l2, "ReceivedQuantity": 3, "CancelledQuantity": 1})
    detail = api.order(po["Id"])
    assert detail["Status"] == "Closed"
    assert_ledger(detail)
    # a closed order takes notes only
    assert api.call("UpdateOrder", {"OrderId": po["Id"], "Notes": "done"})["Status"] == "Completed"
    failed = api.call("UpdateOrder", {"OrderId": po["Id"], "Reference": "x"})
    assert failed["PurchaseOrder"]["Errors"] == [
        "Reference: cannot be changed while the order is Closed (allowed: New, Suggested, Active)"]


def test_new_to_active_purchases_and_dispatches(api: Api) -> None:
    po = api.create_ok(order_body())["PurchaseOrder"]
    _qty(api, po["Id"], {"ItemId": "DRILL-5", "TotalQuantity": 20})  # New: no transaction
    assert api.order(po["Id"])["Transactions"] == []
    result = api.call("UpdateOrder", {"OrderId": po["Id"], "Status": "Active",
                                      "Reference": "confirmed"})
    assert result["Status"] == "Completed"
    assert result["Message"].endswith("New -> Active")
    detail = api.order(po["Id"])
    assert [(t["Kind"], t["Quantity"]) for t in detail["Transactions"]] == [
        ("Purchase", 20), ("Purchase", 4)]
    assert {(d["Kind"], d["DispatchNumber"]) for d in detail["Deliveries"]} == {("purchase", 1)}
    assert detail["Reference"] == "confirmed"


def test_active_to_cancelled_cancels_the_outstanding(api: Api) -> None:
    po = _active(api)
    l1 = po["PurchaseOrderItems"][0]["Id"]
    _qty(api, po["Id"], {"Id": l1, "ReceivedQuantity": 4, "CancelledQuantity": 1})
    api.call("UpdateOrder", {"OrderId": po["Id"], "Status": "Cancelled"})
    detail = api.order(po["Id"])
    assert detail["Status"] == "Cancelled"
    cancels = [(t["PurchaseOrderItemId"], t["Quantity"]) for t in detail["Transactions"]
               if t["Kind"] == "Cancel"]
    assert cancels == [(l1, 1), (l1, 5), (po["PurchaseOrderItems"][1]["Id"], 4)]
    assert_ledger(detail)
    cancellation = [d for d in detail["Deliveries"] if d["Kind"] == "cancellation"]
    assert {d["DispatchNumber"] for d in cancellation} == {2} and len(cancellation) == 2


def test_new_to_cancelled_sends_nothing(api: Api) -> None:
    po = api.create_ok(order_body())["PurchaseOrder"]
    api.call("UpdateOrder", {"OrderId": po["Id"], "Status": "Cancelled"})
    detail = api.order(po["Id"])
    assert detail["Status"] == "Cancelled"
    assert detail["Transactions"] == [] and detail["Deliveries"] == []


def test_b2b_cancellation_is_recorded_unsupported(api: Api) -> None:
    po = _active(api, SendOptions={"Channel": {"IsB2B": True}})
    api.call("UpdateOrder", {"OrderId": po["Id"], "Status": "Cancelled"})
    cancellation = [d for d in api.order(po["Id"])["Deliveries"] if d["Kind"] == "cancellation"]
    assert len(cancellation) == 2
    assert all(d["Status"] == "Unsupported" and "no cancellation" in d["Error"]
               for d in cancellation)


def test_order_fields_on_active(api: Api) -> None:
    po = _active(api)
    result = api.call("UpdateOrder", {
        "OrderId": po["Id"], "ShippingDate": "2030-01-02T03:04:05+02:00",
        "TrackingNumber": "TRK-1", "Notes": "n"})
    assert result["Status"] == "Completed"
    detail = api.order(po["Id"])
    assert detail["ShippingDate"] == "2030-01-02T01:04:05.000Z"
    assert (detail["TrackingNumber"], detail["Notes"]) == ("TRK-1", "n")


def test_unchanged_update_reports_none(api: Api) -> None:
    po = _active(api)
    result = api.call("UpdateOrder", {"OrderId": po["Id"], "Status": "Active"})
    assert result["Status"] == "Completed"
    assert result["PurchaseOrder"]["Status"] == "None"


def test_requests_for_one_order_run_in_arrival_order(api: Api) -> None:
    po = _active(api)
    line = po["PurchaseOrderItems"][0]["Id"]
    guids = [api.submit("UpdateQuantity", {"OrderId": po["Id"], "PurchaseOrderItems": [
        {"Id": line, "ReceivedQuantity": n}]}) for n in range(1, 8)]
    assert api.result(guids[0])["Status"] in ("Created", "Ready")
    api.executor.run_pending()
    assert all(api.result(g)["Status"] == "Completed" for g in guids)
    receives = [t["Quantity"] for t in api.order(po["Id"])["Transactions"]
                if t["Kind"] == "Receive"]
    assert receives == [1] * 7  # each raised by one, in order: no request saw a later state
