"""Who is calling. A placeholder until authentication lands (issue 4): every caller is
anonymous. Routes depend on ``CallerDep`` only, so TokenReview/SubjectAccessReview can be
plugged in here without touching them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    groups: tuple[str, ...] = field(default=())
    authenticated: bool = False


ANONYMOUS = Caller(name="anonymous")


async def get_caller(request: Request) -> Caller:
    """Resolve the caller of ``request``. Today: anonymous."""
    del request
    return ANONYMOUS


CallerDep = Annotated[Caller, Depends(get_caller)]
