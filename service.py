"""BentoML service scoring invoices for fraud.

    bentoml serve            # http://127.0.0.1:3000, APIs below plus /metrics /livez /readyz

``POST /predict_invoice_fraud`` takes one invoice as a flat JSON object;
``POST /predict_invoice_fraud_batch`` takes ``{"invoices": [...]}``. Every scored invoice is
kept in the prediction store; the read, explanation, feedback and model-card APIs are
described in docs/api.md. Everything the service needs to score (threshold, feature names)
comes from the model's metadata, so it serves whatever ``train.py`` saved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from invoice_fraud.explain import explain
from invoice_fraud.features import FEATURE_NAMES, build_features
from invoice_fraud.metrics import get_metrics
from invoice_fraud.schema import (
    BatchPrediction,
    Explanation,
    FraudPrediction,
    Invoice,
    InvoiceBatch,
    InvoiceRequest,
    ModelCard,
    PredictionSummary,
    Reason,
    RecentPredictions,
    RecentQuery,
    StoredPrediction,
    SummaryQuery,
    VerdictCounts,
    VerdictRequest,
    weekday_warning,
)
from invoice_fraud.settings import get_settings
from invoice_fraud.store import PendingRows, PredictionStore, StoreCounters

logger = logging.getLogger("invoice_fraud.service")

WEEKDAY_COLUMN = FEATURE_NAMES.index("weekday")
#: Derived features kept with each stored prediction (what an analyst looks at first).
STORED_FEATURES = (
    "tax_rate",
    "tax_rate_distance",
    "total_gap",
    "total_gap_ratio",
    "amount_roundness",
    "below_limit_ratio",
    "is_weekend",
)
_STORED_COLUMNS = [FEATURE_NAMES.index(name) for name in STORED_FEATURES]
#: Reasons included on a single score when asked with explain=true.
TOP_REASONS = 3


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


def _new_ids(n: int) -> list[str]:
    """``n`` random 128-bit ids as 32 hex digits (one syscall, not ``n`` uuid4 calls)."""
    raw = secrets.token_bytes(16 * n).hex()
    return [raw[i : i + 32] for i in range(0, 32 * n, 32)]


def _error(status: int, message: str) -> Any:
    """A JSON error response, shaped like BentoML's own 4xx bodies."""
    return JSONResponse({"error": message}, status_code=status)


