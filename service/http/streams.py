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
"""

from __future__ import annotations

import asyncio

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send


class FinalChunk(bytes):
    """The last chunk of a stream: sent together with the end of the response."""


class EventStreamResponse(StreamingResponse):
    """``StreamingResponse`` for ``text/event-stream`` bodies of bytes (module docstring)."""

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = asyncio.current_task()
        assert body is not None
        complete = False

        def client_left(listener: asyncio.Task[None]) -> None:
            if not complete and not listener.cancelled() and listener.exception() is None:
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
            async for chunk in self.body_iterator:
                assert isinstance(chunk, bytes)  # our streams yield bytes only
                if isinstance(chunk, FinalChunk):
                    end = {"type": "http.response.body", "body": chunk, "more_body": False}
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            complete = True
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
