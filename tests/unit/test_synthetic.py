"""Data tests: the generator's schema, balance, reproducibility and typologies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from invoice_fraud.features import calendar_weekday
from invoice_fraud.synthetic import (
    APPROVAL_LIMITS,
    STANDARD_TAX_RATES,
    GeneratorParams,
    Typology,
    generate_invoices,
)

PUBLIC = [
    "amount",
    "tax",
    "total",
    "invoice_year",
    "invoice_month",
    "invoice_day",
    "invoice_weekday",
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_invoices(GeneratorParams(rows=100_000, seed=3))


def has(frame: pd.DataFrame, typology: Typology) -> np.ndarray:
    return ((frame["typologies"].to_numpy() >> typology.value) & 1) == 1


def test_generate_invoices_has_public_columns_and_no_nulls(frame: pd.DataFrame) -> None:
    assert [c for c in PUBLIC if c in frame.columns] == PUBLIC
    assert not frame.isna().any().any()
    assert (frame["amount"] > 0).all()


def test_generate_invoices_same_seed_same_data() -> None:
    a = generate_invoices(GeneratorParams(rows=5_000, seed=11))
    b = generate_invoices(GeneratorParams(rows=5_000, seed=11))
    c = generate_invoices(GeneratorParams(rows=5_000, seed=12))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("rate", [0.01, 0.03, 0.2])
def test_generate_invoices_fraud_rate_matches_parameter(rate: float) -> None:
    frame = generate_invoices(GeneratorParams(rows=50_000, fraud_rate=rate, seed=1))
    assert frame["is_fraud"].mean() == pytest.approx(rate, abs=0.005)


def test_generate_invoices_weekday_is_the_calendars(frame: pd.DataFrame) -> None:
    expected = calendar_weekday(frame["invoice_year"], frame["invoice_month"], frame["invoice_day"])
    assert (frame["invoice_weekday"].to_numpy() == expected).all()
    dates = pd.to_datetime(
        {
            "year": frame["invoice_year"],
            "month": frame["invoice_month"],
            "day": frame["invoice_day"],
        }
    )
    assert (dates.dt.day_of_week.to_numpy() == expected).all()
    assert dates.min() >= pd.Timestamp("2021-01-01") and dates.max() <= pd.Timestamp("2025-12-31")
    assert dates.dt.year.nunique() == 5


def test_legitimate_invoices_add_up_at_standard_rates_mostly_on_weekdays(
    frame: pd.DataFrame,
) -> None:
    legit = frame[frame["is_fraud"] == 0]
    gap = (legit["total"] - legit["amount"] - legit["tax"]).abs()
    assert (gap <= 0.0100001).all()
    rate = legit["tax"] / legit["amount"]
    distance = np.abs(rate.to_numpy()[:, None] - np.asarray(STANDARD_TAX_RATES)[None, :]).min(1)
    # Rounding tax to the cent moves the rate a little on tiny amounts only.
    assert (distance[legit["amount"].to_numpy() >= 10] < 0.001).all()
    weekend = (legit["invoice_weekday"] >= 5).mean()
    assert 0.005 < weekend < 0.05
    assert legit["amount"].between(2, 90_000).all()
    assert 300 < legit["amount"].median() < 1_200
    whole = (np.rint(legit["amount"] * 100) % 100 == 0).mean()
    assert 0.01 < whole < 0.08  # a few legitimately round amounts


def test_fraud_invoices_carry_one_or_two_typologies(frame: pd.DataFrame) -> None:
    fraud = frame[frame["is_fraud"] == 1]
    counts = np.array([bin(int(m)).count("1") for m in fraud["typologies"]])
    assert set(np.unique(counts)) == {1, 2}
    assert (frame.loc[frame["is_fraud"] == 0, "typologies"] == 0).all()
    for typology in Typology:
        assert has(fraud, typology).sum() > 50, typology


def test_fraud_typologies_show_in_the_fields(frame: pd.DataFrame) -> None:
    mismatch = frame[has(frame, Typology.TOTAL_MISMATCH)]
    assert ((mismatch["total"] - mismatch["amount"] - mismatch["tax"]).abs() > 0.01).all()

    odd_tax = frame[has(frame, Typology.NONSTANDARD_TAX) & (frame["amount"] >= 100)]
    rate = (odd_tax["tax"] / odd_tax["amount"]).to_numpy()
    distance = np.abs(rate[:, None] - np.asarray(STANDARD_TAX_RATES)[None, :]).min(1)
    assert ((distance > 0.004) | (rate < 0)).all()
    assert (rate < 0).any()

    assert (frame.loc[has(frame, Typology.INFLATED_AMOUNT), "amount"] > 100_000).all()

    below = frame.loc[has(frame, Typology.BELOW_APPROVAL_LIMIT), "amount"].to_numpy()
    headroom = np.asarray(APPROVAL_LIMITS)[None, :] - below[:, None]
    assert ((headroom > 0) & (headroom <= 0.03 * np.asarray(APPROVAL_LIMITS))).any(1).all()

    weekend = frame.loc[has(frame, Typology.WEEKEND_DATE), "invoice_weekday"]
    assert (weekend >= 5).all()

    round_amounts = frame.loc[has(frame, Typology.ROUND_AMOUNT), "amount"]
    assert (round_amounts % 500 == 0).all()


def test_generator_params_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="fraud_rate"):
        GeneratorParams(fraud_rate=1.5)
    with pytest.raises(ValueError, match="rows"):
        GeneratorParams(rows=0)
    with pytest.raises(ValueError, match="start_date"):
        GeneratorParams(start_date="2025-01-01", end_date="2024-01-01")
