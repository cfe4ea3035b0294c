"""Tier 2: the service class called directly (no HTTP)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from invoice_fraud.schema import BatchPrediction, InvoiceBatch
from tests.factories import make_dated_invoice, make_invoice, validated


@pytest.fixture(scope="module")
def service(bentoml_home: Path) -> Any:
    from service import InvoiceFraudService

    return InvoiceFraudService()


def test_batch_scores_in_order_and_matches_single(service: Any) -> None:
    bodies = [make_invoice(invoice_id=f"i{k}", total=1180.0 + 40 * k) for k in range(12)]
    request = InvoiceBatch.model_validate_json(json.dumps({"invoices": bodies}))
    batch = BatchPrediction.model_validate_json(
        asyncio.run(service.predict_invoice_fraud_batch(request.invoices)).body
    )
    assert [p.invoice_id for p in batch.predictions] == [f"i{k}" for k in range(12)]
    assert batch.count == 12
    assert batch.flagged == sum(p.prediction for p in batch.predictions)
    probs = [p.fraud_probability for p in batch.predictions]
    assert probs[0] < 0.1 and probs[-1] > 0.5
    from invoice_fraud.columns import InvoiceColumns

    for body, p in zip(bodies, batch.predictions, strict=True):
        single = service._score(InvoiceColumns.from_invoice(validated(body)), "test")
        assert single.proba[0] == p.fraud_probability


def test_batch_date_errors_name_index_and_field(service: Any) -> None:
    from pydantic import ValidationError

    bodies = [
        make_invoice(),
        make_invoice(invoice_month=2, invoice_day=30),
        make_dated_invoice("2024-05-15"),
        make_invoice(invoice_day=...),
        make_invoice(invoice_date="2024-05-15", invoice_year=2023),
    ]
    request = InvoiceBatch.model_validate_json(json.dumps({"invoices": bodies}))
    with pytest.raises(ValidationError) as info:
        asyncio.run(service.predict_invoice_fraud_batch(request.invoices))
    locs = {tuple(e["loc"]): e["msg"] for e in info.value.errors()}
    assert set(locs) == {
        ("invoices", 1, "invoice_day"),
        ("invoices", 3, "invoice_day"),
        ("invoices", 4, "invoice_date"),
    }
    assert "February 2024 has 29 days" in locs[("invoices", 1, "invoice_day")]


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


def test_a_serving_process_loads_neither_scikit_learn_nor_pandas(
    bentoml_home: Path, tmp_path: Path
) -> None:
    """About 100 MB of RSS and 2 s of start-up per worker (invoice_fraud/lean_xgboost.py)."""
    import os
    import subprocess
    import sys

    from tests.servers import REPO

    probe = (
        "import sys, service\n"
        "svc = service.InvoiceFraudService.inner()\n"
        "svc.store.close()\n"
        "assert svc.booster.num_boosted_rounds() > 0\n"
        "print(sorted(m for m in ('sklearn', 'pandas', 'pyarrow') if m in sys.modules))\n"
    )
    env = {**os.environ, "INVOICE_FRAUD_STORE_PATH": str(tmp_path / "p.sqlite3")}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_invoices_the_store_cannot_keep_say_so(
    bentoml_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long outage fills the queue: scores still come back, marked as not stored."""
    import time

    from service import NOT_STORED, InvoiceFraudService

    missing = tmp_path / "no-such-dir" / "store.sqlite3"  # writes fail: the database is away
    monkeypatch.setenv("INVOICE_FRAUD_DATABASE_URL", f"sqlite:///{missing}")
    monkeypatch.setenv("INVOICE_FRAUD_STORE_BACKPRESSURE_ROWS", "1000")
    monkeypatch.setenv("INVOICE_FRAUD_STORE_MAX_PENDING_ROWS", "11000")
    service = InvoiceFraudService()
    try:
        body = json.dumps({"invoices": [make_invoice(invoice_id=k) for k in range(6_000)]})
        items = InvoiceBatch.model_validate_json(body).invoices

        def score() -> BatchPrediction:
            answer = asyncio.run(service.predict_invoice_fraud_batch(items))
            return BatchPrediction.model_validate_json(answer.body)

        first = score()  # queued: the store keeps it for when the database is back
        assert all(p.warnings == [] for p in first.predictions)
        deadline = time.monotonic() + 10
        while not service.store._failing:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = score()  # 12,000 rows would pass the 11,000-row limit
        assert second.count == 6_000
        assert all(p.warnings == [NOT_STORED] for p in second.predictions)
    finally:
        service.store.close(timeout=0.5)


