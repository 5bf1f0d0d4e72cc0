"""rules/responses.py (SPEC 8), pure: code meanings, line matching, the dispatch answered,
the promised date's precedence, the deadline and Overdue once, with ``now`` passed in."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.rules import responses as r
from dispatch.rules.responses import (
    CXML,
    UBL,
    AnsweredDispatch,
    DispatchFacts,
    Matched,
    OrderFacts,
    OrderLineFacts,
    ParsedResponse,
    ResponseLine,
    ResponsePortion,
    Unmatched,
)
from dispatch.vocabulary import DispatchKind, ResponseStatus

S = ResponseStatus
K = DispatchKind
T0 = dt.datetime(2030, 1, 1, 12, 0, 0)
LINES = (OrderLineFacts("L1", 1, 10), OrderLineFacts("L2", 2, 4))


def order(*dispatches: DispatchFacts, vendor: str = "ACME") -> OrderFacts:
    return OrderFacts("PO1", vendor, LINES, dispatches or (DispatchFacts(1, K.PURCHASE, T0),))


def ubl(code: str = "AP", *lines: ResponseLine, **kw: object) -> ParsedResponse:
    return ParsedResponse(UBL, "R1", kw.pop("order", "PO1"), "OrderReference/ID", code,  # type: ignore[arg-type]
                          "OrderResponseCode", lines=lines, **kw)  # type: ignore[arg-type]


def cx(kind: str, *lines: ResponseLine, **kw: object) -> ParsedResponse:
    return ParsedResponse(CXML, "c-1", "PO1", "OrderReference@orderID", kind,
                          "ConfirmationHeader@type", lines=lines, **kw)  # type: ignore[arg-type]


def line(value: str, element: str = "OrderLine[1]/LineItem", **kw: object) -> ResponseLine:
    return ResponseLine(element, ((f"{element}/ID", value),), **kw)  # type: ignore[arg-type]


def matched(parsed: ParsedResponse, facts: OrderFacts | None = None) -> Matched:
    result = r.match(parsed, vendor_id="ACME", order=facts or order())
    assert isinstance(result, Matched), result
    return result


def unmatched(parsed: ParsedResponse, facts: OrderFacts | None = None) -> str:
    result = r.match(parsed, vendor_id="ACME", order=facts if facts is not None else order())
    assert isinstance(result, Unmatched), result
    return result.problem


# --- meaning ---------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "status"), [
    ("AB", S.ACKNOWLEDGED), ("AP", S.ACCEPTED), ("RE", S.REJECTED),
    ("CA", S.CONDITIONALLY_ACCEPTED)])
def test_ubl_codes(code: str, status: ResponseStatus) -> None:
    assert r.status_of(ubl(code)) is status
    assert r.code_problem(ubl(code)) is None


@pytest.mark.parametrize(("kind", "status"), [
    ("accept", S.ACCEPTED), ("reject", S.REJECTED),
    *((k, S.CONDITIONALLY_ACCEPTED)
      for k in ("detail", "allDetail", "except", "backordered", "replace"))])
def test_cxml_types(kind: str, status: ResponseStatus) -> None:
    assert r.status_of(cx(kind)) is status


@pytest.mark.parametrize("parsed", [ubl("ZZ"), ubl("accept"), cx("AP"), cx("Accept")])
def test_unknown_codes_name_the_element_and_the_choices(parsed: ParsedResponse) -> None:
    assert r.status_of(parsed) is None
    problem = r.code_problem(parsed)
    assert problem is not None and problem.startswith(parsed.code_element)
    assert ("AB, AP, RE, CA" if parsed.document_type == UBL else "accept, reject") in problem


def test_events() -> None:
    assert r.received_events(S.ACCEPTED) == [r.EVENT_RECEIVED]
    assert r.received_events(S.REJECTED) == [r.EVENT_RECEIVED, r.EVENT_REJECTED]


# --- lines -----------------------------------------------------------------------------

def test_ubl_lines_by_id_then_order_line_reference() -> None:
    by_ref = ResponseLine("OrderLine[2]/LineItem", (("OrderLine[2]/LineItem/ID", "x9"),
                                                    ("OrderLineReference/LineID", "L2")),
                          quantity="3", code="3")
    result = matched(ubl("CA", line("L1", code="5"), by_ref))
    assert [(a.line_id, a.status, a.confirmed_quantity) for a in result.lines] == [
        ("L1", S.ACCEPTED, 10), ("L2", S.CONDITIONALLY_ACCEPTED, 3)]


def test_ubl_line_status_codes_and_defaults() -> None:
    result = matched(ubl("AP", line("L1", code="7")))
    # line 1 rejected by its code (quantity 0); line 2 unmentioned: the document's status
    assert [(a.status, a.confirmed_quantity) for a in result.lines] == [
        (S.REJECTED, 0), (S.ACCEPTED, 4)]
    ack = matched(ubl("AB"))
    assert [(a.status, a.confirmed_quantity) for a in ack.lines] == [
        (S.ACKNOWLEDGED, None), (S.ACKNOWLEDGED, None)]
    # a conditionally accepted document accepts the lines it does not mention, as ordered
    ca = matched(ubl("CA", line("L1", quantity="5")))
    assert [(a.status, a.confirmed_quantity) for a in ca.lines] == [
        (S.CONDITIONALLY_ACCEPTED, 5), (S.ACCEPTED, 4)]


@pytest.mark.parametrize(("quantity", "says"), [
    ("abc", "is not a quantity"), ("-1", "non-negative"), ("2.5", "whole")])
def test_bad_quantities_are_unmatched_naming_the_element(quantity: str, says: str) -> None:
    problem = unmatched(ubl("CA", line("L1", quantity=quantity)))
    assert problem.startswith("OrderLine[1]/LineItem/Quantity") and says in problem


def test_unknown_and_repeated_lines() -> None:
    assert unmatched(ubl("AP", line("L7"))) == \
        "OrderLine[1]/LineItem/ID: no line 'L7' on order PO1"
    assert "answered twice" in unmatched(ubl("AP", line("L1"), line("L1", "OrderLine[2]")))


def test_cxml_lines_by_item_id_or_line_number() -> None:
    by_number = ResponseLine("ConfirmationItem[1]", (), line_number="2",
                             portions=(ResponsePortion("accept", "4", "2030-02-01"),))
    by_id = ResponseLine("ConfirmationItem[2]", (("Extrinsic PurchaseOrderItemId", "L1"),),
                         line_number="9", portions=(ResponsePortion("reject", "10", None),))
    result = matched(cx("except", by_number, by_id))
    assert [(a.line_id, a.status, a.confirmed_quantity, a.promised_date)
            for a in result.lines] == [("L1", S.REJECTED, 0, None),
                                       ("L2", S.ACCEPTED, 4, "2030-02-01")]
    missing = ResponseLine("ConfirmationItem[1]", (), line_number="5")
    assert unmatched(cx("accept", missing)) == \
        "ConfirmationItem[1]@lineNumber: no line '5' on order PO1 (it has 2)"


def test_cxml_portions_sum_what_ships_and_take_the_latest_date() -> None:
    split = ResponseLine("ConfirmationItem[1]", (), line_number="1", portions=(
        ResponsePortion("accept", "6", "2030-02-01"),
        ResponsePortion("backordered", "3", "2030-03-15T00:00:00+01:00"),
        ResponsePortion("reject", "1", "2030-01-01")))
    answer = matched(cx("detail", split)).lines[0]
    assert (answer.status, answer.confirmed_quantity, answer.promised_date) == \
        (S.CONDITIONALLY_ACCEPTED, 9, "2030-03-15")


def test_cxml_detail_leaves_unmentioned_lines_except_accepts_them() -> None:
    one = ResponseLine("ConfirmationItem[1]", (), line_number="1",
                       portions=(ResponsePortion("accept", "10", None),))
    assert [a.line_id for a in matched(cx("detail", one)).lines] == ["L1"]
    assert [a.line_id for a in matched(cx("allDetail", one)).lines] == ["L1"]
    assert [(a.line_id, a.status) for a in matched(cx("except", one)).lines] == [
        ("L1", S.ACCEPTED), ("L2", S.ACCEPTED)]
    assert [a.status for a in matched(cx("reject")).lines] == [S.REJECTED, S.REJECTED]


# --- promised date -----------------------------------------------------------------------

@pytest.mark.parametrize(("line_end", "line_start", "doc_end", "doc_start", "promised"), [
    ("2030-05-20", "2030-05-10", "2030-06-30", "2030-06-01", "2030-05-20"),  # line EndDate
    (None, "2030-05-10", "2030-06-30", "2030-06-01", "2030-05-10"),  # else its StartDate
    (None, None, "2030-06-30", "2030-06-01", "2030-06-30"),  # else the document's EndDate
    (None, None, None, "2030-06-01", "2030-06-01"),  # else its StartDate
    (None, None, None, None, None),
    ("2030-05-20T10:00:00Z", None, None, None, "2030-05-20"),  # a date-time: its date
])
def test_promised_date_precedence(line_end: str | None, line_start: str | None,
                                  doc_end: str | None, doc_start: str | None,
                                  promised: str | None) -> None:
    parsed = ubl("CA", line("L1", end_date=line_end, start_date=line_start),
                 end_date=doc_end, start_date=doc_start)
    first, second = matched(parsed).lines
    assert first.promised_date == promised
    assert second.promised_date == (doc_end or doc_start)  # unmentioned: the document's


# --- which order and dispatch -----------------------------------------------------------

def test_order_must_exist_and_be_the_vendors() -> None:
    assert r.match(ubl(order="PO9"), vendor_id="ACME", order=None) == \
        Unmatched("OrderReference/ID: no purchase order 'PO9'")
    problem = unmatched(ubl(), order(vendor="BOLT"))
    assert problem == "OrderReference/ID: purchase order 'PO1' is not an order of vendor 'ACME'"


DELIVERED = (DispatchFacts(1, K.PURCHASE, T0), DispatchFacts(2, K.CHANGE, T0),
             DispatchFacts(3, K.CHANGE, None))


@pytest.mark.parametrize(("parsed", "number"), [
    (ubl(), 2),  # no reference: the latest delivered dispatch
    (ubl(dispatch_reference="PO1-1", dispatch_element="OrderChangeDocumentReference/ID"), 1),
    (ubl(dispatch_reference="1", dispatch_element="OrderChangeDocumentReference/ID"), 1),
    (cx("accept", dispatch_reference="PO1.1@buyer.test",
        dispatch_element="OrderReference/DocumentReference@payloadID"), 1),
    # a cXML payloadID of the vendor's own names no dispatch of ours: the latest delivered
    (cx("accept", dispatch_reference="x-77@vendor.test",
        dispatch_element="OrderReference/DocumentReference@payloadID"), 2),
])
def test_the_dispatch_answered(parsed: ParsedResponse, number: int) -> None:
    assert matched(parsed, order(*DELIVERED)).dispatch_number == number


def test_dispatches_that_cannot_be_answered() -> None:
    facts = order(*DELIVERED)
    element = "OrderChangeDocumentReference/ID"
    assert "names no dispatch of order PO1" in unmatched(
        ubl(dispatch_reference="PO1-9", dispatch_element=element), facts)
    assert unmatched(ubl(dispatch_reference="PO1-3", dispatch_element=element), facts) == \
        f"{element}: dispatch 3 of order PO1 was never delivered"
    assert unmatched(ubl(), order(DispatchFacts(1, K.PURCHASE, None))) == \
        "OrderReference/ID: order PO1 has no delivered dispatch to answer yet"
    assert r.dispatch_number_of("PO1-12", order_id="PO1", cxml=False) == 12
    assert r.dispatch_number_of("PO1.3@b", order_id="PO1", cxml=True) == 3
    assert r.dispatch_number_of("other", order_id="PO1", cxml=False) is None


# --- the deadline ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), (" 1.5h ", 5400)])
def test_within(text: str, seconds: float) -> None:
    assert r.parse_within(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "90", "5w", "-1m", "0s", "h"])
def test_within_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="s, m, h or d|longer than 0"):
        r.parse_within(text)


WITHIN = dt.timedelta(minutes=30)


def overdue(dispatches: tuple[DispatchFacts, ...], responses: tuple[AnsweredDispatch, ...] = (),
            flagged: tuple[int, ...] = (), now: dt.datetime = T0 + WITHIN
            ) -> r.OverdueDispatch | None:
    return r.overdue(order_id="PO1", vendor_id="ACME", within=WITHIN, dispatches=dispatches,
                     responses=responses, flagged=flagged, now=now)


def answered(number: int, status: S = S.ACCEPTED) -> AnsweredDispatch:
    return AnsweredDispatch(1, number, status, T0 + dt.timedelta(hours=2))


def test_due_at_delivery_plus_within_not_before() -> None:
    purchase = (DispatchFacts(1, K.PURCHASE, T0),)
    assert overdue(purchase, now=T0 + WITHIN - dt.timedelta(seconds=1)) is None
    late = overdue(purchase)
    assert late == r.OverdueDispatch("PO1", "ACME", 1, T0, T0 + WITHIN)


def test_overdue_once() -> None:
    purchase = (DispatchFacts(1, K.PURCHASE, T0),)
    assert overdue(purchase, flagged=(1,), now=T0 + 10 * WITHIN) is None
    # a change delivered later is a new deadline, flagged on its own
    change = (*purchase, DispatchFacts(2, K.CHANGE, T0 + WITHIN))
    assert overdue(change, flagged=(1,), now=T0 + 2 * WITHIN).dispatch_number == 2  # type: ignore[union-attr]
    assert overdue(change, flagged=(1,), now=T0 + 2 * WITHIN - dt.timedelta(seconds=1)) is None


def test_a_response_or_a_cancellation_ends_the_wait() -> None:
    both = (DispatchFacts(1, K.PURCHASE, T0), DispatchFacts(2, K.CHANGE, T0))
    assert overdue(both, responses=(answered(2),)) is None
    assert overdue(both, responses=(answered(1),)) is not None  # the change is unanswered
    cancelled = (*both, DispatchFacts(3, K.CANCELLATION, T0))
    assert overdue(cancelled) is None
    assert overdue((DispatchFacts(1, K.PURCHASE, None),), now=T0 + 100 * WITHIN) is None


def test_the_view_awaiting_overdue_and_a_late_response() -> None:
    dispatches = (DispatchFacts(1, K.PURCHASE, T0),)

    def view(responses: tuple[AnsweredDispatch, ...] = (), overdue_numbers: tuple[int, ...] = (),
             configured: bool = True) -> r.ResponseView:
        return r.response_view(configured=configured, within=WITHIN, dispatches=dispatches,
                               responses=responses, overdue_numbers=overdue_numbers,
                               line_ids=["L1", "L2"], b2b_order_ids={})

    awaiting = view()
    assert (awaiting.status, awaiting.dispatch_number, awaiting.due_by) == \
        (S.AWAITING, 1, T0 + WITHIN)
    assert view(overdue_numbers=(1,)).status is S.OVERDUE
    late = AnsweredDispatch(7, 1, S.CONDITIONALLY_ACCEPTED, T0 + 2 * WITHIN, "SO-1", (
        {"PurchaseOrderItemId": "L1", "Status": "ConditionallyAccepted",
         "ConfirmedQuantity": 5, "PromisedDate": "2030-02-01"},))
    shown = view((late,), overdue_numbers=(1,))  # a late response still counts
    assert (shown.status, shown.received_at, shown.vendor_order_id) == \
        (S.CONDITIONALLY_ACCEPTED, T0 + 2 * WITHIN, "SO-1")
    assert shown.lines["L1"] == r.LineView(5, "2030-02-01", S.CONDITIONALLY_ACCEPTED, "SO-1")
    assert shown.lines["L2"] == r.LineView(vendor_order_id="SO-1")
    assert view(configured=False).status is S.NOT_EXPECTED
