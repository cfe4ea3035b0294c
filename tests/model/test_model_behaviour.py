"""Behavioural tests of the served model, through the service class called directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from invoice_fraud.schema import FraudPrediction
from tests.factories import make_invoice, validated


@pytest.fixture(scope="module")
def service(bentoml_home: Path) -> Any:
    from service import InvoiceFraudService

    return InvoiceFraudService()


async def score(service: Any, **overrides: Any) -> FraudPrediction:
    fields = validated(make_invoice(**overrides)).model_dump()
    return await service.predict_invoice_fraud(**fields)


async def test_ordinary_invoice_scores_below_point_one(service: Any) -> None:
    result = await score(service)
    assert result.fraud_probability < 0.1
    assert result.prediction == 0


async def test_invoice_id_does_not_change_the_score(service: Any) -> None:
    a = await score(service, invoice_id="INV-1", total=1300.0)
    b = await score(service, invoice_id="completely-different-99", total=1300.0)
    assert a.fraud_probability == b.fraud_probability
    assert (a.invoice_id, b.invoice_id) == ("INV-1", "completely-different-99")


async def test_widening_total_mismatch_raises_the_score(service: Any) -> None:
    probs = [
        (await score(service, total=1180.0 + gap)).fraud_probability for gap in (0, 30, 150, 400)
    ]
    assert probs == sorted(probs)
    assert probs[-1] > probs[0] + 0.5
    assert (await score(service, total=1580.0)).prediction == 1


async def test_each_typology_raises_the_score(service: Any) -> None:
    base = (await score(service, amount=812.37, tax=154.35, total=966.72)).fraud_probability
    variants = {
        "nonstandard tax": {"amount": 812.37, "tax": 25.18, "total": 837.55},
        "negative tax": {"amount": 812.37, "tax": -154.35, "total": 658.02},
        "inflated": {"amount": 912_345.67, "tax": 173_345.68, "total": 1_085_691.35},
        "below limit": {"amount": 4_990.0, "tax": 948.1, "total": 5_938.1},
    }
    for name, fields in variants.items():
        p = (await score(service, **fields)).fraud_probability
        assert p > base + 0.3, name


def test_service_reads_threshold_and_tag_from_the_model(service: Any) -> None:
    meta = service.model.info.metadata
    assert service.threshold == meta["threshold"]
    assert service.model_tag == str(service.model.tag)
