"""BentoML's request timeout, without a timer left behind by every answered request.

BentoML 1.4's ``TimeoutMiddleware`` (``traffic.timeout``) schedules ``loop.call_later(timeout,
...)`` for every HTTP request and never cancels it: each answered request leaves a timer
handle, its callback and a future on the event loop until the timeout passes. With our
30 s timeout and a few thousand requests a second per worker that is hundreds of thousands
of live timers, about 220 MB of worker memory at 8,500 requests/s (measured with
tracemalloc and RSS, benchmarks/README.md), and a bigger timer heap to push into on every
request.

:func:`cancel_finished_request_timers` swaps in a ``__call__`` that behaves the same (a 504
when nothing was sent within the timeout, the request cancelled) but cancels its timer as
soon as the response starts or the app returns. It also stops waiting when the app ends
without sending anything (an exception), so the error reaches the outer error middleware at
once instead of after the timeout. BentoML builds the middleware from its class at the first
request and looks ``__call__`` up on the class, so replacing it in the worker before any
request is enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bentoml._internal.server.http.traffic import TimeoutMiddleware
from starlette.responses import JSONResponse

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _timely_call(
    self: TimeoutMiddleware, scope: MutableMapping[str, Any], receive: Receive, send: Send
) -> None:
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, started)

    async def _send(message: Message) -> None:
        if not started.done():
            started.set_result(None)
            timer.cancel()
        await send(message)

    def _app_ended(_: asyncio.Future[None]) -> None:
        if not started.done():
            started.set_result(None)

    app = asyncio.ensure_future(self.app(scope, receive, _send))
    app.add_done_callback(_app_ended)
    try:
        await started
    except TimeoutError:
        if app.cancel():
            response = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"},
                status_code=504,
            )
            await response(scope, receive, send)
        return
    finally:
        timer.cancel()
    await app


def cancel_finished_request_timers() -> None:
    """Make BentoML's ``TimeoutMiddleware`` cancel each request's timer (idempotent)."""
    TimeoutMiddleware.__call__ = _timely_call  # type: ignore[method-assign]
