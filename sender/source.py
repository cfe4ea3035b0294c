"""Where the invoices come from: the shared synthetic generator, or a CSV of real invoices.

Both sources are iterators. The generator never runs out; the CSV source yields one
:class:`OutgoingInvoice` per good row and one :class:`RowError` per bad row, so the caller
reports bad rows and carries on.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from invoice_fraud.schema import Invoice
from sender.config import FraudSchedule

log = logging.getLogger(__name__)

#: Invoices generated at once per fraud rate; small enough to start instantly.
POOL_SIZE = 2_000

MONEY_FIELDS = ("amount", "tax", "total")
DATE_PARTS = ("invoice_year", "invoice_month", "invoice_day")
INT_FIELDS = (*DATE_PARTS, "invoice_weekday")
KNOWN_COLUMNS = frozenset((*MONEY_FIELDS, *INT_FIELDS, "invoice_date", "invoice_id"))


@dataclass(frozen=True)
class OutgoingInvoice:
    """One invoice to post: its id, the JSON body, and the generator's label when known."""

    invoice_id: str
    body: dict[str, Any]
    is_fraud: int | None = None


@dataclass(frozen=True)
class RowError:
    """A CSV row that cannot be sent, with every problem found in it."""

    line: int
    row: int
    problems: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        found = "; ".join(f"{name}: {message}" for name, message in self.problems)
        return f"CSV line {self.line} (data row {self.row}): {found}"


class CsvFormatError(ValueError):
    """The CSV file as a whole is unusable (missing, unreadable, or columns missing)."""


# --- generated invoices ----------------------------------------------------------------


