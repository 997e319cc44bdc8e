"""Token buckets per client: bursts, refills, bounded memory."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.rate_limit import ClientRateLimiter, RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    limiter = ClientRateLimiter(RateLimit(requests_per_second=10, burst=5), clock=clock)
    assert [limiter.admit("a") for _ in range(5)] == [None] * 5
    wait = limiter.admit("a")
    assert wait is not None and math.isclose(wait, 0.1)
    clock.now += 0.1
    assert limiter.admit("a") is None


def test_clients_have_their_own_buckets() -> None:
    limiter = ClientRateLimiter(RateLimit(1, 1), clock=Clock())
    assert limiter.admit("a") is None
    assert limiter.admit("a") is not None
    assert limiter.admit("b") is None


def test_a_batch_costs_each_request_and_can_never_exceed_the_burst() -> None:
    limiter = ClientRateLimiter(RateLimit(100, 50), clock=Clock())
    assert limiter.admit("a", cost=40) is None
    assert limiter.admit("a", cost=20) is not None
    assert limiter.admit("a", cost=51) == float("inf")


def test_memory_is_bounded_by_forgetting_the_least_recent() -> None:
    clock = Clock()
    limiter = ClientRateLimiter(RateLimit(1, 1), max_clients=3, clock=clock)
    for client in "abcd":
        limiter.admit(client)
    assert len(limiter) == 3
    assert limiter.admit("a") is None  # forgotten, so a full bucket again
    assert limiter.admit("d") is not None


@given(st.lists(st.tuples(st.floats(0, 2), st.integers(1, 5)), max_size=60))
def test_never_more_than_burst_plus_rate_times_time(steps: list[tuple[float, int]]) -> None:
    clock = Clock()
    limit = RateLimit(requests_per_second=3, burst=5)
    limiter = ClientRateLimiter(limit, clock=clock)
    admitted = 0
    for advance, cost in steps:
        clock.now += advance
        if limiter.admit("a", cost) is None:
            admitted += cost
    assert admitted <= limit.burst + limit.requests_per_second * clock.now + 1e-9


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimit(rate, burst)
