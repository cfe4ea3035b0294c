"""What the breaker found: content types, body limits, bad ids, timezones, fast 404s."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import ORDINARY, make_invoice

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/plain",
        None,
    ],
)
def test_any_content_type_is_parsed_as_strict_json(
    client: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    ok = client.post("/predict_invoice_fraud", content=json.dumps(ORDINARY), headers=headers)
    assert ok.status_code == 200, ok.text
    form = "amount=1000&tax=180&total=1180&invoice_year=2024&invoice_month=5&invoice_day=15"
    bad = client.post("/predict_invoice_fraud", content=form, headers=headers)
    assert bad.status_code == 400, bad.text
    assert "json" in bad.text.lower()


def test_oversized_body_is_refused_before_it_is_read(client: httpx.Client) -> None:
    big = b'{"invoices": [' + b" " * (9 * 1024 * 1024) + b"]}"
    started = time.monotonic()
    response = client.post(
        "/predict_invoice_fraud_batch", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "split the batch" in response.json()["error"]
    assert time.monotonic() - started < 10


def test_oversized_streamed_body_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"invoices": ['
        for _ in range(10):
            yield b" " * (1024 * 1024)
        yield b"]}"

    response = client.post("/predict_invoice_fraud_batch", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    "invoice_id",
    [
        "a\u0000b", "   ", "tab\there", "\u009b31m", "x" * 129, 2**53, -1, 1.5, True,
        "INV-7\u202egpj.exe", "\u200bINV-7", "INV\u2066-7", "INV-7\ufeff", "IN\u00adV",
        "INV\u2028-7",
    ],
)  # fmt: skip
def test_bad_invoice_ids_are_rejected(client: httpx.Client, invoice_id: object) -> None:
    response = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id=invoice_id))
    assert response.status_code == 400, response.text
    assert "invoice_id" in response.text
    batch = {"invoices": [make_invoice(invoice_id="ok"), make_invoice(invoice_id=invoice_id)]}
    response = client.post("/predict_invoice_fraud_batch", json=batch)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert any(e["loc"][:3] == ["invoices", 1, "invoice_id"] for e in detail), response.text


def test_text_invoice_ids_beyond_ascii_are_kept(client: httpx.Client) -> None:
    for invoice_id in ["Rechnung-Ä-01", "請求書-7", "fa\u0301cture 12"]:
        response = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id=invoice_id))
        assert response.status_code == 200, response.text
        assert response.json()["invoice_id"] == invoice_id


def test_since_honours_its_utc_offset(client: httpx.Client) -> None:
    scored = client.post("/predict_invoice_fraud", json=ORDINARY).json()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = client.post("/recent_predictions", json={"limit": 5}).json()["predictions"]
        if any(r["prediction_id"] == scored["prediction_id"] for r in rows):
            break
        time.sleep(0.1)
    two_minutes_ago = dt.datetime.now(dt.timezone(dt.timedelta(hours=14))) - dt.timedelta(minutes=2)
    recent = client.post("/recent_predictions", json={"since": two_minutes_ago.isoformat()})
    assert any(p["prediction_id"] == scored["prediction_id"] for p in recent.json()["predictions"])
    future = dt.datetime.now(dt.timezone(dt.timedelta(hours=-12))) + dt.timedelta(hours=1)
    later = client.post("/recent_predictions", json={"since": future.isoformat()})
    assert later.json()["predictions"] == []
    assert client.post("/recent_predictions", json={"since": 0}).status_code == 400


def test_unknown_verdict_id_answers_404_quickly(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.post("/record_verdict", json={"prediction_id": "f" * 32, "verdict": "fraud"})
    assert response.status_code == 404
    assert time.monotonic() - started < 1.5


def test_single_invoice_bodies_are_small(client: httpx.Client) -> None:
    body = json.dumps({**ORDINARY, "invoice_id": "x" * 70_000})
    response = client.post(
        "/predict_invoice_fraud", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "65,536 bytes" in response.json()["error"]


def test_thousands_of_bad_fields_get_a_short_answer(client: httpx.Client) -> None:
    body = {**ORDINARY, **{f"k{i}": 0 for i in range(5_000)}}
    response = client.post("/predict_invoice_fraud", json=body)
    assert response.status_code == 400
    assert len(response.content) < 64 * 1024
    data = response.json()
    assert len(data["detail"]) == 50 and data["detail"][0]["loc"] == ["k0"]
    assert data["truncated"] == "showing 50 of 5000 errors"


def server_errors(client: httpx.Client) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("bentoml_service_request_total") and 'http_response_code="5' in line:
            total += float(line.split()[-1])
    return total


def test_client_hanging_up_mid_body_is_not_a_server_error(client: httpx.Client) -> None:
    import socket
    from urllib.parse import urlsplit

    before = server_errors(client)
    url = urlsplit(str(client.base_url))
    for _ in range(5):
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            sock.sendall(
                b"POST /predict_invoice_fraud HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 129\r\n\r\n"
                b'{"amount": 1000.0, '
            )
    time.sleep(1.0)
    assert server_errors(client) == before
    assert client.post("/predict_invoice_fraud", json=ORDINARY).status_code == 200


@pytest.mark.parametrize("route", ["/predict_invoice_fraud", "/predict_invoice_fraud_batch"])
def test_deeply_nested_values_get_a_400_not_a_500(client: httpx.Client, route: str) -> None:
    # 2 KB of brackets where a date goes once exhausted Python's recursion in the batch
    # decoder: a 500 and a traceback per request.
    deep = "[" * 3000 + "]" * 3000
    invoice = json.dumps(make_invoice())[:-1] + f', "invoice_date": {deep}}}'
    body = invoice if route == "/predict_invoice_fraud" else f'{{"invoices": [{invoice}]}}'
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]
