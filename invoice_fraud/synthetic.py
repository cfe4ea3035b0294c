"""Synthetic invoices with known fraud typologies, generated vectorised from a seed.

Legitimate invoices follow what accounts-payable ledgers look like: log-normal amounts with
cents, a standard VAT/GST/sales-tax rate, ``total = amount + tax`` to the cent, dates spread
over several years and mostly on weekdays, and a few legitimately round amounts (price-list
items, retainers). Fraudulent invoices carry one or two of the typologies fraud examiners
report (see :class:`Typology`). The typologies are recorded per row so tests and reports can
check them.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from invoice_fraud.domain import APPROVAL_LIMITS, STANDARD_TAX_RATES

# How often each standard rate appears on legitimate invoices: the EU-style 19-25 % rates
# dominate, a zero rate (exports, exempt services) is common.
_TAX_RATE_WEIGHTS = np.array([8, 3, 3, 3, 5, 2, 2, 4, 4, 8, 14, 8, 6, 6, 5, 6, 3], dtype=float)

# Legitimate round amounts: price-list items and retainers, mostly small.
_LEGIT_ROUND_AMOUNTS = np.array(
    [50, 100, 150, 200, 250, 300, 400, 500, 600, 750, 800, 1000, 1200, 1500, 2000, 2500, 3000]
)


class Typology(enum.IntEnum):
    """Fraud typologies; values are bit positions in the ``typologies`` column."""

    TOTAL_MISMATCH = 0
    NONSTANDARD_TAX = 1
    INFLATED_AMOUNT = 2
    ROUND_AMOUNT = 3
    BELOW_APPROVAL_LIMIT = 4
    WEEKEND_DATE = 5


# Relative frequency of each typology as a fraud's primary scheme. Weekend dating and
# round amounts are weak signals on their own (legitimate invoices have both too), so they
# mostly appear as the second typology of a scheme.
_PRIMARY_WEIGHTS = np.array([0.26, 0.22, 0.14, 0.12, 0.22, 0.04])
_SECONDARY_WEIGHTS = np.array([0.15, 0.15, 0.05, 0.25, 0.10, 0.30])


@dataclass(frozen=True)
class GeneratorParams:
    """Parameters of the generator; saved with the model so a run can be reproduced."""

    rows: int = 300_000
    fraud_rate: float = 0.03
    seed: int = 42
    start_date: str = "2021-01-01"
    end_date: str = "2025-12-31"
    weekend_share: float = 0.02
    round_share: float = 0.03
    second_typology_share: float = 0.4

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError("rows must be at least 1")
        if not 0.0 <= self.fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be between 0 and 1")
        for name in ("weekend_share", "round_share", "second_typology_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if np.datetime64(self.start_date) >= np.datetime64(self.end_date):
            raise ValueError("start_date must be before end_date")

    def as_dict(self) -> dict[str, object]:
        """Plain dict, for model metadata."""
        return asdict(self)


def _random_dates(
    rng: np.random.Generator, n: int, start: str, end: str, weekend: np.ndarray
) -> np.ndarray:
    """Dates in [start, end], on a weekend where ``weekend`` is true, else on a weekday."""
    first = np.datetime64(start, "D").astype(np.int64)
    last = np.datetime64(end, "D").astype(np.int64)
    days = rng.integers(first, last + 1, size=n)
    # 1970-01-01 was a Thursday: weekday (Monday=0) is (days + 3) % 7.
    weekday = (days + 3) % 7
    # Shift each date to the nearest day of the wanted kind within its week, which keeps
    # the spread over the years intact.
    to_weekday = np.where(weekday == 5, -1, np.where(weekday == 6, -2, 0))
    to_weekend = np.where(weekday < 5, 5 - weekday + rng.integers(0, 2, size=n), 0)
    days = days + np.where(weekend, to_weekend, to_weekday)
    days = np.clip(days, first, last)
    # Clipping at the range ends can break the weekend/weekday choice for a handful of
    # rows; fix those by stepping a week inward.
    wd = (days + 3) % 7
    wrong = (wd >= 5) != weekend
    days = np.where(wrong & (days + 7 <= last), days + 7, np.where(wrong, days - 7, days))
    return days.astype("datetime64[D]")


def _nonstandard_rates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tax rates at least half a point away from every standard rate, some negative."""
    standard = np.asarray(STANDARD_TAX_RATES)
    rates = rng.uniform(0.005, 0.33, size=n)
    for _ in range(20):
        close = np.abs(rates[:, None] - standard[None, :]).min(axis=1) < 0.005
        if not close.any():
            break
        rates[close] = rng.uniform(0.005, 0.33, size=int(close.sum()))
    negative = rng.random(n) < 0.2
    return np.where(negative, -rng.choice(standard[1:], size=n), rates)


