"""Order responses (SPEC 8): what a vendor's answer means, what it answers, when it is late.

Pure: no session, no I/O, no clock (``now`` is passed in). The parser
(``dispatch/responses/documents.py``) reads a document into a :class:`ParsedResponse` of
plain text; the rules here decide:

- **Meaning.** UBL ``OrderResponseCode`` (UNCL 4343) ``AB`` Acknowledged, ``AP`` Accepted,
  ``RE`` Rejected, ``CA`` ConditionallyAccepted; cXML ``ConfirmationHeader@type`` ``accept``
  Accepted, ``reject`` Rejected, ``detail``/``allDetail``/``except``/``backordered``/
  ``replace`` ConditionallyAccepted. A UBL line's ``LineStatusCode`` (UNCL 1229): 5 (and 42,
  already delivered) Accepted, 3 (and 1) ConditionallyAccepted, 7 Rejected; none: the
  document's status. A cXML line: Accepted when all its ``ConfirmationStatus`` portions are
  ``accept``, Rejected when all are ``reject``, else ConditionallyAccepted.
- **Lines.** ``ConfirmedQuantity`` is the quantity the vendor states (UBL ``LineItem/
  Quantity``; cXML: the sum of the portions that will ship: accept, detail, allDetail,
  backordered); without one, an accepted line confirms what was ordered (Total − Cancelled),
  a rejected line 0, an acknowledged one nothing yet. ``PromisedDate``: the line's
  ``PromisedDeliveryPeriod/EndDate``, else ``StartDate``, else the document's (UBL); the
  latest ``deliveryDate`` of the shipping portions (cXML). Lines the document does not
  mention take the document's status, except when it is ConditionallyAccepted: then a UBL
  response and cXML ``except``/``replace``/``backordered`` accept them as ordered, and cXML
  ``detail``/``allDetail`` leave them as an earlier response left them.
- **Matching.** The order is the document's order reference, for that vendor; lines by
  ``LineItem/ID`` (then ``OrderLineReference/LineID``) or, in cXML, an ``Extrinsic
  PurchaseOrderItemId`` or ``lineNumber`` (the line's position, from 1). The dispatch
  answered is the one the document names (UBL ``OrderChangeDocumentReference/ID``
  ``{OrderId}-{n}``; cXML ``OrderReference/DocumentReference@payloadID``
  ``{OrderId}.{n}@…``), else the order's latest delivered dispatch. Anything that does not
  match is an *unmatched* document, named by element: kept, listed, never applied.
- **Deadline.** With ``responses.within``, a response to a delivered purchase or change
  dispatch is due that long after its first delivery. The order's latest such dispatch is
  the one awaited; a response to it (or to a later dispatch) answers it; a cancellation
  after it ends the wait. Overdue once, and a late response still counts.
- **What the order shows**: :func:`response_view`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from dispatch.vocabulary import DispatchKind, ResponseStatus

S = ResponseStatus
UBL_CODES: Mapping[str, ResponseStatus] = {
    "AB": S.ACKNOWLEDGED, "AP": S.ACCEPTED, "RE": S.REJECTED, "CA": S.CONDITIONALLY_ACCEPTED}
CXML_TYPES: Mapping[str, ResponseStatus] = {
    "accept": S.ACCEPTED, "reject": S.REJECTED, "detail": S.CONDITIONALLY_ACCEPTED,
    "allDetail": S.CONDITIONALLY_ACCEPTED, "except": S.CONDITIONALLY_ACCEPTED,
    "backordered": S.CONDITIONALLY_ACCEPTED, "replace": S.CONDITIONALLY_ACCEPTED}
UBL_LINE_CODES: Mapping[str, ResponseStatus] = {
    "5": S.ACCEPTED, "42": S.ACCEPTED, "3": S.CONDITIONALLY_ACCEPTED,
    "1": S.CONDITIONALLY_ACCEPTED, "7": S.REJECTED}
CXML_SHIPPING = frozenset({"accept", "detail", "allDetail", "backordered"})
# cXML: lines a detail/allDetail confirmation does not mention keep their earlier status.
CXML_KEEPS_UNMENTIONED = frozenset({"detail", "allDetail"})
ANSWERABLE = (DispatchKind.PURCHASE, DispatchKind.CHANGE, DispatchKind.CANCELLATION)
AWAITED = (DispatchKind.PURCHASE, DispatchKind.CHANGE)

UBL = "OrderResponse"
CXML = "ConfirmationRequest"

EVENT_RECEIVED = "purchase-order.response-received"
EVENT_REJECTED = "purchase-order.rejected"
EVENT_OVERDUE = "purchase-order.response-overdue"


# --- what the parser reads --------------------------------------------------------------


@dataclass(frozen=True)
class ResponsePortion:
    """cXML: one ``ConfirmationStatus`` of a line (type, quantity, deliveryDate)."""

    type: str
    quantity: str | None
    delivery_date: str | None


@dataclass(frozen=True)
class ResponseLine:
    """One line of a response, as written. ``element`` names it in errors."""

    element: str
    ids: tuple[tuple[str, str], ...]  # (element, our PurchaseOrderItemId?) in preference order
    line_number: str | None = None  # cXML lineNumber (the line's position, from 1)
    code: str | None = None  # UBL LineStatusCode
    quantity: str | None = None  # UBL LineItem/Quantity
    end_date: str | None = None
    start_date: str | None = None
    portions: tuple[ResponsePortion, ...] = ()  # cXML


@dataclass(frozen=True)
class ParsedResponse:
    """What SPEC 8 reads from a UBL OrderResponse or a cXML ConfirmationRequest."""

    document_type: str  # UBL | CXML
    document_id: str | None
    order_reference: str
    order_element: str  # where the order reference was read, for messages
    code: str
    code_element: str
    dispatch_reference: str | None = None
    dispatch_element: str | None = None
    vendor_order_id: str | None = None
    note: str | None = None
    end_date: str | None = None
    start_date: str | None = None
    lines: tuple[ResponseLine, ...] = ()


def status_of(parsed: ParsedResponse) -> ResponseStatus | None:
    """The document's status; None when its code is not one SPEC 8 knows."""
    table = UBL_CODES if parsed.document_type == UBL else CXML_TYPES
    return table.get(parsed.code)


