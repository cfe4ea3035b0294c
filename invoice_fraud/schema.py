"""The public request and response contract of the scoring API.

Requests are validated strictly: numbers must be JSON numbers (no strings, no booleans),
finite and within sane magnitudes; dates must exist; unknown fields are rejected so a typo
never silently drops a value. Negative tax and totals that do not add up are valid input:
they are exactly what the model scores.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated, Any, Literal, NotRequired, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from typing_extensions import TypedDict

#: Largest absolute money value accepted (a billion per invoice); larger is a client bug.
MAX_MONEY = 1e9
#: Most invoices in one batch request.
MAX_BATCH = 10_000
#: Largest request body: a full batch with long ids is about 3 MB.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Largest body of the other APIs: one invoice or query is well under a kilobyte.
MAX_SMALL_BODY_BYTES = 64 * 1024
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


# Field types, shared by the single-invoice model and the batch item (one definition).
#: Largest integer invoice id: exact in every JSON client (JavaScript numbers included).
MAX_INT_ID = 2**53 - 1
# Printable text with at least one non-space: control characters (NUL above all; C1 ones
# such as U+009B, a terminal's escape, too) break logs, CSV exports and PostgreSQL text.
# Bidirectional overrides, invisible characters and line separators (U+00AD, U+034F, U+061C,
# U+180E, U+200B-U+200F, U+2028-U+202E, U+2060-U+2069, U+FEFF, U+FFF9-U+FFFB) would let an
# id read differently in the analysts' UI than it is. (Astral ones such as the tag characters
# U+E0000-U+E007F stay allowed: OpenAPI's regex dialect cannot name them portably.)
_NOT_IN_ID = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069"
    r"\ufeff\ufff9-\ufffb"
)
_ID_PATTERN = rf"^[^{_NOT_IN_ID}]*[^\s{_NOT_IN_ID}][^{_NOT_IN_ID}]*$"
InvoiceId = Annotated[
    Annotated[str, Field(min_length=1, max_length=128, pattern=_ID_PATTERN)]
    | Annotated[int, Field(ge=0, le=MAX_INT_ID)]
    | None,
    Field(
        description="Client's identifier (text up to 128 printable characters, or an integer "
        "0..2^53-1), echoed back; not used for scoring. Stored as text."
    ),
]
# At least one cent rather than > 0: the smallest real amount, and BentoML writes
# OpenAPI 3.0, which cannot express an exclusive minimum as a number.
Amount = Annotated[
    float,
    Field(
        ge=0.01,
        le=MAX_MONEY,
        allow_inf_nan=False,
        description="Net amount, at least 0.01.",
        examples=[1000.0],
    ),
]
Money = Annotated[
    float,
    Field(
        ge=-MAX_MONEY,
        le=MAX_MONEY,
        allow_inf_nan=False,
        description="Tax charged; negative is accepted.",
        examples=[180.0],
    ),
]
Total = Annotated[
    float,
    Field(
        ge=-MAX_MONEY,
        le=MAX_MONEY,
        allow_inf_nan=False,
        description="Gross total as invoiced.",
        examples=[1180.0],
    ),
]
Year = Annotated[Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR)] | None, Field(examples=[2024])]
Month = Annotated[Annotated[int, Field(ge=1, le=12)] | None, Field(examples=[5])]
Day = Annotated[Annotated[int, Field(ge=1, le=31)] | None, Field(examples=[15])]
Weekday = Annotated[
    Annotated[int, Field(ge=0, le=6)] | None,
    Field(description="Monday=0 ... Sunday=6.", examples=[2]),
]
InvoiceDate = Annotated[
    dt.date | None, Field(description="YYYY-MM-DD, in place of year/month/day.")
]


class Invoice(BaseModel):
    """One invoice: the seven public fields, or ``invoice_date`` instead of year/month/day.

    ``invoice_weekday`` (Monday=0 ... Sunday=6) is optional: the calendar decides the
    weekday, and a disagreeing client value is reported in the response's ``warnings``.
    """

    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, json_schema_extra=openapi_nullable
    )

    invoice_id: InvoiceId = None
    amount: Amount
    tax: Money
    total: Total
    invoice_year: Year = None
    invoice_month: Month = None
    invoice_day: Day = None
    invoice_weekday: Weekday = None
    invoice_date: InvoiceDate = None

    @model_validator(mode="after")
    def _resolve_date(self) -> Self:
        ymd, problem = resolve_date(
            self.invoice_year, self.invoice_month, self.invoice_day, self.invoice_date
        )
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        # Normalised to the three fields, so scoring reads one representation.
        self.invoice_year, self.invoice_month, self.invoice_day = ymd
        return self


def resolve_date(
    year: int | None, month: int | None, day: int | None, date: dt.date | None
) -> tuple[tuple[int, int, int], tuple[str, str] | None]:
    """The invoice's (year, month, day), or the field at fault and what is wrong.

    The one place the date rules live: the single-invoice model and the batch check use it.
    Field ranges (month 1-12, ...) are checked before, by the schema.
    """
    parts = (year, month, day)
    if date is not None:
        if not MIN_YEAR <= date.year <= MAX_YEAR:
            return (0, 0, 0), ("invoice_date", f"year must be between {MIN_YEAR} and {MAX_YEAR}")
        resolved = (date.year, date.month, date.day)
        if any(p is not None for p in parts) and parts != resolved:
            return resolved, (
                "invoice_date",
                "disagrees with invoice_year/invoice_month/invoice_day; send one or the other",
            )
        return resolved, None
    if year is None or month is None or day is None:
        missing = [
            name
            for name, value in zip(
                ("invoice_year", "invoice_month", "invoice_day"), parts, strict=True
            )
            if value is None
        ]
        return (0, 0, 0), (
            missing[0],
            f"missing {', '.join(missing)}: send invoice_year, invoice_month and invoice_day, "
            "or invoice_date",
        )
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return (year, month, day), (
            "invoice_day",
            f"{calendar.month_name[month]} {year} has {last} days, not {day}",
        )
    return (year, month, day), None


def weekday_warning(year: int, month: int, day: int, given: int | None, actual: int) -> list[str]:
    """The warning for a client weekday that disagrees with the calendar (else none)."""
    if given is None or given == actual:
        return []
    return [
        f"invoice_weekday {given} disagrees with the calendar: "
        f"{year:04d}-{month:02d}-{day:02d} is a {WEEKDAY_NAMES[actual]} ({actual}); "
        "scored with the calendar's weekday"
    ]


class InvoiceItem(TypedDict):
    """One invoice of a batch: the fields of :class:`Invoice`, validated as a plain dict.

    A batch of 10,000 validates several times faster as dicts than as models with Python
    validators; the date rules then run once over the batch (:func:`check_batch_dates`).
    """

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        strict=True, extra="forbid", allow_inf_nan=False, json_schema_extra=openapi_nullable
    )

    invoice_id: NotRequired[InvoiceId]
    amount: Amount
    tax: Money
    total: Total
    invoice_year: NotRequired[Year]
    invoice_month: NotRequired[Month]
    invoice_day: NotRequired[Day]
    invoice_weekday: NotRequired[Weekday]
    invoice_date: NotRequired[InvoiceDate]


class InvoiceBatch(BaseModel):
    """Up to :data:`MAX_BATCH` invoices, scored in order."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=openapi_nullable)

    invoices: list[InvoiceItem] = Field(min_length=1, max_length=MAX_BATCH)


