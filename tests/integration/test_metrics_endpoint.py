"""`/metrics` keeps BentoML's metrics and adds ours, with values that match the traffic."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import ORDINARY, make_invoice

pytestmark = pytest.mark.integration


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_every_scored_invoice(client: httpx.Client) -> None:
    before = scrape(client)
    assert ("invoice_fraud_prediction_total", (("prediction", "0"),)) in before
    assert ("invoice_fraud_prediction_total", (("prediction", "1"),)) in before

    singles = [ORDINARY] * 5 + [make_invoice(total=2000.0)] * 3
    for body in singles:
        assert client.post("/predict_invoice_fraud", json=body).status_code == 200
    batch = [ORDINARY] * 10 + [make_invoice(total=2000.0)] * 4
    assert client.post("/predict_invoice_fraud_batch", json={"invoices": batch}).status_code == 200
    # A rejected request scores nothing.
    assert client.post("/predict_invoice_fraud", json={"amount": -1}).status_code == 400

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("invoice_fraud_prediction_total", prediction="0") == 15
    assert delta("invoice_fraud_prediction_total", prediction="1") == 7
    assert delta("invoice_fraud_probability_count") == 22
    assert delta("invoice_fraud_probability_bucket", le="0.1") == 15
    assert delta("invoice_prediction_latency_seconds_count", endpoint="predict_invoice_fraud") == 8
    assert (
        delta("invoice_prediction_latency_seconds_count", endpoint="predict_invoice_fraud_batch")
        == 1
    )
    # Model time of one invoice is far below a millisecond: the fine buckets must see it.
    assert (
        delta(
            "invoice_prediction_latency_seconds_bucket", endpoint="predict_invoice_fraud", le="0.01"
        )
        == 8
    )

    # BentoML's own HTTP metrics are still there.
    names = {name for name, _ in after}
    assert any(n.startswith("bentoml_service_request_total") for n in names)
    assert any(n.startswith("bentoml_service_request_duration_seconds") for n in names)


def test_model_info_gauge_carries_tag_and_threshold(client: httpx.Client) -> None:
    samples = scrape(client)
    info = [labels for (name, labels) in samples if name == "invoice_fraud_model_info"]
    assert len(info) == 1
    labels = dict(info[0])
    scored = client.post("/predict_invoice_fraud", json=ORDINARY).json()
    assert labels["model_tag"] == scored["model_tag"]
    assert float(labels["threshold"]) == pytest.approx(scored["threshold"], abs=1e-6)
