"""Outcome tallies (bounded memory for runs of any size) and the per-order log line."""

from __future__ import annotations

import datetime as dt

from dispatch.dispatching.outcomes import Outcome, Tally, order_summary


def outcome(order: str, status: str = "Delivered", channel: str = "Email",
            retry: bool = False) -> Outcome:
    return Outcome(order, "ACME", "purchase", 1, channel, "PDF+Excel", "buyer@acme.test",
                   status, 1, error="boom" if status == "Failed" else None,
                   next_attempt_at=dt.datetime(2026, 1, 1) if retry else None)


def test_tally_counts_everything_but_keeps_only_the_first_failures() -> None:
    tally = Tally(keep_failed=3)
    for i in range(10):
        tally.add(outcome(f"PO{i}", "Failed"))
    tally.add(outcome("PO99"))
    assert tally.counts == {"Failed": 10, "Delivered": 1} and tally.sends == 11
    assert tally.failed_total == 10 and [o.order_id for o in tally.failed] == ["PO0", "PO1",
                                                                              "PO2"]
    assert not tally.retry_scheduled
    text = tally.failure_text()
    assert "PO2 purchase #1 to ACME via Email" in text and "PO3" not in text
    assert text.endswith("and 7 more (`dispatch deliveries --status Failed`)")
    assert repr(tally) == "Tally(1 Delivered, 10 Failed)"


def test_tally_merge_adds_counts_and_respects_the_bound() -> None:
    a, b = Tally(keep_failed=2), Tally()
    a.add(outcome("PO1", "Failed"))
    for i in range(3):
        b.add(outcome(f"PO{10 + i}", "Failed", retry=True))
    b.add(outcome("PO20"))
    a.merge(b)
    assert a.counts == {"Failed": 4, "Delivered": 1} and a.failed_total == 4
    assert [o.order_id for o in a.failed] == ["PO1", "PO10"] and a.retry_scheduled


def test_order_summary_says_what_went_where() -> None:
    line = order_summary([outcome("PO7"), outcome("PO7", channel="FTP")])
    assert line == ("PO7 purchase #1 to ACME: Email PDF+Excel delivered to buyer@acme.test; "
                    "FTP PDF+Excel delivered to buyer@acme.test")
