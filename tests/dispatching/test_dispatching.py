"""Jobs -> documents -> real loopback servers -> recorded outcomes with evidence."""

from __future__ import annotations

import asyncio
import hashlib
import json

from tests.dispatching.conftest import Env, all_channels_order


def test_every_channel_delivers_with_evidence(env: Env) -> None:
    order_id = env.order(all_channels_order())
    outcomes = asyncio.run(env.dispatcher().run_pending())
    assert {o.status for o in outcomes} == {"Delivered"}, [o.summary() for o in outcomes]
    detail = env.api.order(order_id)
    rows = detail["Deliveries"]
    assert len(rows) == 6  # 3 email attachments + 1 file + 2 B2B lines
    assert all(r["Status"] == "Delivered" and r["Attempts"] == 1 for r in rows), rows
    # email: one message, three attachments, shared Message-ID, hashes of the exact bytes
    messages = env.world.smtp.messages
    assert len(messages) == 1
    email_rows = [r for r in rows if r["Channel"] == "Email"]
    ids = {r["Evidence"]["remote"]["message_id"] for r in email_rows}
    assert len(ids) == 1
    # SFTP: the file on disk has the recorded hash
    ftp_row = next(r for r in rows if r["Channel"] == "FTP")
    on_disk = (env.world.inbox() / f"{order_id}_purchase_1.xml").read_bytes()
    assert hashlib.sha256(on_disk).hexdigest() == ftp_row["Sha256"]
    # B2B: one submission per line, with the ship-to location and the idempotency key
    subs = env.world.b2b.submissions
    assert sorted(s.body["customerReference"] for s in subs) == sorted(
        f"{order_id}/{line['Id']}" for line in detail["PurchaseOrderItems"])
    assert all(s.body["deliveryLocation"]["locationName"] == "Plant 7" for s in subs)
    b2b_rows = [r for r in rows if r["Channel"] == "B2B"]
    for row in b2b_rows:
        sub = next(s for s in subs if s.body["customerReference"].endswith(
            row["PurchaseOrderItemId"]))
        sent = json.dumps(sub.body, separators=(",", ":"), ensure_ascii=False).encode()
        assert row["Sha256"] == hashlib.sha256(sent).hexdigest()
        assert row["Evidence"]["remote"]["status"] in (200, 201)


def test_nothing_is_sent_twice_when_run_again(env: Env) -> None:
    env.order(all_channels_order())
    dispatcher = env.dispatcher()
    asyncio.run(dispatcher.run_pending())
    assert asyncio.run(dispatcher.run_pending()) == []
    assert len(env.world.smtp.messages) == 1 and len(env.world.b2b.submissions) == 2


def test_transient_failure_is_retried_then_delivered(env: Env) -> None:
    env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}}))
    env.world.b2b.fail_next(503)
    dispatcher = env.dispatcher()
    first = asyncio.run(dispatcher.run_pending())
    assert sorted(o.status for o in first) == ["Delivered", "Failed"]
    failed = next(o for o in first if o.status == "Failed")
    assert failed.retryable and failed.next_attempt_at is not None and "503" in failed.error
    # not due yet: nothing to do
    assert asyncio.run(dispatcher.run_pending()) == []


class Clock:
    def __init__(self) -> None:
        from dispatch.models import utcnow

        self.now = utcnow()

    def __call__(self):  # noqa: ANN204
        return self.now

    def advance(self, seconds: float) -> None:
        import datetime as dt

        self.now += dt.timedelta(seconds=seconds)


def test_retry_when_due_then_failed_for_good(env: Env) -> None:
    order_id = env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}},
                                            PurchaseOrderItems=[{"ItemId": "DRILL-5",
                                                                 "TotalQuantity": 1}]))
    clock = Clock()
    dispatcher = env.dispatcher(clock=clock)
    env.world.b2b.fail_next(503, times=3)  # retry_delays=[0.2, 0.2]: three attempts in all
    first = asyncio.run(dispatcher.run_pending())
    assert [o.status for o in first] == ["Failed"] and "answered 503" in first[0].error
    clock.advance(0.25)
    second = asyncio.run(dispatcher.run_pending())
    assert [o.attempts for o in second] == [2] and "answered 503" in second[0].error
    clock.advance(0.25)
    last = asyncio.run(dispatcher.run_pending())
    assert [(o.status, o.attempts, o.next_attempt_at) for o in last] == [("Failed", 3, None)]
    assert "answered 503" in last[0].error
    clock.advance(3600)
    assert asyncio.run(dispatcher.run_pending()) == []  # exhausted: never again by itself
    row = env.api.order(order_id)["Deliveries"][0]
    assert (row["Status"], row["Attempts"]) == ("Failed", 3) and "503" in row["Error"]
    assert env.world.b2b.submissions == []


def test_permanent_failure_is_not_retried(env: Env) -> None:
    env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}}))
    env.world.b2b.fail_next(400, times=2)
    outcomes = asyncio.run(env.dispatcher().run_pending())
    failed = [o for o in outcomes if o.status == "Failed"]
    assert failed and all(not o.retryable and o.next_attempt_at is None for o in failed)


