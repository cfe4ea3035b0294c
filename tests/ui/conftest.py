"""UI fixtures: the Streamlit app under AppTest, pointed at the real service."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.servers import REPO, free_port

APP = REPO / "ui" / "app.py"
#: Seconds one script run may take; a real HTTP round trip or two per page.
RUN_TIMEOUT = 30.0

PageOpener = Callable[[str], AppTest]


def open_page(page: str) -> AppTest:
    """Run the app as a browser session would, then switch to ``page`` (e.g. ``"score"``)."""
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT).run()
    if page != "live":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture()
def ui_page(server_url: str, monkeypatch: pytest.MonkeyPatch) -> PageOpener:
    """Open a page of the UI configured, through settings, to talk to the real service."""
    monkeypatch.setenv("INVOICE_FRAUD_API_URL", server_url)
    return open_page


@pytest.fixture()
def down_page(monkeypatch: pytest.MonkeyPatch) -> tuple[PageOpener, str]:
    """Open a page of the UI pointed at a loopback port nothing listens on."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("INVOICE_FRAUD_API_URL", url)
    return open_page, url


def wait_until_stored(client: httpx.Client, invoice_id: str, timeout: float = 15.0) -> None:
    """Wait until the store has written ``invoice_id``, as an analyst refreshing would.

    The store writes behind the answer, one writer per worker: a page opened at once may
    read from the other worker before this row is written.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = client.post("/recent_predictions", json={"limit": 200}).json()["predictions"]
        if any(r["invoice_id"] == invoice_id for r in rows):
            return
        time.sleep(0.1)
    raise AssertionError(f"{invoice_id} not stored within {timeout} s")


def unique_id(prefix: str) -> str:
    """An invoice id no other test sends."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def forwarding(listen_url: str, target_url: str) -> Iterator[None]:
    """Serve ``listen_url`` by forwarding every request to ``target_url`` (the API "comes back")."""

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {"content-type": self.headers.get("content-type", "application/json")}
            answer = httpx.request(
                self.command, f"{target_url}{self.path}", content=body, headers=headers, timeout=30
            )
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "text/plain"))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    address = urlsplit(listen_url)
    server = ThreadingHTTPServer((str(address.hostname), int(address.port or 80)), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
