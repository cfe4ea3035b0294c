"""The quiet-client-errors log filter and the direct routes of the body middleware.

The middleware's limits and JSON parsing are tested over HTTP against the real service
(tests/integration); here an in-process ASGI call shows which requests it answers itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from invoice_fraud.serving import DirectError, QuietClientErrors


class _Model(BaseModel):
    a: int


def test_validation_errors_log_one_info_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.quiet")
    log.addFilter(QuietClientErrors())
    with caplog.at_level(logging.INFO, logger="test.quiet"):
        try:
            _Model.model_validate_json('{"a": "secret input"}')
        except ValidationError:
            log.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
        try:
            raise RuntimeError("real bug")
        except RuntimeError:
            log.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
    quiet, loud = caplog.records
    assert quiet.levelname == "INFO" and quiet.exc_info is None
    assert quiet.getMessage() == "Exception on /predict [POST] (rejected: 1 validation errors)"
    assert "secret input" not in caplog.text.split("RuntimeError")[0]
    assert loud.levelname == "ERROR" and loud.exc_info is not None


class _Service:
    """Stands in for the service instance BentoML makes current (only ``direct_routes``)."""

    def __init__(self) -> None:
        async def score(body: bytes, arrived: float) -> bytes:
            assert arrived <= time.monotonic()
            if body == b"boom":
                raise RuntimeError("a bug")
            if body == b"busy":
                raise DirectError(503, "store behind", retry_after=1)
            return b'{"a":%d}' % _Model.model_validate_json(body).a

        self.direct_routes = {"/direct": score}


def _call(path: str, body: bytes) -> tuple[int, dict[str, str], bytes, list[str]]:
    from _bentoml_sdk.service import set_current_service

    from invoice_fraud.serving import JsonBodyMiddleware

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = JsonBodyMiddleware(
        app, limits={"/direct": (100, ""), "/other": (100, "")}, server="Test/1"
    )

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, content=body)

    set_current_service(_Service())
    try:
        r = asyncio.run(post())
    finally:
        set_current_service(None)
    return r.status_code, dict(r.headers), r.content, reached


def test_direct_routes_are_answered_without_the_app() -> None:
    status, headers, body, reached = _call("/direct", b'{"a": 3}')
    assert (status, body, reached) == (200, b'{"a":3}', [])
    assert headers["content-type"] == "application/json" and headers["server"] == "Test/1"
    assert headers["content-length"] == "7"


def test_direct_routes_answer_bentomls_400_500_and_their_own_refusals() -> None:
    status, _, body, reached = _call("/direct", b'{"a": "x"}')
    assert status == 400 and reached == []
    error = json.loads(body)
    assert error["error"] == "1 validation error for _Model"
    assert [e["loc"] for e in error["detail"]] == [["a"]] and "input" not in error["detail"][0]
    status, _, body, _ = _call("/direct", b"boom")
    assert status == 500 and b"a bug" not in body
    status, headers, body, _ = _call("/direct", b"busy")
    assert (status, headers["retry-after"]) == (503, "1")
    assert json.loads(body) == {"error": "store behind"}


def test_limits_apply_before_direct_routes_and_other_routes_reach_the_app() -> None:
    status, _, _, reached = _call("/direct", b"{" + b" " * 200 + b"}")
    assert status == 413 and reached == []
    status, _, _, reached = _call("/other", b"{}")
    assert status == 204 and reached == ["/other"]
