"""Backoff delays, the breaker's state machine and rate limits, without I/O."""

from __future__ import annotations

import asyncio
import time

import pytest

from conduit.connectors.base import BreakerPolicy, RetryPolicy
from conduit.core.errors import ApplicationError, RetryableError
from conduit.engine.resilience import Backoff, Breaker, RateLimiter, parse_rate


def test_exponential_backoff_doubles_from_initial_up_to_max_with_jitter_below() -> None:
    backoff = Backoff(RetryPolicy(initial="1s", max="5s", jitter=0.2))
    for _ in range(50):
        assert 0.8 <= backoff.delay(1) <= 1.0
        assert 1.6 <= backoff.delay(2) <= 2.0
        assert 3.2 <= backoff.delay(3) <= 4.0
        assert 4.0 <= backoff.delay(4) <= 5.0
        assert backoff.delay(30) <= 5.0


def test_fixed_backoff_and_no_jitter() -> None:
    assert Backoff(RetryPolicy(backoff="fixed", initial="250ms")).delay(7) == 0.25
    assert Backoff(RetryPolicy(initial=1, max=60, jitter=0)).delay(3) == 4.0


def test_breaker_opens_after_failures_waits_then_closes_on_a_good_trial() -> None:
    async def scenario() -> None:
        breaker = Breaker(BreakerPolicy(failures=3, reset="200ms"), "t")
        assert breaker.state == "closed"
        assert not breaker.failure(RetryableError("down"))
        assert not breaker.failure(RetryableError("down"))
        assert breaker.failure(RetryableError("down"))  # the third opens it
        assert breaker.state == "open"
        started = time.monotonic()
        async with breaker.gate():
            waited = time.monotonic() - started
            breaker.success()
        assert 0.15 <= waited < 1.0
        assert breaker.state == "closed"

    asyncio.run(scenario())


def test_failed_trial_opens_again_and_ae_answers_do_not_count() -> None:
    async def scenario() -> None:
        breaker = Breaker(BreakerPolicy(failures=1, reset="100ms"), "t")
        for _ in range(5):
            assert not breaker.failure(ApplicationError("AE: receiver is up"))
        assert breaker.state == "closed"
        assert breaker.failure(RetryableError("refused"))
        async with breaker.gate():
            assert breaker.failure(RetryableError("still refused"))
        assert breaker.state == "open" and breaker.remaining_open() > 0

    asyncio.run(scenario())


def test_failure_rate_opens_over_a_window_of_calls_though_never_n_in_a_row() -> None:
    """Every other send fails: the consecutive count never reaches 5, the rate (50 % of the
    last 10, at least 6 calls seen) opens it; it stays open for reset, then a trial decides."""
    async def scenario() -> None:
        policy = BreakerPolicy(failures=5, failure_rate=0.5, window=10, min_calls=6,
                               reset="200ms")
        breaker = Breaker(policy, "t")
        outcomes = []
        for _ in range(3):
            breaker.success()
            outcomes.append(breaker.failure(RetryableError("flaky")))
        assert outcomes == [False, False, True]  # 3 of 6 failed: 50 %, min_calls reached
        assert breaker.state == "open" and breaker.remaining_open() > 0.1
        started = time.monotonic()
        async with breaker.gate():  # half-open: one trial
            assert 0.15 <= time.monotonic() - started < 1.0
            breaker.success()
        assert breaker.state == "closed"
        # a fresh window after closing: one failure is not 50 % of enough calls
        assert not breaker.failure(RetryableError("once"))
        for _ in range(20):  # mostly good: 1 failure in 10 stays closed
            breaker.success()
        assert breaker.state == "closed"

    asyncio.run(scenario())


def test_failure_rate_over_a_time_window_forgets_old_calls() -> None:
    breaker = Breaker(BreakerPolicy(failures=100, failure_rate=0.5, window="200ms",
                                    min_calls=4, reset="1s"), "t")
    for _ in range(3):
        assert not breaker.failure(RetryableError("down"))
    time.sleep(0.3)  # those three leave the window
    for _ in range(3):
        breaker.success()
    assert not breaker.failure(RetryableError("down"))  # 1 of 4 in the window
    assert breaker.state == "closed"
    assert not breaker.failure(ApplicationError("AE: the receiver is up"))  # counts as up
    assert not breaker.failure(RetryableError("down"))  # 2 of 6
    assert not breaker.failure(RetryableError("down"))  # 3 of 7
    assert breaker.failure(RetryableError("down"))  # 4 of 8: 50 %
    assert breaker.state == "open"

def test_breaker_policy_window_is_calls_or_a_duration() -> None:
    assert BreakerPolicy(failure_rate=0.5, window=20).window_calls == 20
    timed = BreakerPolicy(failure_rate=0.5, window="30s")
    assert timed.window_seconds == 30.0 and timed.window_calls is None
    with pytest.raises(ValueError):
        BreakerPolicy(failure_rate=1.5)
    with pytest.raises(ValueError):
        BreakerPolicy(failure_rate=0.5, window="soon")


def test_rate_limit_spaces_sends() -> None:
    assert parse_rate("100/min") == (100, 60.0)
    assert parse_rate(" 5 / s ") == (5, 1.0)
    with pytest.raises(ValueError):
        parse_rate("fast")

    async def scenario() -> float:
        limiter = RateLimiter("20/s")
        started = time.monotonic()
        for _ in range(6):
            await limiter.acquire()
        return time.monotonic() - started

    assert 0.22 <= asyncio.run(scenario()) < 0.6
