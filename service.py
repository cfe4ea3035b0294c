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
import functools
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from invoice_fraud.batch_decode import decode_batch
from invoice_fraud.batch_json import batch_response
from invoice_fraud.columns import InvoiceColumns
from invoice_fraud.explain import explain
from invoice_fraud.features import FEATURE_NAMES, build_features
from invoice_fraud.lean_xgboost import import_xgboost
from invoice_fraud.memory import release_free_memory
from invoice_fraud.metrics import get_metrics
from invoice_fraud.request_timeout import cancel_finished_request_timers
from invoice_fraud.schema import (
    MAX_BODY_BYTES,
    MAX_SMALL_BODY_BYTES,
    BatchPrediction,
    Explanation,
    FraudPrediction,
    Invoice,
    InvoiceBatch,
    InvoiceItem,
    InvoiceRequest,
    ModelCard,
    ModelCardQuery,
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
from invoice_fraud.serving import (
    ARRIVED_SCOPE_KEY,
    DirectError,
    JsonBodyMiddleware,
    quiet_client_errors,
)
from invoice_fraud.settings import get_settings
from invoice_fraud.store import (
    STORED_FEATURES,
    PendingRows,
    PredictionStore,
    StoreCounters,
    new_prediction_ids,
    prediction_id_time,
)
from invoice_fraud.trees import TreeEnsemble

logger = logging.getLogger("invoice_fraud.service")

WEEKDAY_COLUMN = FEATURE_NAMES.index("weekday")
_STORED_COLUMNS = [FEATURE_NAMES.index(name) for name in STORED_FEATURES]
#: Up to this many invoices, the trees are walked with numpy (invoice_fraud/trees.py):
#: xgboost's fixed cost per call is larger than the whole walk for so few rows.
SMALL_BATCH = 48
#: From this many invoices on, a call predicts with every core.
BIG_BATCH = 1_000
#: BentoML answers 504 to a request still running after this long (service config).
REQUEST_TIMEOUT_SECONDS = 30
#: A request is scored only this soon after it arrived (a batch waiting for the store gives up
#: then), leaving time to score and answer before the timeout.
REQUEST_BUDGET_SECONDS = REQUEST_TIMEOUT_SECONDS - 5
#: Added to each invoice's warnings when the store could not keep it.
NOT_STORED = "not kept in the prediction store: its queue is full while the database is unreachable"
#: How long a verdict on a just-scored prediction waits for the store to write it; with
#: the store's 5 s lock wait per try, it still answers well inside the request timeout.
VERDICT_WAIT_SECONDS = 10.0
#: Reasons included on a single score when asked with explain=true.
TOP_REASONS = 3


@dataclass
class Scored:
    """Scores of :class:`InvoiceColumns`, as plain lists ready for JSON and the store."""

    features: np.ndarray
    prediction_ids: list[str]
    proba: list[float]
    flagged: list[int]
    weekdays: list[int]
    warnings: list[list[str]]


class SingleInvoiceBatcher:
    """Scores the single-invoice requests that arrive together in one call.

    Each request queues its invoice and awaits its result; the first one schedules a flush
    on the event loop, which runs after the handlers already runnable have queued theirs.
    At concurrency 1 that is a batch of one and adds no wait; under load it shares the
    booster's fixed per-call cost (about 0.4 ms, the same for 1 row as for 50), the metrics
    and the store hand-off among the requests.
    """

    def __init__(self, score: Callable[[InvoiceColumns], Scored]) -> None:
        self._score = score
        self._queue: list[tuple[Invoice, asyncio.Future[tuple[Scored, int]]]] = []

    async def score(self, invoice: Invoice) -> tuple[Scored, int]:
        """The batch result holding ``invoice`` and its row in it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Scored, int]] = loop.create_future()
        self._queue.append((invoice, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        queued, self._queue = self._queue, []
        try:
            scored = self._score(InvoiceColumns.from_invoices([inv for inv, _ in queued]))
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
            for _, future in queued:
                if not future.done():
                    future.set_exception(exc)
            return
        for row, (_, future) in enumerate(queued):
            if not future.done():  # the client may have gone away meanwhile
                future.set_result((scored, row))


def _refuse_late(arrived: float) -> None:
    """Refuse to score a request that took most of the request timeout to arrive.

    A slow upload scored near the 30 s mark can be cut off by BentoML's timeout after its
    rows went to the store: the client sees a 504, retries, and the invoice is stored twice.
    Past REQUEST_BUDGET_SECONDS nothing is scored; the 408 says so.
    """
    took = time.monotonic() - arrived
    if took > REQUEST_BUDGET_SECONDS:
        raise DirectError(
            408,
            f"the request took {took:.1f} s to arrive, too close to the "
            f"{REQUEST_TIMEOUT_SECONDS} s request timeout to be scored; nothing of it was "
            "scored or stored: send it again",
        )


def _error(status: int, message: str) -> Any:
    """A JSON error response, shaped like BentoML's own 4xx bodies."""
    return JSONResponse({"error": message}, status_code=status)


@bentoml.service(
    name="invoice_fraud_service",
    workers=2,
    traffic={"timeout": REQUEST_TIMEOUT_SECONDS},
    http={"port": 3000},
    # The access log costs about a millisecond of CPU per request (benchmarks/README.md);
    # /metrics counts every request by endpoint and status instead. Turn it back on with
    # BENTOML_CONFIG_OPTIONS="services.invoice_fraud_service.logging.access.enabled=true".
    logging={"access": {"enabled": False}},
    # An OpenTelemetry span per scored invoice costs about 1 ms of CPU at concurrency 32,
    # more than scoring it (benchmarks/README.md), and BentoML exports spans nowhere unless
    # an exporter is configured. Whoever configures one and wants the scoring routes traced
    # too sets services.invoice_fraud_service.tracing.excluded_urls (docs/api.md).
    tracing={"excluded_urls": ["/predict_invoice_fraud"]},  # also matches ..._batch
)
class InvoiceFraudService:
    """Scores invoices with the XGBoost model from the BentoML store and keeps them."""

    # Declared at class level so `bentoml build` packs the model into the Bento.
    model = bentoml.models.BentoModel(get_settings().model_tag)

    def __init__(self) -> None:
        settings = get_settings()
        quiet_client_errors()
        cancel_finished_request_timers()
        stored = self.model
        metadata = stored.info.metadata
        saved_features = tuple(metadata.get("feature_names", ()))
        if saved_features != FEATURE_NAMES:
            raise RuntimeError(
                f"model {stored.tag} was trained on features {saved_features}, but this code "
                f"builds {FEATURE_NAMES}; retrain with this version's train.py"
            )
        import_xgboost()  # before bentoml.xgboost imports it with scikit-learn
        self.booster = bentoml.xgboost.load_model(stored)
        # One thread per prediction: requests are scored concurrently by the workers, and
        # xgboost's thread pool costs more than it saves on a handful of rows.
        self.booster.set_param({"nthread": 1})
        # Large batches are the exception: they get a copy of the booster that uses every
        # core (a 10,000-invoice batch predicts about twice as fast on 2 cores).
        self.batch_booster = self.booster.copy()
        self.batch_booster.set_param({"nthread": os.cpu_count() or 1})
        self.trees = TreeEnsemble.from_booster(self.booster)
        self.threshold = float(metadata["threshold"])
        self.model_tag = str(stored.tag)
        self.metadata = dict(metadata)
        self.metrics = get_metrics()
        self.metrics.model_info.labels(
            model_tag=self.model_tag, threshold=f"{self.threshold:.6f}"
        ).set(1)
        self.batcher = SingleInvoiceBatcher(
            functools.partial(self._score, endpoint="predict_invoice_fraud", walk_trees=True)
        )
        apis = InvoiceFraudService.apis
        self._single_input = apis["predict_invoice_fraud"].input_spec
        self._batch_input = apis["predict_invoice_fraud_batch"].input_spec
        #: Read by JsonBodyMiddleware (invoice_fraud/serving.py): routes it answers itself.
        self.direct_routes = (
            {
                "/predict_invoice_fraud": self._direct_single,
                "/predict_invoice_fraud_batch": self._direct_batch,
            }
            if settings.direct_scoring
            else {}
        )
        self.backpressure_rows = settings.store_backpressure_rows
        self.backpressure_max_wait = settings.store_backpressure_max_wait_seconds
        self.store: PredictionStore | None = None
        if settings.store_enabled:
            if settings.database_url is None:
                try:
                    Path(settings.store_path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    # As with a database that is away: score anyway, keep the rows queued,
                    # count the failed writes. Refusing to start would crash-loop the worker.
                    logger.error("cannot create the prediction store's directory: %s", exc)
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
        # Everything loaded so far (modules, the model, BentoML) lives as long as the
        # worker: frozen, the cyclic GC stops re-scanning it on every collection, which a
        # 10,000-invoice batch triggers several times (a batch costs about a quarter less).
        gc.freeze()

    @bentoml.on_shutdown
    def close_store(self) -> None:
        """Write every queued prediction before the worker exits (runs on SIGTERM)."""
        if self.store is not None:
            self.store.close()

    # -- scoring ------------------------------------------------------------------------

    def _score(
        self, cols: InvoiceColumns, endpoint: str, walk_trees: bool = False, reserved: int = 0
    ) -> Scored:
        """Score validated invoices, record the metrics and hand them to the store.

        ``walk_trees`` forces the numpy tree walk whatever the number of invoices: single
        invoices always take it, so an invoice's score does not depend on how many others
        arrived with it (the two paths agree to about 4e-7, not to the last bit).
        ``reserved`` is the store room a batch was admitted with (:meth:`_admit`).
        """
        started = time.perf_counter()
        features = build_features(cols.features_input())
        n = len(features)
        if walk_trees or n <= SMALL_BATCH:
            proba = self.trees.predict_proba(features)
        else:
            booster = self.batch_booster if n >= BIG_BATCH else self.booster
            proba = np.asarray(booster.inplace_predict(features), dtype=np.float64)
        flagged = proba >= self.threshold
        n_flagged = int(flagged.sum())
        self.metrics.record(endpoint, proba, n_flagged, time.perf_counter() - started)
        calendar = features[:, WEEKDAY_COLUMN].astype(np.int64)
        weekdays = calendar.tolist()
        given = np.fromiter(
            (-1 if w is None else w for w in cols.client_weekdays), np.int64, len(weekdays)
        )
        # One shared empty list for the (many) invoices without a warning: never mutated.
        no_warning: list[str] = []
        warnings = [no_warning] * len(weekdays)
        for i in np.flatnonzero((given >= 0) & (given != calendar)).tolist():
            warnings[i] = weekday_warning(
                int(cols.year[i]), int(cols.month[i]), int(cols.day[i]), int(given[i]), weekdays[i]
            )
        scored = Scored(
            features=features,
            prediction_ids=new_prediction_ids(len(weekdays)),
            proba=proba.tolist(),
            flagged=flagged.astype(np.int64).tolist(),
            weekdays=weekdays,
            warnings=warnings,
        )
        if self.store is not None and not self._keep(cols, scored, reserved):
            # The database has been away so long that the queue is full: the scores stand,
            # but the client must not believe they are kept.
            scored.warnings = [[*w, NOT_STORED] for w in scored.warnings]
        return scored

    def _keep(self, cols: InvoiceColumns, scored: Scored, reserved: int = 0) -> bool:
        """Hand the scored invoices to the store's writer (never waits for the database)."""
        assert self.store is not None
        # float32 features carry noise digits (0.0309999995); six decimals are plenty.
        kept = scored.features[:, _STORED_COLUMNS].astype(np.float64).round(6).T.tolist()
        return self.store.add(
            PendingRows(
                columns={
                    "prediction_id": scored.prediction_ids,
                    "invoice_id": cols.invoice_ids,
                    "amount": cols.amount.tolist(),
                    "tax": cols.tax.tolist(),
                    "total": cols.total.tolist(),
                    "invoice_year": cols.year.tolist(),
                    "invoice_month": cols.month.tolist(),
                    "invoice_day": cols.day.tolist(),
                    "invoice_weekday": scored.weekdays,
                    "client_weekday": cols.client_weekdays,
                    "fraud_probability": scored.proba,
                    "prediction": scored.flagged,
                    "warnings": [json.dumps(w) if w else None for w in scored.warnings],
                    **{
                        f"feature_{name}": column
                        for name, column in zip(STORED_FEATURES, kept, strict=True)
                    },
                },
                scored_at=time.time(),
                threshold=self.threshold,
                model_tag=self.model_tag,
            ),
            reserved=reserved,
        )

    async def _predict_one(self, fields: dict[str, Any]) -> FraudPrediction:
        explain_top = bool(fields.pop("explain", False))
        # The fields come validated against InvoiceRequest (by BentoML or the direct
        # route); rebuilding the model without validating again costs nothing.
        invoice = Invoice.model_construct(**fields)
        scored, row = await self.batcher.score(invoice)
        reasons = None
        if explain_top:
            _, (explained,) = explain(self.booster, scored.features[row : row + 1])
            reasons = [Reason(**vars(r)) for r in explained[:TOP_REASONS]]
        return FraudPrediction(
            prediction_id=scored.prediction_ids[row],
            invoice_id=invoice.invoice_id,
            prediction=scored.flagged[row],  # type: ignore[arg-type]
            fraud_probability=scored.proba[row],
            threshold=self.threshold,
            model_tag=self.model_tag,
            invoice_weekday=scored.weekdays[row],
            warnings=scored.warnings[row],
            reasons=reasons,
        )

    def _predict_batch(self, cols: InvoiceColumns, reserved: int = 0) -> bytes:
        """A batch's answer, as JSON (runs in a worker thread).

        The store room ``reserved`` for it is handed to the store with the rows, or given
        back here if scoring fails first: whatever happens to the request meanwhile.
        """
        try:
            scored = self._score(cols, "predict_invoice_fraud_batch", reserved=reserved)
        except BaseException:
            if reserved and self.store is not None:
                self.store.release(reserved)
            raise
        # Assembled from the columns: building 10,000 response models, or even dicts, would
        # cost more than scoring them. The shape is BatchPrediction's (the OpenAPI document).
        return batch_response(
            prediction_ids=scored.prediction_ids,
            invoice_ids=cols.invoice_ids,
            flagged=scored.flagged,
            proba=scored.proba,
            weekdays=scored.weekdays,
            warnings=scored.warnings,
            threshold=self.threshold,
            model_tag=self.model_tag,
        )

    async def _answer_batch(self, cols: InvoiceColumns, arrived: float) -> bytes:
        """Admit a validated batch past the store's backpressure, then score it.

        Scoring 10,000 invoices takes tens of milliseconds: in a thread, so /metrics and
        /readyz keep answering. Shielded: once admitted, a batch is scored and its room
        handed over even if the request is cancelled meanwhile (BentoML's timeout), so the
        store's accounting of reserved room never drifts.
        """
        _refuse_late(arrived)
        reserved = await self._admit(len(cols.amount), arrived)
        work = asyncio.ensure_future(asyncio.to_thread(self._predict_batch, cols, reserved))
        return await asyncio.shield(work)

    async def _admit(self, rows: int, arrived: float) -> int:
        """Wait until the store has room for a batch of ``rows``; the room reserved.

        Under sustained batch load scoring outruns the writer: a batch is scored only once
        fewer than ``store_backpressure_rows`` rows wait (PredictionStore.reserve), so
        clients go at the database's pace and the queue stays bounded however many batches
        wait. The wait holds no thread (polls on the event loop, backing off to 100 ms) and
        ends before BentoML's request timeout: past it the batch gets a 503, unscored and
        unstored, so a retry duplicates nothing. ``arrived`` is when the request came in.
        """
        store = self.store
        if store is None:
            return 0
        deadline = min(
            time.monotonic() + self.backpressure_max_wait, arrived + REQUEST_BUDGET_SECONDS
        )
        pause = 0.005
        while not store.reserve(rows, self.backpressure_rows):
            if time.monotonic() + pause > deadline:
                logger.warning("prediction store behind; batch of %d invoices refused", rows)
                raise DirectError(
                    503,
                    "the prediction store is behind; retry this batch shortly (nothing of it "
                    "was scored or stored)",
                    retry_after=1,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        return rows

    # The direct routes (invoice_fraud/serving.py) validate with the same input models
    # BentoML builds for these APIs, so both paths accept and refuse the same bodies.

    async def _direct_single(self, body: bytes, arrived: float) -> bytes:
        request = self._single_input.model_validate_json(body)
        fields = {name: getattr(request, name) for name in type(request).model_fields}
        _refuse_late(arrived)
        prediction = await self._predict_one(fields)
        return prediction.model_dump_json().encode()

    async def _direct_batch(self, body: bytes, arrived: float) -> bytes:
        try:
            cols = await asyncio.to_thread(self._batch_columns, body)
            return await self._answer_batch(cols, arrived)
        finally:
            # Accepted or refused, a big body leaves freed memory behind (about 100 bytes
            # of JSON per invoice).
            if len(body) // 100 >= BIG_BATCH:
                release_free_memory()

    def _batch_columns(self, body: bytes) -> InvoiceColumns:
        # The plain case decoded fast; anything else (errors included) validated by the
        # contract's own model, so both accept and refuse alike (invoice_fraud/batch_decode.py).
        fields = decode_batch(body)
        if fields is not None:
            return fields
        # Field and calendar checks both before the batch waits for the store: a bad batch
        # gets its 400 at once.
        batch = self._batch_input.model_validate_json(body)
        return InvoiceColumns.from_items(batch.invoices)  # type: ignore[attr-defined]

    @bentoml.api(route="/predict_invoice_fraud", input_spec=InvoiceRequest)
    async def predict_invoice_fraud(
        self,
        ctx: bentoml.Context = None,  # type: ignore[assignment]
        **fields: Any,
    ) -> FraudPrediction:
        """Score one invoice, sent as a flat JSON object (``explain: true`` adds reasons)."""
        if ctx is not None:
            try:
                _refuse_late(float(ctx.request.scope.get(ARRIVED_SCOPE_KEY, time.monotonic())))
            except DirectError as exc:
                return exc.response(ctx)  # type: ignore[no-any-return]
        return await self._predict_one(fields)

    @bentoml.api(route="/predict_invoice_fraud_batch", input_spec=InvoiceBatch)
    async def predict_invoice_fraud_batch(
        self,
        invoices: list[InvoiceItem],
        # BentoML recognises the context parameter by this exact annotation; in-process
        # callers (tests) pass none.
        ctx: bentoml.Context = None,  # type: ignore[assignment]
    ) -> BatchPrediction:
        """Score up to 10,000 invoices sent as ``{"invoices": [...]}``, in order."""
        # When the request came in, before BentoML read its body (invoice_fraud/serving.py).
        scope = ctx.request.scope if ctx is not None else {}
        arrived = float(scope.get(ARRIVED_SCOPE_KEY, time.monotonic()))
        try:
            cols = await asyncio.to_thread(InvoiceColumns.from_items, invoices)
            body = await self._answer_batch(cols, arrived)
        except DirectError as exc:
            return exc.response(ctx)  # type: ignore[return-value]
        finally:
            if len(invoices) >= BIG_BATCH:
                release_free_memory()
        return Response(body, media_type="application/json")  # type: ignore[return-value]

    # -- explanations -------------------------------------------------------------------

    @bentoml.api(route="/explain_invoice", input_spec=Invoice)
    def explain_invoice(self, **fields: Any) -> Explanation:
        """Every reason behind an invoice's score, largest push first (not stored)."""
        invoice = Invoice.model_construct(**fields)
        features = build_features(InvoiceColumns.from_invoice(invoice).features_input())
        # The same path as scoring one invoice, so both report the same probability.
        proba = float(self.trees.predict_proba(features)[0])
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
        # or the other's; under batch load up to the backpressure mark, seconds of writing):
        # an id made in the last VERDICT_WAIT_SECONDS (its first digits are its time) is
        # waited for that long; any other unknown id is a 404 at once.
        made = prediction_id_time(prediction_id)
        recent = made is not None and -1 < time.time() - made < VERDICT_WAIT_SECONDS
        deadline = time.monotonic() + (VERDICT_WAIT_SECONDS if recent else 0.0)
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

    @bentoml.api(route="/model_card", input_spec=ModelCardQuery)
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


# Every API body is parsed as JSON, within a size limit (see invoice_fraud/serving.py):
# a batch may be megabytes, anything else is one small object.
InvoiceFraudService.add_asgi_middleware(
    JsonBodyMiddleware,
    limits={
        api.route: (
            (MAX_BODY_BYTES, "; split the batch")
            if api.route == "/predict_invoice_fraud_batch"
            else (MAX_SMALL_BODY_BYTES, "")
        )
        for api in InvoiceFraudService.apis.values()
    },
    server=f"BentoML Service/{InvoiceFraudService.name}",
)
