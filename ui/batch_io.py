"""Turn an uploaded CSV into batch requests, and the service's 400s into named bad rows.

Rows are numbered as a person counts them in a spreadsheet of data: row 1 is the first row
under the header (line 2 of the file). Cells are read as text and converted here, so a
non-numeric cell is reported with its row and column before anything is sent; everything
else (ranges, dates that don't exist, ...) is the service's validation, read back from the
``400`` body's ``detail[].loc`` = ``["invoices", index, field]``.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ui.api_client import ApiClient, ApiError, Prediction, ValidationProblem

logger = logging.getLogger(__name__)

#: The service's batch limit: one request never carries more.
CHUNK_SIZE = 10_000

MONEY_FIELDS = ("amount", "tax", "total")
INT_FIELDS = ("invoice_year", "invoice_month", "invoice_day", "invoice_weekday")
DATE_PARTS = ("invoice_year", "invoice_month", "invoice_day")
TEXT_FIELDS = ("invoice_id", "invoice_date")
KNOWN_FIELDS = (*MONEY_FIELDS, *INT_FIELDS, *TEXT_FIELDS)


@dataclass(frozen=True)
class RowProblem:
    """Why one row of the file could not be scored."""

    row: int | None  # 1-based data row; None when the problem is not about one row
    field: str
    message: str

    def describe(self) -> str:
        """One line an analyst can act on."""
        where = f"Row {self.row} (line {self.row + 1})" if self.row is not None else "File"
        return f"{where}, {self.field}: {self.message}"


@dataclass
class ParsedFile:
    """The invoices to send, the data row each came from, and what was wrong locally."""

    invoices: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0


@dataclass
class BatchOutcome:
    """Scored rows (in file order) and the rows the service rejected."""

    scored: list[tuple[int, dict[str, Any], Prediction]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def read_csv(data: bytes) -> pd.DataFrame:
    """Every cell as text (empty cells as ``""``), header names stripped."""
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def parse_invoices(frame: pd.DataFrame) -> ParsedFile:
    """Convert each row to an invoice body; report cells that are not numbers.

    Unknown columns (a label, a note) are ignored and listed, since the service rejects
    unknown fields. Missing required columns make the whole file unusable.
    """
    parsed = ParsedFile(total_rows=len(frame))
    columns = list(frame.columns)
    parsed.ignored_columns = [c for c in columns if c not in KNOWN_FIELDS]
    missing_money = [c for c in MONEY_FIELDS if c not in columns]
    if missing_money:
        parsed.file_errors.append(f"missing column(s): {', '.join(missing_money)}")
    if "invoice_date" not in columns and any(c not in columns for c in DATE_PARTS):
        parsed.file_errors.append(
            "missing the date: give invoice_year, invoice_month and invoice_day columns, "
            "or an invoice_date column (YYYY-MM-DD)"
        )
    if parsed.file_errors:
        return parsed
    if len(frame) == 0:
        parsed.file_errors.append("the file has a header but no rows")
        return parsed

    used = [c for c in columns if c in KNOWN_FIELDS]
    for position, record in enumerate(frame[used].to_dict(orient="records")):
        row = position + 1
        invoice, problems = _parse_row(record, row)
        if problems:
            parsed.problems.extend(problems)
        else:
            parsed.invoices.append(invoice)
            parsed.rows.append(row)
    return parsed


def _parse_row(record: dict[str, str], row: int) -> tuple[dict[str, Any], list[RowProblem]]:
    invoice: dict[str, Any] = {}
    problems: list[RowProblem] = []
    for name, raw in record.items():
        cell = str(raw).strip()
        if name in TEXT_FIELDS:
            if cell:
                invoice[name] = cell
            continue
        if not cell:
            if name in MONEY_FIELDS:
                problems.append(RowProblem(row, name, "empty cell, a number is required"))
            # Empty date parts or weekday: left out; the service says if the date is missing.
            continue
        try:
            number = float(cell)
        except ValueError:
            problems.append(RowProblem(row, name, f"not a number: {cell!r}"))
            continue
        if not math.isfinite(number):
            problems.append(RowProblem(row, name, f"not a finite number: {cell!r}"))
        elif name in INT_FIELDS:
            if number.is_integer():
                invoice[name] = int(number)
            else:
                problems.append(RowProblem(row, name, f"not a whole number: {cell!r}"))
        else:
            invoice[name] = number
    return invoice, problems


def problems_from_detail(
    detail: Sequence[ValidationProblem], rows: Sequence[int]
) -> list[RowProblem]:
    """Map a batch 400's ``detail`` (``loc`` = ``["invoices", index, field]``) to file rows."""
    problems = []
    for item in detail:
        loc = list(item.get("loc", []))
        message = str(item.get("msg", "invalid"))
        if len(loc) >= 2 and loc[0] == "invoices" and isinstance(loc[1], int):
            index = loc[1]
            row = rows[index] if 0 <= index < len(rows) else None
            name = ".".join(str(part) for part in loc[2:]) or "invoice"
            problems.append(RowProblem(row, name, message))
        else:
            problems.append(RowProblem(None, ".".join(map(str, loc)) or "request", message))
    return problems


