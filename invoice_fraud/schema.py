"""The public request and response contract of the scoring API.

Requests are validated strictly: numbers must be JSON numbers (no strings, no booleans),
finite and within sane magnitudes; dates must exist; unknown fields are rejected so a typo
never silently drops a value. Negative tax and totals that do not add up are valid input:
they are exactly what the model scores.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

#: Largest absolute money value accepted (a billion per invoice); larger is a client bug.
MAX_MONEY = 1e9
#: Most invoices in one batch request.
MAX_BATCH = 10_000
MIN_YEAR, MAX_YEAR = 1900, 2100

WEEKDAY_NAMES = tuple(calendar.day_name)  # Monday first, as date.weekday()


def openapi_nullable(schema: dict[str, Any]) -> None:
    """Write optional fields the OpenAPI 3.0 way (``nullable: true``).

    Pydantic writes ``T | None`` as ``anyOf: [T, {"type": "null"}]``; BentoML, which emits
    OpenAPI 3.0, keeps only the first ``anyOf`` branch of top-level fields, so the document
    would say "string" for a field that can be null and clients (and schemathesis) would
    reject valid responses.
    """
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if not options or {"type": "null"} not in options:
            continue
        rest = [o for o in options if o != {"type": "null"}]
        del prop["anyOf"]
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
        prop["nullable"] = True


Money = Annotated[float, Field(ge=-MAX_MONEY, le=MAX_MONEY, allow_inf_nan=False)]


class Invoice(BaseModel):
    """One invoice: the seven public fields, or ``invoice_date`` instead of year/month/day.

    ``invoice_weekday`` (Monday=0 ... Sunday=6) is optional: the calendar decides the
    weekday, and a disagreeing client value is reported in the response's ``warnings``.
    """

    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, json_schema_extra=openapi_nullable
    )

    invoice_id: Annotated[str, Field(min_length=1, max_length=128)] | int | None = Field(
        default=None, description="Client's identifier, echoed back; not used for scoring."
    )
    # At least one cent rather than > 0: the smallest real amount, and BentoML writes
    # OpenAPI 3.0, which cannot express an exclusive minimum as a number.
    amount: float = Field(
        ge=0.01,
        le=MAX_MONEY,
        allow_inf_nan=False,
        description="Net amount, at least 0.01.",
        examples=[1000.0],
    )
    tax: Money = Field(description="Tax charged; negative is accepted.", examples=[180.0])
    total: Money = Field(description="Gross total as invoiced.", examples=[1180.0])
    invoice_year: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR, examples=[2024])
    invoice_month: int | None = Field(default=None, ge=1, le=12, examples=[5])
    invoice_day: int | None = Field(default=None, ge=1, le=31, examples=[15])
    invoice_weekday: int | None = Field(
        default=None, ge=0, le=6, description="Monday=0 ... Sunday=6.", examples=[2]
    )
    invoice_date: dt.date | None = Field(
        default=None, description="YYYY-MM-DD, in place of year/month/day."
    )

    @field_validator("invoice_day")
    @classmethod
    def _day_exists(cls, day: int | None, info: ValidationInfo) -> int | None:
        year, month = info.data.get("invoice_year"), info.data.get("invoice_month")
        if day is not None and year is not None and month is not None:
            last = calendar.monthrange(year, month)[1]
            if day > last:
                raise ValueError(f"{calendar.month_name[month]} {year} has {last} days, not {day}")
        return day

    @model_validator(mode="after")
    def _resolve_date(self) -> Self:
        parts = (self.invoice_year, self.invoice_month, self.invoice_day)
        if self.invoice_date is not None:
            d = self.invoice_date
            if not MIN_YEAR <= d.year <= MAX_YEAR:
                raise ValueError(f"invoice_date: year must be between {MIN_YEAR} and {MAX_YEAR}")
            if any(p is not None for p in parts) and parts != (d.year, d.month, d.day):
                raise ValueError(
                    "invoice_date disagrees with invoice_year/invoice_month/invoice_day; "
                    "send one or the other"
                )
            # Normalised to the three fields, so scoring reads one representation.
            self.invoice_year, self.invoice_month, self.invoice_day = d.year, d.month, d.day
            return self
        missing = [
            name
            for name, value in zip(
                ("invoice_year", "invoice_month", "invoice_day"), parts, strict=True
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                f"missing {', '.join(missing)}: send invoice_year, invoice_month and "
                "invoice_day, or invoice_date"
            )
        return self


def weekday_warning(year: int, month: int, day: int, given: int | None, actual: int) -> list[str]:
    """The warning for a client weekday that disagrees with the calendar (else none)."""
    if given is None or given == actual:
        return []
    return [
        f"invoice_weekday {given} disagrees with the calendar: "
        f"{year:04d}-{month:02d}-{day:02d} is a {WEEKDAY_NAMES[actual]} ({actual}); "
        "scored with the calendar's weekday"
    ]


class InvoiceBatch(BaseModel):
    """Up to :data:`MAX_BATCH` invoices, scored in order."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=openapi_nullable)

    invoices: list[Invoice] = Field(min_length=1, max_length=MAX_BATCH)


