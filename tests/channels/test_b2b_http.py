"""B2B channel: the seed 000 body (pure) and deliveries to the stand-in receiver."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime, timedelta

import pytest
from channel_support import B2B_KEY, run, secrets

from dispatch.channels import Envelope
from dispatch.channels.b2b_http import B2BChannel
from dispatch.demo.vendors import B2BStandin
from dispatch.documents.b2b_line import (
    B2BLine,
    build_submit_body,
    customer_reference,
    delivery_window,
    location_address,
    submit_document,
)
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import LocationEntry, VendorB2B

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
LOCATION = {"locationName": "Plant 7", "addressLine1": "1 Main St", "addressLine2": None,
            "countryTitle": "USA", "city": "Springfield", "province": "IL", "zipCode": "62701"}
INVOICE = {"addressName": "ACME AP", "addressLine1": "2 Side St", "addressLine2": "Suite 4",
           "countryTitle": "USA", "city": "Springfield", "province": "IL", "zipCode": "62702"}


def line(**changes: object) -> B2BLine:
    fields: dict[str, object] = dict(
        customer_reference="PurchaseOrder1/PurchaseOrderItem1", quantity=5, atelier_code=120045,
        from_date=NOW, to_date=NOW + timedelta(days=14))
    fields.update(changes)
    return B2BLine(**fields)  # type: ignore[arg-type]


# --- the body (pure) -------------------------------------------------------------------

def test_body_has_the_seed_000_shape() -> None:
    body = build_submit_body(line(delivery_location=LOCATION, invoice_address=INVOICE))
    assert body == {
        "customerReference": "PurchaseOrder1/PurchaseOrderItem1",
        "quantity": 5,
        "atelierCode": 120045,
        "deliveryLocation": {k: v for k, v in LOCATION.items() if v is not None},
        "invoiceAddress": INVOICE,
        "deliveryDates": {"fromDate": "2026-03-01T08:30:00Z", "toDate": "2026-03-15T08:30:00Z"},
    }


def test_addresses_are_omitted_when_not_given() -> None:
    body = build_submit_body(line())
    assert "deliveryLocation" not in body and "invoiceAddress" not in body


@pytest.mark.parametrize("field", ["locationName", "addressLine1", "countryTitle", "city",
                                   "province", "zipCode"])
def test_incomplete_delivery_location_is_refused_before_sending(field: str) -> None:
    partial = {**LOCATION, field: None}
    with pytest.raises(DeliveryError) as err:
        build_submit_body(line(delivery_location=partial))
    assert err.value.retryable is False
    assert f"deliveryLocation.{field}" in str(err.value)
    assert "PurchaseOrder1/PurchaseOrderItem1" in str(err.value)


def test_incomplete_invoice_address_is_refused() -> None:
    with pytest.raises(DeliveryError, match=r"invoiceAddress\.addressName"):
        build_submit_body(line(invoice_address={**INVOICE, "addressName": " "}))


def test_address_line_2_is_optional() -> None:
    body = build_submit_body(line(invoice_address={**INVOICE, "addressLine2": None}))
    assert "addressLine2" not in body["invoiceAddress"]


@pytest.mark.parametrize("changes, field", [
    ({"quantity": 2.5}, "quantity"), ({"quantity": True}, "quantity"),
    ({"quantity": 0}, "quantity"), ({"atelier_code": "120045"}, "atelierCode"),
    ({"customer_reference": ""}, "customerReference"),
    ({"from_date": NOW + timedelta(days=30)}, "deliveryDates"),
])
def test_bad_values_are_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(DeliveryError, match=field):
        build_submit_body(line(**changes))


def test_helpers_for_the_caller() -> None:
    location = LocationEntry(id="SITE-7", **LOCATION)
    assert location_address(location) == LOCATION
    assert customer_reference("PO1", "POI9") == "PO1/POI9"
    start, end = delivery_window(None, now=NOW, window_days=14)
    assert (start, end) == (NOW, NOW + timedelta(days=14))
    start, end = delivery_window(date(2026, 3, 10), now=NOW, window_days=14)
    assert end == datetime(2026, 3, 10, tzinfo=UTC)


def test_submit_document_is_the_exact_json_bytes() -> None:
    document = submit_document(line())
    assert json.loads(document.content) == build_submit_body(line())
    assert document.media_type == "application/json"


# --- deliveries --------------------------------------------------------------------------

def target(server: B2BStandin) -> VendorB2B:
    return server.vendor_b2b(api_key_env="ACME_B2B_KEY")


def send(server: B2BStandin, document: Document, key: str, **kwargs: object) -> object:
    async def go() -> object:
        channel = B2BChannel(secrets=secrets)
        try:
            return await channel.send(kwargs.get("vendor") or target(server),  # type: ignore[arg-type]
                                      [document], Envelope(key))
        finally:
            await channel.aclose()

    return run(go())


def test_delivers_with_idempotency_key_and_bearer(b2b_server: B2BStandin) -> None:
    document = submit_document(line(customer_reference="PO-B1/POI1"))
    evidence = send(b2b_server, document, "dlv-b1")
    sub = b2b_server.submissions[-1]
    assert sub.idempotency_key == "dlv-b1"
    assert sub.authorization == f"Bearer {B2B_KEY}"
    assert sub.body == json.loads(document.content)
    assert evidence.remote["status"] == 200  # type: ignore[attr-defined]
    assert sub.order_id in evidence.remote["body"]  # type: ignore[attr-defined]


def test_resend_with_same_key_is_not_a_second_order(b2b_server: B2BStandin) -> None:
    document = submit_document(line(customer_reference="PO-B2/POI1"))
    before = len(b2b_server.submissions)
    send(b2b_server, document, "dlv-b2")
    send(b2b_server, document, "dlv-b2")
    assert len(b2b_server.submissions) == before + 1


def test_503_is_retryable_then_200_delivers(b2b_server: B2BStandin) -> None:
    document = submit_document(line(customer_reference="PO-B3/POI1"))
    before = len(b2b_server.submissions)
    b2b_server.fail_next(503)
    with pytest.raises(DeliveryError, match="503") as err:
        send(b2b_server, document, "dlv-b3")
    assert err.value.retryable is True
    assert len(b2b_server.submissions) == before
    send(b2b_server, document, "dlv-b3")
    assert len(b2b_server.submissions) == before + 1


@pytest.mark.parametrize("status, retryable", [(400, False), (404, False), (422, False),
                                               (408, True), (429, True), (500, True)])
def test_status_outcomes(b2b_server: B2BStandin, status: int, retryable: bool) -> None:
    b2b_server.fail_next(status)
    with pytest.raises(DeliveryError, match=str(status)) as err:
        send(b2b_server, submit_document(line()), f"dlv-status-{status}")
    assert err.value.retryable is retryable


def test_wrong_api_key_is_permanent(b2b_server: B2BStandin) -> None:
    async def go() -> None:
        channel = B2BChannel(secrets={"ACME_B2B_KEY": "wrong-key"}.get)
        try:
            await channel.send(target(b2b_server), [submit_document(line())], Envelope("k401"))
        finally:
            await channel.aclose()

    with pytest.raises(DeliveryError, match="401.*ACME_B2B_KEY") as err:
        run(go())
    assert err.value.retryable is False


def test_unset_api_key_variable_is_permanent(b2b_server: B2BStandin) -> None:
    vendor = b2b_server.vendor_b2b(api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(DeliveryError, match="NOT_SET_ANYWHERE is not set") as err:
        send(b2b_server, submit_document(line()), "k-unset", vendor=vendor)
    assert err.value.retryable is False


def test_invalid_body_is_refused_before_any_request(b2b_server: B2BStandin) -> None:
    body = build_submit_body(line())
    body["deliveryLocation"] = {"locationName": "Plant 7"}
    document = Document("PO-bad/POI1", json.dumps(body).encode(), "application/json", "JSON")
    before = b2b_server.requests
    with pytest.raises(DeliveryError, match="deliveryLocation.addressLine1") as err:
        send(b2b_server, document, "k-bad")
    assert err.value.retryable is False
    assert b2b_server.requests == before


def test_connection_dropped_is_retryable(b2b_server: B2BStandin) -> None:
    b2b_server.drop_next()
    with pytest.raises(DeliveryError) as err:
        send(b2b_server, submit_document(line()), "k-drop")
    assert err.value.retryable is True


def test_server_down_is_retryable(down_port: int) -> None:
    async def go() -> None:
        channel = B2BChannel(secrets=secrets)
        try:
            await channel.send(VendorB2B(url=f"http://127.0.0.1:{down_port}"),
                               [submit_document(line())], Envelope("k-down"))
        finally:
            await channel.aclose()

    with pytest.raises(DeliveryError, match="ConnectError") as err:
        run(go())
    assert err.value.retryable is True


def test_one_client_serves_many_sends(b2b_server: B2BStandin) -> None:
    made: list[object] = []

    def factory(ca_file: str | None) -> object:
        from dispatch.channels.b2b_http import default_client

        client = default_client(ca_file)
        made.append(client)
        return client

    async def go() -> None:
        channel = B2BChannel(client_factory=factory, secrets=secrets)  # type: ignore[arg-type]
        for n in range(3):
            await channel.send(target(b2b_server), [submit_document(line())], Envelope(f"m{n}"))
        await channel.aclose()

    run(go())
    assert len(made) == 1


def test_connection_has_nodelay(b2b_server: B2BStandin) -> None:
    async def go() -> None:
        channel = B2BChannel(secrets=secrets)
        await channel.send(target(b2b_server), [submit_document(line())], Envelope("nd"))
        (client,) = channel._clients.values()
        pool = client._transport._pool  # type: ignore[attr-defined]
        stream = pool.connections[0]._connection._network_stream
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await channel.aclose()

    run(go())
