"""A bounded soak: a minute of full-concurrency load, no errors, every answer stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks.common import run_wrk, write_wrk_script
from tests.servers import bentoml_server

pytestmark = pytest.mark.integration

SOAK_SECONDS = 60
CONNECTIONS = 32


def test_soak_at_full_concurrency_no_errors_every_answer_stored(
    bentoml_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with bentoml_server(bentoml_home, log) as url:
        result = run_wrk(url, write_wrk_script(tmp_path), CONNECTIONS, SOAK_SECONDS)
    # The server has been stopped with SIGTERM: its queues are flushed.
    assert result.requests > 1_000
    assert result.non_2xx == 0 and result.socket_errors == 0
    with sqlite3.connect(log.with_suffix(".sqlite3")) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM predictions").fetchone()
    # wrk counts the answers it read; requests still in flight when it stopped were
    # answered and stored too, at most one per connection.
    assert result.requests <= rows <= result.requests + CONNECTIONS
    assert "prediction store closed with" not in log.read_text()
