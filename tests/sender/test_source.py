"""Invoice sources: CSV replay (good and bad rows), generated invoices, the fraud spike."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest

from invoice_fraud.schema import Invoice
from sender.config import FraudSchedule, FraudSpike
from sender.source import CsvFormatError, CsvInvoices, GeneratedInvoices, OutgoingInvoice, RowError
from tests.sender.helpers import write_csv

SEVEN = "amount,tax,total,invoice_year,invoice_month,invoice_day,invoice_weekday"


def read_all(path: Path) -> list[OutgoingInvoice | RowError]:
    with CsvInvoices(path) as source:
        return list(source)


def test_csv_rows_with_seven_fields_become_api_bodies(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv", SEVEN, "1000.0,180.0,1180.0,2024,5,15,2", "50,0,50,2023,1,2,"
    )
    first, second = read_all(path)
    assert isinstance(first, OutgoingInvoice) and isinstance(second, OutgoingInvoice)
    assert first.invoice_id == "CSV-2" and second.invoice_id == "CSV-3"
    assert first.body == {
        "invoice_id": "CSV-2",
        "amount": 1000.0,
        "tax": 180.0,
        "total": 1180.0,
        "invoice_year": 2024,
        "invoice_month": 5,
        "invoice_day": 15,
        "invoice_weekday": 2,
    }
    # An empty optional weekday is left out, and the body is valid for the API.
    assert "invoice_weekday" not in second.body
    Invoice.model_validate_json(json.dumps(second.body))


def test_csv_with_invoice_date_and_ids_keeps_them(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv",
        "invoice_id,invoice_date,amount,tax,total,vendor",
        "INV-7,2024-05-15,1000,180,1180,ACME",
        ",2024-06-01,99.5,0,99.5,ACME",
    )
    first, second = read_all(path)
    assert isinstance(first, OutgoingInvoice) and isinstance(second, OutgoingInvoice)
    assert first.invoice_id == "INV-7"
    assert first.body["invoice_date"] == "2024-05-15" and "vendor" not in first.body
    assert second.invoice_id == "CSV-3"


def test_bad_csv_rows_are_reported_with_line_and_field_and_skipped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv",
        SEVEN,
        "1000,180,1180,2024,5,15,2",
        "abc,180,1180,2024,5,15,2",  # line 3: amount not a number
        "-5,0,-5,2024,5,15,2",  # line 4: amount <= 0, per the API's schema
        "100,10,110,2023,2,30,",  # line 5: no 30 February
        "100,10,110,2024,13,1,",  # line 6: month 13
        "100,,110,2024,1,1,",  # line 7: tax missing
        "100,10,110,2024,1,1.5,",  # line 8: day not whole
        "200,20,220,2024,1,2,1",
    )
    items = read_all(path)
    good = [i for i in items if isinstance(i, OutgoingInvoice)]
    bad = {i.line: i for i in items if isinstance(i, RowError)}
    assert [g.invoice_id for g in good] == ["CSV-2", "CSV-9"]
    assert sorted(bad) == [3, 4, 5, 6, 7, 8]
    fields = {line: [name for name, _ in error.problems] for line, error in bad.items()}
    assert fields == {
        3: ["amount"],
        4: ["amount"],
        5: ["invoice_day"],
        6: ["invoice_month"],
        7: ["tax"],
        8: ["invoice_day"],
    }
    assert str(bad[3]).startswith("CSV line 3 (data row 2): amount: 'abc' is not a number")
    assert "amount: Input should be greater" in str(bad[4])  # the API schema's own words
    assert "February 2023 has 28 days" in str(bad[5])


def test_csv_missing_required_columns_is_refused_up_front(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", "amount,tax,invoice_date", "1,0,2024-01-01")
    with pytest.raises(CsvFormatError, match=r"missing column\(s\) total"):
        CsvInvoices(path)
    with pytest.raises(CsvFormatError, match="cannot open"):
        CsvInvoices(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CsvFormatError, match="empty file"):
        CsvInvoices(tmp_path / "empty.csv")


def test_fraud_spike_schedule_is_on_only_inside_its_window() -> None:
    schedule = FraudSchedule(0.02, FraudSpike(start_seconds=10, duration_seconds=5, fraud_rate=0.8))
    assert [schedule.rate_at(t) for t in (0, 9.99, 10, 14.99, 15, 100)] == [
        0.02,
        0.02,
        0.8,
        0.8,
        0.02,
        0.02,
    ]
    assert FraudSchedule(0.1).rate_at(1e9) == 0.1
    with pytest.raises(ValueError):
        FraudSpike(duration_seconds=0)
    with pytest.raises(ValueError):
        FraudSchedule(1.5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fraud_share(invoices: list[OutgoingInvoice]) -> float:
    return sum(i.is_fraud or 0 for i in invoices) / len(invoices)


def test_generated_invoices_follow_the_spike_schedule() -> None:
    clock = FakeClock()
    spike = FraudSpike(start_seconds=60, duration_seconds=30, fraud_rate=0.9)
    source = GeneratedInvoices(FraudSchedule(0.02, spike), seed=1, pool_size=500, clock=clock)
    before = list(islice(source, 400))
    clock.now += 70  # inside the spike
    during = list(islice(source, 400))
    clock.now += 60  # after it
    after = list(islice(source, 400))
    assert fraud_share(before) < 0.06
    assert fraud_share(during) > 0.8
    assert fraud_share(after) < 0.06
    ids = [i.invoice_id for i in before + during + after]
    assert ids[:2] == ["SIM-000001", "SIM-000002"] and len(set(ids)) == 1200


def test_generated_invoices_are_valid_api_bodies_and_refill_their_pool() -> None:
    source = GeneratedInvoices(FraudSchedule(0.5), seed=3, pool_size=50)
    invoices = list(islice(source, 120))  # more than two pools
    for invoice in invoices:
        assert invoice.body["invoice_id"] == invoice.invoice_id
        Invoice.model_validate(invoice.body)
    assert 0.3 < fraud_share(invoices) < 0.7
    # Refilled pools are fresh invoices, not the first pool again.
    assert invoices[0].body != invoices[50].body


def test_generated_invoices_are_reproducible_with_a_seed() -> None:
    first = [i.body for i in islice(GeneratedInvoices(FraudSchedule(0.1), seed=9), 20)]
    again = [i.body for i in islice(GeneratedInvoices(FraudSchedule(0.1), seed=9), 20)]
    other = [i.body for i in islice(GeneratedInvoices(FraudSchedule(0.1), seed=10), 20)]
    assert first == again and first != other
