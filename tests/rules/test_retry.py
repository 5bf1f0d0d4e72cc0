"""The retry policy (pure): when a failed delivery is tried again, and how often in all."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.rules.retry import max_attempts, next_attempt_at

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
DELAYS = (30.0, 120.0, 600.0)


@pytest.mark.parametrize(("attempts", "after"), [(1, 30), (2, 120), (3, 600)])
def test_each_failed_attempt_waits_its_delay(attempts: int, after: float) -> None:
    assert next_attempt_at(attempts=attempts, delays=DELAYS, now=NOW, retryable=True) == \
        NOW + dt.timedelta(seconds=after)


@pytest.mark.parametrize("attempts", [4, 5, 100])
def test_no_retry_after_the_last_attempt(attempts: int) -> None:
    assert next_attempt_at(attempts=attempts, delays=DELAYS, now=NOW, retryable=True) is None


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_permanent_error_is_never_retried(attempts: int) -> None:
    assert next_attempt_at(attempts=attempts, delays=DELAYS, now=NOW, retryable=False) is None


@pytest.mark.parametrize("attempts", [0, -1])
def test_no_attempt_counted_schedules_nothing(attempts: int) -> None:
    assert next_attempt_at(attempts=attempts, delays=DELAYS, now=NOW, retryable=True) is None


@pytest.mark.parametrize("delays", [(), (5.0,), DELAYS, (1.0,) * 9])
def test_max_attempts_is_the_first_plus_one_per_delay(delays: tuple[float, ...]) -> None:
    assert max_attempts(delays) == len(delays) + 1
    scheduled = [n for n in range(1, max_attempts(delays) + 2)
                 if next_attempt_at(attempts=n, delays=delays, now=NOW, retryable=True)]
    assert scheduled == list(range(1, max_attempts(delays)))  # every attempt but the last


def test_fractional_delays_and_the_clock_given() -> None:
    later = NOW + dt.timedelta(days=3)
    assert next_attempt_at(attempts=1, delays=(0.25,), now=later, retryable=True) == \
        later + dt.timedelta(milliseconds=250)
