"""Review: pick a flagged invoice, see why it was flagged, record a verdict."""

from __future__ import annotations

import streamlit as st

from ui.api_client import ApiError, ApiUnavailable, StoredPrediction, Verdict
from ui.common import get_client, invoice_date, show_problem, show_reasons, stored_invoice

#: Flagged invoices offered for review, newest first.
REVIEW_LIMIT = 200
VERDICTS: dict[str, Verdict] = {"Confirmed fraud": "fraud", "Legitimate": "legitimate"}


def _label(p: StoredPrediction) -> str:
    invoice = "no id" if p["invoice_id"] is None else f"invoice {p['invoice_id']}"
    verdict = f" · {p['verdict']}" if p.get("verdict") else " · not reviewed"
    return (
        f"{invoice} · {p['total']:,.2f} · p={p['fraud_probability']:.3f} · "
        f"{p['scored_at'][:19]}{verdict}"
    )


st.title("Review")
flash = st.session_state.pop("review_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")
only_open = st.checkbox("Only invoices without a verdict", value=False, key="only_open")

try:
    flagged = get_client().recent_predictions(limit=REVIEW_LIMIT, only_flagged=True)
except (ApiUnavailable, ApiError) as exc:
    show_problem(exc)
    st.stop()

if only_open:
    flagged = [p for p in flagged if not p.get("verdict")]
if not flagged:
    st.info("No flagged invoices to review.")
    st.stop()

by_id = {p["prediction_id"]: p for p in flagged}
chosen_id = st.selectbox(
    f"Flagged invoice ({len(flagged)} newest)",
    list(by_id),
    format_func=lambda pid: _label(by_id[pid]),
    key="prediction_id",
)
chosen = by_id[chosen_id]

cols = st.columns(5)
cols[0].metric("Fraud probability", f"{chosen['fraud_probability']:.4f}")
cols[1].metric("Amount", f"{chosen['amount']:,.2f}")
cols[2].metric("Tax", f"{chosen['tax']:,.2f}")
cols[3].metric("Total", f"{chosen['total']:,.2f}")
cols[4].metric("Date", invoice_date(chosen))
st.caption(
    f"Scored {chosen['scored_at']} by {chosen['model_tag']} (threshold "
    f"{chosen['threshold']:.4f}) · prediction id {chosen['prediction_id']}"
)
for warning in chosen.get("warnings") or []:
    st.warning(warning)
if chosen.get("verdict"):
    st.info(
        f"Current verdict: **{chosen['verdict']}** ({chosen.get('verdict_at') or ''})"
        + (f": {chosen['verdict_comment']}" if chosen.get("verdict_comment") else "")
    )

try:
    explanation = get_client().explain(stored_invoice(chosen))
except (ApiUnavailable, ApiError) as exc:
    show_problem(exc)
else:
    show_reasons(explanation["reasons"])

with st.form("verdict", clear_on_submit=True):
    choice = st.radio("Verdict", list(VERDICTS), index=None, horizontal=True, key="verdict")
    comment = st.text_area("Comment (optional)", max_chars=2000, key="comment")
    submitted = st.form_submit_button("Record verdict", type="primary")

if submitted and choice is None:
    st.warning("Choose a verdict first.")
elif submitted and choice is not None:
    try:
        updated = get_client().record_verdict(chosen_id, VERDICTS[choice], comment.strip() or None)
    except (ApiUnavailable, ApiError) as exc:
        show_problem(exc)
    else:
        who = "no id" if updated["invoice_id"] is None else f"invoice {updated['invoice_id']}"
        # Rerun so the list shows the new verdict; the message survives the rerun.
        st.session_state["review_flash"] = f"Recorded **{updated['verdict']}** for {who}."
        st.rerun()
