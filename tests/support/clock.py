"""A clock the test moves by hand, for the code that takes an injectable clock."""

from __future__ import annotations


class ManualClock:
    """Monotonic seconds that change only when a test sets ``now`` (``clock.now += 5``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
