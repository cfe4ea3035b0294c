"""Batches wait for a store that falls behind, boundedly, and never starve other requests.

A batch is scored only while the store keeps up; one that cannot get in before its wait
ends gets a 503 with nothing of it scored or stored, so a retry duplicates nothing.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import make_invoice
from tests.servers import bentoml_server

pytestmark = pytest.mark.integration

BATCH = 2_000
BATCHES = 6


def test_batches_wait_for_a_stuck_store_boundedly_and_lose_nothing(
    bentoml_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    db = log.with_suffix(".sqlite3")
    env = {
        "INVOICE_FRAUD_STORE_BACKPRESSURE_ROWS": "1000",
        "INVOICE_FRAUD_STORE_BACKPRESSURE_MAX_WAIT_SECONDS": "3",
    }
    body = {"invoices": [make_invoice(invoice_id=f"L-{k}") for k in range(BATCH)]}
    with bentoml_server(bentoml_home, log, env=env) as url:
        # The database is there but stuck: another connection holds the write lock, so
        # the writers neither write nor fail (SQLite's busy timeout is 30 s).
        locker = sqlite3.connect(db, timeout=30, check_same_thread=False)
        locker.execute("BEGIN IMMEDIATE")

        def post_batch(_: int) -> tuple[int, float, list[str]]:
            started = time.monotonic()
            with httpx.Client(base_url=url, timeout=60) as c:
                r = c.post("/predict_invoice_fraud_batch", json=body)
            ids = [p["prediction_id"] for p in r.json()["predictions"]] if r.is_success else []
            if r.status_code == 503:
                assert "retry" in r.json()["error"] and r.headers["retry-after"] == "1"
            return r.status_code, time.monotonic() - started, ids

        try:
            with concurrent.futures.ThreadPoolExecutor(BATCHES) as pool:
                futures = [pool.submit(post_batch, k) for k in range(BATCHES)]
                time.sleep(1.5)  # the batches are scored and waiting for the store
                with httpx.Client(base_url=url, timeout=30) as c:
                    started = time.monotonic()
                    empty = c.post("/predict_invoice_fraud_batch", json={"invoices": []})
                    empty_s = time.monotonic() - started
                    single = c.post("/predict_invoice_fraud", json=make_invoice())
                    ready = c.get("/readyz")
                results = [f.result() for f in futures]
        finally:
            locker.rollback()
            locker.close()
        statuses = [status for status, _, _ in results]
        # The first batches got in before the lock bit; the rest were refused, boundedly
        # (3 s of waiting, never BentoML's 504 at 30 s).
        assert set(statuses) == {200, 503} and statuses.count(200) <= 2, results
        assert max(seconds for _, seconds, _ in results) < 15
        # Waiting batches hold no thread: a bad batch is refused at once, others answer.
        assert empty.status_code == 400 and empty_s < 2.0, empty_s
        assert single.status_code == 200 and ready.status_code == 200
        ids = [i for _, _, batch_ids in results for i in batch_ids]
        with httpx.Client(base_url=url, timeout=30) as c:
            # With the lock gone the store catches up and batches are admitted again.
            again = c.post("/predict_invoice_fraud_batch", json=body)
            assert again.status_code == 200
            ids += [p["prediction_id"] for p in again.json()["predictions"]]
    # Stopped with SIGTERM: every acknowledged row is stored, nothing refused was.
    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT prediction_id FROM predictions")}
    assert len(ids) == BATCH * (statuses.count(200) + 1) and set(ids) <= stored
    assert len(stored) == len(ids) + 1  # and the single invoice
    assert "prediction store behind; batch of 2000 invoices refused" in log.read_text()
