"""Session fixtures: a small model trained into a temporary BENTOML_HOME, a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import REPO, bentoml_server

#: Enough invoices for a model that behaves like the real one, trained in a few seconds.
TEST_ROWS = 40_000


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary BentoML store holding a freshly trained small model.

    ``BENTOML_HOME`` is set for this process too, so tests that load the service class
    directly read the same store.
    """
    home = tmp_path_factory.mktemp("bentoml_home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    subprocess.run(
        [sys.executable, "train.py", "--rows", str(TEST_ROWS), "--seed", "7"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    overrides = {
        "BENTOML_HOME": str(home),
        # The service class called in-process keeps its predictions here, not in data/.
        "INVOICE_FRAUD_STORE_PATH": str(home / "in-process-predictions.sqlite3"),
    }
    previous = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    yield home
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def server_url(bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real `bentoml serve` of this repository's service."""
    log = tmp_path_factory.mktemp("logs") / "bentoml-serve.log"
    with bentoml_server(bentoml_home, log) as url:
        yield url


@pytest.fixture()
def client(server_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the real server."""
    with httpx.Client(base_url=server_url, timeout=30.0) as c:
        yield c
