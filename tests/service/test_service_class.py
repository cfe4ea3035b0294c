"""Tier 2: the service class called directly (no HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factories import make_dated_invoice, make_invoice, validated


@pytest.fixture(scope="module")
def service(bentoml_home: Path) -> Any:
    from service import InvoiceFraudService

    return InvoiceFraudService()


def test_batch_scores_in_order_and_matches_single(service: Any) -> None:
    bodies = [make_invoice(invoice_id=f"i{k}", total=1180.0 + 40 * k) for k in range(12)]
    invoices = [validated(b) for b in bodies]
    batch = service.predict_invoice_fraud_batch(invoices)
    assert [p.invoice_id for p in batch.predictions] == [f"i{k}" for k in range(12)]
    assert batch.count == 12
    assert batch.flagged == sum(p.prediction for p in batch.predictions)
    probs = [p.fraud_probability for p in batch.predictions]
    assert probs[0] < 0.1 and probs[-1] > 0.5


async def test_invoice_date_body_scores_like_the_split_fields(service: Any) -> None:
    dated = validated(make_dated_invoice("2024-05-15")).model_dump()
    split = validated(make_invoice()).model_dump()
    a = await service.predict_invoice_fraud(**dated)
    b = await service.predict_invoice_fraud(**split)
    assert a.fraud_probability == b.fraud_probability
    assert a.invoice_weekday == 2 and a.warnings == []


async def test_mismatched_weekday_is_scored_with_the_calendar_and_reported(service: Any) -> None:
    wrong = validated(make_invoice(invoice_weekday=5)).model_dump()
    right = validated(make_invoice()).model_dump()
    a = await service.predict_invoice_fraud(**wrong)
    b = await service.predict_invoice_fraud(**right)
    assert a.fraud_probability == b.fraud_probability
    assert a.invoice_weekday == 2
    assert len(a.warnings) == 1 and "Wednesday" in a.warnings[0]


def test_service_refuses_a_model_with_other_features(service: Any, monkeypatch: Any) -> None:
    from service import InvoiceFraudService

    real = service.model.info.metadata
    monkeypatch.setitem(real, "feature_names", ["amount", "tax"])
    with pytest.raises(RuntimeError, match="retrain"):
        InvoiceFraudService()
