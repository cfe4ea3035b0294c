"""Batch: upload a CSV, score it through the batch API, download the results."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.api_client import ApiError, ApiUnavailable
from ui.batch_io import (
    CHUNK_SIZE,
    KNOWN_FIELDS,
    RowProblem,
    parse_invoices,
    read_csv,
    results_frame,
    score_file,
)
from ui.common import get_client, show_problem

#: Bad rows listed in the message itself; the full list is in a table below it.
LISTED_PROBLEMS = 20


def _show_problems(problems: list[RowProblem], where: str) -> None:
    rows = sorted({p.row for p in problems if p.row is not None})
    head = f"**{len(rows)} row(s) {where}:** " + ", ".join(str(r) for r in rows[:LISTED_PROBLEMS])
    if len(rows) > LISTED_PROBLEMS:
        head += ", ..."
    lines = [head, *(f"- {p.describe()}" for p in problems[:LISTED_PROBLEMS])]
    st.error("  \n".join(lines), icon=":material/error:")
    if len(problems) > LISTED_PROBLEMS:
        st.dataframe(pd.DataFrame([vars(p) for p in problems]), hide_index=True, width="stretch")


st.title("Batch")
st.markdown(
    "Upload a CSV with the columns `amount`, `tax`, `total` and either `invoice_year`, "
    "`invoice_month`, `invoice_day` or `invoice_date` (YYYY-MM-DD); `invoice_weekday` and "
    f"`invoice_id` are optional. Sent to the service in chunks of up to {CHUNK_SIZE:,}; rows "
    "are numbered from 1 under the header."
)
upload = st.file_uploader("Invoices (CSV)", type=["csv"], key="upload")

if upload is not None:
    try:
        frame = read_csv(upload.getvalue())
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        st.error(f"**Could not read {upload.name} as CSV:** {exc}")
        st.stop()
    parsed = parse_invoices(frame)
    if parsed.file_errors:
        st.error(f"**{upload.name} cannot be scored:** " + "; ".join(parsed.file_errors))
        st.stop()
    if parsed.ignored_columns:
        st.info(
            "Ignored column(s) the service does not take: "
            + ", ".join(parsed.ignored_columns)
            + f" (it takes {', '.join(KNOWN_FIELDS)})."
        )
    st.write(f"{parsed.total_rows:,} rows in {upload.name}.")
    if parsed.problems:
        _show_problems(parsed.problems, "have cells that are not numbers and were not sent")

    # The outcome is kept for this upload, so the table and the download survive reruns.
    upload_key = f"{upload.file_id}:{upload.name}:{upload.size}"
    if st.button("Score", type="primary", key="score", disabled=not parsed.invoices):
        try:
            with st.spinner(f"Scoring {len(parsed.invoices):,} invoices ..."):
                outcome = score_file(get_client(), parsed)
        except (ApiUnavailable, ApiError) as exc:
            show_problem(exc)
            st.stop()
        st.session_state["batch_outcome"] = (upload_key, outcome)
    kept = st.session_state.get("batch_outcome")
    if kept is not None and kept[0] == upload_key:
        outcome = kept[1]
        if outcome.problems:
            _show_problems(outcome.problems, "were rejected by the service and not scored")
        results = results_frame(outcome)
        flagged = int(results["flagged"].sum()) if len(results) else 0
        cols = st.columns(3)
        cols[0].metric("Scored", f"{len(results):,}")
        cols[1].metric("Flagged", f"{flagged:,}")
        cols[2].metric("Not scored", f"{parsed.total_rows - len(results):,}")
        if len(results):
            st.dataframe(results, hide_index=True, width="stretch")
            st.download_button(
                "Download results (CSV)",
                data=results.to_csv(index=False).encode(),
                file_name=f"scored-{upload.name}",
                mime="text/csv",
                key="download",
                on_click="ignore",
            )
