"""HTTP edges of the service: every API body is JSON and bounded; client errors log quietly.

BentoML chooses how to parse a body from its Content-Type: a form or multipart body would
bypass the strict JSON validation (strings turned into numbers, repeated fields, 500s on a
malformed multipart). Our API speaks JSON only, so the middleware parses every POST to an
API route as JSON, whatever the client declared, and refuses bodies over the limit before
reading them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from pydantic import ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _json_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class JsonBodyMiddleware:
    """Parse POST bodies to the API routes as JSON; refuse bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, paths: Collection[str], max_body_bytes: int) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _json_error(send, 400, "Content-Length is not a number")
                return
            if declared > self.max_body_bytes:
                await _json_error(
                    send, 413, f"request body over {self.max_body_bytes:,} bytes; split the batch"
                )
                return
        else:
            # A streamed body of unknown length: read it here, within the limit, and hand
            # the same chunks on (the app then joins them once).
            chunks: list[Message] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    await _json_error(send, 413, f"request body over {self.max_body_bytes:,} bytes")
                    return
                chunks.append(message)
                if not message.get("more_body", False):
                    break
            replay = iter(chunks)

            async def receive_replayed() -> Message:
                return next(replay, {"type": "http.disconnect"})

            receive = receive_replayed
        headers.append((b"content-type", b"application/json"))
        await self.app({**scope, "headers": headers}, receive, send)


class QuietClientErrors(logging.Filter):
    """Log a rejected request as one INFO line, not an ERROR with a traceback.

    BentoML logs every validation error with its traceback and the offending input, which
    turns a client's typo into pages of server log (and copies its data there).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            # A filter must never raise: that would break the request being logged.
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001
                message = str(record.msg)
            record.msg = "%s (rejected: %d validation errors)"
            record.args = (message, exc.error_count())
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.INFO
            record.levelname = "INFO"
        return True


def quiet_client_errors() -> None:
    """Install :class:`QuietClientErrors` on BentoML's request logger (once)."""
    target = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, QuietClientErrors) for f in target.filters):
        target.addFilter(QuietClientErrors())
