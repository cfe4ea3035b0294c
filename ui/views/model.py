"""Model: the served model's card, straight from its metadata."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError, ApiUnavailable
from ui.common import get_client, show_problem

METRICS = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("precision", "Precision"),
           ("recall", "Recall"), ("f1", "F1"))  # fmt: skip


def _metrics_frame(test: dict[str, Any], validation: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"metric": label, "test (held out)": test.get(key), "validation": validation.get(key)}
        for key, label in METRICS
    ]
    for key, label in (("rows", "Rows"), ("positives", "Fraud rows")):
        rows.append(
            {"metric": label, "test (held out)": test.get(key), "validation": validation.get(key)}
        )
    return pd.DataFrame(rows)


st.title("Model")
try:
    card = get_client().model_card()
except (ApiUnavailable, ApiError) as exc:
    show_problem(exc)
    st.stop()

test = card.get("test_metrics") or {}
validation = card.get("validation_metrics") or {}
st.subheader(card["model_tag"])
st.caption(f"Trained {card.get('trained_at', '?')}")
cols = st.columns(4)
cols[0].metric("Threshold", f"{card['threshold']:.4f}")
cols[1].metric("Threshold strategy", str(card.get("threshold_strategy", "?")))
cols[2].metric("Training rows", f"{int(card.get('train_rows') or 0):,}")
cols[3].metric("Test PR-AUC", f"{float(test.get('pr_auc', float('nan'))):.4f}")

st.markdown(
    "**Metrics on held-out data.** The threshold was chosen on the validation set; the test "
    "set was used once, after every choice was made."
)
st.dataframe(_metrics_frame(test, validation), hide_index=True, width="content")
matrix = test.get("confusion_matrix") or {}
if matrix:
    st.markdown("**Confusion matrix on the test set at the threshold**")
    st.dataframe(pd.DataFrame([matrix]), hide_index=True, width="content")

features = card.get("feature_names") or []
st.markdown(f"**Features ({len(features)})**")
st.dataframe(pd.DataFrame({"feature": features}), hide_index=True, width="content")

with st.expander("Synthetic data the model was trained on"):
    st.json(card.get("generator") or {})
with st.expander("Package versions"):
    st.json(card.get("package_versions") or {})
