"""The batch answer assembled from columns equals serialising one dict per prediction."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_fraud.batch_json import batch_response
from invoice_fraud.schema import BatchPrediction
from invoice_fraud.store import new_prediction_ids


def as_dicts(**columns: Any) -> bytes:
    """The straightforward encoding the assembled one must equal."""
    threshold, tag = columns["threshold"], columns["model_tag"]
    predictions = [
        {
            "prediction_id": pid,
            "invoice_id": iid,
            "prediction": f,
            "fraud_probability": p,
            "threshold": threshold,
            "model_tag": tag,
            "invoice_weekday": w,
            "warnings": warn,
            "reasons": None,
        }
        for pid, iid, f, p, w, warn in zip(
            columns["prediction_ids"],
            columns["invoice_ids"],
            columns["flagged"],
            columns["proba"],
            columns["weekdays"],
            columns["warnings"],
            strict=True,
        )
    ]
    return orjson.dumps(
        {
            "predictions": predictions,
            "count": len(predictions),
            "flagged": sum(columns["flagged"]),
            "threshold": threshold,
            "model_tag": tag,
        }
    )


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 30))
    return {
        "prediction_ids": new_prediction_ids(n),
        "invoice_ids": draw(
            st.lists(
                st.one_of(st.none(), st.integers(0, 2**53 - 1), st.text(max_size=20)),
                min_size=n,
                max_size=n,
            )
        ),
        "flagged": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        "proba": draw(
            st.lists(
                st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 1e-7, 2.5e-5, 5e-324])),
                min_size=n,
                max_size=n,
            )
        ),
        "weekdays": draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
        "warnings": draw(
            st.lists(st.lists(st.text(max_size=30), max_size=2), min_size=n, max_size=n)
        ),
        "threshold": draw(st.floats(0, 1)),
        "model_tag": draw(st.sampled_from(["invoice_fraud:abc", 'odd "tag" \\ \u00e9'])),
    }


@settings(max_examples=300, deadline=None)
@given(batches())
def test_assembled_answer_parses_to_the_dicts_answer(columns: dict[str, Any]) -> None:
    assembled = batch_response(**columns)
    expected = json.loads(as_dicts(**columns))
    assert json.loads(assembled) == expected
    # Floats exactly, not just equal after a lossy parse: compare their reprs too.
    got = [p["fraud_probability"] for p in json.loads(assembled)["predictions"]]
    assert [repr(p) for p in got] == [repr(p) for p in columns["proba"]]


def test_assembled_answer_is_a_valid_batch_prediction() -> None:
    n = 1_000
    columns = {
        "prediction_ids": new_prediction_ids(n),
        "invoice_ids": [None if k % 3 else f"INV-{k}" for k in range(n)],
        "flagged": [k % 2 for k in range(n)],
        "proba": [k / n for k in range(n)],
        "weekdays": [k % 7 for k in range(n)],
        "warnings": [["weekday disagrees"] if k == 5 else [] for k in range(n)],
        "threshold": 0.56,
        "model_tag": "invoice_fraud:abc",
    }
    parsed = BatchPrediction.model_validate_json(batch_response(**columns))
    assert parsed.count == n and parsed.flagged == n // 2
    assert parsed.predictions[5].warnings == ["weekday disagrees"]
    assert parsed.predictions[3].invoice_id == "INV-3"
    assert parsed.predictions[1].invoice_id is None
    assert [p.prediction_id for p in parsed.predictions] == columns["prediction_ids"]
