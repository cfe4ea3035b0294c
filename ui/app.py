"""Analyst UI entry point: ``streamlit run ui/app.py``.

Streamlit puts only this file's folder on ``sys.path``; the repository root goes there too
so the pages can import ``ui.*`` and ``invoice_fraud.settings`` from a plain checkout (and
from the image, where nothing is pip-installed).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from ui.common import api_url, get_client  # noqa: E402

_VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Invoice fraud", page_icon=":material/receipt_long:", layout="wide")

pages = st.navigation(
    [
        st.Page(_VIEWS / "live.py", title="Live", icon=":material/monitoring:", default=True),
        st.Page(_VIEWS / "score.py", title="Score an invoice", icon=":material/receipt_long:"),
        st.Page(_VIEWS / "batch.py", title="Batch", icon=":material/upload_file:"),
        st.Page(_VIEWS / "review.py", title="Review", icon=":material/fact_check:"),
        st.Page(_VIEWS / "model.py", title="Model", icon=":material/model_training:"),
    ]
)

with st.sidebar:
    url = api_url()
    if get_client().is_ready():
        st.caption(f"API: {url} · ready")
    else:
        st.caption(f"API: {url} · **not reachable**")

pages.run()
