"""B2B: the vendor's ExternalPurchaseOrders API (seed 000), one POST per order line.

The body is a document rendered before the send (``dispatch.documents.b2b_line``), checked
again here so a bad address is never sent; the channel POSTs the document's exact bytes
with an ``Idempotency-Key`` header and, when the vendor names ``api_key_env``,
``Authorization: Bearer <value>``.

Outcome: 2xx delivered; 408, 429, 5xx and connection errors retryable; other answers
(4xx, unexpected 3xx) permanent.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Sequence
from typing import ClassVar

import httpx

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    Envelope,
    Evidence,
    SecretResolver,
    default_secrets,
    delivery_error,
    proof,
    redact,
    resolve_secret,
    single_document,
    truncate,
    unexpected_error,
)
from dispatch.documents.b2b_line import MEDIA_TYPE, validate_submit_body
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorB2B

SUBMIT_PATH = "/api/external/purchaseorders/submit"

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
        api_key = resolve_secret(self._secrets, target.api_key_env, f"B2B {target.url}",
                                 header=True)
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
            error = None
        except httpx.HTTPError as exc:
            error = _transport_error(exc, url, api_key)
        except Exception as exc:
            error = unexpected_error(exc, what=f"B2B POST {url}", secrets=[api_key])
        if error is not None:
            raise error  # outside the except: the raw exception must not ride along
        status = response.status_code
        answer = truncate(redact(response.text, [api_key]))
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
        text = (f"B2B POST {url}: server certificate not trusted ({exc}); "
                "set ca_file in the vendor's b2b config or fix the server certificate")
        retryable = False
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        text, retryable = f"B2B POST {url}: bad URL ({exc})", False
    elif isinstance(exc, httpx.LocalProtocolError):
        # We built a request HTTP cannot carry (e.g. a header value): a retry sends it again.
        text, retryable = f"B2B POST {url}: request refused by the HTTP client ({exc})", False
    else:
        text, retryable = f"B2B POST {url} failed: {type(exc).__name__}: {exc}", True
    return delivery_error(text, retryable=retryable, cause=exc, secrets=[api_key])
