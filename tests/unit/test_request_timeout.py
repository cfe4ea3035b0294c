"""BentoML's request timeout, as patched: same answers, no timer left per request."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware

from invoice_fraud.request_timeout import cancel_finished_request_timers

Message = dict[str, Any]


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _call(
    app: Any, timeout: float, scope_type: str = "http"
) -> tuple[list[Message], list[asyncio.TimerHandle]]:
    """Run ``app`` behind the (patched) middleware; the messages sent and timers made."""
    cancel_finished_request_timers()
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []
    call_later = loop.call_later

    def recording_call_later(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        handle = call_later(delay, callback, *args)
        timers.append(handle)
        return handle

    loop.call_later = recording_call_later  # type: ignore[method-assign]
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await TimeoutMiddleware(app, timeout=timeout)({"type": scope_type}, receive, send)
    finally:
        loop.call_later = call_later  # type: ignore[method-assign]
    return sent, timers


async def test_an_answered_request_leaves_no_timer_behind() -> None:
    sent, timers = await _call(_ok, timeout=30)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"ok"
    # BentoML's own middleware leaves this timer live for the whole 30 s.
    assert len(timers) == 1 and timers[0].cancelled()


async def test_a_request_past_the_timeout_gets_a_504_and_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sent, _ = await _call(slow, timeout=0.05)
    assert sent[0]["status"] == 504
    assert json.loads(sent[1]["body"]) == {
        "error": "Not able to process the request in 0.05 seconds"
    }
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_an_app_that_fails_before_answering_fails_at_once() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        await _call(broken, timeout=30)
    # BentoML's own middleware waits out the whole timeout before the error surfaces.
    assert time.monotonic() - started < 5


async def test_a_response_started_in_time_may_finish_after_the_timeout() -> None:
    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b"late"})

    sent, timers = await _call(streaming, timeout=0.05)
    assert [m.get("status") for m in sent] == [200, None]
    assert sent[1]["body"] == b"late"
    assert timers[0].cancelled()


async def test_other_scopes_pass_through_without_a_timer() -> None:
    sent, timers = await _call(_ok, timeout=30, scope_type="lifespan")
    assert len(sent) == 2 and timers == []
