"""When a failed delivery is tried again (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def next_attempt_at(*, attempts: int, delays: Sequence[float], now: dt.datetime,
                    retryable: bool) -> dt.datetime | None:
    """``now + delays[attempts-1]`` while attempts remain (len(delays) + 1 in all).

    ``attempts`` counts the attempt that just failed. None: do not try again (permanent
    error, or the last attempt failed).
    """
    if not retryable or attempts < 1 or attempts > len(delays):
        return None
    return now + dt.timedelta(seconds=delays[attempts - 1])


def max_attempts(delays: Sequence[float]) -> int:
    return len(delays) + 1