def code_problem(parsed: ParsedResponse) -> str | None:
    """A message naming the code element when the code is unknown (a 400)."""
    if status_of(parsed) is not None:
        return None
    table = UBL_CODES if parsed.document_type == UBL else CXML_TYPES
    return (f"{parsed.code_element}: {parsed.code!r} is not a response code this service "
            f"reads; use one of {', '.join(table)}")


# --- matching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLineFacts:
    id: str
    position: int  # from 1, as documents number lines
    ordered: int  # Total − Cancelled


@dataclass(frozen=True)
class DispatchFacts:
    number: int
    kind: DispatchKind
    delivered_at: dt.datetime | None  # the first delivery's time; None: never delivered


@dataclass(frozen=True)
class OrderFacts:
    """What matching needs of the referenced order."""

    id: str
    vendor_id: str
    lines: tuple[OrderLineFacts, ...]
    dispatches: tuple[DispatchFacts, ...]


@dataclass(frozen=True)
class LineAnswer:
    """A line as the vendor answered it (stored as JSON on the response)."""

    line_id: str
    status: ResponseStatus
    confirmed_quantity: int | None
    promised_date: str | None

    def as_json(self) -> dict[str, Any]:
        return {"PurchaseOrderItemId": self.line_id, "Status": str(self.status),
                "ConfirmedQuantity": self.confirmed_quantity,
                "PromisedDate": self.promised_date}


@dataclass(frozen=True)
class Matched:
    order_id: str
    dispatch_number: int
    status: ResponseStatus
    lines: tuple[LineAnswer, ...]


@dataclass(frozen=True)
class Unmatched:
    """A valid document that does not match: ``problem`` names the element (a 422)."""

    problem: str
    order_id: str | None = None  # set when the order itself was found
    dispatch_number: int | None = None


