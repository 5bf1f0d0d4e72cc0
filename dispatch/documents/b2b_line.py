"""The B2B body (seed 000 ``submit``) of one order line, rendered like any document.

Pure: :func:`submit_document` builds and checks the JSON body, so a bad address is refused
before anything is sent, and returns its exact bytes as a :class:`Document` (the channel
POSTs them; their sha256 is the evidence). The dispatching layer renders every send, B2B
lines included, before the channel sends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import LocationEntry

MEDIA_TYPE = "application/json"

LOCATION_FIELDS = ("locationName", "addressLine1", "addressLine2", "countryTitle", "city",
                   "province", "zipCode")
INVOICE_FIELDS = ("addressName", "addressLine1", "addressLine2", "countryTitle", "city",
                  "province", "zipCode")
_OPTIONAL_ADDRESS_FIELDS = ("addressLine2",)


@dataclass(frozen=True)
class B2BLine:
    """One order line as the vendor's submit endpoint wants it."""

    customer_reference: str  # "{OrderId}/{PurchaseOrderItemId}"
    quantity: int
    atelier_code: int
    from_date: datetime | date
    to_date: datetime | date
    delivery_location: Mapping[str, Any] | None = None
    invoice_address: Mapping[str, Any] | None = None


def customer_reference(order_id: str, purchase_order_item_id: str) -> str:
    return f"{order_id}/{purchase_order_item_id}"


def location_address(location: LocationEntry) -> dict[str, Any]:
    """The seed 000 ``deliveryLocation`` object of a ship-to location."""
    return {name: getattr(location, name) for name in LOCATION_FIELDS}


def delivery_window(
    expected: datetime | date | None, *, now: datetime, window_days: int
) -> tuple[datetime, datetime]:
    """``deliveryDates``: now .. the line's ExpectedDate, else now .. now + window_days."""
    start = _utc(now)
    end = _utc(expected) if expected is not None else start + timedelta(days=window_days)
    return start, max(start, end)


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime | date) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_submit_body(line: B2BLine) -> dict[str, Any]:
    """The seed 000 JSON body of one line; raises DeliveryError(retryable=False) if invalid."""
    body: dict[str, Any] = {
        "customerReference": line.customer_reference,
        "quantity": line.quantity,
        "atelierCode": line.atelier_code,
    }
    for key, value, fields in (
        ("deliveryLocation", line.delivery_location, LOCATION_FIELDS),
        ("invoiceAddress", line.invoice_address, INVOICE_FIELDS),
    ):
        if value:
            body[key] = {f: value.get(f) for f in fields if value.get(f) is not None}
    body["deliveryDates"] = {"fromDate": _iso(line.from_date), "toDate": _iso(line.to_date)}
    validate_submit_body(body)
    return body


def validate_submit_body(body: Mapping[str, Any]) -> None:
    """Check a body against seed 000 before it is sent; every problem is named."""
    problems: list[str] = []
    reference = body.get("customerReference")
    if not isinstance(reference, str) or not reference.strip():
        problems.append("customerReference: required, a non-empty string")
    for key in ("quantity", "atelierCode"):
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{key}: required, an integer (got {value!r})")
        elif key == "quantity" and value <= 0:
            problems.append(f"quantity: must be > 0 (got {value})")
    for key, fields in (("deliveryLocation", LOCATION_FIELDS), ("invoiceAddress", INVOICE_FIELDS)):
        address = body.get(key)
        if address is None or address == {}:
            continue
        if not isinstance(address, Mapping):
            problems.append(f"{key}: must be an object")
            continue
        for name in fields:
            value = address.get(name)
            if name in _OPTIONAL_ADDRESS_FIELDS:
                if value is not None and not isinstance(value, str):
                    problems.append(f"{key}.{name}: must be a string")
            elif not isinstance(value, str) or not value.strip():
                problems.append(
                    f"{key}.{name}: required when {key} is sent "
                    "(seed 000: all fields but addressLine2); complete the address"
                )
        unknown = sorted(set(address) - set(fields))
        if unknown:
            problems.append(f"{key}: unknown field(s) {', '.join(unknown)}")
    dates = body.get("deliveryDates")
    if not isinstance(dates, Mapping):
        problems.append("deliveryDates: required, an object with fromDate and toDate")
    else:
        parsed = {}
        for name in ("fromDate", "toDate"):
            try:
                parsed[name] = datetime.fromisoformat(str(dates.get(name)).replace("Z", "+00:00"))
            except ValueError:
                problems.append(f"deliveryDates.{name}: required, an ISO date-time")
        if len(parsed) == 2 and parsed["fromDate"] > parsed["toDate"]:
            problems.append("deliveryDates: fromDate is after toDate")
    if problems:
        ref = reference if isinstance(reference, str) else "?"
        raise DeliveryError(
            f"B2B body for {ref} refused before sending: " + "; ".join(problems), retryable=False
        )


def submit_document(line: B2BLine) -> Document:
    """The exact bytes POSTed for one line, as a Document (its sha256 is the evidence)."""
    body = build_submit_body(line)
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Document(
        name=line.customer_reference, content=content, media_type=MEDIA_TYPE, format="JSON"
    )


