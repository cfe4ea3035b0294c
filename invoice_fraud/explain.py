"""Why an invoice got its score, in an analyst's words.

XGBoost's ``pred_contribs`` gives each feature's exact additive contribution to the score
(in log-odds, summing with the bias to the margin). Related features are summed into one
reason per concept an analyst knows (the total, the tax, the amount, ...): additivity makes
the sum the concept's exact contribution, and it avoids telling the analyst the same thing
twice ("amount" and "log amount").
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from invoice_fraud.features import FEATURE_NAMES, JUST_BELOW_LIMIT_RATIO
from invoice_fraud.lean_xgboost import import_xgboost

if TYPE_CHECKING:  # the service imports xgboost its own way (invoice_fraud/lean_xgboost.py)
    import xgboost as xgb
from invoice_fraud.domain import APPROVAL_LIMITS, STANDARD_TAX_RATES

#: Reason -> the features whose contributions it sums.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "total_vs_amount_plus_tax": ("total_gap", "total_gap_ratio", "total_mismatch"),
    "tax_rate": ("tax", "tax_rate", "tax_rate_distance", "negative_tax"),
    "amount_size": ("amount", "log_amount"),
    "amount_roundness": ("amount_has_cents", "amount_roundness"),
    "approval_limit": ("below_limit_ratio", "just_below_limit"),
    "invoice_weekday": ("weekday", "is_weekend"),
}
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_GROUP_COLUMNS = {g: [_INDEX[f] for f in fs] for g, fs in REASON_GROUPS.items()}


@dataclass(frozen=True)
class Reason:
    """One concept's push on the score."""

    feature: str
    value: float
    contribution: float
    direction: str
    text: str


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _describe(group: str, row: np.ndarray) -> tuple[float, str]:
    """The concept's key value and a sentence about it, from one feature row."""
    f = {name: float(row[i]) for name, i in _INDEX.items()}
    amount, tax = f["amount"], f["tax"]
    if group == "total_vs_amount_plus_tax":
        gap = f["total_gap"]
        expected = amount + tax
        share = gap / abs(expected) if expected else 0.0
        if not f["total_mismatch"]:
            return share, "total equals amount + tax"
        side = "above" if gap > 0 else "below"
        return share, f"total is {abs(share) * 100:.1f}% {side} amount + tax ({gap:+,.2f})"
    if group == "tax_rate":
        rate = f["tax_rate"]
        if tax < 0:
            return rate, f"tax is negative ({_money(tax)})"
        nearest = min(STANDARD_TAX_RATES, key=lambda r: abs(r - rate))
        if f["tax_rate_distance"] > 0.0005:
            return rate, (
                f"tax rate {rate * 100:.1f}% is not a standard rate "
                f"(nearest standard rate {nearest * 100:.0f}%)"
            )
        return rate, f"tax rate {rate * 100:.1f}% is a standard rate"
    if group == "amount_size":
        if amount >= 100_000:
            return amount, f"amount {_money(amount)} is far larger than usual invoices"
        if amount >= 20_000:
            return amount, f"amount {_money(amount)} is large"
        if amount < 5:
            return amount, f"amount {_money(amount)} is unusually small"
        return amount, f"amount {_money(amount)} is in the usual range"
    if group == "amount_roundness":
        level = f["amount_roundness"]
        if level == 0:
            return level, "amount has cents, as most genuine invoices do"
        if level >= 4:
            return level, f"amount {_money(amount)} is a suspiciously round number"
        return level, f"amount {_money(amount)} is a whole number"
    if group == "approval_limit":
        headroom = f["below_limit_ratio"]
        if headroom <= JUST_BELOW_LIMIT_RATIO:
            limit = min(lim for lim in APPROVAL_LIMITS if lim > amount)
            return headroom, (
                f"amount is just below the {limit:,.0f} approval limit "
                f"({headroom * 100:.1f}% under it)"
            )
        return headroom, "amount is not just below an approval limit"
    weekday = int(f["weekday"])
    name = calendar.day_name[weekday]
    if f["is_weekend"]:
        return float(weekday), f"invoice is dated on a weekend ({name})"
    return float(weekday), f"invoice is dated on a weekday ({name})"


def explain(booster: xgb.Booster, features: np.ndarray) -> tuple[float, list[list[Reason]]]:
    """Reasons for each row of ``features``, sorted by the size of their push.

    Returns:
        The bias (base score in log-odds) and, per invoice, every reason with its
        contribution in log-odds; "raises" means it pushed towards fraud.
    """
    matrix = import_xgboost().DMatrix(features, feature_names=list(FEATURE_NAMES))
    contribs = booster.predict(matrix, pred_contribs=True)
    bias = float(contribs[0, -1]) if contribs.shape[0] else 0.0
    out: list[list[Reason]] = []
    for row, contrib in zip(features, contribs, strict=True):
        reasons = []
        for group, cols in _GROUP_COLUMNS.items():
            value = float(contrib[cols].sum())
            key, text = _describe(group, row)
            reasons.append(
                Reason(
                    feature=group,
                    value=key,
                    contribution=value,
                    direction="raises" if value > 0 else "lowers",
                    text=text,
                )
            )
        reasons.sort(key=lambda r: abs(r.contribution), reverse=True)
        out.append(reasons)
    return bias, out