def match(parsed: ParsedResponse, *, vendor_id: str, order: OrderFacts | None
          ) -> Matched | Unmatched:
    """Which order, dispatch and lines ``parsed`` answers, or why it answers none."""
    status = status_of(parsed)
    assert status is not None, "check code_problem first"
    ref = parsed.order_reference
    if order is None:
        return Unmatched(f"{parsed.order_element}: no purchase order {ref!r}")
    if order.vendor_id != vendor_id:
        return Unmatched(f"{parsed.order_element}: purchase order {ref!r} is not an order "
                         f"of vendor {vendor_id!r}")
    found = _dispatch(parsed, order)
    if isinstance(found, str):
        return Unmatched(found, order_id=order.id)
    answers = _answers(parsed, order, status)
    if isinstance(answers, str):
        return Unmatched(answers, order_id=order.id, dispatch_number=found)
    return Matched(order.id, found, status, answers)


def dispatch_number_of(reference: str, *, order_id: str, cxml: bool) -> int | None:
    """The dispatch number a document reference names (``PO1-2``, ``PO1.2@buyer``, ``2``)."""
    text = reference.strip()
    if cxml:
        text = text.split("@", 1)[0]
        prefix = f"{order_id}."
    else:
        prefix = f"{order_id}-"
    if text.startswith(prefix):
        text = text[len(prefix):]
    return int(text) if text.isdigit() and len(text) < 10 else None


def _dispatch(parsed: ParsedResponse, order: OrderFacts) -> int | str:
    by_number = {d.number: d for d in order.dispatches if d.kind in ANSWERABLE}
    cxml = parsed.document_type == CXML
    if parsed.dispatch_reference:
        number = dispatch_number_of(parsed.dispatch_reference, order_id=order.id, cxml=cxml)
        if number is not None or not cxml:  # a cXML payloadID may be the vendor's own
            chosen = by_number.get(number) if number is not None else None
            if chosen is None:
                return (f"{parsed.dispatch_element}: {parsed.dispatch_reference!r} names no "
                        f"dispatch of order {order.id} (ours are {order.id}-1, {order.id}-2…)")
            if chosen.delivered_at is None:
                return (f"{parsed.dispatch_element}: dispatch {chosen.number} of order "
                        f"{order.id} was never delivered")
            return chosen.number
    delivered = [d.number for d in by_number.values() if d.delivered_at is not None]
    if not delivered:
        return (f"{parsed.order_element}: order {order.id} has no delivered dispatch to "
                "answer yet")
    return max(delivered)


def _answers(parsed: ParsedResponse, order: OrderFacts, status: ResponseStatus
             ) -> tuple[LineAnswer, ...] | str:
    by_id = {line.id: line for line in order.lines}
    by_position = {line.position: line for line in order.lines}
    doc_date = parsed.end_date or parsed.start_date
    answers: dict[str, LineAnswer] = {}
    for rl in parsed.lines:
        line = None
        for _element, value in rl.ids:
            line = by_id.get(value.strip())
            if line is not None:
                break
        if line is None and rl.line_number is not None:
            number = rl.line_number.strip()
            line = by_position.get(int(number)) if number.isdigit() else None
            if line is None:
                return (f"{rl.element}@lineNumber: no line {rl.line_number!r} on order "
                        f"{order.id} (it has {len(order.lines)})")
        if line is None:
            element, value = rl.ids[0] if rl.ids else (rl.element, "")
            return f"{element}: no line {value!r} on order {order.id}"
        if line.id in answers:
            return f"{rl.element}: line {line.id} is answered twice"
        answer = _line_answer(parsed, rl, line, status, doc_date)
        if isinstance(answer, str):
            return answer
        answers[line.id] = answer
    keeps = parsed.document_type == CXML and parsed.code in CXML_KEEPS_UNMENTIONED
    for line in order.lines:
        if line.id in answers or (status is S.CONDITIONALLY_ACCEPTED and keeps):
            continue
        line_status = S.ACCEPTED if status is S.CONDITIONALLY_ACCEPTED else status
        answers[line.id] = LineAnswer(line.id, line_status,
                                      _default_quantity(line_status, line), doc_date)
    return tuple(answers[line.id] for line in order.lines if line.id in answers)


def _default_quantity(status: ResponseStatus, line: OrderLineFacts) -> int | None:
    if status in (S.ACCEPTED, S.CONDITIONALLY_ACCEPTED):
        return line.ordered
    if status is S.REJECTED:
        return 0
    return None


def _quantity(text: str, element: str) -> int | str:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return f"{element}: {text!r} is not a quantity"
    if value < 0 or value != value.to_integral_value():
        return f"{element}: {text!r} is not a whole, non-negative quantity (purchase units)"
    return int(value)


