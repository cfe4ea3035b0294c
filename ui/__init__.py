"""Streamlit analyst UI: ``streamlit run ui/app.py``. Talks to the service over HTTP only."""
