"""Tier 3: the real `bentoml serve`, talked to over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.factories import ORDINARY, make_dated_invoice, make_invoice

pytestmark = pytest.mark.integration


def post(client: httpx.Client, body: Any, path: str = "/predict_invoice_fraud") -> httpx.Response:
    return client.post(path, json=body)


def error_text(response: httpx.Response) -> str:
    """The error body as text, after checking it is well-formed JSON."""
    return json.dumps(response.json())


def test_example_body_is_scored(client: httpx.Client) -> None:
    response = post(client, ORDINARY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] in (0, 1) and body["prediction"] == 0
    assert 0.0 <= body["fraud_probability"] < 0.1
    assert 0.0 < body["threshold"] < 1.0
    assert body["model_tag"].startswith("invoice_fraud:")
    assert body["invoice_weekday"] == 2 and body["warnings"] == []


def test_invoice_id_is_echoed(client: httpx.Client) -> None:
    body = post(client, make_invoice(invoice_id="INV-2024-0001")).json()
    assert body["invoice_id"] == "INV-2024-0001"
    assert post(client, make_invoice(invoice_id=77)).json()["invoice_id"] == 77


def test_invoice_date_body_scores_like_the_seven_fields(client: httpx.Client) -> None:
    dated = post(client, make_dated_invoice("2024-05-15"))
    assert dated.status_code == 200, dated.text
    assert dated.json()["fraud_probability"] == post(client, ORDINARY).json()["fraud_probability"]


def test_mismatched_weekday_is_scored_with_the_calendar_and_said(client: httpx.Client) -> None:
    response = post(client, make_invoice(invoice_weekday=6))
    assert response.status_code == 200
    body = response.json()
    assert body["invoice_weekday"] == 2
    assert body["fraud_probability"] == post(client, ORDINARY).json()["fraud_probability"]
    assert "invoice_weekday 6 disagrees" in body["warnings"][0]


def test_negative_tax_and_bad_totals_are_valid_input(client: httpx.Client) -> None:
    response = post(client, make_invoice(tax=-180.0, total=1500.0))
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == 1


def test_batch_returns_one_result_per_invoice_in_order(client: httpx.Client) -> None:
    invoices = [make_invoice(invoice_id=f"b{k}", total=1180.0 + 100 * (k % 3)) for k in range(30)]
    response = post(client, {"invoices": invoices}, "/predict_invoice_fraud_batch")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["invoice_id"] for p in body["predictions"]] == [f"b{k}" for k in range(30)]
    assert body["count"] == 30
    single = {
        gap: post(client, make_invoice(total=1180.0 + gap)).json()["fraud_probability"]
        for gap in (0, 100, 200)
    }
    for k, p in enumerate(body["predictions"]):
        assert p["fraud_probability"] == single[100 * (k % 3)]
    assert body["flagged"] == sum(p["prediction"] for p in body["predictions"])


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("missing field", make_invoice(total=...), "total"),
    ("string amount", make_invoice(amount="1000"), "amount"),
    ("boolean tax", make_invoice(tax=True), "tax"),
    ("null total", make_invoice(total=None), "total"),
    ("zero amount", make_invoice(amount=0), "amount"),
    ("negative amount", make_invoice(amount=-10.5), "amount"),
    ("absurd amount", make_invoice(amount=1e300), "amount"),
    ("absurd tax", make_invoice(tax=-1e20), "tax"),
    ("month 13", make_invoice(invoice_month=13), "invoice_month"),
    ("weekday 7", make_invoice(invoice_weekday=7), "invoice_weekday"),
    ("30 February", make_invoice(invoice_month=2, invoice_day=30), "invoice_day"),
    ("bad date", make_dated_invoice("2024-02-30"), "invoice_date"),
    ("date text", make_dated_invoice("yesterday"), "invoice_date"),
    ("no date", make_invoice(invoice_year=..., invoice_month=..., invoice_day=...), "invoice_"),
    ("unknown field", make_invoice(discount=5), "discount"),
    ("list body", [ORDINARY], "object"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c for c, _, _ in BAD_BODIES])
def test_bad_input_gets_400_naming_the_field(
    client: httpx.Client, case: str, body: Any, field: str
) -> None:
    response = post(client, body)
    assert response.status_code == 400, (case, response.text)
    assert field in error_text(response)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json at all",
        b'{"amount": NaN, "tax": 1, "total": 1, "invoice_date": "2024-05-15"}',
        b'{"amount": Infinity, "tax": 1, "total": 1, "invoice_date": "2024-05-15"}',
        b'{"amount": 1',
        '{"amount": 1, "tax": 1, "total": 1, "invoice_date": "2024-05-15", "x": "\xff"}'.encode(
            "latin-1"
        ),
    ],
)
def test_malformed_bodies_get_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post(
        "/predict_invoice_fraud", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_bad_batch_names_index_and_field(client: httpx.Client) -> None:
    invoices = [ORDINARY, make_invoice(amount="x"), ORDINARY, make_invoice(invoice_month=13)]
    response = post(client, {"invoices": invoices}, "/predict_invoice_fraud_batch")
    assert response.status_code == 400
    locs = [d["loc"] for d in response.json()["detail"]]
    assert ["invoices", 1, "amount"] in locs and ["invoices", 3, "invoice_month"] in locs


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"invoices": []}, "invoices"),
        ({"invoices": {"a": 1}}, "invoices"),
        ([ORDINARY], "should be an object"),
        ({"invoice": [ORDINARY]}, "invoice"),
        ({}, "invoices"),
    ],
    ids=["empty", "object", "bare list", "wrong key", "no key"],
)
def test_malformed_batches_get_400(client: httpx.Client, body: Any, needle: str) -> None:
    response = post(client, body, "/predict_invoice_fraud_batch")
    assert response.status_code == 400, response.text
    assert needle in error_text(response)


def test_oversized_batch_gets_400(client: httpx.Client) -> None:
    response = post(client, {"invoices": [ORDINARY] * 10_001}, "/predict_invoice_fraud_batch")
    assert response.status_code == 400
    assert "10000" in error_text(response)


def test_health_probes_answer(client: httpx.Client) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