def _line_answer(parsed: ParsedResponse, rl: ResponseLine, line: OrderLineFacts,
                 status: ResponseStatus, doc_date: str | None) -> LineAnswer | str:
    if parsed.document_type == CXML:
        return _cxml_line(parsed, rl, line, status, doc_date)
    line_status = status
    if rl.code is not None:
        line_status = UBL_LINE_CODES.get(rl.code.strip(), status)
    quantity: int | str | None
    if rl.quantity is not None:
        quantity = _quantity(rl.quantity, f"{rl.element}/Quantity")
        if isinstance(quantity, str):
            return quantity
    else:
        quantity = _default_quantity(line_status, line)
    return LineAnswer(line.id, line_status, quantity,
                      _day(rl.end_date or rl.start_date or doc_date))


def _cxml_line(parsed: ParsedResponse, rl: ResponseLine, line: OrderLineFacts,
               status: ResponseStatus, doc_date: str | None) -> LineAnswer | str:
    types = {p.type for p in rl.portions}
    if not types or types == {"accept"} or parsed.code == "accept":
        line_status = S.ACCEPTED
    elif types == {"reject"}:
        line_status = S.REJECTED
    else:
        line_status = S.CONDITIONALLY_ACCEPTED
    total = 0
    counted = False
    dates = []
    for index, portion in enumerate(rl.portions, start=1):
        if portion.type not in CXML_SHIPPING:
            continue
        element = f"{rl.element}/ConfirmationStatus[{index}]@quantity"
        if portion.quantity is not None:
            quantity = _quantity(portion.quantity, element)
            if isinstance(quantity, str):
                return quantity
            total += quantity
            counted = True
        if portion.delivery_date:
            dates.append(_day(portion.delivery_date))
    confirmed = total if counted else _default_quantity(line_status, line)
    if not counted and line_status is S.REJECTED:
        confirmed = 0
    promised = max((d for d in dates if d), default=None) or _day(doc_date)
    del status
    return LineAnswer(line.id, line_status, confirmed, promised)


def _day(text: str | None) -> str | None:
    """A date (``2024-05-20``) from a date or date-time text; other text as written."""
    if not text:
        return None
    text = text.strip()
    found = re.match(r"\d{4}-\d{2}-\d{2}", text)
    return found.group(0) if found else text


# --- events -----------------------------------------------------------------------------


def received_events(status: ResponseStatus) -> list[str]:
    """The events a recorded, matched response causes (SPEC 8)."""
    events = [EVENT_RECEIVED]
    if status is S.REJECTED:
        events.append(EVENT_REJECTED)
    return events


# --- the deadline ------------------------------------------------------------------------

_WITHIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_within(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``24h``, ``2d`` as a duration; ValueError naming the format."""
    found = _WITHIN.match(str(text))
    if found is None:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit s, m, h or d "
                         "(e.g. 90s, 30m, 24h, 2d)")
    seconds = float(found.group(1)) * _UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class AnsweredDispatch:
    """A matched response, as the deadline and the view read it."""

    response_id: int
    dispatch_number: int
    status: ResponseStatus
    received_at: dt.datetime
    vendor_order_id: str | None = None
    lines: tuple[Mapping[str, Any], ...] = ()


def awaited_dispatch(dispatches: Sequence[DispatchFacts],
                     responses: Sequence[AnsweredDispatch]) -> DispatchFacts | None:
    """The delivered purchase/change dispatch a response is still awaited for (None: none
    is: nothing delivered, already answered, or cancelled since)."""
    delivered = [d for d in dispatches if d.delivered_at is not None and d.kind in ANSWERABLE]
    if not delivered:
        return None
    latest = max(delivered, key=lambda d: d.number)
    if latest.kind not in AWAITED:
        return None  # a cancellation ends the wait
    if any(r.dispatch_number >= latest.number for r in responses):
        return None
    return latest


@dataclass(frozen=True)
class OverdueDispatch:
    order_id: str
    vendor_id: str
    dispatch_number: int
    delivered_at: dt.datetime
    due_by: dt.datetime


def overdue(*, order_id: str, vendor_id: str, within: dt.timedelta,
            dispatches: Sequence[DispatchFacts], responses: Sequence[AnsweredDispatch],
            flagged: Sequence[int], now: dt.datetime) -> OverdueDispatch | None:
    """The order's awaited dispatch when its response is due by ``now`` and it was not
    flagged before (``flagged``: dispatch numbers already overdue): Overdue once."""
    awaited = awaited_dispatch(dispatches, responses)
    if awaited is None or awaited.number in flagged or awaited.delivered_at is None:
        return None
    due = awaited.delivered_at + within
    if due > now:
        return None
    return OverdueDispatch(order_id, vendor_id, awaited.number, awaited.delivered_at, due)


# --- what the order shows ----------------------------------------------------------------


@dataclass(frozen=True)
class LineView:
    confirmed_quantity: int | None = None
    promised_date: str | None = None
    status: ResponseStatus | None = None
    vendor_order_id: str | None = None


@dataclass(frozen=True)
class ResponseView:
    """The order detail's ``Response`` object and its line fields."""

    status: ResponseStatus
    dispatch_number: int | None = None
    due_by: dt.datetime | None = None
    received_at: dt.datetime | None = None
    vendor_order_id: str | None = None
    lines: Mapping[str, LineView] = field(default_factory=dict)


def response_view(*, configured: bool, within: dt.timedelta | None,
                  dispatches: Sequence[DispatchFacts],
                  responses: Sequence[AnsweredDispatch], overdue_numbers: Sequence[int],
                  line_ids: Sequence[str], b2b_order_ids: Mapping[str, str]
                  ) -> ResponseView:
    """Where the vendor's answer stands. ``responses``: matched ones, in arrival order.

    Status: the awaited dispatch's state (Awaiting, or Overdue once flagged) when one is
    awaited, else the latest response's status; NotExpected when the vendor has no
    ``responses`` configuration (its answers, if any, are still shown). Each line shows the
    latest response that answered it; its VendorOrderId is the B2B answer's ``orderId``,
    else the response's.
    """
    latest = responses[-1] if responses else None
    vendor_order_id = next((r.vendor_order_id for r in reversed(responses)
                            if r.vendor_order_id), None)
    if vendor_order_id is None and b2b_order_ids:
        vendor_order_id = next(iter(b2b_order_ids.values()))
    lines: dict[str, LineView] = {}
    for line_id in line_ids:
        answer = None
        for response in reversed(responses):
            answer = next((a for a in response.lines
                           if a.get("PurchaseOrderItemId") == line_id), None)
            if answer is not None:
                break
        line_vendor_id = b2b_order_ids.get(line_id) or vendor_order_id
        if answer is None:
            lines[line_id] = LineView(vendor_order_id=line_vendor_id)
        else:
            raw_status = answer.get("Status")
            lines[line_id] = LineView(answer.get("ConfirmedQuantity"), answer.get("PromisedDate"),
                                      ResponseStatus(raw_status) if raw_status else None,
                                      line_vendor_id)
    awaited = awaited_dispatch(dispatches, responses)
    due_by = None
    if awaited is not None and within is not None and awaited.delivered_at is not None:
        due_by = awaited.delivered_at + within
    if awaited is not None and configured:
        status = S.OVERDUE if awaited.number in overdue_numbers else S.AWAITING
        return ResponseView(status, awaited.number, due_by, None, vendor_order_id, lines)
    if latest is not None:
        answered = next((d for d in dispatches if d.number == latest.dispatch_number), None)
        if answered is not None and answered.delivered_at is not None and within is not None:
            due_by = answered.delivered_at + within
        return ResponseView(latest.status, latest.dispatch_number, due_by, latest.received_at,
                            vendor_order_id, lines)
    if not configured:
        return ResponseView(S.NOT_EXPECTED, vendor_order_id=vendor_order_id, lines=lines)
    return ResponseView(S.AWAITING, vendor_order_id=vendor_order_id, lines=lines)


def b2b_order_id(evidence: Mapping[str, Any] | None) -> str | None:
    """The ``orderId`` of a B2B 2xx answer (seed 000) kept in a delivery's evidence."""
    if not evidence:
        return None
    body = (evidence.get("remote") or {}).get("body")
    if not isinstance(body, str):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    value = answer.get("orderId") if isinstance(answer, dict) else None
    return str(value) if isinstance(value, str | int) and str(value) else None
