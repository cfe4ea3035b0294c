"""The send loop against a real loopback server: pacing, limits, bad rows, outcomes."""

from __future__ import annotations

import time
from pathlib import Path

from sender.client import ScoringClient
from sender.config import FraudSchedule
from sender.run import run_sender
from sender.source import CsvInvoices, GeneratedInvoices
from sender.stopping import Stopper
from tests.sender.helpers import scripted_server, write_csv

SCORED = (200, {"fraud_probability": 0.9, "prediction": 1, "warnings": []})
REJECTED = (400, {"error": "bad", "detail": [{"loc": ["amount"], "msg": "no"}]})


def test_duration_limit_stops_a_paced_run_on_time() -> None:
    stopper = Stopper()
    source = GeneratedInvoices(FraudSchedule(0.0), seed=1, pool_size=50)
    with (
        scripted_server({"/predict_invoice_fraud": [SCORED]}) as server,
        ScoringClient(server.url, stopper) as client,
    ):
        started = time.monotonic()
        summary = run_sender(
            source,
            client,
            stopper,
            interval_seconds=0.2,
            duration_seconds=1.0,
        )
        took = time.monotonic() - started
    # One at once, then one every 0.2 s: 5 or 6 within the second, never a burst.
    assert 4 <= summary.scored <= 6 and summary.flagged == summary.scored
    assert summary.stopped_by == "duration" and 0.9 <= took < 1.6
    assert server.count("/predict_invoice_fraud") == summary.scored


def test_count_limit_counts_rejected_invoices_and_skips_bad_rows(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv",
        "amount,tax,total,invoice_date",
        "100,10,110,2024-01-01",
        "x,10,110,2024-01-01",
        "100,10,110,2024-01-02",
        "100,10,110,2024-01-03",
        "100,10,110,2024-01-04",
    )
    replies = {"/predict_invoice_fraud": [SCORED, REJECTED, SCORED]}
    stopper = Stopper()
    with (
        scripted_server(replies) as server,
        ScoringClient(server.url, stopper) as client,
        CsvInvoices(path) as source,
    ):
        summary = run_sender(source, client, stopper, interval_seconds=0.01, count=3)
    assert (summary.sent, summary.scored, summary.rejected, summary.skipped_rows) == (3, 2, 1, 1)
    assert summary.stopped_by == "count"
    # The third send was the CSV's line 5; line 6 was never read.
    assert [body["invoice_id"] for _, _, body in server.requests] == ["CSV-2", "CSV-4", "CSV-5"]
    assert "sent=3 scored=2 flagged=2 rejected=1" in summary.line()
