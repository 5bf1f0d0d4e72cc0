"""What happened to each send, and a running tally of a run of any size.

A dispatch run can cover tens of thousands of sends; :class:`Tally` keeps counts and a
bounded number of failures, so memory stays flat whatever the run's size (every outcome is
also in the database, which is the record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """What happened to one send (one row per send in the order's artifact)."""

    order_id: str
    vendor_id: str
    kind: str
    number: int
    channel: str
    formats: str
    target: str
    status: str  # Delivered | Failed | Skipped
    attempts: int
    error: str | None = None
    retryable: bool = False
    next_attempt_at: dt.datetime | None = None
    sha256: str | None = None
    evidence: dict[str, Any] | None = None

    def summary(self) -> str:
        what = f"{self.order_id} {self.kind} #{self.number} to {self.vendor_id} via {self.channel}"
        if self.status == "Delivered":
            return f"{what} ({self.formats}) delivered to {self.target}"
        if self.status == "Skipped":
            return f"{what} skipped: {self.error}"
        retry = f"; retry at {self.next_attempt_at:%H:%M:%S}" if self.next_attempt_at else ""
        return (f"{what} ({self.formats}) FAILED after {self.attempts} attempt(s): "
                f"{self.error}{retry}")


def order_summary(outcomes: Iterable[Outcome]) -> str:
    """One line for one order's sends: what went where (the log line of a clean order)."""
    items = list(outcomes)
    if not items:
        return "nothing to send"
    first = items[0]
    jobs = sorted({(o.kind, o.number) for o in items}, key=lambda k: k[1])
    head = (f"{first.order_id} " + ", ".join(f"{kind} #{n}" for kind, n in jobs)
            + f" to {first.vendor_id}")
    sends = "; ".join(f"{o.channel} {o.formats} {o.status.lower()}"
                      + (f" to {o.target}" if o.status == "Delivered" else "")
                      for o in items)
    return f"{head}: {sends}"


@dataclass
class Tally:
    """Counts by status and the first ``keep_failed`` failures of a run (bounded memory)."""

    keep_failed: int = 100
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[Outcome] = field(default_factory=list)
    failed_total: int = 0
    retry_scheduled: bool = False

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status == "Failed":
            self.failed_total += 1
            self.retry_scheduled |= outcome.next_attempt_at is not None
            if len(self.failed) < self.keep_failed:
                self.failed.append(outcome)

    def merge(self, other: Tally) -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.failed_total += other.failed_total
        self.retry_scheduled |= other.retry_scheduled
        self.failed += other.failed[:max(0, self.keep_failed - len(self.failed))]

    def __repr__(self) -> str:  # short: Prefect prints task results in its logs
        return f"Tally({self.describe()})"

    @property
    def sends(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        return ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items())) \
            or "nothing"

    def failure_text(self, limit: int = 20) -> str:
        shown = "; ".join(o.summary() for o in self.failed[:limit])
        more = self.failed_total - min(limit, len(self.failed))
        return shown + (f"; and {more} more (`dispatch deliveries --status Failed`)"
                        if more > 0 else "")
