"""The UI's pages, each a script that ``st.navigation`` runs."""
