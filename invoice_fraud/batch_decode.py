"""A fast path for decoding batch bodies: msgspec for the plain case, pydantic for the rest.

Validating 10,000 invoices with pydantic (``InvoiceBatch``, TypedDict items) and then reading
them into columns was the largest share of a batch request (py-spy: about half of a worker's
samples). msgspec decodes the same JSON into structs about four times faster. But pydantic's
``InvoiceBatch`` is the contract: it writes the 400s and the OpenAPI document. So this module
only ever says "these columns" or "not sure": :func:`decode_batch` accepts a subset of what
``InvoiceBatch`` accepts, and returns None for everything else (any error, a date sent as
``invoice_date``, a day past the end of its month, an id that is not plain printable ASCII),
which the caller then validates with pydantic as before. A body is therefore accepted and
refused exactly as before, with the same errors; tests/unit/test_batch_decode.py checks the
two paths against each other on generated bodies.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

import msgspec
import numpy as np

from invoice_fraud.columns import InvoiceColumns
from invoice_fraud.schema import MAX_BATCH, MAX_INT_ID, MAX_MONEY, MAX_YEAR, MIN_YEAR

_Amount = Annotated[float, msgspec.Meta(ge=0.01, le=MAX_MONEY)]
_Money = Annotated[float, msgspec.Meta(ge=-MAX_MONEY, le=MAX_MONEY)]
_Id = (
    Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    | Annotated[int, msgspec.Meta(ge=0, le=MAX_INT_ID)]
    | None
)
_Year = Annotated[int, msgspec.Meta(ge=MIN_YEAR, le=MAX_YEAR)] | None
_Month = Annotated[int, msgspec.Meta(ge=1, le=12)] | None
_Day = Annotated[int, msgspec.Meta(ge=1, le=31)] | None
_Weekday = Annotated[int, msgspec.Meta(ge=0, le=6)] | None


class _Item(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The fields of ``InvoiceItem``; a date string only marks the item for pydantic.

    ``invoice_date`` is a string or null here, never ``Any``: msgspec would otherwise walk
    any value sent there, and a few thousand nested brackets exhaust Python's recursion.
    """

    amount: _Amount
    tax: _Money
    total: _Money
    invoice_id: _Id = None
    invoice_year: _Year = None
    invoice_month: _Month = None
    invoice_day: _Day = None
    invoice_weekday: _Weekday = None
    invoice_date: str | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    invoices: Annotated[list[_Item], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_DECODER = msgspec.json.Decoder(_Batch)
#: Days of each month in a common year; February gains one in leap years.
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def decode_batch(body: bytes) -> InvoiceColumns | None:
    """The batch in ``body`` as columns, or None when pydantic must decide.

    None never means "invalid", only "not the plain case": the caller validates the body
    with ``InvoiceBatch`` then, which accepts it or says what is wrong.
    """
    try:
        items = _DECODER.decode(body).invoices
    except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
        # Whatever went wrong, pydantic says what (and a RecursionError must not be a 500).
        return None
    n = len(items)
    if list(map(attrgetter("invoice_date"), items)).count(None) != n:
        return None
    parts = []
    for name in ("invoice_year", "invoice_month", "invoice_day"):
        values = list(map(attrgetter(name), items))
        if None in values:  # the date is missing: pydantic names the field
            return None
        parts.append(np.array(values, dtype=np.int64))
    year, month, day = parts
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if np.any(day > _MONTH_DAYS[month - 1] + ((month == 2) & leap)):
        return None
    ids = list(map(attrgetter("invoice_id"), items))
    if ids.count(None) != n and not _plain_ids(ids):
        return None
    return InvoiceColumns(
        amount=np.fromiter(map(attrgetter("amount"), items), np.float64, n),
        tax=np.fromiter(map(attrgetter("tax"), items), np.float64, n),
        total=np.fromiter(map(attrgetter("total"), items), np.float64, n),
        year=year,
        month=month,
        day=day,
        invoice_ids=ids,
        client_weekdays=list(map(attrgetter("invoice_weekday"), items)),
    )


def _plain_ids(ids: list[str | int | None]) -> bool:
    """True when every text id is printable ASCII and not blank.

    Those pass the schema's id pattern whatever the regex engine; any other text (accents,
    controls, other scripts) is left to pydantic's own check of the pattern.
    """
    texts = [i for i in ids if isinstance(i, str)]
    return (
        all(map(str.isascii, texts))
        and all(map(str.isprintable, texts))
        # Printable ASCII has no whitespace but the space: strip() leaves "" only when blank.
        and all(map(str.strip, texts))
    )
