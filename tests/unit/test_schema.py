"""Unit tests of request validation: good bodies pass, each bad field is named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from invoice_fraud.schema import MAX_BATCH, Invoice, InvoiceBatch, weekday_warning
from tests.factories import make_dated_invoice, make_invoice


def error_fields(body: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Invoice.model_validate_json(body if isinstance(body, str | bytes) else _dump(body))
    return [".".join(map(str, e["loc"])) + ":" + e["msg"] for e in info.value.errors()]


def _dump(body: Any) -> str:
    import json

    return json.dumps(body)


def test_invoice_accepts_the_example_body() -> None:
    inv = Invoice.model_validate_json(_dump(make_invoice()))
    assert (inv.amount, inv.invoice_year, inv.invoice_weekday) == (1000.0, 2024, 2)


def test_invoice_accepts_integer_money_and_invoice_date() -> None:
    inv = Invoice.model_validate_json(
        _dump(make_dated_invoice("2024-02-29", amount=10, total=11.8))
    )
    assert (inv.invoice_year, inv.invoice_month, inv.invoice_day) == (2024, 2, 29)
    assert inv.amount == 10.0


def test_invoice_accepts_negative_tax_and_mismatched_total() -> None:
    inv = Invoice.model_validate_json(_dump(make_invoice(tax=-20.0, total=5000.0)))
    assert inv.tax == -20.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "1000"}, "amount"),
        ({"amount": True}, "amount"),
        ({"tax": None}, "tax"),
        ({"total": ...}, "total"),
        ({"amount": 0}, "amount"),
        ({"amount": -5.0}, "amount"),
        ({"amount": 1e12}, "amount"),
        ({"tax": -1e15}, "tax"),
        ({"invoice_month": 13}, "invoice_month"),
        ({"invoice_month": 0}, "invoice_month"),
        ({"invoice_weekday": 7}, "invoice_weekday"),
        ({"invoice_weekday": "Wed"}, "invoice_weekday"),
        ({"invoice_year": 2024.5}, "invoice_year"),
        ({"invoice_year": 99999}, "invoice_year"),
        ({"invoice_month": 2, "invoice_day": 30}, "invoice_day"),
        ({"invoice_month": 4, "invoice_day": 31}, "invoice_day"),
        ({"invoice_year": 2023, "invoice_month": 2, "invoice_day": 29}, "invoice_day"),
        ({"invoice_day": 0}, "invoice_day"),
        ({"invoice_id": ""}, "invoice_id"),
        ({"invoice_id": [1]}, "invoice_id"),
        ({"ammount": 5.0}, "ammount"),
    ],
)
def test_invoice_rejects_bad_field_and_names_it(overrides: dict[str, Any], field: str) -> None:
    errors = error_fields(make_invoice(**overrides))
    # Field errors carry the field in `loc`; date rules spanning fields name it in `msg`.
    assert any(e.startswith(field) or f"error, {field}:" in e for e in errors), errors


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_invoice_rejects_non_finite_numbers(token: str) -> None:
    body = _dump(make_invoice()).replace('"tax": 180.0', f'"tax": {token}')
    assert any(e.startswith("tax:") for e in error_fields(body))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (make_dated_invoice("2024-02-30"), "invoice_date"),
        (make_dated_invoice("15/05/2024"), "invoice_date"),
        (make_invoice(invoice_day=...), "invoice_day"),
        (make_invoice(invoice_day=..., invoice_month=...), "invoice_month"),
        (make_invoice(invoice_date="2024-05-16"), "invoice_date"),
    ],
)
def test_invoice_date_problems_are_named(body: dict[str, Any], needle: str) -> None:
    assert any(needle in e for e in error_fields(body))


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", "null", '"text"', "{"])
def test_invoice_rejects_non_object_bodies(raw: str) -> None:
    with pytest.raises(ValidationError):
        Invoice.model_validate_json(raw or "{}")


def test_batch_names_the_index_of_each_bad_invoice() -> None:
    body = {"invoices": [make_invoice(), make_invoice(amount="x"), make_invoice(invoice_month=13)]}
    with pytest.raises(ValidationError) as info:
        InvoiceBatch.model_validate_json(_dump(body))
    locs = [tuple(e["loc"]) for e in info.value.errors()]
    assert ("invoices", 1, "amount") in locs
    assert ("invoices", 2, "invoice_month") in locs


def test_batch_limits_its_size() -> None:
    with pytest.raises(ValidationError, match="invoices"):
        InvoiceBatch.model_validate({"invoices": []})
    too_many = {"invoices": [make_invoice()] * (MAX_BATCH + 1)}
    with pytest.raises(ValidationError, match="at most 10000"):
        InvoiceBatch.model_validate_json(_dump(too_many))


def test_weekday_warning_only_on_disagreement() -> None:
    assert weekday_warning(2024, 5, 15, None, 2) == []
    assert weekday_warning(2024, 5, 15, 2, 2) == []
    (warning,) = weekday_warning(2024, 5, 15, 4, 2)
    assert "2024-05-15 is a Wednesday (2)" in warning and "invoice_weekday 4" in warning
