"""HTTP edges of the service: every API body is JSON and bounded; client errors log quietly.

BentoML chooses how to parse a body from its Content-Type: a form or multipart body would
bypass the strict JSON validation (strings turned into numbers, repeated fields, 500s on a
malformed multipart). Our API speaks JSON only, so the middleware parses every POST to an
API route as JSON, whatever the client declared, and refuses bodies over the limit before
reading them.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from pydantic import ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)


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


#: A 400 body larger than this (a request with thousands of bad fields) keeps only the
#: first errors: the client learns what is wrong without a response many times its request.
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_LISTED_ERRORS = 50


class JsonBodyMiddleware:
    """Parse POST bodies to the API routes as JSON, within a size limit per route.

    The body is read here, whole, before the app sees it: a body over the route's limit is
    refused at once (from its Content-Length, or as soon as a streamed body passes it), and
    a client that hangs up mid-body ends the request here instead of surfacing in BentoML
    as a 500. The chunks are handed on as they came, so the app still joins them once.
    """

    def __init__(self, app: ASGIApp, limits: Mapping[str, tuple[int, str]]) -> None:
        """``limits`` maps each API path to (most body bytes, hint for a too-large body)."""
        self.app = app
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        if limit is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        max_bytes, hint = limit
        too_large = f"request body over {max_bytes:,} bytes{hint}"
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _json_error(send, 400, "Content-Length is not a number")
                return
            if declared > max_bytes:
                await _json_error(send, 413, too_large)
                return
        chunks: collections.deque[Message] = collections.deque()
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                logger.info("client hung up before sending its whole body to %s", scope["path"])
                return
            size += len(message.get("body", b""))
            if size > max_bytes:
                await _json_error(send, 413, too_large)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.popleft() if chunks else await receive()

        headers.append((b"content-type", b"application/json"))
        await self.app({**scope, "headers": headers}, replay, _capped_errors(send))


def _capped_errors(send: Send) -> Send:
    """Wrap ``send`` so a huge 400 body keeps its first :data:`MAX_LISTED_ERRORS` errors."""
    held: list[Message] = []

    async def capped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 400:
            held.append(message)
            return
        if not held:
            await send(message)
            return
        held.append(message)
        if message.get("more_body", False):
            return
        start, *parts = held
        body = b"".join(m.get("body", b"") for m in parts)
        if len(body) > MAX_ERROR_BODY_BYTES:
            body = _truncate_errors(body)
            start = {
                **start,
                "headers": [
                    *((k, v) for k, v in start["headers"] if k != b"content-length"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        held.clear()
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return capped


def _truncate_errors(body: bytes) -> bytes:
    try:
        data = json.loads(body)
        detail = data["detail"]
    except (ValueError, KeyError, TypeError):
        return json.dumps({"error": "invalid request (error list too large to show)"}).encode()
    data["detail"] = [
        {k: v for k, v in error.items() if k != "input"} for error in detail[:MAX_LISTED_ERRORS]
    ]
    data["truncated"] = f"showing {MAX_LISTED_ERRORS} of {len(detail)} errors"
    return json.dumps(data).encode()


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
