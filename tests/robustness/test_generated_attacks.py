"""Generated input: schemathesis over the OpenAPI document, hypothesis over valid invoices."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_fraud.features import build_features
from invoice_fraud.synthetic import GeneratorParams, generate_invoices

pytestmark = pytest.mark.integration

PUBLIC = ("amount", "tax", "total", "invoice_year", "invoice_month", "invoice_day")


def test_schemathesis_finds_no_server_error(server_url: str, tmp_path: Path) -> None:
    """Every endpoint in /docs.json, generated valid and invalid bodies: never a 5xx."""
    done = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{server_url}/docs.json",
            "--checks", "not_a_server_error,negative_data_rejection,content_type_conformance",
            "--max-examples", "40", "--generation-deterministic", "--request-timeout", "30",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 11" in done.stdout or "Tested:" in done.stdout


valid_money = st.floats(min_value=0.01, max_value=1e7, allow_nan=False).map(lambda x: round(x, 2))
signed_money = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False).map(lambda x: round(x, 2))


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, object]:
    date = draw(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2099, 12, 31)))
    body: dict[str, object] = {
        "amount": draw(valid_money),
        "tax": draw(signed_money),
        "total": draw(signed_money),
    }
    if draw(st.booleans()):
        body["invoice_date"] = date.isoformat()
    else:
        body.update(invoice_year=date.year, invoice_month=date.month, invoice_day=date.day)
    if draw(st.booleans()):
        body["invoice_weekday"] = draw(st.integers(0, 6))
    if draw(st.booleans()):
        body["invoice_id"] = draw(
            st.one_of(
                st.integers(0, 2**53 - 1),
                st.text(
                    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                    min_size=1,
                    max_size=40,
                ).filter(str.strip),
            )
        )
    return body


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=invoices())
def test_valid_invoices_always_score_and_key_order_does_not_matter(
    client: httpx.Client, body: dict[str, object]
) -> None:
    first = client.post("/predict_invoice_fraud", json=body)
    assert first.status_code == 200, (body, first.text)
    scored = first.json()
    assert 0.0 <= scored["fraud_probability"] <= 1.0
    assert scored["prediction"] in (0, 1) and isinstance(scored["prediction"], int)
    reordered = json.dumps(dict(reversed(list(body.items()))))
    again = client.post(
        "/predict_invoice_fraud", content=reordered, headers={"content-type": "application/json"}
    ).json()
    assert again["fraud_probability"] == scored["fraud_probability"]
    assert again["invoice_id"] == body.get("invoice_id")


def test_served_scores_equal_offline_predict_proba(
    client: httpx.Client, bentoml_home: Path
) -> None:
    import bentoml

    frame = generate_invoices(GeneratorParams(rows=400, seed=99, fraud_rate=0.2))
    model = bentoml.models.get("invoice_fraud:latest")
    booster = bentoml.xgboost.load_model(model)
    offline = booster.inplace_predict(build_features(frame)).astype(np.float64)

    bodies = [
        {k: (int(v) if k.startswith("invoice_") else float(v)) for k, v in row.items()}
        for row in frame[list(PUBLIC)].to_dict("records")
    ]
    batch = client.post("/predict_invoice_fraud_batch", json={"invoices": bodies}).json()
    served = [p["fraud_probability"] for p in batch["predictions"]]
    assert np.allclose(served, offline, atol=1e-6, rtol=0)
    for k in range(0, 400, 20):  # and through the single-invoice endpoint
        single = client.post("/predict_invoice_fraud", json=bodies[k]).json()
        assert math.isclose(single["fraud_probability"], offline[k], abs_tol=1e-6)
    assert batch["model_tag"] == str(model.tag)
