"""HTTP to the scoring API: readiness, retries with capped exponential backoff and jitter.

Network errors and 5xx answers are retried (the API is down or restarting); 4xx answers are
not (the invoice itself is wrong, sending it again gives the same answer). Nothing here
raises on a network problem, and a stop request interrupts any wait or request promptly.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from sender.source import OutgoingInvoice

log = logging.getLogger(__name__)

PREDICT_PATH = "/predict_invoice_fraud"
READY_PATH = "/readyz"
#: How long a stop waits for an in-flight request before abandoning it.
SHUTDOWN_GRACE_SECONDS = 2.0
#: Seconds between two readiness polls.
READY_POLL_SECONDS = 0.5
#: Most characters of an error body kept in the log.
MAX_BODY_CHARS = 2_000


class Pauser(Protocol):
    """What the client needs from :class:`sender.stopping.Stopper` (tests pass their own)."""

    @property
    def stopped(self) -> bool: ...

    def wait(self, seconds: float) -> bool: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff, capped, with jitter so many senders do not retry in lockstep.

    The n-th retry waits ``min(max_seconds, initial_seconds * multiplier ** (n - 1))``, less a
    random share of up to ``jitter`` of it.
    """

    initial_seconds: float = 0.5
    max_seconds: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial_seconds <= self.max_seconds:
            raise ValueError("backoff needs 0 < initial_seconds <= max_seconds")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1)")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        # The exponent is bounded so a long outage never overflows a float.
        exponent = min(max(attempt - 1, 0), 64)
        ceiling = min(self.max_seconds, self.initial_seconds * self.multiplier**exponent)
        return ceiling * (1.0 - self.jitter * rng.random())


class Readiness(enum.Enum):
    READY = "ready"
    TIMED_OUT = "timed out"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Scored:
    invoice_id: str
    fraud_probability: float
    prediction: int
    warnings: tuple[str, ...]
    attempts: int


@dataclass(frozen=True)
class Rejected:
    """The API refused the invoice (4xx) or answered something unusable; not retried."""

    invoice_id: str
    status: int
    body: str


@dataclass(frozen=True)
class GaveUp:
    """Every allowed attempt failed (only with a ``max_attempts`` limit)."""

    invoice_id: str
    attempts: int
    last_problem: str


@dataclass(frozen=True)
class Abandoned:
    """A stop was requested before the invoice was scored."""

    invoice_id: str


Outcome = Scored | Rejected | GaveUp | Abandoned


class _Stopped(Exception):
    """Raised inside the client when a stop interrupts a request."""


class ScoringClient:
    """Posts invoices to the API and polls its readiness, retrying as the module describes.

    Args:
        api_url: Base URL of the service.
        pauser: Makes waits interruptible; its ``stopped`` aborts in-flight requests.
        timeout: Seconds for one HTTP request.
        backoff: Delays between attempts.
        max_attempts: Give up on an invoice after this many attempts (``None``: never).
        rng: Randomness for the jitter.
        clock: Monotonic clock, for the readiness timeout.
        transport: An httpx transport to use instead of the default (tests, proxies).
    """

    def __init__(
        self,
        api_url: str,
        pauser: Pauser,
        *,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._pauser = pauser
        self._backoff = backoff or Backoff()
        self._max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._clock = clock
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_until_ready(self, timeout: float) -> Readiness:
        """Poll ``/readyz`` until it answers 200, the timeout passes, or a stop comes."""
        deadline = self._clock() + timeout
        log.info("waiting for the API at %s%s (up to %gs)", self.api_url, READY_PATH, timeout)
        last_problem = ""
        while True:
            try:
                response = self._request("GET", READY_PATH)
            except _Stopped:
                return Readiness.STOPPED
            except httpx.HTTPError as exc:
                problem = _describe(exc)
            else:
                if response.status_code == 200:
                    log.info("API ready at %s", self.api_url)
                    return Readiness.READY
                problem = f"HTTP {response.status_code}"
            if problem != last_problem:
                log.info("API not ready yet: %s", problem)
                last_problem = problem
            left = deadline - self._clock()
            if left <= 0:
                log.error(
                    "API at %s not ready after %gs (last: %s); is the service running "
                    "there? Set --api-url or INVOICE_FRAUD_API_URL",
                    self.api_url,
                    timeout,
                    problem,
                )
                return Readiness.TIMED_OUT
            if self._pauser.wait(min(READY_POLL_SECONDS, left)):
                return Readiness.STOPPED

    def score(self, invoice: OutgoingInvoice) -> Outcome:
        """Post one invoice, retrying network errors and 5xx answers with backoff."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._request("POST", PREDICT_PATH, json=invoice.body)
            except _Stopped:
                return Abandoned(invoice.invoice_id)
            except httpx.HTTPError as exc:
                problem = _describe(exc)
            else:
                if response.status_code < 300:
                    return _scored(invoice, response, attempt)
                if response.status_code < 500:
                    return Rejected(invoice.invoice_id, response.status_code, _body(response))
                problem = f"HTTP {response.status_code}: {_body(response)[:200]}"
            if self._max_attempts is not None and attempt >= self._max_attempts:
                return GaveUp(invoice.invoice_id, attempt, problem)
            delay = self._backoff.delay(attempt, self._rng)
            log.warning(
                "invoice %s: attempt %d failed (%s); retrying in %.1fs",
                invoice.invoice_id,
                attempt,
                problem,
                delay,
            )
            if self._pauser.wait(delay):
                return Abandoned(invoice.invoice_id)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, run on a helper thread so a stop never waits for a slow server.

        On a stop the request gets :data:`SHUTDOWN_GRACE_SECONDS` to finish (its answer is
        still logged), then it is abandoned and :class:`_Stopped` is raised.
        """
        if self._pauser.stopped:
            raise _Stopped
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["response"] = self._http.request(method, path, **kwargs)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=call, name="sender-request", daemon=True).start()
        while not done.wait(0.05):
            if self._pauser.stopped:
                if done.wait(SHUTDOWN_GRACE_SECONDS):
                    break
                raise _Stopped
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]  # type: ignore[no-any-return]


def _scored(invoice: OutgoingInvoice, response: httpx.Response, attempts: int) -> Outcome:
    try:
        data = response.json()
        return Scored(
            invoice_id=invoice.invoice_id,
            fraud_probability=float(data["fraud_probability"]),
            prediction=int(data["prediction"]),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            attempts=attempts,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        # A 2xx the sender cannot read: another service behind the URL, or an API change.
        return Rejected(invoice.invoice_id, response.status_code, _body(response))


def _body(response: httpx.Response) -> str:
    text = response.text.strip()
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "..."


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {detail}"
