"""``python -m sender`` as a user runs it, against the real `bentoml serve`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sender.helpers import SUMMARY_LINE, SenderProcess, running_sender, write_csv
from tests.servers import bentoml_server, free_port

pytestmark = pytest.mark.integration

FAST = ("--rate", "50")


def summary_of(output: str) -> dict[str, str]:
    line = next(line for line in output.splitlines() if SUMMARY_LINE.search(line))
    return dict(re.findall(r"(\w+)=(\S+)", line[line.index("summary") :]))


def test_count_invoices_are_sent_and_each_is_logged(server_url: str) -> None:
    with running_sender("--api-url", server_url, "--count", "8", *FAST, "--seed", "1") as sender:
        assert sender.wait(60) == 0, sender.output()
        scored = sender.scored()
    assert [invoice_id for invoice_id, _, _ in scored] == [f"SIM-{n:06d}" for n in range(1, 9)]
    assert all(0.0 <= p <= 1.0 and pred in (0, 1) for _, p, pred in scored)
    summary = summary_of(sender.output())
    assert summary["sent"] == "8" and summary["scored"] == "8" and summary["stopped_by"] == "count"


def test_api_url_comes_from_the_environment(server_url: str) -> None:
    env = {"INVOICE_FRAUD_API_URL": server_url, "INVOICE_FRAUD_SENDER_INTERVAL_SECONDS": "0.02"}
    with running_sender("--count", "3", env=env) as sender:
        assert sender.wait(60) == 0, sender.output()
        assert len(sender.scored()) == 3


def test_fraud_spike_makes_the_service_flag_far_more_invoices(server_url: str) -> None:
    common = ("--api-url", server_url, "--count", "30", *FAST, "--fraud-rate", "0")
    spike = ("--scenario", "fraud-spike", "--spike-start", "0", "--spike-duration", "600")
    # Both runs at once, to save a start-up.
    with (
        running_sender(*common, *spike, "--spike-fraud-rate", "1", "--seed", "2") as during,
        running_sender(*common, "--seed", "2") as steady,
    ):
        assert during.wait(60) == 0, during.output()
        assert steady.wait(60) == 0, steady.output()
    flagged_during = sum(pred for _, _, pred in during.scored())
    flagged_steady = sum(pred for _, _, pred in steady.scored())
    assert len(during.scored()) == len(steady.scored()) == 30
    assert flagged_during >= 20, during.output()
    assert flagged_steady <= 3, steady.output()
    assert "generated_fraud=1" in during.output()


def test_csv_replay_scores_each_good_row_and_reports_bad_ones(
    server_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "invoices.csv",
        "invoice_id,amount,tax,total,invoice_year,invoice_month,invoice_day,invoice_date",
        "A-1,1000.00,180.00,1180.00,2024,5,15,",
        "A-2,2500,0,2500,,,,2024-06-01",
        "A-3,12O0,180,1380,2024,5,15,",  # a letter O in the amount
        "A-4,4999,5000,9999,2024,7,1,",  # tax way off a standard rate: fraud-like
    )
    with running_sender("--api-url", server_url, "--csv", str(path), *FAST) as sender:
        assert sender.wait(60) == 0, sender.output()
    assert [invoice_id for invoice_id, _, _ in sender.scored()] == ["A-1", "A-2", "A-4"]
    assert re.search(r"CSV line 4 \(data row 3\): amount: '12O0' is not a number", sender.output())
    summary = summary_of(sender.output())
    assert summary["scored"] == "3" and summary["skipped_rows"] == "1"
    assert summary["stopped_by"] == "end_of_input"


def test_csv_without_required_columns_exits_2_naming_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", "amount,tax", "1,0")
    with running_sender("--csv", str(path), "--api-url", f"http://127.0.0.1:{free_port()}") as s:
        assert s.wait(30) == 2
    assert "missing column(s) total" in s.output()


def test_sender_gives_up_with_a_clear_message_when_the_api_never_gets_ready() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with running_sender("--api-url", url, "--ready-timeout", "2", "--count", "1") as sender:
        assert sender.wait(30) == 1
    assert f"API at {url} not ready after 2s" in sender.output()
    assert "Traceback" not in sender.output()


def test_sigterm_between_invoices_exits_0_at_once(server_url: str) -> None:
    # The default pace: one invoice now, the next in 30 s.
    with running_sender("--api-url", server_url) as sender:
        sender.wait_for("invoice_id=SIM-000001 ", timeout=60)
        code, took = sender.terminate()
    assert code == 0 and took < 3.0, sender.output()
    summary = summary_of(sender.output())
    assert summary["sent"] == "1" and summary["stopped_by"] == "SIGTERM"


def test_sender_survives_the_api_going_down_and_stops_cleanly(
    bentoml_home: Path, tmp_path: Path
) -> None:
    sender: SenderProcess | None = None
    try:
        # One worker: this server only needs to answer and then disappear.
        one_worker = {"BENTOML_CONFIG_OPTIONS": "services.invoice_fraud_service.workers=1"}
        with bentoml_server(bentoml_home, tmp_path / "serve.log", env=one_worker) as url:
            sender = SenderProcess(
                "--api-url", url, "--rate", "10", "--max-backoff", "0.5",
                "--request-timeout", "2",
            )  # fmt: skip
            sender.wait_for(r"invoice_id=SIM-\d+ fraud_probability", count=3, timeout=60)
        # The server is gone: the sender retries the same invoice with backoff, and lives.
        sender.wait_for(r"attempt \d+ failed .*retrying in", count=4, timeout=30)
        assert sender.process.poll() is None, sender.output()
        code, took = sender.terminate()
    finally:
        if sender is not None:
            sender.close()
    assert code == 0 and took < 5.0, sender.output()
    assert "Traceback" not in sender.output()
    summary = summary_of(sender.output())
    assert int(summary["scored"]) >= 3 and summary["stopped_by"] == "SIGTERM"
