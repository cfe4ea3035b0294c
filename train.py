"""Train the invoice fraud model and save it to the BentoML model store.

    python train.py --rows 300000 --seed 42 --fraud-rate 0.03

Generates synthetic invoices, splits them train/validation/test (stratified), trains an
XGBoost booster with early stopping on validation, picks the decision threshold on
validation, evaluates once on the untouched test set and saves the booster with its
metrics, threshold, feature names, generator parameters and package versions.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from invoice_fraud.features import FEATURE_NAMES, build_features
from invoice_fraud.settings import get_settings
from invoice_fraud.synthetic import GeneratorParams, generate_invoices
from invoice_fraud.training import (
    Evaluation,
    ThresholdStrategy,
    TrainParams,
    choose_threshold,
    evaluate,
    fit_booster,
    predict_proba,
    split_data,
)

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(stderr=True)

#: Packages whose versions are saved with the model (serving must match them).
TRACKED_PACKAGES = ("bentoml", "xgboost", "scikit-learn", "numpy", "pandas", "pydantic")


def package_versions() -> dict[str, str]:
    """Versions of the packages that produced the model."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        versions[name] = importlib_metadata.version(name)
    return versions


def model_exists(name: str) -> bool:
    """Whether the BentoML store already holds a model called ``name``."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(f"{name}:latest")
    except NotFound:
        return False
    return True


def _report(test: Evaluation, valid: Evaluation, tag: str, seconds: float) -> None:
    table = Table(title=f"Held-out test set ({test.rows:,} invoices, {test.positives:,} fraud)")
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("validation", justify="right")
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1"):
        table.add_row(key, f"{getattr(test, key):.4f}", f"{getattr(valid, key):.4f}")
    console.print(table)
    cm = test.confusion_matrix
    console.print(
        f"threshold {test.threshold:.4f}  confusion matrix: "
        f"TN {cm['tn']:,}  FP {cm['fp']:,}  FN {cm['fn']:,}  TP {cm['tp']:,}"
    )
    console.print(f"saved [bold]{tag}[/bold] in {seconds:.1f}s")


@app.command()
def main(
    rows: Annotated[int, typer.Option(min=1_000, help="Invoices to generate.")] = 300_000,
    seed: Annotated[int, typer.Option(help="Seed for data, split and booster.")] = 42,
    fraud_rate: Annotated[
        float, typer.Option(min=0.001, max=0.5, help="Share of fraudulent invoices.")
    ] = 0.03,
    threshold_strategy: Annotated[
        ThresholdStrategy, typer.Option(help="How to choose the decision threshold.")
    ] = ThresholdStrategy.BEST_F1,
    target_precision: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="For --threshold-strategy target-precision.")
    ] = 0.95,
    max_rounds: Annotated[int, typer.Option(min=1, help="Most boosting rounds.")] = 1_000,
    model_name: Annotated[
        str | None, typer.Option(help="Model name in the store (default from settings).")
    ] = None,
    if_missing: Annotated[
        bool, typer.Option(help="Do nothing when the store already has this model.")
    ] = False,
) -> None:
    """Generate data, train, evaluate on held-out data and save to the BentoML store."""
    import bentoml

    name = model_name or get_settings().model_name
    if if_missing and model_exists(name):
        console.print(f"model {name!r} already in the store; not training (--if-missing)")
        return

    started = time.perf_counter()
    gen = GeneratorParams(rows=rows, seed=seed, fraud_rate=fraud_rate)
    train_params = TrainParams(max_rounds=max_rounds, seed=seed)
    with console.status(f"generating {rows:,} invoices ..."):
        frame = generate_invoices(gen)
        x = build_features(frame)
        y = frame["is_fraud"].to_numpy()
    if y.sum() < 20:
        console.print("[red]too few fraudulent invoices to train; raise --rows or --fraud-rate")
        raise typer.Exit(code=2)
    split = split_data(x, y, seed=seed)
    with console.status(f"training on {split.y_train.shape[0]:,} invoices ..."):
        booster, best_iteration = fit_booster(split, train_params)
    valid_proba = predict_proba(booster, split.x_valid)
    threshold = choose_threshold(split.y_valid, valid_proba, threshold_strategy, target_precision)
    valid_eval = evaluate(split.y_valid, valid_proba, threshold)
    # The test set is touched exactly once, after every choice has been made.
    test_eval = evaluate(split.y_test, predict_proba(booster, split.x_test), threshold)

    saved = bentoml.xgboost.save_model(
        name,
        booster,
        signatures={"inplace_predict": {"batchable": False}},
        labels={"framework": "xgboost", "task": "invoice-fraud"},
        metadata={
            "threshold": threshold,
            "threshold_strategy": threshold_strategy.value,
            "target_precision": target_precision,
            "feature_names": list(FEATURE_NAMES),
            "test_metrics": test_eval.as_dict(),
            "validation_metrics": valid_eval.as_dict(),
            "best_iteration": best_iteration,
            "train_rows": int(split.y_train.shape[0]),
            "generator": gen.as_dict(),
            "train_params": vars(train_params),
            "package_versions": package_versions(),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    _report(test_eval, valid_eval, str(saved.tag), time.perf_counter() - started)
    # The tag on stdout alone, so scripts can capture it.
    sys.stdout.write(f"{saved.tag}\n")


if __name__ == "__main__":
    app()
