"""The numpy tree walk must give xgboost's probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from invoice_fraud.features import build_features
from invoice_fraud.synthetic import GeneratorParams, generate_invoices
from invoice_fraud.training import TrainParams, fit_booster, split_data
from invoice_fraud.trees import TreeEnsemble


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    frame = generate_invoices(GeneratorParams(rows=20_000, seed=11, fraud_rate=0.1))
    x, y = build_features(frame), frame["is_fraud"].to_numpy()
    fitted, _ = fit_booster(split_data(x, y, seed=11), TrainParams(max_rounds=80, max_depth=7))
    return fitted


def test_tree_walk_matches_xgboost_on_many_invoices(booster: xgb.Booster) -> None:
    x = build_features(generate_invoices(GeneratorParams(rows=30_000, seed=12, fraud_rate=0.3)))
    ours = TreeEnsemble.from_booster(booster).predict_proba(x)
    theirs = booster.inplace_predict(x).astype(np.float64)
    assert np.abs(ours - theirs).max() < 1e-6
    assert ((ours >= 0.5) == (theirs >= 0.5)).mean() > 0.9999


@pytest.mark.parametrize("rows", [1, 2, 7, 48])
def test_tree_walk_matches_xgboost_for_small_batches(booster: xgb.Booster, rows: int) -> None:
    x = build_features(generate_invoices(GeneratorParams(rows=rows, seed=rows, fraud_rate=0.5)))
    ours = TreeEnsemble.from_booster(booster).predict_proba(x)
    assert ours.shape == (rows,)
    np.testing.assert_allclose(ours, booster.inplace_predict(x), atol=1e-6, rtol=0)


def test_tree_walk_sends_missing_values_the_default_way(booster: xgb.Booster) -> None:
    x = build_features(generate_invoices(GeneratorParams(rows=2_000, seed=13, fraud_rate=0.3)))
    x[::3, 3] = np.nan
    x[::5, 6] = np.nan
    ours = TreeEnsemble.from_booster(booster).predict_proba(x)
    np.testing.assert_allclose(ours, booster.inplace_predict(x), atol=1e-6, rtol=0)


def test_tree_walk_refuses_other_objectives() -> None:
    x = np.random.default_rng(0).random((200, 3)).astype(np.float32)
    regressor = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=x[:, 0]), 3)
    with pytest.raises(ValueError, match="binary:logistic"):
        TreeEnsemble.from_booster(regressor)
