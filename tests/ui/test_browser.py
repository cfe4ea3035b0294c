"""One real browser (Debian's chromium, headless) on the real UI and the real service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.factories import make_invoice
from tests.servers import REPO, free_port, stop, wait_until_ready
from tests.ui.conftest import unique_id
from tests.ui.test_pages import SUSPICIOUS

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def streamlit_url(server_url: str, tmp_path: Path) -> Iterator[str]:
    """``streamlit run ui/app.py`` on a free loopback port, talking to the real service."""
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = {
        **os.environ,
        "INVOICE_FRAUD_API_URL": server_url,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    cmd = [
        sys.executable, "-m", "streamlit", "run", "ui/app.py",
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/_stcore/health", process, log, timeout=60)
        yield url
    finally:
        stop(process)


def test_live_page_in_a_real_browser_shows_a_scored_invoice(
    streamlit_url: str, client: httpx.Client, tmp_path: Path
) -> None:
    ids = [unique_id("browser") for _ in range(3)]
    for invoice_id, extra in zip(ids, ({}, SUSPICIOUS, {}), strict=True):
        body = make_invoice(invoice_id=invoice_id, **extra)
        answer = client.post("/predict_invoice_fraud", json=body)
        assert answer.status_code == 200, answer.text

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(streamlit_url, wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Live")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Invoices scored")).to_be_visible(timeout=30_000)
            # The newest invoice is the table's first row.
            expect(page.get_by_text(ids[-1]).first).to_be_attached(timeout=30_000)
            page.wait_for_timeout(1_500)  # let the charts finish drawing before the picture
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "live.png").stat().st_size > 10_000