def check_batch_dates(
    items: list[InvoiceItem],
    year: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    dated: np.ndarray,
) -> None:
    """Resolve every item's (year, month, day) in place, or raise naming each bad item.

    ``year``/``month``/``day`` hold the items' fields (0 where absent) and ``dated`` marks the
    items that sent ``invoice_date``. Most invoices send year/month/day with a day of at
    most 28, which exists in every month: those pass on a vectorised test, and only the
    rest go through :func:`resolve_date` one by one.

    Raises:
        pydantic.ValidationError: with ``loc`` ("invoices", index, field) for each problem.
    """
    easy = ~dated & (year > 0) & (month > 0) & (day > 0) & (day <= 28)
    errors: list[InitErrorDetails] = []
    for i in np.flatnonzero(~easy).tolist():
        it = items[i]
        ymd, problem = resolve_date(
            it.get("invoice_year"), it.get("invoice_month"), it.get("invoice_day"),
            it.get("invoice_date"),
        )  # fmt: skip
        if problem is not None:
            field, message = problem
            errors.append(
                {
                    "type": PydanticCustomError("invalid_date", message),
                    "loc": ("invoices", i, field),
                    "input": it.get(field),
                }
            )
        year[i], month[i], day[i] = ymd
    if errors:
        raise ValidationError.from_exception_data("InvoiceBatch", errors)


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


class ModelCardQuery(BaseModel):
    """No fields: the body is ``{}`` (unknown fields are refused, as everywhere else)."""

    model_config = ConfigDict(extra="forbid")


class RecentQuery(BaseModel):
    """Which stored predictions to list."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=openapi_nullable)

    limit: int = Field(default=50, ge=1, le=1_000, strict=True)
    only_flagged: bool = Field(default=False, strict=True)
    since: dt.datetime | None = Field(
        default=None, strict=True, description="ISO 8601 text; without an offset it means UTC."
    )


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
