"""The model's feature matrix, built the same way for training and for serving.

One function, :func:`build_features`, turns invoices (one or a batch, as columns) into the
matrix the booster sees. Its column names, :data:`FEATURE_NAMES`, are saved with the model
and checked when the service loads it, so training and serving cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from invoice_fraud.domain import APPROVAL_LIMITS, STANDARD_TAX_RATES

#: Input columns the features are computed from (the weekday comes from the calendar).
INPUT_COLUMNS: tuple[str, ...] = (
    "amount",
    "tax",
    "total",
    "invoice_year",
    "invoice_month",
    "invoice_day",
)

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "tax",
    "tax_rate",
    "tax_rate_distance",
    "negative_tax",
    "total_gap",
    "total_gap_ratio",
    "total_mismatch",
    "amount_has_cents",
    "amount_roundness",
    "below_limit_ratio",
    "just_below_limit",
    "weekday",
    "is_weekend",
)

_STANDARD = np.asarray(STANDARD_TAX_RATES)
_LIMITS = np.asarray(APPROVAL_LIMITS)
#: "Just below" an approval limit: within 3 % under it.
JUST_BELOW_LIMIT_RATIO = 0.03


def calendar_weekday(year: Any, month: Any, day: Any) -> np.ndarray:
    """Weekday (Monday=0 ... Sunday=6) of each date, vectorised.

    The dates must exist; :mod:`invoice_fraud.schema` checks that before scoring.
    """
    y = np.asarray(year, dtype=np.int64)
    m = np.asarray(month, dtype=np.int64)
    d = np.asarray(day, dtype=np.int64)
    months = (y - 1970) * 12 + (m - 1)
    days = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + (d - 1)
    # 1970-01-01 was a Thursday.
    return (days + 3) % 7


#: Whole units, then 10, 100, 1,000 and 10,000 units, in cents.
_ROUND_STEPS = np.array([100, 1_000, 10_000, 100_000, 1_000_000], dtype=np.int64)


def amount_roundness(amount: np.ndarray) -> np.ndarray:
    """0 when the amount has cents, 1 for whole units, +1 for each trailing zero up to 4."""
    cents = np.rint(np.asarray(amount, dtype=np.float64) * 100.0).astype(np.int64)
    # A multiple of a step is a multiple of every smaller one, so counting the steps that
    # divide the amount counts its trailing zeros: one 2-D operation instead of a loop of
    # five, which matters when a single invoice is scored (81 -> 15 us).
    return (cents[:, None] % _ROUND_STEPS[None, :] == 0).sum(axis=1)


def build_features(invoices: Mapping[str, Any]) -> np.ndarray:
    """Build the feature matrix for invoices given as columns.

    Args:
        invoices: A mapping (dict of arrays, or a pandas DataFrame) with the columns in
            :data:`INPUT_COLUMNS`; scalars are treated as one invoice.

    Returns:
        A ``float32`` array of shape ``(n, len(FEATURE_NAMES))``.
    """
    amount = np.atleast_1d(np.asarray(invoices["amount"], dtype=np.float64))
    tax = np.atleast_1d(np.asarray(invoices["tax"], dtype=np.float64))
    total = np.atleast_1d(np.asarray(invoices["total"], dtype=np.float64))
    weekday = np.atleast_1d(
        calendar_weekday(
            invoices["invoice_year"], invoices["invoice_month"], invoices["invoice_day"]
        )
    )

    tax_rate = tax / amount
    rate_distance = np.abs(tax_rate[:, None] - _STANDARD[None, :]).min(axis=1)
    gap = total - amount - tax
    # Anything beyond one cent (plus float noise) is more than rounding.
    mismatch = np.abs(gap) > 0.0100001
    roundness = amount_roundness(amount)
    headroom = (_LIMITS[None, :] - amount[:, None]) / _LIMITS[None, :]
    below_ratio = np.where(headroom > 0, headroom, np.inf).min(axis=1)
    below_ratio = np.minimum(below_ratio, 1.0)

    out = np.empty((amount.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
    out[:, 0] = amount
    out[:, 1] = np.log10(amount)
    out[:, 2] = tax
    out[:, 3] = tax_rate
    out[:, 4] = rate_distance
    out[:, 5] = tax < 0
    out[:, 6] = gap
    out[:, 7] = gap / amount
    out[:, 8] = mismatch
    out[:, 9] = roundness == 0
    out[:, 10] = roundness
    out[:, 11] = below_ratio
    out[:, 12] = below_ratio <= JUST_BELOW_LIMIT_RATIO
    out[:, 13] = weekday
    out[:, 14] = weekday >= 5
    return out