class InvoiceRequest(Invoice):
    """One invoice to score, with an optional request for the reasons."""

    explain: bool = Field(
        default=False, description="Include the top reasons (slower: computes contributions)."
    )


class Reason(BaseModel):
    """One concept's push on the score (contribution in log-odds; > 0 raises it)."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    feature: str
    value: float
    contribution: float
    direction: Literal["raises", "lowers"]
    text: str


class FraudPrediction(BaseModel):
    """The score of one invoice."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    prediction_id: str = Field(description="Id of the stored prediction (for verdicts).")
    invoice_id: str | int | None = None
    prediction: Literal[0, 1] = Field(description="1 when fraud_probability >= threshold.")
    fraud_probability: float = Field(ge=0.0, le=1.0)
    threshold: float
    model_tag: str
    invoice_weekday: int = Field(description="The calendar's weekday, used for scoring.")
    warnings: list[str] = Field(default_factory=list)
    reasons: list[Reason] | None = Field(
        default=None, description="Top reasons, when the request asked with explain=true."
    )


class BatchPrediction(BaseModel):
    """Scores of a batch, in request order."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    predictions: list[FraudPrediction]
    count: int
    flagged: int
    threshold: float
    model_tag: str


class Explanation(BaseModel):
    """Every reason behind an invoice's score, largest push first."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    fraud_probability: float = Field(ge=0.0, le=1.0)
    prediction: Literal[0, 1]
    threshold: float
    model_tag: str
    base_score: float = Field(description="The model's bias, in log-odds.")
    reasons: list[Reason]


class RecentQuery(BaseModel):
    """Which stored predictions to list."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=openapi_nullable)

    limit: int = Field(default=50, ge=1, le=1_000, strict=True)
    only_flagged: bool = Field(default=False, strict=True)
    since: dt.datetime | None = Field(default=None, description="ISO 8601; naive means UTC.")


class StoredPrediction(BaseModel):
    """A scored invoice as kept in the store."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    prediction_id: str
    scored_at: str
    invoice_id: str | None
    amount: float
    tax: float
    total: float
    invoice_year: int
    invoice_month: int
    invoice_day: int
    invoice_weekday: int
    client_weekday: int | None
    fraud_probability: float
    prediction: int
    threshold: float
    model_tag: str
    warnings: list[str]
    features: dict[str, float]
    verdict: str | None
    verdict_comment: str | None
    verdict_at: str | None


class RecentPredictions(BaseModel):
    """Stored predictions, newest first."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    predictions: list[StoredPrediction]


class SummaryQuery(BaseModel):
    """The window a summary covers."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=openapi_nullable)

    window_minutes: int = Field(default=60, ge=1, le=525_600, strict=True)


class VerdictCounts(BaseModel):
    """Analyst verdicts in a window, against what the model predicted."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    confirmed_fraud: int
    confirmed_legitimate: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int


class PredictionSummary(BaseModel):
    """Counts over a recent window."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    window_minutes: int
    since: str
    scored: int
    flagged: int
    fraud_rate: float
    verdicts: VerdictCounts
    model_tag: str


class VerdictRequest(BaseModel):
    """An analyst's verdict on a stored prediction."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=openapi_nullable)

    prediction_id: str = Field(min_length=1, max_length=64)
    verdict: Literal["fraud", "legitimate"]
    comment: str | None = Field(default=None, max_length=2_000)


class ModelCard(BaseModel):
    """What the served model is, from its metadata."""

    model_config = ConfigDict(json_schema_extra=openapi_nullable)

    model_tag: str
    threshold: float
    threshold_strategy: str | None = None
    trained_at: str | None = None
    train_rows: int | None = None
    feature_names: list[str]
    test_metrics: dict[str, Any]
    validation_metrics: dict[str, Any] = Field(default_factory=dict)
    generator: dict[str, Any] = Field(default_factory=dict)
    package_versions: dict[str, str] = Field(default_factory=dict)
