"""The settings class refuses values that would break the service at run time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from invoice_fraud.settings import get_settings


def test_defaults_are_valid() -> None:
    settings = get_settings()
    assert settings.store_backpressure_rows < settings.store_max_pending_rows
    assert settings.store_backpressure_max_wait_seconds < 30  # BentoML's request timeout


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"store_backpressure_rows": 600_000}, "INVOICE_FRAUD_STORE_BACKPRESSURE_ROWS"),
        ({"store_max_pending_rows": 25_000}, "INVOICE_FRAUD_STORE_MAX_PENDING_ROWS"),
        ({"store_backpressure_max_wait_seconds": 45}, "store_backpressure_max_wait_seconds"),
        ({"api_url": "localhost:3000"}, "api_url"),
        ({"database_url": "postgresql+psycopg://u:CHANGE_ME@db/x"}, "database_url"),
    ],
)
def test_bad_values_fail_naming_the_setting(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        get_settings(**overrides)
