"""Training stages: split, fit with early stopping, choose the threshold, evaluate.

Pure functions of arrays, so the CLI (``train.py``) and the tests share them. Nothing here
touches the BentoML store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from invoice_fraud.features import FEATURE_NAMES


class ThresholdStrategy(enum.StrEnum):
    """How the decision threshold is picked on the validation set."""

    BEST_F1 = "best-f1"
    TARGET_PRECISION = "target-precision"


@dataclass(frozen=True)
class Split:
    """Train / validation / test arrays (stratified on the label)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class TrainParams:
    """Booster hyper-parameters; saved with the model."""

    max_depth: int = 6
    learning_rate: float = 0.1
    max_rounds: int = 1_000
    early_stopping_rounds: int = 40
    min_child_weight: float = 1.0
    subsample: float = 0.9
    colsample_bytree: float = 0.9
    n_jobs: int = 2
    seed: int = 42


@dataclass
class Evaluation:
    """Metrics of a model on one labelled set at one threshold."""

    rows: int
    positives: int
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    threshold: float
    confusion_matrix: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain dict, for model metadata and reports."""
        return {
            "rows": self.rows,
            "positives": self.positives,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "threshold": self.threshold,
            "confusion_matrix": dict(self.confusion_matrix),
        }


def split_data(
    x: np.ndarray, y: np.ndarray, *, valid_size: float = 0.2, test_size: float = 0.2, seed: int
) -> Split:
    """Stratified train / validation / test split."""
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    x_train, x_valid, y_train, y_valid = train_test_split(
        x_rest,
        y_rest,
        test_size=valid_size / (1.0 - test_size),
        stratify=y_rest,
        random_state=seed + 1,
    )
    return Split(x_train, y_train, x_valid, y_valid, x_test, y_test)


def fit_booster(split: Split, params: TrainParams) -> tuple[xgb.Booster, int]:
    """Fit a gradient-boosted tree classifier with early stopping on validation PR-AUC.

    Returns:
        The booster cut to its best iteration, and that iteration's index.
    """
    train = xgb.DMatrix(split.x_train, label=split.y_train, feature_names=list(FEATURE_NAMES))
    valid = xgb.DMatrix(split.x_valid, label=split.y_valid, feature_names=list(FEATURE_NAMES))
    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "eval_metric": "aucpr",
            "tree_method": "hist",
            "max_depth": params.max_depth,
            "eta": params.learning_rate,
            "min_child_weight": params.min_child_weight,
            "subsample": params.subsample,
            "colsample_bytree": params.colsample_bytree,
            "nthread": params.n_jobs,
            "seed": params.seed,
        },
        train,
        num_boost_round=params.max_rounds,
        evals=[(valid, "valid")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    # Keep only the trees up to the best round, so serving needs no iteration_range.
    return booster[: best + 1], best


def predict_proba(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Fraud probabilities for a feature matrix."""
    return np.asarray(booster.inplace_predict(x), dtype=np.float64)


def choose_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    strategy: ThresholdStrategy = ThresholdStrategy.BEST_F1,
    target_precision: float = 0.95,
) -> float:
    """Pick the decision threshold on validation data.

    ``best-f1`` maximises F1; ``target-precision`` takes the lowest threshold whose
    precision reaches the target (the most recall for that precision), falling back to
    best F1 when no threshold reaches it.
    """
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    # precision/recall have one more entry than thresholds (the point at recall 0).
    precision, recall = precision[:-1], recall[:-1]
    if strategy is ThresholdStrategy.TARGET_PRECISION:
        ok = np.flatnonzero(precision >= target_precision)
        if ok.size:
            return float(thresholds[ok[0]])
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> Evaluation:
    """Ranking metrics and the confusion matrix at ``threshold`` (flag when p >= it)."""
    predicted = proba >= threshold
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Evaluation(
        rows=int(y_true.shape[0]),
        positives=int(y_true.sum()),
        roc_auc=float(roc_auc_score(y_true, proba)),
        pr_auc=float(average_precision_score(y_true, proba)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        threshold=float(threshold),
        confusion_matrix={"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    )
