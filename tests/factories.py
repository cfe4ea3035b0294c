"""Small factories for test invoices (never copy-pasted dicts)."""

from __future__ import annotations

import json
from typing import Any

from invoice_fraud.schema import Invoice

#: The example body existing clients send: an ordinary invoice, Wednesday 15 May 2024.
ORDINARY: dict[str, Any] = {
    "amount": 1000.0,
    "tax": 180.0,
    "total": 1180.0,
    "invoice_year": 2024,
    "invoice_month": 5,
    "invoice_day": 15,
    "invoice_weekday": 2,
}


def make_invoice(**overrides: Any) -> dict[str, Any]:
    """The ordinary invoice with some fields replaced; a value of ``...`` drops the field."""
    body = dict(ORDINARY)
    for key, value in overrides.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def make_dated_invoice(date: str, **overrides: Any) -> dict[str, Any]:
    """An invoice that sends ``invoice_date`` instead of year/month/day/weekday."""
    return make_invoice(
        invoice_year=...,
        invoice_month=...,
        invoice_day=...,
        invoice_weekday=...,
        invoice_date=date,
        **overrides,
    )


def validated(body: dict[str, Any]) -> Invoice:
    """Validate a body the way the service does: from JSON text, strictly."""
    return Invoice.model_validate_json(json.dumps(body))