def generate_invoices(params: GeneratorParams | None = None) -> pd.DataFrame:
    """Generate synthetic invoices.

    Args:
        params: Generator parameters; defaults to :class:`GeneratorParams()`.

    Returns:
        A frame with the seven public fields (``amount``, ``tax``, ``total``,
        ``invoice_year``, ``invoice_month``, ``invoice_day``, ``invoice_weekday``), the label
        ``is_fraud`` and ``typologies`` (a bit mask of :class:`Typology` values, 0 for
        legitimate invoices).
    """
    p = params or GeneratorParams()
    rng = np.random.default_rng(p.seed)
    n = p.rows

    is_fraud = rng.random(n) < p.fraud_rate
    n_fraud = int(is_fraud.sum())

    # Pick one typology per fraud, and a distinct second one for some of them.
    mask = np.zeros(n, dtype=np.int64)
    primary = rng.choice(len(Typology), size=n_fraud, p=_PRIMARY_WEIGHTS)
    secondary = rng.choice(len(Typology), size=n_fraud, p=_SECONDARY_WEIGHTS)
    has_second = (rng.random(n_fraud) < p.second_typology_share) & (secondary != primary)
    fraud_mask = (1 << primary) | np.where(has_second, 1 << secondary, 0)
    # Some pairs cannot coexist in one amount: an inflated amount is not just below an
    # approval limit, and an amount just below a limit is not round. Keep the mask honest.
    below_bit, inflated_bit, round_bit = (
        1 << Typology.BELOW_APPROVAL_LIMIT,
        1 << Typology.INFLATED_AMOUNT,
        1 << Typology.ROUND_AMOUNT,
    )
    conflict = (fraud_mask & below_bit) != 0
    fraud_mask = np.where(
        conflict & (fraud_mask & inflated_bit != 0), fraud_mask & ~below_bit, fraud_mask
    )
    conflict = (fraud_mask & below_bit) != 0
    fraud_mask = np.where(conflict, fraud_mask & ~round_bit, fraud_mask)
    mask[is_fraud] = fraud_mask

    def has(t: Typology) -> np.ndarray:
        return (mask >> t.value) & 1 == 1

    # Legitimate amounts: log-normal with a median around 600, a few units to tens of
    # thousands.
    amount = np.clip(rng.lognormal(mean=np.log(600.0), sigma=1.25, size=n), 2.0, 90_000.0)
    legit_round = ~is_fraud & (rng.random(n) < p.round_share)
    amount = np.where(legit_round, rng.choice(_LEGIT_ROUND_AMOUNTS, size=n).astype(float), amount)

    inflated = has(Typology.INFLATED_AMOUNT)
    amount = np.where(
        inflated, rng.lognormal(mean=np.log(250_000.0), sigma=0.8, size=n) + 100_000.0, amount
    )

    below = has(Typology.BELOW_APPROVAL_LIMIT)
    limits = rng.choice(np.asarray(APPROVAL_LIMITS), size=n)
    # A few units to about 2 % under the limit, often in whole currency units.
    under = limits - rng.uniform(0.01, 0.02, size=n) * limits * rng.random(n) ** 2 - 1.0
    under = np.where(rng.random(n) < 0.6, np.floor(under), under)
    amount = np.where(below, under, amount)

    round_fraud = has(Typology.ROUND_AMOUNT)
    round_units = rng.choice(np.array([500.0, 1_000.0, 5_000.0]), size=n, p=[0.3, 0.5, 0.2])
    round_amount = rng.integers(3, 30, size=n) * round_units
    round_amount = np.where(inflated, np.round(amount / 10_000.0) * 10_000.0, round_amount)
    amount = np.where(round_fraud, round_amount, amount)
    amount = np.round(amount, 2)

    weights = _TAX_RATE_WEIGHTS / _TAX_RATE_WEIGHTS.sum()
    rate = rng.choice(np.asarray(STANDARD_TAX_RATES), size=n, p=weights)
    rate = np.where(has(Typology.NONSTANDARD_TAX), _nonstandard_rates(rng, n), rate)
    tax = np.round(amount * rate, 2)
    total = np.round(amount + tax, 2)

    mismatch = has(Typology.TOTAL_MISMATCH)
    # Padding or skimming: from a few percent up to about half the amount, and at least
    # one currency unit so it is more than rounding.
    gap = amount * rng.uniform(0.02, 0.5, size=n) * np.where(rng.random(n) < 0.8, 1.0, -1.0)
    gap = np.where(np.abs(gap) < 1.0, np.sign(gap) * 1.0, gap)
    total = np.where(mismatch, np.round(total + gap, 2), total)

    weekend = has(Typology.WEEKEND_DATE) | (~is_fraud & (rng.random(n) < p.weekend_share))
    dates = _random_dates(rng, n, p.start_date, p.end_date, weekend)
    ymd = pd.DatetimeIndex(dates)

    return pd.DataFrame(
        {
            "amount": amount,
            "tax": tax,
            "total": total,
            "invoice_year": ymd.year.to_numpy(np.int64),
            "invoice_month": ymd.month.to_numpy(np.int64),
            "invoice_day": ymd.day.to_numpy(np.int64),
            "invoice_weekday": ymd.day_of_week.to_numpy(np.int64),
            "is_fraud": is_fraud.astype(np.int8),
            "typologies": mask,
        }
    )
