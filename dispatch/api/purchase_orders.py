"""/ERP/PurchaseOrder/*: accept requests, report their results, show orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, ValidationError
from starlette.concurrency import run_in_threadpool

from dispatch.api.error_answers import error_response, shape_error_response
from dispatch.api.order_detail import order_detail
from dispatch.erp import queue as erp_requests
from dispatch.erp.schemas import (
    REQUEST_MODELS,
    OrderDetail,
    RequestAccepted,
    RequestResult,
    ShapeError,
    no_nul,
)
from dispatch.store import erp_requests as request_store
from dispatch.store.engine import reading
from dispatch.store.order_reads import read_order

router = APIRouter(prefix="/ERP/PurchaseOrder", tags=["PurchaseOrder"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ShapeError, "description": "Missing or wrong API key"},
    422: {"model": ShapeError, "description": "Shape error; each message names its field path"},
}
MAX_BODY = 4 * 1024 * 1024
PENDING_MESSAGE = {
    "Created": "Received; waiting to be queued for execution",
    "Ready": "Queued; waiting to be executed",
    "Running": "Being executed",
}


def _body_spec(kind: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{REQUEST_MODELS[kind].__name__}"}}}}}


def _idempotency_key(request: Request) -> tuple[str | None, Response | None]:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None, None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        return None, error_response(422, "Idempotency-Key: must be 1-200 printable characters")
    return key, None


async def _accept(request: Request, kind: str) -> Response:
    key, problem = _idempotency_key(request)
    if problem is not None:
        return problem
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(413, f"body: larger than {MAX_BODY} bytes; split the request")
    try:
        model = REQUEST_MODELS[kind].model_validate_json(body or b"null")
    except ValidationError as exc:
        return shape_error_response(exc)
    state = request.app.state
    row = erp_requests.request_row(kind=kind, raw=body, model=model, idempotency_key=key)
    executor = state.executor
    accepted: request_store.Accepted | None = None
    try:
        if executor.group_commit and executor.accepting:
            # Group commit into the accept journal (SQLite); the 200 goes out only after
            # the commit, and never waits for the request executing.
            try:
                accepted = await executor.store(row, model)
            except RuntimeError:
                pass  # the executor stopped meanwhile: store it here instead
        if accepted is None:
            accepted = await run_in_threadpool(erp_requests.accept_row, state.engine, row=row)
            if not accepted.replayed:
                executor.notify()
        assert accepted is not None
    except request_store.IdempotencyConflict:
        return error_response(
            422, "Idempotency-Key: already used for a different request; use a new key "
            "for a new request")
    return JSONResponse({"RequestGuid": accepted.guid})


@router.post("/Create", response_model=RequestAccepted, responses=ERRORS,
             openapi_extra=_body_spec("Create"),
             summary="Create a purchase order (executed asynchronously)")
async def create(request: Request) -> Response:
    return await _accept(request, "Create")


@router.post("/UpdateQuantity", response_model=RequestAccepted, responses=ERRORS,
             openapi_extra=_body_spec("UpdateQuantity"),
             summary="Update line quantities / expected dates (executed asynchronously)")
async def update_quantity(request: Request) -> Response:
    return await _accept(request, "UpdateQuantity")


@router.post("/UpdateOrder", response_model=RequestAccepted, responses=ERRORS,
             openapi_extra=_body_spec("UpdateOrder"),
             summary="Change status and order fields (executed asynchronously)")
async def update_order(request: Request) -> Response:
    return await _accept(request, "UpdateOrder")


@router.get("/GetRequestResult", response_model=RequestResult,
            responses={**ERRORS, 404: {"model": ShapeError, "description": "Unknown GUID"}})
async def get_request_result(
    request: Request,
    requestGuid: Annotated[str, Query(max_length=64), AfterValidator(no_nul)],  # noqa: N803
) -> Response:
    state = request.app.state
    stored = _find_request(state.engine, requestGuid)
    if stored is None:
        # Still in the accept journal? A row enters the database before it leaves the
        # journal, so when neither has it, the database has it by now (or nobody does).
        journaled = await run_in_threadpool(state.executor.find_accepted, requestGuid)
        if journaled is not None and not journaled.moved:
            return _pending(state.executor, journaled.guid, "Created", journaled.order_id)
        stored = _find_request(state.engine, requestGuid)
    if stored is None:
        return error_response(404, f"requestGuid: no request with GUID '{requestGuid}'")
    if stored.status in ("Completed", "Failed"):
        return JSONResponse({"Message": stored.message, "Status": stored.status,
                             **(stored.result or {})})
    return _pending(state.executor, stored.guid, stored.status, stored.order_id)


def _pending(executor: Any, guid: str, status: str, order_id: str | None) -> Response:
    status = executor.live_status(guid) or status
    return JSONResponse({
        "Message": PENDING_MESSAGE.get(status, status), "Status": status,
        "PurchaseOrder": {"Id": order_id, "Status": "None", "Errors": [],
                          "PurchaseOrderItems": []}})


def _find_request(engine: Any, guid: str) -> request_store.RequestRecord | None:
    with reading(engine) as conn:
        return request_store.find_request(conn, guid=guid)


@router.get("/Get", response_model=OrderDetail,
            responses={**ERRORS, 404: {"model": ShapeError, "description": "Unknown order"}})
def get_order(
    request: Request,
    orderId: Annotated[str, Query(max_length=50), AfterValidator(no_nul)],  # noqa: N803
) -> Response:
    with reading(request.app.state.engine) as conn:
        record = read_order(conn, order_id=orderId)
    if record is None:
        return error_response(404, f"orderId: no purchase order '{orderId}'")
    return JSONResponse(order_detail(record))
