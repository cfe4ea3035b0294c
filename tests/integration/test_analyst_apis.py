"""Explanations, stored predictions, verdicts and the model card over real HTTP."""

from __future__ import annotations

import datetime as dt
import math
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import ORDINARY, make_invoice

pytestmark = pytest.mark.integration


def recent(client: httpx.Client, **query: object) -> list[dict]:
    response = client.post("/recent_predictions", json=query)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def wait_stored(client: httpx.Client, prediction_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in recent(client, limit=1000):
            if row["prediction_id"] == prediction_id:
                return row
        time.sleep(0.1)
    raise AssertionError(f"{prediction_id} never reached the store")


def test_explain_invoice_reasons_add_up_to_the_score(client: httpx.Client) -> None:
    body = make_invoice(tax=31.0, total=1500.0)
    response = client.post("/explain_invoice", json=body)
    assert response.status_code == 200, response.text
    exp = response.json()
    margin = exp["base_score"] + sum(r["contribution"] for r in exp["reasons"])
    assert 1 / (1 + math.exp(-margin)) == pytest.approx(exp["fraud_probability"], abs=1e-4)
    sizes = [abs(r["contribution"]) for r in exp["reasons"]]
    assert sizes == sorted(sizes, reverse=True)
    texts = {r["feature"]: r["text"] for r in exp["reasons"]}
    assert texts["total_vs_amount_plus_tax"].startswith(
        "total is 45.5% above amount + tax (+469.00)"
    )
    assert texts["tax_rate"].startswith("tax rate 3.1% is not a standard rate")
    top = exp["reasons"][0]
    assert top["direction"] == "raises" and top["feature"] in texts


def test_scoring_includes_top_reasons_only_when_asked(client: httpx.Client) -> None:
    plain = client.post("/predict_invoice_fraud", json=ORDINARY).json()
    assert plain["reasons"] is None
    asked = client.post("/predict_invoice_fraud", json={**ORDINARY, "explain": True}).json()
    assert len(asked["reasons"]) == 3
    assert asked["fraud_probability"] == plain["fraud_probability"]
    bad = client.post("/predict_invoice_fraud", json={**ORDINARY, "explain": "yes"})
    assert bad.status_code == 400 and "explain" in bad.text


def test_every_scored_invoice_is_stored_with_its_details(client: httpx.Client) -> None:
    scored = client.post(
        "/predict_invoice_fraud", json=make_invoice(invoice_id="STORE-1", invoice_weekday=5)
    ).json()
    row = wait_stored(client, scored["prediction_id"])
    assert row["invoice_id"] == "STORE-1"
    assert (row["amount"], row["tax"], row["total"]) == (1000.0, 180.0, 1180.0)
    assert row["invoice_weekday"] == 2 and row["client_weekday"] == 5
    assert row["fraud_probability"] == scored["fraud_probability"]
    assert row["prediction"] == scored["prediction"] and row["model_tag"] == scored["model_tag"]
    assert row["threshold"] == scored["threshold"]
    assert row["warnings"] == scored["warnings"] and len(row["warnings"]) == 1
    assert row["features"]["tax_rate"] == pytest.approx(0.18)
    scored_at = dt.datetime.fromisoformat(row["scored_at"])
    assert abs((dt.datetime.now(dt.UTC) - scored_at).total_seconds()) < 60

    batch = client.post(
        "/predict_invoice_fraud_batch",
        json={"invoices": [make_invoice(invoice_id=f"SB-{k}") for k in range(5)]},
    ).json()
    for p in batch["predictions"]:
        assert wait_stored(client, p["prediction_id"])["invoice_id"] == p["invoice_id"]


def test_recent_predictions_filters(client: httpx.Client) -> None:
    flagged = client.post("/predict_invoice_fraud", json=make_invoice(total=2500.0)).json()
    assert flagged["prediction"] == 1
    wait_stored(client, flagged["prediction_id"])
    rows = recent(client, limit=20)
    stamps = [r["scored_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(r["prediction"] == 1 for r in recent(client, only_flagged=True))
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert recent(client, since=future) == []
    assert len(recent(client, limit=1)) == 1
    for bad in ({"limit": 0}, {"limit": 5000}, {"only_flagged": "yes"}, {"since": "soon"}):
        assert client.post("/recent_predictions", json=bad).status_code == 400, bad


def test_prediction_summary_counts_the_window(client: httpx.Client) -> None:
    before = client.post("/prediction_summary", json={"window_minutes": 5}).json()
    ids = [
        client.post("/predict_invoice_fraud", json=body).json()["prediction_id"]
        for body in (ORDINARY, ORDINARY, make_invoice(total=3000.0))
    ]
    wait_stored(client, ids[-1])
    for pid in ids:
        wait_stored(client, pid)
    after = client.post("/prediction_summary", json={"window_minutes": 5}).json()
    assert after["scored"] - before["scored"] == 3
    assert after["flagged"] - before["flagged"] == 1
    assert after["fraud_rate"] == pytest.approx(after["flagged"] / after["scored"])
    assert client.post("/prediction_summary", json={"window_minutes": 0}).status_code == 400


def verdict_counts(client: httpx.Client) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == "invoice_fraud_verdict_total":
                out[(s.labels["prediction"], s.labels["verdict"])] = s.value
    return out


def test_record_verdict_updates_store_and_metrics(client: httpx.Client) -> None:
    before = verdict_counts(client)
    assert len(before) == 4  # every series from start-up
    scored = client.post("/predict_invoice_fraud", json=make_invoice(total=2500.0)).json()
    response = client.post(
        "/record_verdict",
        json={"prediction_id": scored["prediction_id"], "verdict": "fraud", "comment": "called"},
    )
    assert response.status_code == 200, response.text
    row = response.json()
    assert (row["verdict"], row["verdict_comment"]) == ("fraud", "called")
    assert wait_stored(client, scored["prediction_id"])["verdict"] == "fraud"
    # The same verdict again is not a new confirmation.
    client.post(
        "/record_verdict", json={"prediction_id": scored["prediction_id"], "verdict": "fraud"}
    )
    after = verdict_counts(client)
    assert after[("1", "fraud")] - before[("1", "fraud")] == 1
    assert after[("1", "legitimate")] == before[("1", "legitimate")]


def test_record_verdict_rejects_unknown_ids_and_bad_verdicts(client: httpx.Client) -> None:
    unknown = client.post("/record_verdict", json={"prediction_id": "0" * 32, "verdict": "fraud"})
    assert unknown.status_code == 404 and "prediction_id" in unknown.json()["error"]
    bad = client.post("/record_verdict", json={"prediction_id": "0" * 32, "verdict": "maybe"})
    assert bad.status_code == 400 and "verdict" in bad.text
    long = client.post(
        "/record_verdict",
        json={"prediction_id": "0" * 32, "verdict": "fraud", "comment": "x" * 2001},
    )
    assert long.status_code == 400 and "comment" in long.text


def test_model_card_refuses_unknown_fields(client: httpx.Client) -> None:
    response = client.post("/model_card", json={"model": "other"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["model"]


def test_model_card_comes_from_the_model_metadata(client: httpx.Client) -> None:
    card = client.post("/model_card", json={}).json()
    scored = client.post("/predict_invoice_fraud", json=ORDINARY).json()
    assert card["model_tag"] == scored["model_tag"] and card["threshold"] == scored["threshold"]
    assert card["train_rows"] == 24_000  # 60 % of the 40,000 test rows
    assert {"pr_auc", "precision", "recall", "confusion_matrix"} <= set(card["test_metrics"])
    assert "amount" in card["feature_names"]