class GeneratedInvoices:
    """An endless stream of synthetic invoices at the fraud share a schedule asks for.

    Invoices are drawn from pools made by the shared generator at exactly the wanted fraud
    rate (one pool per rate, refilled with a fresh seed when used up), so the spike uses
    the same typologies as training data. Ids are ``SIM-000001``, ``SIM-000002``, ...
    """

    def __init__(
        self,
        schedule: FraudSchedule,
        *,
        seed: int | None = None,
        pool_size: int = POOL_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schedule = schedule
        # One seed stream for every pool, so a run with --seed is reproducible.
        self._seeds = random.Random(seed)
        self._pool_size = pool_size
        self._clock = clock
        self._pools: dict[float, Iterator[dict[str, Any]]] = {}
        self._started: float | None = None
        self._sequence = 0
        # The first pool now, so the first invoice goes out at once when sending starts.
        self._pools[schedule.fraud_rate] = self._new_pool(schedule.fraud_rate)

    def __iter__(self) -> Iterator[OutgoingInvoice]:
        return self

    def __next__(self) -> OutgoingInvoice:
        now = self._clock()
        if self._started is None:
            self._started = now
        rate = self._schedule.rate_at(now - self._started)
        record = self._draw(rate)
        self._sequence += 1
        invoice_id = f"SIM-{self._sequence:06d}"
        is_fraud = int(record.pop("is_fraud"))
        return OutgoingInvoice(invoice_id, {"invoice_id": invoice_id, **record}, is_fraud)

    def _draw(self, rate: float) -> dict[str, Any]:
        pool = self._pools.get(rate)
        record = next(pool, None) if pool is not None else None
        if record is None:
            pool = self._new_pool(rate)
            self._pools[rate] = pool
            record = next(pool)
        return record

    def _new_pool(self, rate: float) -> Iterator[dict[str, Any]]:
        # Imported here: the generator pulls in pandas (a second of start-up), which CSV
        # replays and --help do not need.
        from invoice_fraud.synthetic import GeneratorParams, generate_invoices

        params = GeneratorParams(
            rows=self._pool_size, fraud_rate=rate, seed=self._seeds.randrange(2**32)
        )
        frame = generate_invoices(params)
        money = {name: frame[name].astype(float).tolist() for name in MONEY_FIELDS}
        ints = {name: frame[name].astype(int).tolist() for name in (*INT_FIELDS, "is_fraud")}
        columns = {**money, **ints}
        return iter(
            [{name: values[i] for name, values in columns.items()} for i in range(len(frame))]
        )


# --- CSV replay ------------------------------------------------------------------------


@dataclass
class CsvInvoices:
    """Invoices replayed from a CSV file, one per row, in file order.

    Columns: ``amount``, ``tax``, ``total`` and either ``invoice_year``/``invoice_month``/
    ``invoice_day`` or ``invoice_date`` (``YYYY-MM-DD``); ``invoice_weekday`` and
    ``invoice_id`` are optional (rows without an id get ``CSV-<line>``). Other columns are
    ignored. Each row is checked against the API's own schema before it is sent, so a bad
    row is reported with its line and field and skipped.

    Use as a context manager, or call :meth:`close`.
    """

    path: Path
    _file: TextIO = field(init=False, repr=False)
    _reader: csv.DictReader[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            # utf-8-sig: spreadsheets often start the file with a byte-order mark.
            self._file = self.path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise CsvFormatError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        try:
            self._reader = csv.DictReader(self._file)
            self._check_header()
        except (CsvFormatError, UnicodeDecodeError, csv.Error) as exc:
            self._file.close()
            if isinstance(exc, CsvFormatError):
                raise
            raise CsvFormatError(f"{self.path}: not a readable UTF-8 CSV file ({exc})") from exc

    def _check_header(self) -> None:
        header = self._reader.fieldnames
        if not header:
            raise CsvFormatError(f"{self.path}: empty file, expected a header row")
        names = [name.strip() for name in header]
        self._reader.fieldnames = names
        missing = [name for name in MONEY_FIELDS if name not in names]
        has_parts = all(name in names for name in DATE_PARTS)
        if not has_parts and "invoice_date" not in names:
            missing.append("invoice_date (or invoice_year, invoice_month, invoice_day)")
        if missing:
            raise CsvFormatError(
                f"{self.path}: missing column(s) {', '.join(missing)}; header is {names}"
            )
        ignored = [name for name in names if name not in KNOWN_COLUMNS]
        if ignored:
            log.info("CSV %s: ignoring column(s) %s", self.path, ", ".join(ignored))

    def __enter__(self) -> CsvInvoices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __iter__(self) -> Iterator[OutgoingInvoice | RowError]:
        row_number = 0
        while True:
            try:
                row = next(self._reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                row_number += 1
                # The reader cannot resynchronise reliably after a broken record.
                yield RowError(self._reader.line_num, row_number, (("file", str(exc)),))
                return
            if row is None:
                return
            row_number += 1
            yield parse_row(row, line=self._reader.line_num, row_number=row_number)


def parse_row(
    row: dict[str | None, Any], *, line: int, row_number: int
) -> OutgoingInvoice | RowError:
    """One CSV row as an invoice to send, or the problems that make it unsendable."""
    problems: list[tuple[str, str]] = []
    body: dict[str, Any] = {}
    extra = row.get(None)
    if extra:
        problems.append(("row", f"{len(extra)} more value(s) than header columns"))
    for name, raw in row.items():
        if name not in KNOWN_COLUMNS:
            continue
        text = (raw or "").strip()
        if not text:
            continue  # missing values are reported by the schema check below
        try:
            body[name] = _convert(name, text)
        except ValueError as exc:
            problems.append((name, str(exc)))
    invoice_id = str(body.pop("invoice_id", f"CSV-{line}"))
    body = {"invoice_id": invoice_id, **body}
    if not problems:
        problems.extend(_schema_problems(body))
    if problems:
        return RowError(line, row_number, tuple(problems))
    if isinstance(body.get("invoice_date"), dt.date):
        body["invoice_date"] = body["invoice_date"].isoformat()
    return OutgoingInvoice(invoice_id, body)


def _convert(name: str, text: str) -> object:
    if name == "invoice_id":
        return text
    if name == "invoice_date":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    if name in INT_FIELDS:
        if not number.is_integer():
            raise ValueError(f"{text!r} is not a whole number")
        return int(number)
    return number


def _schema_problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The API schema's complaints about a row (the same rules the service applies)."""
    try:
        Invoice.model_validate(body)
    except ValidationError as exc:
        return [_field_problem(error["loc"], error["msg"]) for error in exc.errors()]
    return []


def _field_problem(loc: tuple[int | str, ...], message: str) -> tuple[str, str]:
    """(field, problem) of a schema error; whole-invoice errors name their field first."""
    message = message.removeprefix("Value error, ")
    if loc:
        return ".".join(str(part) for part in loc), message
    # Date rules span several fields, so the schema reports them for the whole invoice as
    # "<field>: <problem>".
    head, separator, rest = message.partition(": ")
    if separator and head in KNOWN_COLUMNS:
        return head, rest
    return "row", message
