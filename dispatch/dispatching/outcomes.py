"""What happened to each send, and a running tally of a run of any size.

A dispatch run can cover tens of thousands of sends; :class:`Tally` keeps counts and a
bounded number of problems, so memory stays flat whatever the run's size (every outcome is
also in the database, which is the record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dispatch.vocabulary import SendStatus


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
    status: SendStatus
    attempts: int
    error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sha256: str | None = None
    evidence: dict[str, Any] | None = None

    def summary(self) -> str:
        what = f"{self.order_id} {self.kind} #{self.number} to {self.vendor_id} via {self.channel}"
        if self.status is SendStatus.DELIVERED:
            return f"{what} ({self.formats}) delivered to {self.target}"
        if self.status is SendStatus.SKIPPED:
            return f"{what} skipped: {self.error}"
        if self.status is SendStatus.RETRYING:
            when = f"{self.next_attempt_at:%H:%M:%S}" if self.next_attempt_at else "later"
            return (f"{what} ({self.formats}) attempt {self.attempts} failed, retry at "
                    f"{when} UTC: {self.error}")
        return (f"{what} ({self.formats}) FAILED after {self.attempts} attempt(s): "
                f"{self.error}")


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
                      + (f" to {o.target}" if o.status is SendStatus.DELIVERED else "")
                      for o in items)
    return f"{head}: {sends}"


@dataclass
class Tally:
    """Counts by status, the first ``keep`` problems (failed or retrying sends) and the
    earliest scheduled retry of a run (bounded memory)."""

    keep: int = 100
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Outcome] = field(default_factory=list)
    next_retry_at: dt.datetime | None = None

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status in (SendStatus.FAILED, SendStatus.RETRYING):
            if len(self.problems) < self.keep:
                self.problems.append(outcome)
            self._retry_at(outcome.next_attempt_at)

    def _retry_at(self, when: dt.datetime | None) -> None:
        if when is not None and (self.next_retry_at is None or when < self.next_retry_at):
            self.next_retry_at = when

    def merge(self, other: Tally) -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.problems += other.problems[:max(0, self.keep - len(self.problems))]
        self._retry_at(other.next_retry_at)

    def __repr__(self) -> str:  # short: Prefect prints task results in its logs
        return f"Tally({self.describe()})"

    @property
    def sends(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        """Sends that failed for good."""
        return self.counts.get(SendStatus.FAILED, 0)

    @property
    def retrying(self) -> int:
        return self.counts.get(SendStatus.RETRYING, 0)

    def describe(self) -> str:
        text = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items())) \
            or "nothing"
        if self.retrying and self.next_retry_at is not None:
            text += f" (next retry {self.next_retry_at:%H:%M:%S} UTC)"
        return text

    def problem_text(self, limit: int = 20) -> str:
        shown = "; ".join(o.summary() for o in self.problems[:limit])
        total = self.failed + self.retrying
        more = total - min(limit, len(self.problems))
        return shown + (f"; and {more} more (`dispatch deliveries --status Failed` or "
                        "`--waiting`)" if more > 0 else "")
