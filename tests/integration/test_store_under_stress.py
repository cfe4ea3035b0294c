"""What the second breaker found in the store: a slow writer, a locked or deleted database."""

from __future__ import annotations

import fcntl
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import make_invoice
from tests.servers import bentoml_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A server of its own whose SQLite file is at the returned path (its URL beside it)."""
    where = tmp_path_factory.mktemp("stress")
    db = where / "db" / "predictions.sqlite3"
    with bentoml_server(
        bentoml_home, where / "serve.log", env={"INVOICE_FRAUD_STORE_PATH": str(db)}
    ) as url:
        (where / "url").write_text(url)
        yield db


@pytest.fixture()
def client(served: Path) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=(served.parent.parent / "url").read_text(), timeout=40) as c:
        yield c


def metric(client: httpx.Client, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_a_verdict_waits_for_a_writer_that_is_seconds_behind(
    served: Path, client: httpx.Client
) -> None:
    # The workers' writers take turns on this lock: holding it stands for a writer that is
    # seconds behind (the other worker's long batch transaction, a backlog at the mark).
    lock = (served.parent / (served.name + ".writer-lock")).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        scored = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id="late")).json()
        threading.Timer(2.5, fcntl.flock, (lock, fcntl.LOCK_UN)).start()
        started = time.monotonic()
        verdict = client.post(
            "/record_verdict", json={"prediction_id": scored["prediction_id"], "verdict": "fraud"}
        )
        waited = time.monotonic() - started
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    assert verdict.status_code == 200, verdict.text  # was a 404 after 0.6 s
    assert verdict.json()["verdict"] == "fraud"
    assert waited >= 2.0


def test_a_locked_database_answers_503_not_504_and_nothing_half_done(
    served: Path, client: httpx.Client
) -> None:
    scored = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id="locked")).json()
    pid = scored["prediction_id"]
    deadline = time.monotonic() + 10
    while (
        client.post("/recent_predictions", json={"limit": 5}).json()["predictions"][0][
            "prediction_id"
        ]
        != pid
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    before = metric(client, "invoice_fraud_verdict_total")
    holder = sqlite3.connect(served, timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holding the write lock
    try:
        started = time.monotonic()
        refused = client.post("/record_verdict", json={"prediction_id": pid, "verdict": "fraud"})
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert refused.status_code == 503, refused.text  # was a 504 at 30 s, stored anyway
    assert elapsed < 15
    row = sqlite3.connect(served).execute(
        "SELECT verdict FROM predictions WHERE prediction_id = ?", (pid,)
    )
    assert row.fetchone() == (None,)  # refused means not recorded
    accepted = client.post("/record_verdict", json={"prediction_id": pid, "verdict": "fraud"})
    assert accepted.status_code == 200
    assert metric(client, "invoice_fraud_verdict_total") == before + 1


def test_a_database_deleted_while_serving_is_noticed_and_written_anew(
    served: Path, client: httpx.Client
) -> None:
    first = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id="before")).json()
    assert first["prediction"] in (0, 1)
    time.sleep(0.5)
    failures = metric(client, "invoice_fraud_store_failures_total")
    shutil.rmtree(served.parent)  # an operator's mistake: the directory, files and all
    during = [
        client.post("/predict_invoice_fraud", json=make_invoice(invoice_id=f"gone-{k}")).json()
        for k in range(20)
    ]
    deadline = time.monotonic() + 10
    while metric(client, "invoice_fraud_store_failures_total") == failures:
        assert time.monotonic() < deadline, "writes into a deleted directory went unnoticed"
        time.sleep(0.2)
    served.parent.mkdir()  # the directory is back: the queued rows must land in a new file
    wanted = {p["prediction_id"] for p in during}
    deadline = time.monotonic() + 20
    stored: set[str] = set()
    while time.monotonic() < deadline and not wanted <= stored:
        time.sleep(0.3)
        if served.exists():
            try:
                with sqlite3.connect(served) as conn:
                    stored = {r[0] for r in conn.execute("SELECT prediction_id FROM predictions")}
            except sqlite3.OperationalError:  # the schema is being made
                continue
    assert wanted <= stored, f"{len(wanted - stored)} acknowledged predictions lost"
