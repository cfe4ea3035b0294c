"""Nothing acknowledged is lost: many clients, both workers, SIGTERM, a database outage."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import make_invoice
from tests.postgres import private_postgres
from tests.servers import REPO, bentoml_server, free_port, server_home, stop, wait_until_ready

pytestmark = pytest.mark.integration


def stored_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT prediction_id FROM predictions")]


def test_concurrent_clients_get_exactly_one_row_each(bentoml_home: Path, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with bentoml_server(bentoml_home, log) as url:

        def score(k: int) -> str:
            with httpx.Client(base_url=url, timeout=30) as c:
                body = make_invoice(invoice_id=f"C-{k}", total=1180.0 + k % 7)
                response = c.post("/predict_invoice_fraud", json=body)
                assert response.status_code == 200
                return str(response.json()["prediction_id"])

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(score, range(400)))
        with httpx.Client(base_url=url) as c:
            batch = c.post(
                "/predict_invoice_fraud_batch",
                json={"invoices": [make_invoice(invoice_id=f"B-{k}") for k in range(600)]},
            ).json()
        ids += [p["prediction_id"] for p in batch["predictions"]]
    # The server has stopped (SIGTERM): everything it acknowledged must be in the store.
    rows = stored_ids(log.with_suffix(".sqlite3"))
    assert len(rows) == 1000 and sorted(rows) == sorted(ids)
    assert "prediction store closed with" not in log.read_text()


def test_sigterm_under_load_loses_nothing_acknowledged(bentoml_home: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    db = tmp_path / "store.sqlite3"
    env = {
        **os.environ,
        "BENTOML_HOME": str(server_home(bentoml_home, tmp_path)),
        "INVOICE_FRAUD_STORE_PATH": str(db),
        # A long flush interval keeps rows queued, so SIGTERM has something to flush.
        "INVOICE_FRAUD_STORE_FLUSH_INTERVAL_SECONDS": "30",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bentoml", "serve", "service:InvoiceFraudService", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=REPO, env={**env, "PATH": f"{Path(os.sys.executable).parent}:{env['PATH']}"},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(f"{url}/readyz", proc, log, 60)
    acknowledged: list[str] = []
    failed = 0

    def client_loop(k: int) -> None:
        nonlocal failed
        with httpx.Client(base_url=url, timeout=10) as c:
            for j in range(400):
                try:
                    r = c.post("/predict_invoice_fraud", json=make_invoice(invoice_id=f"{k}-{j}"))
                except httpx.HTTPError:
                    failed += 1
                    return
                if r.status_code == 200:
                    acknowledged.append(r.json()["prediction_id"])
                else:
                    failed += 1
                    return

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client_loop, k) for k in range(8)]
        while len(acknowledged) < 300:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        for f in futures:
            f.result()
    assert stop(proc, timeout=60) is not None
    rows = set(stored_ids(db))
    assert len(acknowledged) >= 300
    missing = set(acknowledged) - rows
    assert missing == set(), f"{len(missing)} acknowledged predictions not stored"


def test_database_outage_scoring_answers_failure_visible_writes_resume(
    bentoml_home: Path, tmp_path: Path
) -> None:
    with private_postgres() as pg:
        env = {"INVOICE_FRAUD_DATABASE_URL": pg.url}
        with bentoml_server(bentoml_home, tmp_path / "serve.log", env=env) as url:
            c = httpx.Client(base_url=url, timeout=30)
            first = c.post("/predict_invoice_fraud", json=make_invoice(invoice_id="pg-1")).json()
            pg.stop()
            during = [
                c.post("/predict_invoice_fraud", json=make_invoice(invoice_id=f"pg-down-{k}"))
                for k in range(20)
            ]
            assert all(r.status_code == 200 for r in during)  # scoring still answers
            read = c.post("/recent_predictions", json={"limit": 5})
            assert read.status_code == 503 and "unreachable" in read.json()["error"]
            deadline = time.monotonic() + 20
            failures = 0.0
            while time.monotonic() < deadline and failures == 0:
                for line in c.get("/metrics").text.splitlines():
                    if line.startswith("invoice_fraud_store_failures_total"):
                        failures = float(line.split()[-1])
                time.sleep(0.3)
            assert failures > 0  # the outage is visible in /metrics
            pg.start()
            pg.wait_ready()
            wanted = {first["prediction_id"]} | {r.json()["prediction_id"] for r in during}
            deadline = time.monotonic() + 30
            found: set[str] = set()
            while time.monotonic() < deadline and not wanted <= found:
                response = c.post("/recent_predictions", json={"limit": 1000})
                if response.status_code == 200:
                    found = {p["prediction_id"] for p in response.json()["predictions"]}
                time.sleep(0.3)
            assert wanted <= found  # writes resumed and nothing was lost
            c.close()
