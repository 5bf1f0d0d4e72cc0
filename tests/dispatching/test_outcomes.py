"""Outcome tallies (bounded memory for runs of any size) and the per-order log line."""

from __future__ import annotations

import datetime as dt

from dispatch.dispatching.outcomes import Outcome, Tally, order_summary
from dispatch.vocabulary import SendStatus


def outcome(order: str, status: SendStatus = SendStatus.DELIVERED, channel: str = "Email",
            retry_at: dt.datetime | None = None) -> Outcome:
    return Outcome(order, "ACME", "purchase", 1, channel, "PDF+Excel", "buyer@acme.test",
                   status, 1, error=None if status is SendStatus.DELIVERED else "boom",
                   next_attempt_at=retry_at)


def test_tally_counts_everything_but_keeps_only_the_first_problems() -> None:
    tally = Tally(keep=3)
    for i in range(10):
        tally.add(outcome(f"PO{i}", SendStatus.FAILED))
    tally.add(outcome("PO99"))
    assert tally.counts == {"Failed": 10, "Delivered": 1} and tally.sends == 11
    assert tally.failed == 10 and tally.retrying == 0
    assert [o.order_id for o in tally.problems] == ["PO0", "PO1", "PO2"]
    assert tally.next_retry_at is None
    text = tally.problem_text()
    assert "PO2 purchase #1 to ACME via Email" in text and "PO3" not in text
    assert text.endswith("and 7 more (`dispatch deliveries --status Failed` or `--waiting`)")
    assert repr(tally) == "Tally(1 Delivered, 10 Failed)"


def test_a_retrying_send_is_not_a_failure_and_names_the_next_retry() -> None:
    tally = Tally()
    late, early = dt.datetime(2026, 1, 1, 12, 0, 5), dt.datetime(2026, 1, 1, 12, 0, 1)
    tally.add(outcome("PO1", SendStatus.RETRYING, retry_at=late))
    tally.add(outcome("PO2", SendStatus.RETRYING, retry_at=early))
    assert (tally.failed, tally.retrying, tally.next_retry_at) == (0, 2, early)
    assert tally.describe() == "2 Retrying (next retry 12:00:01 UTC)"
    assert "attempt 1 failed, retry at 12:00:05 UTC: boom" in tally.problems[0].summary()


def test_tally_merge_adds_counts_and_respects_the_bound() -> None:
    a, b = Tally(keep=2), Tally()
    a.add(outcome("PO1", SendStatus.FAILED))
    retry = dt.datetime(2026, 1, 1)
    for i in range(3):
        b.add(outcome(f"PO{10 + i}", SendStatus.RETRYING, retry_at=retry))
    b.add(outcome("PO20"))
    a.merge(b)
    assert a.counts == {"Failed": 1, "Retrying": 3, "Delivered": 1}
    assert [o.order_id for o in a.problems] == ["PO1", "PO10"] and a.next_retry_at == retry


def test_order_summary_says_what_went_where() -> None:
    line = order_summary([outcome("PO7"), outcome("PO7", channel="FTP")])
    assert line == ("PO7 purchase #1 to ACME: Email PDF+Excel delivered to buyer@acme.test; "
                    "FTP PDF+Excel delivered to buyer@acme.test")