def score_file(
    client: ApiClient, parsed: ParsedFile, *, chunk_size: int = CHUNK_SIZE
) -> BatchOutcome:
    """Score the parsed invoices in chunks; rows the service rejects are named, not scored.

    A chunk the service rejects with a 400 is sent again without the rows it named, so one
    bad row doesn't cost the other rows of its chunk their scores. The service may report
    problems in stages (field checks, then calendar checks), so this repeats while each
    answer names rows still in the chunk.
    """
    if not 1 <= chunk_size <= CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {CHUNK_SIZE}")
    outcome = BatchOutcome()
    for start in range(0, len(parsed.invoices), chunk_size):
        invoices = parsed.invoices[start : start + chunk_size]
        rows = parsed.rows[start : start + chunk_size]
        while invoices:
            try:
                result = client.score_batch(invoices)
            except ApiError as exc:
                if exc.status_code != 400 or not exc.detail:
                    raise
                named = problems_from_detail(exc.detail, rows)
                outcome.problems.extend(named)
                bad = {p.row for p in named} & set(rows)
                if not bad:  # nothing to drop: the chunk cannot be sent as it is
                    logger.warning("chunk at row %d rejected as a whole: %s", rows[0], exc)
                    outcome.problems.extend(
                        RowProblem(row, "invoice", "not scored: its chunk was rejected")
                        for row in rows
                    )
                    break
                keep = [i for i, row in enumerate(rows) if row not in bad]
                invoices = [invoices[i] for i in keep]
                rows = [rows[i] for i in keep]
                continue
            outcome.scored.extend(zip(rows, invoices, result["predictions"], strict=True))
            break
    outcome.problems.sort(key=lambda p: (p.row is None, p.row or 0, p.field))
    return outcome


def results_frame(outcome: BatchOutcome) -> pd.DataFrame:
    """One line per scored row, for the table and the download."""
    records = []
    for row, invoice, pred in outcome.scored:
        records.append(
            {
                "row": row,
                "invoice_id": pred.get("invoice_id"),
                "amount": invoice.get("amount"),
                "tax": invoice.get("tax"),
                "total": invoice.get("total"),
                "fraud_probability": pred["fraud_probability"],
                "flagged": bool(pred["prediction"]),
                "warnings": "; ".join(pred.get("warnings") or []),
                "prediction_id": pred.get("prediction_id"),
                "model_tag": pred["model_tag"],
            }
        )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "row",
            "invoice_id",
            "amount",
            "tax",
            "total",
            "fraud_probability",
            "flagged",
            "warnings",
            "prediction_id",
            "model_tag",
        ],
    )