def test_cancellation_waits_for_the_purchase_and_b2b_is_unsupported(env: Env) -> None:
    order_id = env.order(all_channels_order(Status="Cancelled"))
    outcomes = asyncio.run(env.dispatcher().run_pending())
    kinds = [(o.kind, o.channel) for o in outcomes if o.status == "Delivered"]
    first_cancel = next(i for i, k in enumerate(kinds) if k[0] == "cancellation")
    assert all(k[0] == "purchase" for k in kinds[:first_cancel])
    rows = env.api.order(order_id)["Deliveries"]
    cancel_b2b = [r for r in rows if r["Kind"] == "cancellation" and r["Channel"] == "B2B"]
    assert cancel_b2b and all(r["Status"] == "Unsupported" for r in cancel_b2b)
    subjects = [str(m.message["Subject"]) for m in env.world.smtp.messages]
    assert len(subjects) == 2 and "CANCELLATION" in subjects[1]


def test_dry_run_renders_without_sending_or_writing(env: Env) -> None:
    order_id = env.order(all_channels_order())
    before = env.api.order(order_id)["Deliveries"]
    outcomes = asyncio.run(env.dispatcher().dry_run())
    assert len(outcomes) == 4 and {o.status for o in outcomes} == {"Skipped"}
    assert all("dry run" in (o.error or "") for o in outcomes)
    assert env.api.order(order_id)["Deliveries"] == before
    assert env.world.smtp.messages == [] and env.world.b2b.submissions == []
    assert list(env.world.inbox().iterdir()) == []


def test_a_send_that_never_records_is_not_repeated_past_the_attempt_limit(env: Env) -> None:
    """attempts counted before each send: after len(delays)+1 unrecorded attempts (a process
    dying during the send each time), the delivery fails instead of being sent again."""
    from sqlalchemy import update

    from dispatch.models import Delivery

    order_id = env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}},
                                            PurchaseOrderItems=[{"ItemId": "DRILL-5",
                                                                 "TotalQuantity": 1}]))
    with env.engine.begin() as conn:  # as if three attempts had started and died
        conn.execute(update(Delivery.__table__).values(attempts=3))
    outcomes = asyncio.run(env.dispatcher().run_pending())
    assert [(o.status, o.retryable) for o in outcomes] == [("Failed", False)]
    assert env.world.b2b.submissions == []
    row = env.api.order(order_id)["Deliveries"][0]
    assert row["Status"] == "Failed" and "without a recorded outcome" in row["Error"]


def test_b2b_retry_sends_the_first_body_even_if_reference_data_changed(env: Env) -> None:
    from dispatch.reference_data import parse_reference_text
    from dispatch.store.reference import upsert_reference_data

    env.order(all_channels_order(SendOptions={"Channel": {"IsB2B": True}},
                                 PurchaseOrderItems=[{"ItemId": "DRILL-5", "TotalQuantity": 1}]))
    clock = Clock()
    dispatcher = env.dispatcher(clock=clock)
    env.world.b2b.fail_next(503)
    asyncio.run(dispatcher.run_pending())
    data = env.world.reference_data_dict()
    data["items"][0]["vendors"]["ACME"]["atelier_code"] = 999999  # changed meanwhile
    import yaml

    upsert_reference_data(env.engine, parse_reference_text(yaml.safe_dump(data), "x.yaml"),
                          source="x.yaml", templates_dir=env.settings.templates_dir)
    clock.advance(1)
    assert [o.status for o in asyncio.run(dispatcher.run_pending())] == ["Delivered"]
    (submission,) = env.world.b2b.submissions
    assert submission.body["atelierCode"] == 120045  # the body of the first attempt


def test_run_pending_hands_outcomes_over_without_keeping_them(env: Env) -> None:
    from dispatch.dispatching.outcomes import Tally

    ids = [env.order(all_channels_order()) for _ in range(3)]
    tally = Tally()
    kept = asyncio.run(env.dispatcher().run_pending(concurrency=2, on_outcome=tally.add))
    assert kept == []  # a run of any size: nothing accumulates in the dispatcher
    assert tally.counts == {"Delivered": 12} and tally.failed == []
    for order_id in ids:
        assert {r["Status"] for r in env.api.order(order_id)["Deliveries"]} == {"Delivered"}


def test_recorded_outcomes_rebuild_a_lost_tasks_sends_from_the_database(env: Env) -> None:
    from dispatch.store import jobs as job_store
    from dispatch.store.engine import reading

    sent = env.order(all_channels_order())
    asyncio.run(env.dispatcher().run_pending())
    waiting = env.order(all_channels_order())  # claimed by nobody yet: still Pending
    with reading(env.engine) as conn:
        by_order = {r.order_id: r.job_id for r in job_store.list_deliveries(conn)}
    outcomes = env.dispatcher().recorded_outcomes([by_order[sent], by_order[waiting]],
                                                  reason="task crashed: boom")
    assert len(outcomes) == 12  # one per delivery row of both orders
    assert {o.status for o in outcomes if o.order_id == sent} == {"Delivered"}
    lost = [o for o in outcomes if o.order_id == waiting]
    assert {(o.status, o.error) for o in lost} == {("Failed", "task crashed: boom")}
