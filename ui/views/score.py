"""Score an invoice: the seven fields (date by picker), the probability and the reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from ui.api_client import ApiError, ApiUnavailable
from ui.common import WEEKDAYS, get_client, show_problem, show_reasons

FROM_CALENDAR = "(from the date)"

st.title("Score an invoice")

with st.form("score"):
    invoice_id = st.text_input("Invoice id (optional)", key="invoice_id")
    left, middle, right = st.columns(3)
    amount = left.number_input(
        "Amount (net)", min_value=0.01, value=1000.0, step=1.0, format="%.2f", key="amount"
    )
    tax = middle.number_input("Tax", value=180.0, step=1.0, format="%.2f", key="tax")
    total = right.number_input("Total", value=1180.0, step=1.0, format="%.2f", key="total")
    date_col, weekday_col = st.columns(2)
    date = date_col.date_input(
        "Invoice date",
        value=dt.date(2024, 5, 15),
        min_value=dt.date(1900, 1, 1),
        max_value=dt.date(2100, 12, 31),
        key="date",
    )
    weekday = weekday_col.selectbox(
        "Weekday on the invoice",
        [FROM_CALENDAR, *WEEKDAYS],
        key="weekday",
        help="Leave it to the calendar, or give the weekday printed on the invoice: "
        "one that disagrees with the date is reported as a warning.",
    )
    submitted = st.form_submit_button("Score", type="primary")

if submitted and isinstance(date, dt.date):
    body: dict[str, Any] = {
        "amount": float(amount),
        "tax": float(tax),
        "total": float(total),
        "invoice_year": date.year,
        "invoice_month": date.month,
        "invoice_day": date.day,
    }
    if weekday != FROM_CALENDAR:
        body["invoice_weekday"] = WEEKDAYS.index(weekday)
    if invoice_id.strip():
        body["invoice_id"] = invoice_id.strip()
    try:
        result = get_client().score(body, explain=True)
    except (ApiUnavailable, ApiError) as exc:
        show_problem(exc)
    else:
        flagged = bool(result["prediction"])
        cols = st.columns(3)
        cols[0].metric("Fraud probability", f"{result['fraud_probability']:.4f}")
        cols[1].metric("Threshold", f"{result['threshold']:.4f}")
        cols[2].metric("Decision", "FLAGGED" if flagged else "not flagged")
        if flagged:
            st.error("Flagged as likely fraud: review it before paying.", icon=":material/flag:")
        else:
            st.success("Not flagged.", icon=":material/check_circle:")
        for warning in result.get("warnings") or []:
            st.warning(warning)
        show_reasons(result.get("reasons") or [])
        st.caption(
            f"Model {result['model_tag']} · prediction id {result.get('prediction_id', '-')}"
        )
