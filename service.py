"""BentoML service scoring invoices for fraud.

    bentoml serve            # http://127.0.0.1:3000, APIs below plus /metrics /livez /readyz

``POST /predict_invoice_fraud`` takes one invoice as a flat JSON object;
``POST /predict_invoice_fraud_batch`` takes ``{"invoices": [...]}``. Everything the service
needs to score (threshold, feature names) comes from the model's metadata, so it serves
whatever ``train.py`` saved.
"""

from __future__ import annotations

import time

import bentoml
import numpy as np

from invoice_fraud.features import FEATURE_NAMES, build_features
from invoice_fraud.metrics import get_metrics
from invoice_fraud.schema import (
    BatchPrediction,
    FraudPrediction,
    Invoice,
    InvoiceBatch,
    weekday_warning,
)
from invoice_fraud.settings import get_settings

WEEKDAY_COLUMN = FEATURE_NAMES.index("weekday")


def _columns(invoices: list[Invoice]) -> dict[str, np.ndarray]:
    """Validated invoices as the feature builder's input columns."""
    n = len(invoices)
    # The validator has filled year/month/day (from invoice_date when that was sent).
    return {
        "amount": np.fromiter((i.amount for i in invoices), np.float64, n),
        "tax": np.fromiter((i.tax for i in invoices), np.float64, n),
        "total": np.fromiter((i.total for i in invoices), np.float64, n),
        "invoice_year": np.fromiter((i.invoice_year for i in invoices), np.int64, n),
        "invoice_month": np.fromiter((i.invoice_month for i in invoices), np.int64, n),
        "invoice_day": np.fromiter((i.invoice_day for i in invoices), np.int64, n),
    }


@bentoml.service(
    name="invoice_fraud_service",
    workers=2,
    traffic={"timeout": 30},
    http={"port": 3000},
)
class InvoiceFraudService:
    """Scores invoices with the XGBoost model from the BentoML store."""

    # Declared at class level so `bentoml build` packs the model into the Bento.
    model = bentoml.models.BentoModel(get_settings().model_tag)

    def __init__(self) -> None:
        stored = self.model
        metadata = stored.info.metadata
        saved_features = tuple(metadata.get("feature_names", ()))
        if saved_features != FEATURE_NAMES:
            raise RuntimeError(
                f"model {stored.tag} was trained on features {saved_features}, but this code "
                f"builds {FEATURE_NAMES}; retrain with this version's train.py"
            )
        self.booster = bentoml.xgboost.load_model(stored)
        # One thread per prediction: requests are scored concurrently by the workers, and
        # xgboost's thread pool costs more than it saves on a handful of rows.
        self.booster.set_param({"nthread": 1})
        self.threshold = float(metadata["threshold"])
        self.model_tag = str(stored.tag)
        self.metadata = dict(metadata)
        self.metrics = get_metrics()
        self.metrics.model_info.labels(
            model_tag=self.model_tag, threshold=f"{self.threshold:.6f}"
        ).set(1)

    def _score(
        self, invoices: list[Invoice], endpoint: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities, flags and calendar weekdays of validated invoices."""
        started = time.perf_counter()
        features = build_features(_columns(invoices))
        proba = np.asarray(self.booster.inplace_predict(features), dtype=np.float64)
        flagged = proba >= self.threshold
        self.metrics.record(endpoint, proba, int(flagged.sum()), time.perf_counter() - started)
        weekday = features[:, WEEKDAY_COLUMN].astype(np.int64)
        return proba, flagged, weekday

    def _results(self, invoices: list[Invoice], endpoint: str) -> list[FraudPrediction]:
        proba, flagged, weekday = self._score(invoices, endpoint)
        return [
            FraudPrediction(
                invoice_id=inv.invoice_id,
                prediction=1 if f else 0,
                fraud_probability=p,
                threshold=self.threshold,
                model_tag=self.model_tag,
                invoice_weekday=w,
                warnings=weekday_warning(
                    inv.invoice_year or 0,
                    inv.invoice_month or 0,
                    inv.invoice_day or 0,
                    inv.invoice_weekday,
                    w,
                ),
            )
            for inv, p, f, w in zip(
                invoices, proba.tolist(), flagged.tolist(), weekday.tolist(), strict=True
            )
        ]

    @bentoml.api(route="/predict_invoice_fraud", input_spec=Invoice)
    async def predict_invoice_fraud(self, **fields: object) -> FraudPrediction:
        """Score one invoice, sent as a flat JSON object."""
        # BentoML has validated the body against Invoice and passes its fields; rebuilding
        # the model without validating again costs nothing.
        invoice = Invoice.model_construct(**fields)  # type: ignore[arg-type]
        return self._results([invoice], "predict_invoice_fraud")[0]

    @bentoml.api(route="/predict_invoice_fraud_batch", input_spec=InvoiceBatch)
    def predict_invoice_fraud_batch(self, invoices: list[Invoice]) -> BatchPrediction:
        """Score up to 10,000 invoices sent as ``{"invoices": [...]}``, in order."""
        results = self._results(invoices, "predict_invoice_fraud_batch")
        return BatchPrediction(
            predictions=results,
            count=len(results),
            flagged=sum(r.prediction for r in results),
            threshold=self.threshold,
            model_tag=self.model_tag,
        )
