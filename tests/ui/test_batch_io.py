"""The Batch page's file handling: local cell checks, and chunked scoring on the real service."""

from __future__ import annotations

import pytest

from ui.api_client import ApiClient
from ui.batch_io import parse_invoices, read_csv, score_file

HEADER = "invoice_id,amount,tax,total,invoice_year,invoice_month,invoice_day\n"


def test_cells_that_are_not_numbers_are_named_before_sending() -> None:
    csv = HEADER + (
        "a,100,18,118,2024,5,15\n"
        "b,1 000,18,118,2024,5,15\n"  # thousands separator: not a number
        "c,,18,118,2024,5,15\n"  # empty money cell
        "d,100,inf,118,2024,5,15\n"
        "e,100,18,118,2024,5.5,15\n"
    )
    parsed = parse_invoices(read_csv(csv.encode()))

    assert parsed.rows == [1]
    assert parsed.invoices == [
        {"invoice_id": "a", "amount": 100.0, "tax": 18.0, "total": 118.0,
         "invoice_year": 2024, "invoice_month": 5, "invoice_day": 15},
    ]  # fmt: skip
    assert [p.describe() for p in parsed.problems] == [
        "Row 2 (line 3), amount: not a number: '1 000'",
        "Row 3 (line 4), amount: empty cell, a number is required",
        "Row 4 (line 5), tax: not a finite number: 'inf'",
        "Row 5 (line 6), invoice_month: not a whole number: '5.5'",
    ]


def test_a_file_without_the_required_columns_is_refused_whole() -> None:
    parsed = parse_invoices(read_csv(b"amount,total\n100,118\n"))

    assert parsed.file_errors == [
        "missing column(s): tax",
        "missing the date: give invoice_year, invoice_month and invoice_day columns, "
        "or an invoice_date column (YYYY-MM-DD)",
    ]
    assert not parsed.invoices


@pytest.mark.integration
def test_chunks_score_every_good_row_in_order_and_name_bad_rows_across_chunks(
    server_url: str,
) -> None:
    csv = HEADER + (
        "r1,100,18,118,2024,5,15\n"
        "r2,-1,0,-1,2024,5,15\n"  # chunk 1: amount must be > 0
        "r3,100,18,118,2024,5,16\n"
        "r4,100,18,118,2023,2,29\n"  # chunk 2: no 29 February in 2023
        "r5,100,18,118,2024,5,17\n"
    )
    parsed = parse_invoices(read_csv(csv.encode()))
    client = ApiClient(server_url)
    try:
        outcome = score_file(client, parsed, chunk_size=2)
    finally:
        client.close()

    assert [(row, pred["invoice_id"]) for row, _, pred in outcome.scored] == [
        (1, "r1"), (3, "r3"), (5, "r5"),
    ]  # fmt: skip
    assert [(p.row, p.field) for p in outcome.problems] == [(2, "amount"), (4, "invoice_day")]
