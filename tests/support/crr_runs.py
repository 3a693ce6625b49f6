"""What running the ``crr`` command line in-process gives a test: its exit code and output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


Crr = Callable[..., Outcome]
