"""Typed HTTP client for the scoring service, the only way the UI reaches it.

Every call is a ``POST`` with a JSON body (see ``docs/api.md``). Two failures are told
apart so each page can say the right thing:

- :class:`ApiUnavailable`: nothing answered (connection refused, timeout, DNS) or the
  service answered 502/503/504. The page says the API at ``url`` is down; the next rerun
  tries again (nothing is cached).
- :class:`ApiError`: the service answered with another error; for a ``400`` it carries the
  validation ``detail`` list (``loc`` names the field, with the row index inside a batch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict, cast

import httpx

logger = logging.getLogger(__name__)

Verdict = Literal["fraud", "legitimate"]

#: Seconds to wait for a connection; a down API should be reported at once, not after 30 s.
CONNECT_TIMEOUT = 3.0
#: Seconds to wait for an answer; a 10,000-invoice batch takes well under this.
READ_TIMEOUT = 60.0


class Reason(TypedDict):
    """One feature's push on the score, in log-odds, with an analyst's sentence."""

    feature: str
    value: float
    contribution: float
    direction: Literal["raises", "lowers"]
    text: str


class Prediction(TypedDict):
    """The answer to one scored invoice."""

    prediction_id: str
    invoice_id: str | int | None
    prediction: int
    fraud_probability: float
    threshold: float
    model_tag: str
    invoice_weekday: int
    warnings: list[str]
    reasons: NotRequired[list[Reason] | None]


class BatchResult(TypedDict):
    """The answer to a batch, predictions in request order."""

    predictions: list[Prediction]
    count: int
    flagged: int
    threshold: float
    model_tag: str


class Explanation(TypedDict):
    """Every feature's contribution to one invoice's score, largest first."""

    fraud_probability: float
    prediction: int
    threshold: float
    model_tag: str
    base_score: float
    reasons: list[Reason]


class StoredPrediction(TypedDict):
    """A scored invoice as the service stored it, with the analyst's verdict if any."""

    prediction_id: str
    scored_at: str
    invoice_id: str | int | None
    amount: float
    tax: float
    total: float
    invoice_year: int
    invoice_month: int
    invoice_day: int
    invoice_weekday: int
    fraud_probability: float
    prediction: int
    threshold: float
    model_tag: str
    warnings: list[str]
    features: dict[str, float]
    verdict: Verdict | None
    verdict_comment: str | None
    verdict_at: str | None


class VerdictCounts(TypedDict):
    """Verdicts recorded in a summary window, crossed with the model's predictions."""

    confirmed_fraud: int
    confirmed_legitimate: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int


class Summary(TypedDict):
    """Counts over the last ``window_minutes``."""

    window_minutes: int
    since: str
    scored: int
    flagged: int
    fraud_rate: float
    verdicts: VerdictCounts
    model_tag: str


class ModelCard(TypedDict):
    """The served model's metadata, as saved by ``train.py``."""

    model_tag: str
    threshold: float
    threshold_strategy: str
    trained_at: str
    train_rows: int
    feature_names: list[str]
    test_metrics: dict[str, Any]
    validation_metrics: dict[str, Any]
    generator: dict[str, Any]
    package_versions: dict[str, str]


class ValidationProblem(TypedDict):
    """One entry of a ``400`` body's ``detail``."""

    type: str
    loc: list[str | int]
    msg: str


class ApiUnavailable(Exception):
    """The service at ``url`` did not answer (or answered that it is not available)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the scoring API at {url} is not reachable: {reason}")
        self.url = url
        self.reason = reason


class ApiError(Exception):
    """The service answered with an error status; ``detail`` holds a 400's problems."""

    def __init__(
        self, url: str, status_code: int, message: str, detail: Sequence[ValidationProblem] = ()
    ) -> None:
        super().__init__(f"{url} answered {status_code}: {message}")
        self.url = url
        self.status_code = status_code
        self.message = message
        self.detail: list[ValidationProblem] = list(detail)


class ApiClient:
    """Calls the scoring service's APIs over HTTP.

    Args:
        base_url: Where the service listens, e.g. ``http://127.0.0.1:3000``.
        transport: An httpx transport, for tests that need one; the real network otherwise.
    """

    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            logger.warning("%s %s failed: %s", method, url, exc)
            raise ApiUnavailable(self.base_url, _describe(exc)) from exc
        if response.status_code in (502, 503, 504):
            raise ApiUnavailable(self.base_url, f"{response.status_code} {response.reason_phrase}")
        if response.is_error:
            message, detail = _error_body(response)
            logger.info("%s %s -> %s: %s", method, url, response.status_code, message)
            raise ApiError(url, response.status_code, message, detail)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(url, response.status_code, "the answer is not JSON") from exc

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._request("POST", path, body)

    def is_ready(self) -> bool:
        """True when the service answers ``/readyz`` with 200."""
        try:
            return bool(self._http.get("/readyz").status_code == 200)
        except httpx.TransportError:
            return False

    def score(self, invoice: Mapping[str, Any], *, explain: bool = False) -> Prediction:
        """Score one invoice; with ``explain`` the answer carries the reasons."""
        body = {**invoice, "explain": True} if explain else dict(invoice)
        return cast(Prediction, self._post("/predict_invoice_fraud", body))

    def score_batch(self, invoices: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Score up to 10,000 invoices in one request, answers in order."""
        return cast(
            BatchResult,
            self._post("/predict_invoice_fraud_batch", {"invoices": [dict(i) for i in invoices]}),
        )

    def explain(self, invoice: Mapping[str, Any]) -> Explanation:
        """Every feature's contribution to one invoice's score."""
        return cast(Explanation, self._post("/explain_invoice", invoice))

    def recent_predictions(
        self, *, limit: int = 50, only_flagged: bool = False, since: str | None = None
    ) -> list[StoredPrediction]:
        """Stored predictions, newest first."""
        body: dict[str, Any] = {"limit": limit, "only_flagged": only_flagged}
        if since is not None:
            body["since"] = since
        answer = self._post("/recent_predictions", body)
        return cast(list[StoredPrediction], answer["predictions"])

    def summary(self, *, window_minutes: int = 60) -> Summary:
        """Counts, fraud rate and verdicts over the last ``window_minutes``."""
        return cast(Summary, self._post("/prediction_summary", {"window_minutes": window_minutes}))

    def record_verdict(
        self, prediction_id: str, verdict: Verdict, comment: str | None = None
    ) -> StoredPrediction:
        """Record (or overwrite) an analyst's verdict on a stored prediction."""
        body: dict[str, Any] = {"prediction_id": prediction_id, "verdict": verdict}
        if comment:
            body["comment"] = comment
        return cast(StoredPrediction, self._post("/record_verdict", body))

    def model_card(self) -> ModelCard:
        """The served model's metadata."""
        return cast(ModelCard, self._post("/model_card", {}))


def _describe(exc: httpx.TransportError) -> str:
    """A short, plain reason for a transport failure."""
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return type(exc).__name__


def _error_body(response: httpx.Response) -> tuple[str, list[ValidationProblem]]:
    """The ``error`` message and ``detail`` list of an error answer, whatever its shape."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:500] or response.reason_phrase), []
    if not isinstance(body, dict):
        return str(body)[:500], []
    message = str(body.get("error") or body.get("message") or response.reason_phrase)
    raw = body.get("detail")
    detail = [cast(ValidationProblem, d) for d in raw if isinstance(d, dict)] if raw else []
    if isinstance(raw, str):
        message = raw
    return message, detail
