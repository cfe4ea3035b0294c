"""Unit tests of the shared feature builder."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from invoice_fraud.features import (
    FEATURE_NAMES,
    amount_roundness,
    build_features,
    calendar_weekday,
)
from invoice_fraud.synthetic import GeneratorParams, generate_invoices
from tests.factories import make_invoice


def feature(row: np.ndarray, name: str) -> float:
    return float(row[FEATURE_NAMES.index(name)])


def test_build_features_single_invoice_matches_batch_row() -> None:
    frame = generate_invoices(GeneratorParams(rows=200, seed=5))
    batch = build_features(frame)
    assert batch.shape == (200, len(FEATURE_NAMES))
    assert batch.dtype == np.float32
    one = build_features(frame.iloc[17].to_dict())
    np.testing.assert_array_equal(one[0], batch[17])


def test_build_features_ordinary_invoice_values() -> None:
    row = build_features(make_invoice())[0]
    assert feature(row, "tax_rate") == pytest.approx(0.18)
    assert feature(row, "tax_rate_distance") == pytest.approx(0.0, abs=1e-9)
    assert feature(row, "total_gap") == pytest.approx(0.0, abs=1e-6)
    assert feature(row, "total_mismatch") == 0
    assert feature(row, "weekday") == 2 and feature(row, "is_weekend") == 0
    assert feature(row, "amount_roundness") == 4  # 1000.00: whole, /10, /100, /1000
    assert feature(row, "below_limit_ratio") == pytest.approx(0.6)  # 1000 -> 2500 limit


def test_build_features_mismatch_and_odd_tax() -> None:
    row = build_features(make_invoice(amount=1000.0, tax=31.0, total=1131.5))[0]
    assert feature(row, "total_gap") == pytest.approx(100.5)
    assert feature(row, "total_gap_ratio") == pytest.approx(0.1005)
    assert feature(row, "total_mismatch") == 1
    assert feature(row, "tax_rate_distance") == pytest.approx(0.019, abs=1e-6)  # 3.1% vs 5%
    neg = build_features(make_invoice(tax=-50.0, total=950.0))[0]
    assert feature(neg, "negative_tax") == 1


def test_build_features_one_cent_rounding_is_not_a_mismatch() -> None:
    row = build_features(make_invoice(amount=33.33, tax=6.33, total=39.67))[0]
    assert feature(row, "total_mismatch") == 0


def test_build_features_just_below_limit() -> None:
    row = build_features(make_invoice(amount=4_990.0, tax=0.0, total=4_990.0))[0]
    assert feature(row, "below_limit_ratio") == pytest.approx(0.002)
    assert feature(row, "just_below_limit") == 1
    over = build_features(make_invoice(amount=5_010.0, tax=0.0, total=5_010.0))[0]
    assert feature(over, "just_below_limit") == 0


@pytest.mark.parametrize(
    ("amount", "level"),
    [(1234.56, 0), (1234.0, 1), (1230.0, 2), (1200.0, 3), (1000.0, 4), (20000.0, 5), (0.5, 0)],
)
def test_amount_roundness_levels(amount: float, level: int) -> None:
    assert amount_roundness(np.array([amount]))[0] == level


def test_calendar_weekday_matches_python_for_many_dates() -> None:
    days = [dt.date(1999, 12, 31) + dt.timedelta(days=k) for k in range(0, 40_000, 37)]
    got = calendar_weekday([d.year for d in days], [d.month for d in days], [d.day for d in days])
    assert got.tolist() == [d.weekday() for d in days]


def test_build_features_uses_the_calendar_not_the_clients_weekday() -> None:
    a = build_features(make_invoice(invoice_weekday=2))
    b = build_features(make_invoice(invoice_weekday=6))
    np.testing.assert_array_equal(a, b)
