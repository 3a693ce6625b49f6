"""bench/creates.py: a timed round counts its failures and says what they were."""

from __future__ import annotations

import pytest

from bench.creates import Creator, timed_round


def test_a_round_counts_each_failure_and_keeps_its_message() -> None:
    def create(pod: str) -> None:
        if pod == "p2":
            raise RuntimeError("service answered 503: too many connections")

    failures: list[str] = []
    run = timed_round(Creator("service", create, lambda: None), ["p1", "p2", "p3"], 2, failures)
    assert (run.ops, run.errors) == (2, 1)
    assert failures == ["RuntimeError: service answered 503: too many connections"]


def test_a_round_where_every_create_fails_raises_with_an_example() -> None:
    def create(pod: str) -> None:
        raise ConnectionError(f"refused for {pod}")

    with pytest.raises(RuntimeError, match=r"every service create failed, e\.g\. ConnectionError"):
        timed_round(Creator("service", create, lambda: None), ["p1"], 1)
