"""The fast batch decoder against the contract's own model, on generated bodies.

``decode_batch`` may only accept what ``InvoiceBatch`` accepts, with the very same columns;
for anything else it must step aside (None), so pydantic answers as before.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from invoice_fraud.batch_decode import decode_batch
from invoice_fraud.columns import InvoiceColumns
from invoice_fraud.schema import MAX_BATCH, InvoiceBatch
from tests.factories import make_dated_invoice, make_invoice

MISSING = object()


def by_pydantic(body: bytes) -> InvoiceColumns | None:
    """What the service did before the fast path: None when the body is refused."""
    try:
        return InvoiceColumns.from_items(InvoiceBatch.model_validate_json(body).invoices)  # type: ignore[arg-type]
    except ValidationError:
        return None


def assert_same(fast: InvoiceColumns, slow: InvoiceColumns) -> None:
    for name in ("amount", "tax", "total", "year", "month", "day"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name, strict=True)
    # Types too: an integer invoice id must stay an integer, not turn into text.
    assert [(type(i), i) for i in fast.invoice_ids] == [(type(i), i) for i in slow.invoice_ids]
    assert [(type(w), w) for w in fast.client_weekdays] == [
        (type(w), w) for w in slow.client_weekdays
    ]


def encode(items: list[Any], **top: Any) -> bytes:
    return json.dumps({"invoices": items, **top}, allow_nan=True).encode()


def test_plain_batch_takes_the_fast_path_with_pydantics_columns() -> None:
    items = [
        make_invoice(invoice_id=f"INV-{k}", amount=10.0 + k, total=11.8 + k, invoice_day=1 + k % 31)
        for k in range(300)
    ]
    items[7]["invoice_id"] = 12345
    items[8].pop("invoice_weekday")
    items[9]["invoice_month"], items[9]["invoice_day"] = 2, 29  # 2024 is a leap year
    body = encode(items)
    fast = decode_batch(body)
    assert fast is not None, "the plain case must not fall back to pydantic"
    slow = by_pydantic(body)
    assert slow is not None
    assert_same(fast, slow)


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (make_dated_invoice("2024-05-15"), "invoice_date is pydantic's"),
        (make_invoice(invoice_month=2, invoice_day=29, invoice_year=2023), "no 29 February 2023"),
        (make_invoice(invoice_month=4, invoice_day=31), "April has 30 days"),
        (make_invoice(invoice_day=...), "missing day"),
        (make_invoice(invoice_id="   "), "blank id"),
        (make_invoice(invoice_id="Rechnung-\u00fc"), "non-ASCII id goes to pydantic's pattern"),
        (make_invoice(invoice_id="a\nb"), "control character"),
        (make_invoice(invoice_id="abc\n"), "trailing newline ($ in Python's re would pass it)"),
        (make_invoice(amount=True), "bool is not a number"),
        (make_invoice(invoice_year=2024.0), "float year in strict mode"),
        (make_invoice(amount=0.0), "below one cent"),
        (make_invoice(colour="red"), "unknown field"),
        (make_invoice(invoice_id=2**53), "id past 2^53-1"),
    ],
)
def test_anything_but_the_plain_case_falls_back(item: dict[str, Any], why: str) -> None:
    body = encode([make_invoice(), item])
    assert decode_batch(body) is None, why


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b'{"invoices": []}',
        b'{"invoices": null}',
        b'{"invoices": [1]}',
        b'{"invoices": [{"amount": NaN, "tax": 0, "total": 0}]}',
        b'{"invoices": [{"amount": 1e400, "tax": 0, "total": 0}]}',
        encode([make_invoice()], extra=1),
        encode([make_invoice()] * (MAX_BATCH + 1)),
        b'{"invoices": [{"amount": 1, "tax": 0, "total": 1, "invoice_year": 2024,',
        b"\xff\xfe",
        # Deep nesting where a date goes, or anywhere: never a RecursionError (was a 500).
        b'{"invoices": [{"amount": 1, "tax": 0, "total": 1, "invoice_date": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}]}",
        b'{"invoices": [{"amount": 1, "tax": 0, "total": 1, "x": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}]}",
        b'{"invoices": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_malformed_bodies_fall_back(body: bytes) -> None:
    assert decode_batch(body) is None


def test_duplicate_keys_resolve_as_pydantic_does() -> None:
    # Last one wins, in both parsers; the fast path must not pick the first.
    item = json.dumps(make_invoice())[:-1] + ', "amount": 5.0, "invoice_day": 3}'
    body = ('{"invoices": [' + item + '], "invoices": [' + item + ", " + item + "]}").encode()
    fast, slow = decode_batch(body), by_pydantic(body)
    assert fast is not None and slow is not None
    assert_same(fast, slow)
    assert fast.amount.tolist() == [5.0, 5.0]


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, width=64),
        st.floats(min_value=-2e9, max_value=2e9),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(min_value=-5, max_value=3000),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
    )


def ids() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.text(max_size=140),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=10),
        st.sampled_from([" ", "  a ", "\t", "x\x00", "x\n", "\u00a0", "\u2003x", "A" * 128]),
        st.integers(min_value=-3, max_value=2**54),
        st.booleans(),
        st.floats(allow_nan=False),
    )


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "amount": st.one_of(st.floats(0.01, 1e9), st.integers(1, 10**6), numbers()),
    "tax": st.one_of(st.floats(-1e9, 1e9), st.integers(-(10**6), 10**6), numbers()),
    "total": st.one_of(st.floats(-1e9, 1e9), numbers()),
    "invoice_year": st.one_of(st.integers(1890, 2110), numbers()),
    "invoice_month": st.one_of(st.integers(0, 13), numbers()),
    "invoice_day": st.one_of(st.integers(0, 32), numbers()),
    "invoice_weekday": st.one_of(st.integers(-1, 7), numbers()),
    "invoice_id": ids(),
    "invoice_date": st.one_of(st.none(), st.sampled_from(["2024-05-15", "2024-02-30", "x"])),
}


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    """The ordinary invoice with up to two fields replaced by generated values or dropped.

    Few enough changes that about half the batches stay valid: both sides of the property
    (accepted alike, refused alike) are exercised.
    """
    item = make_invoice()
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=2)):
        if draw(st.integers(0, 3)):
            item[name] = draw(FIELDS[name])
        else:
            item.pop(name, None)
    if not draw(st.integers(0, 15)):
        item[draw(st.text(min_size=1, max_size=8))] = 1
    return item


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items(), min_size=0, max_size=3))
def test_fast_path_accepts_only_what_pydantic_accepts_with_the_same_columns(
    batch: list[dict[str, Any]],
) -> None:
    body = encode(batch)
    fast = decode_batch(body)
    if fast is None:
        return  # pydantic decides, as before: nothing to compare
    slow = by_pydantic(body)
    assert slow is not None, f"fast path accepted a body pydantic refuses: {body[:300]!r}"
    assert_same(fast, slow)
    assert all(math.isfinite(v) for v in fast.amount.tolist())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "amount": st.floats(0.01, 1e9),
                "tax": st.floats(-1e9, 1e9),
                "total": st.floats(-1e9, 1e9),
                "invoice_year": st.integers(1900, 2100),
                "invoice_month": st.integers(1, 12),
                "invoice_day": st.integers(1, 28),
            },
            optional={
                "invoice_weekday": st.integers(0, 6),
                "invoice_id": st.one_of(
                    st.integers(0, 2**53 - 1),
                    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
                ),
            },
        ),
        min_size=1,
        max_size=20,
    )
)
def test_valid_plain_batches_always_take_the_fast_path(batch: list[dict[str, Any]]) -> None:
    body = encode(batch)
    fast = decode_batch(body)
    slow = by_pydantic(body)
    assert slow is not None
    assert fast is not None
    assert_same(fast, slow)
