"""The response of the server-sent event streams (a restart's or rollout's events, the
namespace watch streams), cheap enough for ten thousand followers of one object on one process
(BENCHMARKS.md, "Followers").

It is Starlette's ``StreamingResponse`` (same headers, same bytes) without two costs paid per
follower on every change:

* Starlette runs each stream in an anyio task group, the body in a task of its own and the wait
  for the client's disconnect beside it, and cancels one through the other at the end. Here the
  body runs in the request's own task and a plain task waits for the disconnect: it ends by
  itself once the response is complete (the server then answers ``http.disconnect``), or, when
  the client leaves first, stops the body.
* Starlette ends a stream with an empty chunk after the last one: one more pass through every
  middleware and one more socket write per follower. A stream's known last chunk
  (:class:`FinalChunk`, say a restart's finished snapshot) goes out with the end of the
  response in one message.
* A stream's body may end it from the store's wake (:class:`EarlyEnd`, see
  ``service.http.sending``): ten thousand followers of a restart get its finished snapshot in
  one pass, before their tasks resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from service.http.sending import send_now


class FinalChunk(bytes):
    """The last chunk of a stream: sent together with the end of the response."""


class EarlyEnd:
    """The end of a stream, sent by its body from a callback while the response waits for the
    body's next chunk: then the body ends without one, and the response sends nothing more."""

    __slots__ = ("rest", "send", "sent")

    def __init__(self) -> None:
        self.send: Send | None = None  # the response's, once it started
        self.sent = False
        self.rest: Awaitable[None] | None = None  # what the client was too slow to take at once

    def end_now(self, last: bytes) -> bool:
        """Send ``last`` with the end of the response; False when that cannot happen here."""
        if self.send is None or self.sent:
            return False
        self.sent = True
        end = {"type": "http.response.body", "body": last, "more_body": False}
        self.rest = send_now(self.send, end)
        return True


class EventStreamResponse(StreamingResponse):
    """``StreamingResponse`` for ``text/event-stream`` bodies of bytes (module docstring)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        early_end: EarlyEnd | None = None,
    ) -> None:
        """``early_end``: the one the body (``content``) may end the stream with."""
        super().__init__(content, headers=headers, media_type=media_type)
        self.early_end = early_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = asyncio.current_task()
        assert body is not None
        complete = False
        early = self.early_end

        def client_left(listener: asyncio.Task[None]) -> None:
            if complete or (early is not None and early.sent):  # it ended: the server says so
                return
            if not listener.cancelled() and listener.exception() is None:
                body.cancel("the client left")

        listener = asyncio.create_task(_disconnected(receive))
        listener.add_done_callback(client_left)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            end: Message = {"type": "http.response.body", "body": b"", "more_body": False}
            if early is not None:
                early.send = send  # the body only waits for a change between its chunks
            async for chunk in self.body_iterator:
                assert isinstance(chunk, bytes)  # our streams yield bytes only
                if isinstance(chunk, FinalChunk):
                    end = {"type": "http.response.body", "body": chunk, "more_body": False}
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            complete = True
            if early is not None and early.sent:  # the body sent the end itself
                if early.rest is not None:
                    await early.rest
            else:
                await send(end)
        except asyncio.CancelledError:
            if listener.done() and not listener.cancelled() and body.uncancel() == 0:
                return  # the client left: nothing more to send, nobody to tell
            raise
        finally:
            if not listener.done():
                listener.cancel()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        if self.background is not None:
            await self.background()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
