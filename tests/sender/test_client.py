"""The HTTP client against a real loopback server: backoff, retries, 4xx, readiness, stop."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from sender.client import (
    Abandoned,
    Backoff,
    GaveUp,
    Readiness,
    Rejected,
    Scored,
    ScoringClient,
)
from sender.source import OutgoingInvoice
from sender.stopping import Stopper
from tests.factories import ORDINARY
from tests.sender.helpers import scripted_server

OK = (200, {"invoice_id": "T-1", "fraud_probability": 0.25, "prediction": 0, "warnings": []})
READY: dict[str, list[tuple[int, object]]] = {"/readyz": [(200, {})]}


class RecordingPauser:
    """Records the waits the client asks for instead of sleeping; can stop after n waits."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    @property
    def stopped(self) -> bool:
        return self.stop_after is not None and len(self.waits) >= self.stop_after

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stopped


def invoice(invoice_id: str = "T-1") -> OutgoingInvoice:
    return OutgoingInvoice(invoice_id, {"invoice_id": invoice_id, **ORDINARY})


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter() -> None:
    without_jitter = Backoff(initial_seconds=0.5, max_seconds=8.0, jitter=0.0)
    rng = random.Random(0)
    assert [without_jitter.delay(n, rng) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]
    # A very long outage neither overflows nor exceeds the cap.
    assert without_jitter.delay(10_000, rng) == 8.0
    jittered = Backoff(initial_seconds=1.0, max_seconds=30.0, jitter=0.5)
    delays = [jittered.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # really randomised


def test_5xx_and_network_errors_are_retried_with_backoff_until_scored() -> None:
    replies = {"/predict_invoice_fraud": [(503, {"error": "busy"}), (500, {"error": "x"}), OK]}
    pauser = RecordingPauser()
    with (
        scripted_server(replies) as server,
        ScoringClient(server.url, pauser, backoff=Backoff(1.0, 30.0, jitter=0.0)) as client,
    ):
        outcome = client.score(invoice())
    assert isinstance(outcome, Scored)
    assert outcome.fraud_probability == 0.25 and outcome.prediction == 0 and outcome.attempts == 3
    assert pauser.waits == [1.0, 2.0]
    assert server.count("/predict_invoice_fraud") == 3
    assert server.requests[0][2] == invoice().body


def test_connection_refused_is_retried_not_raised() -> None:
    with scripted_server(READY) as server:
        url = server.url  # the port is closed once the block ends
    pauser = RecordingPauser(stop_after=4)
    with ScoringClient(url, pauser, backoff=Backoff(0.5, 1.0, jitter=0.0)) as client:
        outcome = client.score(invoice())
    assert isinstance(outcome, Abandoned)
    assert pauser.waits == [0.5, 1.0, 1.0, 1.0]
    with ScoringClient(url, RecordingPauser(), max_attempts=2) as client:
        gave_up = client.score(invoice())
    assert isinstance(gave_up, GaveUp) and "ConnectError" in gave_up.last_problem


def test_4xx_is_not_retried_and_keeps_the_error_body() -> None:
    error = {"error": "1 validation error", "detail": [{"loc": ["amount"], "msg": "bad"}]}
    pauser = RecordingPauser()
    with (
        scripted_server({"/predict_invoice_fraud": [(400, error)]}) as server,
        ScoringClient(server.url, pauser) as client,
    ):
        outcome = client.score(invoice())
    assert isinstance(outcome, Rejected) and outcome.status == 400
    assert '"loc": ["amount"]' in outcome.body
    assert server.count("/predict_invoice_fraud") == 1 and pauser.waits == []


def test_readiness_waits_until_readyz_answers_200() -> None:
    replies: dict[str, list[tuple[int, object]]] = {"/readyz": [(503, {}), (503, {}), (200, {})]}
    pauser = RecordingPauser()
    with scripted_server(replies) as server, ScoringClient(server.url, pauser) as client:
        assert client.wait_until_ready(timeout=60) is Readiness.READY
    assert server.count("/readyz") == 3 and len(pauser.waits) == 2


def test_readiness_times_out_on_its_clock() -> None:
    now = [0.0]

    class ClockedPauser(RecordingPauser):
        def wait(self, seconds: float) -> bool:
            now[0] += seconds
            return super().wait(seconds)

    pauser = ClockedPauser()
    with (
        scripted_server({"/readyz": [(503, {})]}) as server,
        ScoringClient(server.url, pauser, clock=lambda: now[0]) as client,
    ):
        assert client.wait_until_ready(timeout=3.0) is Readiness.TIMED_OUT
    assert sum(pauser.waits) == pytest.approx(3.0)


def test_stop_abandons_a_request_the_server_never_answers() -> None:

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        stopper = Stopper()
        threading.Timer(0.3, stopper.request_stop, args=("SIGTERM",)).start()
        started = time.monotonic()
        with ScoringClient(url, stopper, timeout=60.0) as client:
            outcome = client.score(invoice())
        took = time.monotonic() - started
    assert isinstance(outcome, Abandoned)
    assert took < 0.3 + 2.0 + 1.0  # the stop, the grace period, slack
