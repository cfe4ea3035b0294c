"""Live: KPIs, the newest scored invoices (refreshing by themselves) and a chart over time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.api_client import ApiError, ApiUnavailable, StoredPrediction
from ui.common import REFRESH_SECONDS, get_client, predictions_frame, show_problem

WINDOWS = {"15 minutes": 15, "1 hour": 60, "24 hours": 1440, "7 days": 10080}
#: Rows in the table; the chart reads more so its time axis covers a useful stretch.
TABLE_ROWS = 50
CHART_ROWS = 1000
TABLE_FORMATS = {"fraud_probability": "{:.4f}", "amount": "{:,.2f}", "tax": "{:,.2f}",
                 "total": "{:,.2f}"}  # fmt: skip


def _highlight_flagged(row: pd.Series) -> list[str]:
    style = "background-color: rgba(255, 75, 75, 0.25); font-weight: 600" if row["flagged"] else ""
    return [style] * len(row)


def _kpis(window_minutes: int) -> None:
    client = get_client()
    summary = client.summary(window_minutes=window_minutes)
    card_tag = client.model_card()["model_tag"]
    cols = st.columns(4)
    cols[0].metric("Invoices scored", f"{summary['scored']:,}")
    cols[1].metric("Flagged", f"{summary['flagged']:,}")
    cols[2].metric("Fraud rate", f"{summary['fraud_rate']:.2%}")
    # A tag is too long for a metric's big type; same label, smaller value.
    cols[3].caption("Model")
    cols[3].markdown(f"`{card_tag}`")
    verdicts = summary["verdicts"]
    st.caption(
        f"Since {summary['since']} · analyst verdicts: {verdicts['confirmed_fraud']} fraud, "
        f"{verdicts['confirmed_legitimate']} legitimate "
        f"({verdicts['true_positives']} true / {verdicts['false_positives']} false positives)"
    )


def _table(predictions: list[StoredPrediction]) -> None:
    st.subheader("Recent predictions")
    if not predictions:
        st.info("No invoices scored yet. Start the sender or score one on *Score an invoice*.")
        return
    frame = predictions_frame(predictions[:TABLE_ROWS])
    st.dataframe(
        frame.style.apply(_highlight_flagged, axis=1).format(TABLE_FORMATS),
        hide_index=True,
        width="stretch",
        column_config={
            "scored_at": st.column_config.DatetimeColumn("scored at (UTC)", format="HH:mm:ss"),
            "prediction_id": None,  # hidden: the Review page uses it
        },
    )


def _chart(predictions: list[StoredPrediction]) -> None:
    if not predictions:
        return
    frame = predictions_frame(predictions)
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    st.subheader("Over time")
    left, right = st.columns(2)
    with left:
        st.caption("Fraud probability of each invoice")
        # One column per kind, so flagged invoices get the alert colour.
        points = pd.DataFrame(
            {
                "scored_at": frame["scored_at"],
                "not flagged": frame["fraud_probability"].where(~frame["flagged"]),
                "flagged": frame["fraud_probability"].where(frame["flagged"]),
            }
        )
        st.scatter_chart(
            points,
            x="scored_at",
            y=["not flagged", "flagged"],
            color=["#4c78a8", "#ff4b4b"],
            y_label="fraud probability",
            x_label="scored at (UTC)",
            height=260,
        )
    with right:
        st.caption("Share of invoices flagged, per minute")
        per_minute = (
            frame.set_index("scored_at")["flagged"].astype(float).resample("1min").mean().dropna()
        )
        st.bar_chart(per_minute.rename("flagged share"), height=260, y_label="flagged share")


@st.fragment(run_every=REFRESH_SECONDS)
def live_view(window_minutes: int) -> None:
    """Everything that refreshes: a failure shows the error and the next tick tries again."""
    try:
        _kpis(window_minutes)
        predictions = get_client().recent_predictions(limit=CHART_ROWS)
    except (ApiUnavailable, ApiError) as exc:
        show_problem(exc)
        return
    _table(predictions)
    _chart(predictions)
    st.caption(f"Refreshes every {REFRESH_SECONDS} s.")


st.title("Live")
window = st.selectbox("Window for the counts", list(WINDOWS), index=1)
live_view(WINDOWS[window])
