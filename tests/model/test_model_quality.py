"""Model tests: the default training run meets the quality bar on its own held-out data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bentoml
import pytest

from invoice_fraud.features import FEATURE_NAMES, build_features
from tests.factories import make_invoice
from tests.servers import REPO


@pytest.fixture(scope="module")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> bentoml.Model:
    """A model trained by `python train.py` with default settings, in its own store."""
    home = tmp_path_factory.mktemp("default_home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    tag = done.stdout.strip().splitlines()[-1]
    assert tag.startswith("invoice_fraud:")
    from bentoml._internal.models import ModelStore  # the public API reads only BENTOML_HOME

    return ModelStore(str(Path(home) / "models")).get(tag)


def test_default_training_meets_quality_bar_on_held_out_test(default_model: bentoml.Model) -> None:
    meta = default_model.info.metadata
    test = meta["test_metrics"]
    assert test["pr_auc"] >= 0.95
    assert test["precision"] >= 0.9
    assert test["recall"] >= 0.85
    assert test["threshold"] == meta["threshold"]
    assert test["rows"] == 60_000  # 20 % of 300,000, never seen in training
    cm = test["confusion_matrix"]
    assert sum(cm.values()) == test["rows"]


def test_saved_metadata_describes_the_run(default_model: bentoml.Model) -> None:
    meta = default_model.info.metadata
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["generator"]["rows"] == 300_000 and meta["generator"]["seed"] == 42
    assert {"bentoml", "xgboost", "python"} <= set(meta["package_versions"])
    assert 0.0 < meta["threshold"] < 1.0
    assert meta["train_rows"] == 180_000


def test_default_model_scores_the_ordinary_invoice_low(default_model: bentoml.Model) -> None:
    booster = bentoml.xgboost.load_model(default_model)
    assert float(booster.inplace_predict(build_features(make_invoice()))[0]) < 0.1
