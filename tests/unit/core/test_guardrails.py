"""The per-caller token bucket's arithmetic."""

from __future__ import annotations

import pytest

from service.core.errors import (
    RateLimited,
)
from service.core.guardrails import RateLimiter
from tests.support.clock import ManualClock


def test_the_token_bucket_refills_at_its_rate() -> None:
    clock = ManualClock(100.0)
    limiter = RateLimiter(0.5, 2, clock=clock)
    limiter.take("alice")
    limiter.take("alice")
    with pytest.raises(RateLimited) as refused:
        limiter.take("alice")
    assert refused.value.headers["Retry-After"] == "2"
    limiter.take("bob")  # per caller
    clock.now += 2
    limiter.take("alice")
    with pytest.raises(RateLimited):
        limiter.take("alice")
    RateLimiter(0, 1, clock=clock).take("anyone")  # rate 0: off
