"""The quiet-client-errors log filter (the middleware is tested over HTTP)."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, ValidationError

from invoice_fraud.serving import QuietClientErrors


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
