"""The bulk histogram observe must expose exactly what per-value observe does."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from invoice_fraud.metrics import PROBABILITY_BUCKETS, observe_many


def test_observe_many_matches_observe_one_by_one() -> None:
    values = np.concatenate(
        [np.random.default_rng(0).random(5_000), np.array(PROBABILITY_BUCKETS), [0.0, 1.0]]
    )
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a = Histogram("p", "p", buckets=PROBABILITY_BUCKETS, registry=reg_a)
    b = Histogram("p", "p", buckets=PROBABILITY_BUCKETS, registry=reg_b)
    observe_many(a, values)
    for v in values:
        b.observe(float(v))
    text_a = generate_latest(reg_a).decode()
    text_b = generate_latest(reg_b).decode()
    strip = lambda t: [ln for ln in t.splitlines() if "_created" not in ln and "_sum" not in ln]  # noqa: E731
    assert strip(text_a) == strip(text_b)
    sum_a = a.collect()[0].samples
    sum_b = b.collect()[0].samples
    get_sum = lambda s: next(x.value for x in s if x.name.endswith("_sum"))  # noqa: E731
    assert abs(get_sum(sum_a) - get_sum(sum_b)) < 1e-6
