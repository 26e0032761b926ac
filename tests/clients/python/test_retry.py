"""Backoff, Retry-After and the circuit breaker, over numbers and a hand-driven clock."""

from __future__ import annotations

import email.utils

import pytest
from turret_sdk.retry import RETRYABLE_STATUSES, CircuitBreaker, backoff_delay, parse_retry_after


@pytest.mark.parametrize(
    "attempt, ceiling", [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (200, 30.0)]
)
def test_backoff_doubles_up_to_the_cap_with_full_jitter(attempt, ceiling):
    assert backoff_delay(attempt, 0.5, 30.0, rng=lambda: 1.0) == ceiling
    assert backoff_delay(attempt, 0.5, 30.0, rng=lambda: 0.0) == 0.0
    assert backoff_delay(attempt, 0.5, 30.0, rng=lambda: 0.25) == ceiling * 0.25


def test_backoff_spreads_clients_that_failed_together():
    delays = {round(backoff_delay(4, 0.5, 30.0), 6) for _ in range(50)}
    assert len(delays) > 40
    assert all(0 <= d <= 4.0 for d in delays)


def test_backoff_rejects_attempt_zero():
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0, 0.5, 30.0)


def test_retry_after_seconds_and_http_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    when = email.utils.formatdate(1_000_090, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(90.0)
    assert parse_retry_after(when, now=2_000_000) == 0.0  # a date in the past: retry now


def test_only_server_side_statuses_are_retried():
    assert {429, 503, 500, 502, 504} == RETRYABLE_STATUSES
    assert not {400, 401, 403, 404, 405, 413} & RETRYABLE_STATUSES


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_consecutive_failures_and_half_opens_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # consecutive: a success in between starts the count again
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open" and breaker.times_opened == 1
    assert not breaker.allow()
    assert breaker.wait_time() == 10.0
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half-open"
    assert breaker.allow()  # one trial
    assert not breaker.allow()  # and only one
    breaker.record_failure()  # the trial failed: open for another cooldown
    assert breaker.state == "open" and breaker.times_opened == 2
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"cooldown": -1}])
def test_breaker_checks_its_settings(kwargs):
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)
