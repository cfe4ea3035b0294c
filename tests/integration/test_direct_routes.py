"""The direct scoring routes answer exactly what BentoML's own API handler answers.

The service answers the two scoring routes from the raw body (invoice_fraud/serving.py)
unless ``INVOICE_FRAUD_DIRECT_SCORING=false``. A client must not be able to tell: the same
bodies get the same status, the same JSON (apart from the fresh prediction ids) and the
same content type, accepted or refused.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import make_dated_invoice, make_invoice
from tests.servers import bentoml_server

pytestmark = pytest.mark.integration

SINGLE: list[bytes] = [
    json.dumps(make_invoice()).encode(),
    json.dumps(make_invoice(invoice_id="INV-7", explain=True)).encode(),
    json.dumps(make_dated_invoice("2024-03-04", invoice_id=12)).encode(),
    json.dumps(make_invoice(invoice_weekday=6)).encode(),  # wrong weekday: a warning
    json.dumps(make_invoice(amount=-5, tax="x")).encode(),
    json.dumps(make_invoice(invoice_month=2, invoice_day=30)).encode(),
    json.dumps(make_invoice(surprise=1)).encode(),
    json.dumps(make_invoice(amount=True)).encode(),
    b"",
    b"[]",
    b"null",
    b"{",
    b'{"amount": 1e999}',
]
BATCH: list[bytes] = [
    json.dumps({"invoices": [make_invoice(), make_dated_invoice("2023-01-31")]}).encode(),
    json.dumps({"invoices": [make_invoice(invoice_id=f"B{i}") for i in range(60)]}).encode(),
    json.dumps({"invoices": []}).encode(),
    json.dumps({"invoices": [make_invoice(), make_dated_invoice("2023-02-29")]}).encode(),
    json.dumps({"invoices": [make_invoice(), make_invoice(total=None)]}).encode(),
    json.dumps({"invoices": [make_invoice()], "extra": 1}).encode(),
    b"",
    b"{}",
]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "prediction_id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _answers(url: str) -> list[tuple[int, str, Any]]:
    answers = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for route, bodies in (
            ("/predict_invoice_fraud", SINGLE),
            ("/predict_invoice_fraud_batch", BATCH),
        ):
            for body in bodies:
                r = client.post(route, content=body, headers={"content-type": "application/json"})
                answers.append((r.status_code, r.headers["content-type"], _without_ids(r.json())))
    return answers


@pytest.fixture(scope="module")
def bentoml_handler_url(
    bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("logs-handler") / "bentoml-serve.log"
    with bentoml_server(bentoml_home, log, env={"INVOICE_FRAUD_DIRECT_SCORING": "false"}) as url:
        yield url


def test_direct_and_bentoml_paths_answer_the_same(
    server_url: str, bentoml_handler_url: str
) -> None:
    direct = _answers(server_url)
    handled = _answers(bentoml_handler_url)
    statuses = [status for status, _, _ in direct]
    # The bodies cover both outcomes on both routes, or the comparison proves little.
    assert statuses.count(200) >= 6 and statuses.count(400) >= 10, statuses
    for body, mine, theirs in zip([*SINGLE, *BATCH], direct, handled, strict=True):
        assert mine == theirs, body


def _slow_post(url: str, route: str, body: bytes, finish_after: float) -> tuple[int, Any]:
    """POST ``body`` over a raw socket, its last byte sent ``finish_after`` s after the rest."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = (
            f"POST {route} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:-1])
        time.sleep(finish_after)
        sock.sendall(body[-1:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def _stored_invoice_ids(url: str) -> set[Any]:
    """Invoice ids of the latest stored predictions, once every worker's queue is empty."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            depth = [
                float(line.split()[-1])
                for line in client.get("/metrics").text.splitlines()
                if line.startswith("invoice_fraud_store_queue_depth")
            ]
            if depth and sum(depth) == 0:
                break
            time.sleep(0.1)
        rows = client.post("/recent_predictions", json={"limit": 1000}).json()["predictions"]
    return {row["invoice_id"] for row in rows}


def test_a_body_that_took_most_of_the_timeout_to_arrive_gets_a_408_on_both_paths(
    server_url: str, bentoml_handler_url: str
) -> None:
    """Scored that late it could be cut off at 30 s after being stored (a retry: twice).

    Both paths, both routes, all four uploads at once (about 26 s in all). BentoML's
    handler once turned these refusals into 200s carrying the error."""
    from service import REQUEST_BUDGET_SECONDS

    late = REQUEST_BUDGET_SECONDS + 0.7
    uploads = {
        (url, route): body
        for url in (server_url, bentoml_handler_url)
        for route, body in (
            ("/predict_invoice_fraud", json.dumps(make_invoice(invoice_id=f"late-{url}"))),
            (
                "/predict_invoice_fraud_batch",
                json.dumps({"invoices": [make_invoice(invoice_id=f"late-batch-{url}")]}),
            ),
        )
    }
    answers: dict[tuple[str, str], tuple[int, Any]] = {}

    def upload(key: tuple[str, str]) -> None:
        answers[key] = _slow_post(*key, uploads[key].encode(), late)

    threads = [threading.Thread(target=upload, args=(key,)) for key in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(answers) == set(uploads)
    for key, (status, answer) in answers.items():
        assert status == 408, (key, answer)
        assert "too close to the 30 s request timeout" in answer["error"], (key, answer)
        assert "nothing of it was scored or stored" in answer["error"], (key, answer)
    for url in (server_url, bentoml_handler_url):
        assert not {f"late-{url}", f"late-batch-{url}"} & _stored_invoice_ids(url)
