"""The service's own Prometheus metrics (BentoML exports the HTTP ones already).

BentoML runs its workers in prometheus_client's multiprocess mode and merges every
worker's files on ``/metrics``, so these are plain prometheus_client objects; the gauge
declares how workers combine. They are created on first use (not at import) and once per
process, because prometheus_client refuses to register a name twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

#: Model time per call: one invoice takes tens of microseconds, a 10,000-invoice batch
#: tens of milliseconds, so the buckets span 10 us to over a second.
LATENCY_BUCKETS: tuple[float, ...] = (
    1e-5, 2.5e-5, 5e-5, 7.5e-5, 1e-4, 2.5e-4, 5e-4, 7.5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
#: Fraud probabilities: fine near both ends, where decisions and most invoices sit.
PROBABILITY_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0,
)  # fmt: skip

ENDPOINTS = ("predict_invoice_fraud", "predict_invoice_fraud_batch")


@dataclass(frozen=True)
class ServiceMetrics:
    """Handles on the service's metrics."""

    predictions: Counter
    latency: Histogram
    probability: Histogram
    model_info: Gauge
    verdicts: Counter
    store_writes: Counter
    store_failures: Counter
    store_dropped: Counter
    store_queue_depth: Gauge

    def record(self, endpoint: str, proba: np.ndarray, flagged: int, seconds: float) -> None:
        """Count one call's scored invoices, its model time and their probabilities."""
        n = int(proba.shape[0])
        if flagged:
            self.predictions.labels(prediction="1").inc(flagged)
        if n - flagged:
            self.predictions.labels(prediction="0").inc(n - flagged)
        self.latency.labels(endpoint=endpoint).observe(seconds)
        observe_many(self.probability, proba)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe many values at once: one increment per bucket instead of one per value.

    prometheus_client has no bulk observe, and in multiprocess mode every ``observe`` is
    several mmap writes, which would dominate a 10,000-invoice batch. This relies on the
    histogram's ``_buckets`` and ``_sum`` (stable across prometheus_client 0.x); a test
    checks that the exposition matches per-value ``observe``.
    """
    if values.size == 1:
        histogram.observe(float(values[0]))
        return
    bounds = np.asarray(histogram._upper_bounds)  # noqa: SLF001 - no public bulk API
    # Bucket i holds values <= bounds[i] and > bounds[i-1], as observe() assigns them.
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts, strict=False):  # noqa: SLF001
        if count:
            bucket.inc(int(count))
    histogram._sum.inc(float(values.sum()))  # noqa: SLF001


@functools.cache
def get_metrics() -> ServiceMetrics:
    """Create (once per process) and return the service metrics."""
    predictions = Counter(
        "invoice_fraud_prediction",
        "Invoices scored, by predicted class (1 = flagged as fraud).",
        ["prediction"],
    )
    latency = Histogram(
        "invoice_prediction_latency_seconds",
        "Model time per scoring call (features and booster), by endpoint.",
        ["endpoint"],
        buckets=LATENCY_BUCKETS,
    )
    probability = Histogram(
        "invoice_fraud_probability",
        "Fraud probability of each scored invoice.",
        buckets=PROBABILITY_BUCKETS,
    )
    model_info = Gauge(
        "invoice_fraud_model_info",
        "The model being served (value 1), with its tag and decision threshold.",
        ["model_tag", "threshold"],
        multiprocess_mode="max",
    )
    verdicts = Counter(
        "invoice_fraud_verdict",
        "Analyst verdicts recorded, by what the model predicted and what the analyst found.",
        ["prediction", "verdict"],
    )
    store_writes = Counter(
        "invoice_fraud_store_writes", "Scored invoices written to the prediction store."
    )
    store_failures = Counter(
        "invoice_fraud_store_failures",
        "Rows in prediction-store writes that failed (they are kept and retried).",
    )
    store_dropped = Counter(
        "invoice_fraud_store_dropped",
        "Scored invoices dropped because the store's queue was full (database away too long).",
    )
    store_queue_depth = Gauge(
        "invoice_fraud_store_queue_depth",
        "Scored invoices waiting to be written to the prediction store.",
        multiprocess_mode="livesum",
    )
    # Every series exists from the first scrape, so rate() and alerts see zeros, not gaps.
    for label in ("0", "1"):
        predictions.labels(prediction=label)
        for verdict in ("fraud", "legitimate"):
            verdicts.labels(prediction=label, verdict=verdict)
    for endpoint in ENDPOINTS:
        latency.labels(endpoint=endpoint)
    return ServiceMetrics(
        predictions,
        latency,
        probability,
        model_info,
        verdicts,
        store_writes,
        store_failures,
        store_dropped,
        store_queue_depth,
    )
