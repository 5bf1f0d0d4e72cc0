"""The response deadline (SPEC 8) with a controllable clock: Overdue once, one reminder
dispatch (Kind reminder, numbered, an email with the reminder PDF, recorded with evidence,
never sent twice), and a late response still counts. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader

from dispatch.models import utcnow
from dispatch.responses.deadlines import sweep
from tests.dispatching.conftest import Env
from tests.responses.conftest import load_responses, post
from tests.responses.documents import SC2, peppol
from tests.responses.test_http_intake import acme_order


def test_overdue_once_reminded_once_and_a_late_answer_counts(answering: Env) -> None:
    load_responses(answering, ACME={"key_env": "ACME_RESPONSE_KEY", "within": "90s"})
    order_id, _lines = acme_order(answering)
    delivered = answering.api.order(order_id)
    due = dt.datetime.fromisoformat(delivered["Response"]["DueBy"].rstrip("Z"))
    first = min(dt.datetime.fromisoformat(d["DeliveredAt"].rstrip("Z"))
                for d in delivered["Deliveries"])
    assert abs((due - first).total_seconds() - 90) < 0.01  # within: 90s of the delivery

    assert sweep(answering.engine, now=due - dt.timedelta(seconds=1)) == []
    assert answering.api.order(order_id)["Response"]["Status"] == "Awaiting"

    later = due + dt.timedelta(seconds=30)
    flagged = sweep(answering.engine, now=later)
    assert [(f.order_id, f.dispatch_number, f.reminder_number) for f in flagged] == \
        [(order_id, 1, 2)]
    assert flagged[0].event_payload["order_id"] == order_id
    assert sweep(answering.engine, now=later + dt.timedelta(minutes=5)) == []  # once

    detail = answering.api.order(order_id)
    assert detail["Response"]["Status"] == "Overdue"
    assert detail["Response"]["DispatchNumber"] == 1
    reminder = [d for d in detail["Deliveries"] if d["Kind"] == "reminder"]
    assert [(d["Channel"], d["Format"], d["Status"], d["DispatchNumber"], d["DocumentName"])
            for d in reminder] == [("Email", "PDF", "Pending", 2,
                                    f"{order_id}_reminder_2.pdf")]
    overdue = answering.cli("responses", "--overdue", "--json")
    assert [(r["order"], r["dispatch"], r["reminder"]) for r in overdue] == \
        [(order_id, 1, "reminder #2")]

    sent_before = len(answering.world.smtp.messages)
    outcomes = answering.run_due(clock=lambda: later + dt.timedelta(seconds=1))
    assert [(o.kind, o.status) for o in outcomes] == [("reminder", "Delivered")]
    assert answering.run_due(clock=lambda: later + dt.timedelta(hours=1)) == []
    mails = answering.world.smtp.messages[sent_before:]
    assert len(mails) == 1
    message = mails[0].message
    assert order_id in message["Subject"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"{order_id}_reminder_2.pdf"
    text = PdfReader(io.BytesIO(attachment.get_payload(decode=True))).pages[0].extract_text()
    assert "REMINDER" in text and f"purchase order {order_id}" in text
    (sent,) = [d for d in answering.api.order(order_id)["Deliveries"] if d["Kind"] == "reminder"]
    assert sent["Status"] == "Delivered" and sent["Sha256"] and sent["Evidence"]

    # A late response still counts; the order is no longer overdue.
    late = post(answering, peppol(SC2, order_id=order_id))
    assert late.status_code == 200, late.text
    detail = answering.api.order(order_id)
    assert (detail["Response"]["Status"], detail["Response"]["DispatchNumber"]) == \
        ("Accepted", 1)
    assert answering.cli("responses", "--overdue", "--json") == []
    assert sweep(answering.engine, now=later + dt.timedelta(days=1)) == []


def test_no_deadline_without_within_and_none_once_answered(answering: Env) -> None:
    order_id, lines = acme_order(answering)  # ACME: within 1h
    assert post(answering, peppol(SC2, order_id=order_id)).status_code == 200
    assert sweep(answering.engine, now=utcnow() + dt.timedelta(days=2)) == []
    assert answering.api.order(order_id)["Response"]["Status"] == "Accepted"
