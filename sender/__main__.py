"""``python -m sender``: post invoices to the scoring API."""

from sender.cli import app

if __name__ == "__main__":
    app()
