"""HTTP edges of the service: every API body is JSON and bounded; client errors log quietly.

BentoML chooses how to parse a body from its Content-Type: a form or multipart body would
bypass the strict JSON validation (strings turned into numbers, repeated fields, 500s on a
malformed multipart). Our API speaks JSON only, so the middleware parses every POST to an
API route as JSON, whatever the client declared, and refuses bodies over the limit before
reading them.

The two scoring routes can also be answered here, straight from the body the middleware
has read (``direct_routes`` on the service instance): BentoML's own API handler (request
object, IO descriptors, signature inspection, response model, context) costs more CPU than
scoring one invoice. Validation uses the very input model BentoML would use and a failure
answers BentoML's 400 body, so clients cannot tell the paths apart; the middlewares outside
this one (BentoML's request metrics, tracing, timeout) still see every request.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import bentoml
import orjson
from pydantic import ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Answers a route from its raw body and the request's arrival (``time.monotonic()``): the
#: JSON of a 200, or raises ValidationError (400) or :class:`DirectError`.
DirectHandler = Callable[[bytes, float], Awaitable[bytes]]


#: Where the middleware leaves, in the ASGI scope, when the request came in
#: (``time.monotonic()``, before its body was read) for the app's own deadlines.
ARRIVED_SCOPE_KEY = "invoice_fraud.arrived"


class DirectError(Exception):
    """A refusal with its own status (a 503 while the store is behind, ...)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        if self.retry_after is None:
            return ()
        return ((b"retry-after", str(self.retry_after).encode()),)

    def body(self) -> bytes:
        return json.dumps({"error": self.message}).encode()

    def response(self, ctx: Any = None) -> Any:
        """The same answer as a Starlette response, for BentoML's API handler.

        For an API with a context parameter BentoML overwrites the status and headers of a
        returned response with ``ctx.response``'s (a 200 by default), so they go there too.
        """
        from starlette.responses import Response

        headers = {k.decode(): v.decode() for k, v in self.headers()}
        if ctx is not None:
            ctx.response.status_code = self.status
            ctx.response.headers.update(headers)
        return Response(
            self.body(), status_code=self.status, media_type="application/json", headers=headers
        )


logger = logging.getLogger(__name__)
#: BentoML's request logger: its lines are shown by default, and rejected requests on the
#: direct routes are logged beside the ones BentoML's handler rejects.
request_logger = logging.getLogger("bentoml._internal.server.http_app")


async def _send_json(
    send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json_error(send: Send, status: int, message: str) -> None:
    await _send_json(send, status, json.dumps({"error": message}).encode())


def validation_error_body(exc: ValidationError) -> bytes:
    """BentoML's 400 body for a validation error, capped like :func:`_capped_errors`."""
    body = orjson.dumps(
        {
            "error": f"{exc.error_count()} validation error for {exc.title}",
            "detail": exc.errors(include_context=False, include_input=False),
        }
    )
    return _truncate_errors(body) if len(body) > MAX_ERROR_BODY_BYTES else body


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

    def __init__(
        self, app: ASGIApp, limits: Mapping[str, tuple[int, str]], server: str = ""
    ) -> None:
        """``limits`` maps each API path to (most body bytes, hint for a too-large body);
        ``server`` is the Server header of direct answers (BentoML's, for its routes)."""
        self.app = app
        self.limits = dict(limits)
        self._server = ((b"server", server.encode()),) if server else ()
        self._direct: dict[str, DirectHandler] | None = None

    def _direct_handler(self, path: str) -> DirectHandler | None:
        # The service instance exists once BentoML's lifespan has run, before any request.
        if self._direct is None:
            service = bentoml.get_current_service()
            if service is None:
                return None
            self._direct = dict(getattr(service, "direct_routes", None) or {})
        return self._direct.get(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        if limit is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
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

        handler = self._direct_handler(scope["path"])
        if handler is not None:
            await self._answer(handler, scope, chunks, send, arrived)
            return

        async def replay() -> Message:
            return chunks.popleft() if chunks else await receive()

        headers.append((b"content-type", b"application/json"))
        scope = {**scope, "headers": headers, ARRIVED_SCOPE_KEY: arrived}
        await self.app(scope, replay, _capped_errors(send))

    async def _answer(
        self,
        handler: DirectHandler,
        scope: Scope,
        chunks: collections.deque[Message],
        send: Send,
        arrived: float,
    ) -> None:
        body = b"".join(m.get("body", b"") for m in chunks)
        try:
            # BentoML's JSON parsing reads an empty body as {}: so does this path.
            answer = await handler(body or b"{}", arrived)
        except ValidationError as exc:
            logger.info("rejected POST %s (%d validation errors)", scope["path"], exc.error_count())
            await _send_json(send, 400, validation_error_body(exc), self._server)
            return
        except DirectError as exc:
            await _send_json(send, exc.status, exc.body(), (*self._server, *exc.headers()))
            return
        except Exception:
            request_logger.exception("POST %s failed", scope["path"])
            await _send_json(send, 500, _UNEXPECTED, self._server)
            return
        await _send_json(send, 200, answer, self._server)


#: BentoML's body for an unexpected server error (the details go to the log only).
_UNEXPECTED = json.dumps(
    {"error": "An unexpected error has occurred, please check the server log."}
).encode()


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
    if not any(isinstance(f, QuietClientErrors) for f in request_logger.filters):
        request_logger.addFilter(QuietClientErrors())
