"""Sending a response from a callback: how followers get a change in one pass.

When an object that ten thousand clients follow changes, each of them is a task waiting in the
store (``service.cache.waiters``). Resuming them one after the other through the server, the
app and its middlewares was most of the notification lag (BENCHMARKS.md, "Followers"). So a
follower may leave a callback with its wait, which the store's wake calls for every follower
in one pass: it sends the answer right there, and each client's bytes are on its socket before
the tasks resume to finish their bookkeeping.

An ASGI ``send`` is a coroutine, but it only waits when the client does not read fast enough
(the server waits for its socket buffer to drain, uvicorn before it writes anything). So
:func:`send_now` runs ``send`` as far as it goes without waiting; what is left, if anything, is
an awaitable that the follower's own task awaits later, exactly where ``send`` was waiting. No
message is lost or sent twice either way."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

from starlette.types import Message, Send


def send_now(send: Send, message: Message) -> Awaitable[None] | None:
    """Run ``send(message)`` until it is done (None) or would wait: then the rest of it, which
    the caller's task must await before it sends anything else."""
    step = send(message)
    if type(step) is not types.CoroutineType:  # (not isinstance(Coroutine): ten times dearer)
        return step  # an awaitable of another kind: nothing ran yet, the task awaits it
    try:
        waiting_on = step.send(None)
    except StopIteration:
        return None
    return _Rest(step, waiting_on)


class _Rest:
    """A coroutine that already ran up to a wait (on ``waiting_on``), finished when awaited:
    the delegation ``await`` does, from where the coroutine stopped."""

    __slots__ = ("step", "waiting_on")

    def __init__(self, step: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self.step, self.waiting_on = step, waiting_on

    def __await__(self) -> Generator[Any, None, None]:
        step, waiting_on = self.step, self.waiting_on
        while True:
            try:
                yield waiting_on  # the task waits for it, as if ``step`` had yielded it itself
            except GeneratorExit:
                step.close()
                raise
            except BaseException as e:  # cancelled while waiting: ``step`` decides
                try:
                    waiting_on = step.throw(e)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = step.send(None)
                except StopIteration:
                    return
