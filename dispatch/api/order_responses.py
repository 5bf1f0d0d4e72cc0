"""``POST /vendor/order-responses`` (SPEC 8): a vendor's answer to an order.

The vendor is the one whose response key was presented (``api/vendor_keys.py``). Answers:
200 ``{"ResponseId", "OrderId", "Status"}`` once recorded (the same document again: the
same answer, stored once); 400 when the body is not a response document this service reads
(nothing stored); 422 when it is one that does not match (kept as *unmatched*, never
applied; the message names the element). A newly recorded, matched response is announced
(``purchase-order.response-received``, and ``purchase-order.rejected`` when it rejects).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from dispatch.api.error_answers import error_response
from dispatch.models import utcnow
from dispatch.responses.documents import ResponseDocumentError
from dispatch.responses.intake import Recorded, record_response

log = logging.getLogger("dispatch.api.order_responses")
router = APIRouter(prefix="/vendor", tags=["Order responses"])

Announcer = Callable[[str, Sequence[str], dict[str, Any]], None]

XML_BODY = {"requestBody": {"required": True, "content": {
    "application/xml": {"schema": {"type": "string", "description":
                                   "UBL OrderResponse (Peppol BIS T76/T116) or cXML "
                                   "ConfirmationRequest"}},
    "text/xml": {"schema": {"type": "string"}}}}}


def announce_to_prefect(order_id: str, events: Sequence[str], payload: dict[str, Any]) -> None:
    """Server mode (``PREFECT_API_URL`` set): emit the events like ``EventAnnouncer``."""
    if not events or not os.environ.get("PREFECT_API_URL"):
        return
    from prefect.events import emit_event

    for event in events:
        emit_event(event=event, resource={"prefect.resource.id": f"purchase-order.{order_id}",
                                          "prefect.resource.name": order_id},
                   payload=payload)


def announce(app_state: Any, recorded: Recorded) -> None:
    """Tell other systems of a new matched response (``app.state.response_announcer``
    replaces the Prefect emitter, e.g. in tests); a failure is logged, never answered."""
    events = recorded.events
    r = recorded.response
    if not events or r.order_id is None:
        return
    announcer: Announcer = getattr(app_state, "response_announcer", None) or announce_to_prefect
    payload = {"order_id": r.order_id, "vendor_id": r.vendor_id, "response_id": r.id,
               "status": str(r.status), "dispatch_number": r.dispatch_number}
    try:
        announcer(r.order_id, events, payload)
    except Exception:  # the response is recorded; an event system down must not undo that
        log.exception("announcing response %s of order %s failed", r.id, r.order_id)


def answer(recorded: Recorded) -> JSONResponse:
    r = recorded.response
    if not r.matched:
        message = r.problem or "the document does not match an order"
        return JSONResponse({"Message": message, "Errors": [message], "ResponseId": r.id,
                             "OrderId": r.order_id, "Status": "Unmatched"}, status_code=422)
    return JSONResponse({"ResponseId": r.id, "OrderId": r.order_id, "Status": str(r.status)})


@router.post("/order-responses", openapi_extra=XML_BODY,
             summary="A vendor's order response (UBL OrderResponse or cXML ConfirmationRequest)",
             responses={400: {"description": "Not a response document this service reads"},
                        401: {"description": "Missing or unknown vendor key"},
                        422: {"description": "Does not match an order; kept as unmatched"}})
async def post_order_response(request: Request) -> Response:
    vendor_id = request.state.vendor_id
    body = await request.body()
    try:
        recorded = await run_in_threadpool(
            record_response, request.app.state.engine, vendor_id=vendor_id, body=body,
            source="http", now=utcnow())
    except ResponseDocumentError as exc:
        return error_response(400, str(exc))
    await run_in_threadpool(announce, request.app.state, recorded)
    return answer(recorded)
