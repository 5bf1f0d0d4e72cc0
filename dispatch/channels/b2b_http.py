"""B2B: the vendor's ExternalPurchaseOrders API (seed 000), one POST per order line.

The body is built and checked by pure functions (:func:`build_submit_body`,
:func:`submit_document`) so a bad address is refused before anything is sent; the channel
POSTs the document's exact bytes with an ``Idempotency-Key`` header and, when the vendor
names ``api_key_env``, ``Authorization: Bearer <value>``.

Outcome: 2xx delivered; 408, 429, 5xx and connection errors retryable; other answers
(4xx, unexpected 3xx) permanent.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

import httpx

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    Envelope,
    Evidence,
    SecretResolver,
    default_secrets,
    proof,
    redact,
    resolve_secret,
    single_document,
    truncate,
)
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import LocationEntry, VendorB2B

SUBMIT_PATH = "/api/external/purchaseorders/submit"
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


ClientFactory = Callable[[str | None], httpx.AsyncClient]


def default_client(ca_file: str | None) -> httpx.AsyncClient:
    """One pooled keep-alive client per CA; asyncio sockets get TCP_NODELAY by default."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return httpx.AsyncClient(
        verify=verify, timeout=DEFAULT_TIMEOUT, follow_redirects=False, trust_env=False
    )


class B2BChannel:
    """POSTs one line's body to ``{b2b.url}/api/external/purchaseorders/submit``."""

    keys: ClassVar[tuple[str, ...]] = ("b2b",)

    def __init__(
        self,
        *,
        client_factory: ClientFactory = default_client,
        secrets: SecretResolver | None = None,
        settings: object | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._secrets = secrets or default_secrets()
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    async def send(
        self, target: VendorB2B, documents: Sequence[Document], envelope: Envelope
    ) -> Evidence:
        document = single_document(documents, "B2B")
        try:
            validate_submit_body(json.loads(document.content))
        except ValueError as exc:
            raise DeliveryError(f"B2B body of {document.name} is not JSON: {exc}",
                                retryable=False) from exc
        url = target.url + SUBMIT_PATH
        api_key = resolve_secret(self._secrets, target.api_key_env, f"B2B {target.url}")
        headers = {"Content-Type": MEDIA_TYPE, "Accept": "application/json",
                   "Idempotency-Key": envelope.idempotency_key}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        ca_file = getattr(target, "ca_file", None)
        client = self._clients.get(ca_file)
        if client is None:
            client = self._clients[ca_file] = self._client_factory(ca_file)
        try:
            response = await client.post(url, content=document.content, headers=headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, api_key) from exc
        status = response.status_code
        answer = redact(truncate(response.text), [api_key])
        if 200 <= status < 300:
            return Evidence(
                channel="b2b", target=url, sha256=document.sha256, size=document.size,
                remote={"status": status, "body": answer,
                        "idempotency_key": envelope.idempotency_key},
                documents=(proof(document),),
            )
        retryable = status in (408, 429) or status >= 500
        key_hint = (f" (check the API key in {target.api_key_env})" if target.api_key_env
                    else " (the vendor wants an API key: set b2b.api_key_env)")
        hint = {401: key_hint,
                403: " (the API key is not allowed to submit)"}.get(status, "")
        raise DeliveryError(
            f"B2B POST {url} for {document.name} answered {status}{hint}: {answer[:200]}",
            retryable=retryable,
        )

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


def _transport_error(exc: httpx.HTTPError, url: str, api_key: str | None) -> DeliveryError:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return DeliveryError(
            f"B2B POST {url}: server certificate not trusted ({exc}); "
            "set ca_file in the vendor's b2b config or fix the server certificate",
            retryable=False,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return DeliveryError(f"B2B POST {url}: bad URL ({exc})", retryable=False)
    kind = type(exc).__name__
    return DeliveryError(redact(f"B2B POST {url} failed: {kind}: {exc}", [api_key]),
                         retryable=True)
