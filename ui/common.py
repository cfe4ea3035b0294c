"""What every page shares: the API client, the plain "API is down" message, formatting."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from invoice_fraud.settings import get_settings
from ui.api_client import ApiClient, ApiError, ApiUnavailable, Reason, StoredPrediction

logger = logging.getLogger(__name__)

#: Seconds between refreshes of the Live page's table, chart and KPIs.
REFRESH_SECONDS = 3

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def api_url() -> str:
    """The service URL from settings (``INVOICE_FRAUD_API_URL``), read on every run."""
    return get_settings().api_url


@st.cache_resource(show_spinner=False)
def _client_for(url: str) -> ApiClient:
    # One connection pool per URL for the process. Only the client is cached, never an
    # answer or a failure: each call goes to the service again.
    return ApiClient(url)


def get_client() -> ApiClient:
    """The client for the configured URL."""
    return _client_for(api_url())


def show_unavailable(exc: ApiUnavailable) -> None:
    """Say plainly that the API is down, where we looked, and that retrying is enough."""
    st.error(
        f"**The scoring API is not reachable at {exc.url}** ({exc.reason}).  \n"
        "Start it (`./scripts/serve.sh`) or set `INVOICE_FRAUD_API_URL`; this page works "
        "again as soon as the API answers.",
        icon=":material/cloud_off:",
    )
    st.button("Retry", key=f"retry-{id(exc)}")


def show_api_error(exc: ApiError) -> None:
    """An error answer from the service, with its message and any field problems."""
    lines = [f"**The scoring API refused the request** ({exc.status_code}): {exc.message}"]
    for problem in exc.detail:
        loc = ".".join(str(p) for p in problem.get("loc", []))
        lines.append(f"- `{loc}`: {problem.get('msg', '')}")
    st.error("  \n".join(lines), icon=":material/error:")


def show_problem(exc: ApiUnavailable | ApiError) -> None:
    """Whichever of the two it is."""
    if isinstance(exc, ApiUnavailable):
        show_unavailable(exc)
    else:
        show_api_error(exc)


def reasons_frame(reasons: Sequence[Reason]) -> pd.DataFrame:
    """Reasons as a table, largest push first."""
    return pd.DataFrame.from_records(
        [
            {
                "": "▲ raises" if r["direction"] == "raises" else "▼ lowers",
                "reason": r["text"],
                "contribution (log-odds)": round(float(r["contribution"]), 4),
                "feature": r["feature"],
                "value": r["value"],
            }
            for r in reasons
        ],
        columns=["", "reason", "contribution (log-odds)", "feature", "value"],
    )


def show_reasons(reasons: Sequence[Reason], *, top: int = 5) -> None:
    """The strongest reasons as sentences, then every feature in an expander."""
    if not reasons:
        st.info("The service gave no reasons for this invoice.")
        return
    ranked = sorted(reasons, key=lambda r: abs(float(r["contribution"])), reverse=True)
    st.markdown("**Why:**")
    for r in ranked[:top]:
        arrow = (
            ":red[:material/arrow_upward:]"
            if r["direction"] == "raises"
            else ":green[:material/arrow_downward:]"
        )
        st.markdown(f"{arrow} {r['text']} ({float(r['contribution']):+.2f})")
    with st.expander(f"As a table ({len(ranked)} features)"):
        st.dataframe(reasons_frame(ranked), hide_index=True, width="stretch")


def invoice_date(p: StoredPrediction) -> str:
    """``YYYY-MM-DD`` of a stored prediction."""
    return f"{p['invoice_year']:04d}-{p['invoice_month']:02d}-{p['invoice_day']:02d}"


def predictions_frame(predictions: Sequence[StoredPrediction]) -> pd.DataFrame:
    """Stored predictions as the table analysts read (newest first, as given)."""
    columns = [
        "scored_at",
        "invoice_id",
        "amount",
        "tax",
        "total",
        "invoice_date",
        "fraud_probability",
        "flagged",
        "verdict",
        "prediction_id",
    ]
    records = [
        {
            "scored_at": pd.Timestamp(p["scored_at"]),
            "invoice_id": "" if p["invoice_id"] is None else str(p["invoice_id"]),
            "amount": p["amount"],
            "tax": p["tax"],
            "total": p["total"],
            "invoice_date": invoice_date(p),
            "fraud_probability": p["fraud_probability"],
            "flagged": bool(p["prediction"]),
            "verdict": p.get("verdict") or "",
            "prediction_id": p["prediction_id"],
        }
        for p in predictions
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def stored_invoice(p: StoredPrediction) -> dict[str, object]:
    """The request body that scores a stored invoice again (for explanations)."""
    body: dict[str, object] = {
        "amount": p["amount"],
        "tax": p["tax"],
        "total": p["total"],
        "invoice_year": p["invoice_year"],
        "invoice_month": p["invoice_month"],
        "invoice_day": p["invoice_day"],
    }
    if p.get("invoice_id") is not None:
        body["invoice_id"] = p["invoice_id"]
    return body
