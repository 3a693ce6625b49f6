"""``--wait``: long-poll the service (``?wait=N&resourceVersion=RV``) until the restart or
rollout has finished. Each call returns as soon as something changes, so the loop sees every
state without polling tightly; an answer that comes back at once with nothing new (a replica
shutting down answers early) is followed by a short pause rather than an immediate repeat."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from crr_client.errors import Deleted, Refused, TimedOut
from crr_client.transport import Transport

LONG_POLL_SECONDS = 30  # per call; the API allows up to 60
EARLY_ANSWER_PAUSE = 1.0


def wait_until_finished(
    transport: Transport,
    path: str,
    first: dict[str, Any],
    first_text: str,
    *,
    what: str,
    on_change: Callable[[dict[str, Any], str], None],
    deadline: float | None = None,
    describe: Callable[[dict[str, Any]], str] = lambda _doc: "",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, Any], str]:
    """Return the finished document and its JSON text; ``on_change`` sees every new version.
    Raises ``TimedOut`` at ``deadline`` and ``Deleted`` when ``what`` disappears."""
    document, text = first, first_text
    while not document.get("finished"):
        wait = LONG_POLL_SECONDS
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                raise TimedOut(f"timed out: {describe(document)}".rstrip(": "))
            wait = max(1, min(LONG_POLL_SECONDS, int(remaining)))
        version = str(document.get("resourceVersion", ""))
        asked = clock()
        try:
            response = transport.request(
                "GET",
                path,
                query={"wait": wait, "resourceVersion": version},
                timeout=wait + 15,
                deadline=None if deadline is None else max(deadline, asked + wait + 5),
            )
        except Refused as e:
            if e.status == 404:
                raise Deleted(f"{what} was deleted before it finished") from e
            raise
        latest = response.json()
        if str(latest.get("resourceVersion", "")) != version:
            document, text = latest, response.text
            on_change(document, text)
        elif not latest.get("finished") and clock() - asked < EARLY_ANSWER_PAUSE:
            sleep(EARLY_ANSWER_PAUSE)
        else:
            document, text = latest, response.text
    return document, text