@bentoml.service(
    name="invoice_fraud_service",
    workers=2,
    traffic={"timeout": 30},
    http={"port": 3000},
)
class InvoiceFraudService:
    """Scores invoices with the XGBoost model from the BentoML store and keeps them."""

    # Declared at class level so `bentoml build` packs the model into the Bento.
    model = bentoml.models.BentoModel(get_settings().model_tag)

    def __init__(self) -> None:
        settings = get_settings()
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
        self.store: PredictionStore | None = None
        if settings.store_enabled:
            if settings.database_url is None:
                Path(settings.store_path).parent.mkdir(parents=True, exist_ok=True)
            m = self.metrics
            self.store = PredictionStore(
                settings.store_url(),
                flush_interval=settings.store_flush_interval_seconds,
                max_pending=settings.store_max_pending_rows,
                counters=StoreCounters(
                    written=m.store_writes.inc,
                    failed=m.store_failures.inc,
                    dropped=m.store_dropped.inc,
                    pending=m.store_queue_depth.set,
                ),
            )
            self.store.start()

    @bentoml.on_shutdown
    def close_store(self) -> None:
        """Write every queued prediction before the worker exits (runs on SIGTERM)."""
        if self.store is not None:
            self.store.close()

    # -- scoring ------------------------------------------------------------------------

    def _score(
        self, invoices: list[Invoice], endpoint: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, probabilities and flags of validated invoices; records the metrics."""
        started = time.perf_counter()
        features = build_features(_columns(invoices))
        proba = np.asarray(self.booster.inplace_predict(features), dtype=np.float64)
        flagged = proba >= self.threshold
        self.metrics.record(endpoint, proba, int(flagged.sum()), time.perf_counter() - started)
        return features, proba, flagged

    def _results(
        self, invoices: list[Invoice], endpoint: str, explain_top: bool = False
    ) -> list[FraudPrediction]:
        features, proba, flagged = self._score(invoices, endpoint)
        weekdays = features[:, WEEKDAY_COLUMN].astype(np.int64).tolist()
        ids = _new_ids(len(invoices))
        warnings = [
            weekday_warning(
                inv.invoice_year or 0,
                inv.invoice_month or 0,
                inv.invoice_day or 0,
                inv.invoice_weekday,
                w,
            )
            for inv, w in zip(invoices, weekdays, strict=True)
        ]
        proba_list, flagged_list = proba.tolist(), flagged.astype(np.int64).tolist()
        reasons: list[list[Reason] | None] = [None] * len(invoices)
        if explain_top:
            _, explained = explain(self.booster, features)
            reasons = [[Reason(**vars(r)) for r in rs[:TOP_REASONS]] for rs in explained]
        if self.store is not None:
            self._keep(invoices, ids, features, proba_list, flagged_list, weekdays, warnings)
        return [
            FraudPrediction(
                prediction_id=pid,
                invoice_id=inv.invoice_id,
                prediction=f,
                fraud_probability=p,
                threshold=self.threshold,
                model_tag=self.model_tag,
                invoice_weekday=w,
                warnings=warn,
                reasons=why,
            )
            for inv, pid, p, f, w, warn, why in zip(
                invoices, ids, proba_list, flagged_list, weekdays, warnings, reasons, strict=True
            )
        ]

    def _keep(
        self,
        invoices: list[Invoice],
        ids: list[str],
        features: np.ndarray,
        proba: list[float],
        flagged: list[int],
        weekdays: list[int],
        warnings: list[list[str]],
    ) -> None:
        """Hand the scored invoices to the store's writer (never waits for the database)."""
        assert self.store is not None
        # float32 features carry noise digits (0.0309999995); six decimals are plenty.
        kept = features[:, _STORED_COLUMNS].astype(np.float64).round(6).tolist()
        self.store.add(
            PendingRows(
                columns={
                    "prediction_id": ids,
                    "invoice_id": [i.invoice_id for i in invoices],
                    "amount": [i.amount for i in invoices],
                    "tax": [i.tax for i in invoices],
                    "total": [i.total for i in invoices],
                    "invoice_year": [i.invoice_year for i in invoices],
                    "invoice_month": [i.invoice_month for i in invoices],
                    "invoice_day": [i.invoice_day for i in invoices],
                    "invoice_weekday": weekdays,
                    "client_weekday": [i.invoice_weekday for i in invoices],
                    "fraud_probability": proba,
                    "prediction": flagged,
                    "warnings": warnings,
                    "features": [dict(zip(STORED_FEATURES, row, strict=True)) for row in kept],
                },
                scored_at=dt.datetime.now(dt.UTC),
                threshold=self.threshold,
                model_tag=self.model_tag,
            )
        )

    @bentoml.api(route="/predict_invoice_fraud", input_spec=InvoiceRequest)
    async def predict_invoice_fraud(self, **fields: Any) -> FraudPrediction:
        """Score one invoice, sent as a flat JSON object (``explain: true`` adds reasons)."""
        explain_top = bool(fields.pop("explain", False))
        # BentoML has validated the body against InvoiceRequest and passes its fields;
        # rebuilding the model without validating again costs nothing.
        invoice = Invoice.model_construct(**fields)
        return self._results([invoice], "predict_invoice_fraud", explain_top)[0]

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

    # -- explanations -------------------------------------------------------------------

    @bentoml.api(route="/explain_invoice", input_spec=Invoice)
    def explain_invoice(self, **fields: Any) -> Explanation:
        """Every reason behind an invoice's score, largest push first (not stored)."""
        invoice = Invoice.model_construct(**fields)
        features = build_features(_columns([invoice]))
        proba = float(self.booster.inplace_predict(features)[0])
        bias, (reasons,) = explain(self.booster, features)
        return Explanation(
            fraud_probability=proba,
            prediction=1 if proba >= self.threshold else 0,
            threshold=self.threshold,
            model_tag=self.model_tag,
            base_score=bias,
            reasons=[Reason(**vars(r)) for r in reasons],
        )

    # -- stored predictions -------------------------------------------------------------

    @bentoml.api(route="/recent_predictions", input_spec=RecentQuery)
    def recent_predictions(
        self, limit: int = 50, only_flagged: bool = False, since: dt.datetime | None = None
    ) -> RecentPredictions:
        """Stored predictions, newest first."""
        if self.store is None:
            return _error(503, "the prediction store is disabled (INVOICE_FRAUD_STORE_ENABLED)")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        try:
            rows = self.store.recent(limit=limit, only_flagged=only_flagged, since=since)
        except SQLAlchemyError as exc:
            logger.error("reading recent predictions failed: %s", exc)
            return _error(503, "the prediction store is unreachable; try again shortly")
        return RecentPredictions(predictions=[StoredPrediction(**r) for r in rows])

    @bentoml.api(route="/prediction_summary", input_spec=SummaryQuery)
    def prediction_summary(self, window_minutes: int = 60) -> PredictionSummary:
        """Counts, fraud rate and verdicts over the last ``window_minutes``."""
        if self.store is None:
            return _error(503, "the prediction store is disabled (INVOICE_FRAUD_STORE_ENABLED)")
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=window_minutes)
        try:
            counts = self.store.summary(since)
        except SQLAlchemyError as exc:
            logger.error("reading the prediction summary failed: %s", exc)
            return _error(503, "the prediction store is unreachable; try again shortly")
        scored = counts["scored"]
        return PredictionSummary(
            window_minutes=window_minutes,
            since=since.isoformat(),
            scored=scored,
            flagged=counts["flagged"],
            fraud_rate=counts["flagged"] / scored if scored else 0.0,
            verdicts=VerdictCounts(
                confirmed_fraud=counts["true_positives"] + counts["false_negatives"],
                confirmed_legitimate=counts["false_positives"] + counts["true_negatives"],
                true_positives=counts["true_positives"],
                false_positives=counts["false_positives"],
                false_negatives=counts["false_negatives"],
                true_negatives=counts["true_negatives"],
            ),
            model_tag=self.model_tag,
        )

    # -- analyst feedback ---------------------------------------------------------------

    @bentoml.api(route="/record_verdict", input_spec=VerdictRequest)
    async def record_verdict(
        self, prediction_id: str, verdict: str, comment: str | None = None
    ) -> StoredPrediction:
        """Record an analyst's verdict on a stored prediction; 404 for an unknown id."""
        store = self.store
        if store is None:
            return _error(503, "the prediction store is disabled (INVOICE_FRAUD_STORE_ENABLED)")
        # A prediction scored a moment ago may still be in a writer's queue (this worker's
        # or the other's): give the writers a couple of flush intervals before saying 404.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                result = await asyncio.to_thread(store.set_verdict, prediction_id, verdict, comment)
            except SQLAlchemyError as exc:
                logger.error("recording a verdict failed: %s", exc)
                return _error(503, "the prediction store is unreachable; try again shortly")
            if result is not None or time.monotonic() > deadline:
                break
            await asyncio.to_thread(store.flush, 0.5)
            await asyncio.sleep(0.1)
        if result is None:
            return _error(404, f"prediction_id {prediction_id!r} is not a stored prediction")
        row, previous = result
        if previous != verdict:
            # Counters cannot go down: a changed verdict counts again under its new value.
            self.metrics.verdicts.labels(prediction=str(row["prediction"]), verdict=verdict).inc()
        return StoredPrediction(**row)

    # -- model card ---------------------------------------------------------------------

    @bentoml.api(route="/model_card")
    def model_card(self) -> ModelCard:
        """What the served model is: its metadata (held-out metrics, threshold, features)."""
        meta = self.metadata
        return ModelCard(
            model_tag=self.model_tag,
            threshold=self.threshold,
            threshold_strategy=meta.get("threshold_strategy"),
            trained_at=meta.get("trained_at"),
            train_rows=meta.get("train_rows"),
            feature_names=list(meta.get("feature_names", [])),
            test_metrics=dict(meta.get("test_metrics", {})),
            validation_metrics=dict(meta.get("validation_metrics", {})),
            generator=dict(meta.get("generator", {})),
            package_versions=dict(meta.get("package_versions", {})),
        )