def test_a_cancelled_batch_neither_leaks_nor_double_returns_its_store_room(
    service: Any,
) -> None:
    """BentoML's timeout cancels a request: an admitted batch is still scored and kept."""
    import time

    from invoice_fraud.columns import InvoiceColumns

    body = json.dumps({"invoices": [make_invoice(invoice_id=f"x{k}") for k in range(5_000)]})
    cols = InvoiceColumns.from_items(InvoiceBatch.model_validate_json(body).invoices)
    before = service.store.count()

    async def cancel_while_scoring() -> None:
        task = asyncio.ensure_future(service._answer_batch(cols, time.monotonic()))
        await asyncio.sleep(0)  # admitted, now waiting for its scoring thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The scoring goes on without the request and hands its room to the store.
        deadline = time.monotonic() + 30
        while service.store._reserved and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    for _ in range(3):
        asyncio.run(cancel_while_scoring())
    assert service.store.flush(30)
    with service.store._cond:
        assert service.store._reserved == 0
    assert service.store.count() == before + 15_000


def test_a_request_that_took_most_of_the_timeout_to_arrive_is_not_scored(
    service: Any,
) -> None:
    """A slow upload scored near the 30 s mark could be answered 504 after it was stored
    (the client retries: stored twice). Past the budget nothing is scored: a 408 says so."""
    import time

    from invoice_fraud.columns import InvoiceColumns
    from invoice_fraud.serving import DirectError
    from service import REQUEST_BUDGET_SECONDS

    single = json.dumps(make_invoice(invoice_id="late-single")).encode()
    body = json.dumps({"invoices": [make_invoice(invoice_id=f"late{k}") for k in range(3)]})
    cols = InvoiceColumns.from_items(InvoiceBatch.model_validate_json(body).invoices)
    assert service.store.flush(30)
    before = service.store.count()
    late = time.monotonic() - REQUEST_BUDGET_SECONDS - 1
    for refused in (service._direct_single(single, late), service._answer_batch(cols, late)):
        with pytest.raises(DirectError) as caught:
            asyncio.run(refused)
        assert caught.value.status == 408
        assert "too close to the 30 s request timeout" in caught.value.message
        assert "nothing of it was scored or stored" in caught.value.message
    assert service.store.flush(30)
    assert service.store.count() == before
    # In time, the same requests are scored and kept.
    in_time = time.monotonic() - REQUEST_BUDGET_SECONDS + 2
    answer = json.loads(asyncio.run(service._direct_single(single, in_time)))
    assert answer["invoice_id"] == "late-single"
    asyncio.run(service._answer_batch(cols, in_time))
    assert service.store.flush(30)
    assert service.store.count() == before + 4


def test_service_starts_when_the_store_directory_cannot_be_made(
    bentoml_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unusable store path is an outage to ride out, not a crash loop at start-up."""
    from service import InvoiceFraudService

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("INVOICE_FRAUD_STORE_PATH", str(blocker / "sub" / "store.sqlite3"))
    service = InvoiceFraudService()
    try:
        body = json.dumps({"invoices": [make_invoice(invoice_id=k) for k in range(3)]})
        items = InvoiceBatch.model_validate_json(body).invoices
        answer = asyncio.run(service.predict_invoice_fraud_batch(items))
        assert BatchPrediction.model_validate_json(answer.body).count == 3
    finally:
        service.store.close(timeout=0.5)
