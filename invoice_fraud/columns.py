"""Validated invoices as columns: what the features, the response and the store read.

Every way in (one invoice, a batch validated by pydantic, a batch decoded by
:mod:`invoice_fraud.batch_decode`) ends as one :class:`InvoiceColumns`, so scoring has a
single representation to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from invoice_fraud.schema import Invoice, InvoiceItem, check_batch_dates


@dataclass
class InvoiceColumns:
    """Validated invoices as columns: what the features, the response and the store read."""

    amount: np.ndarray
    tax: np.ndarray
    total: np.ndarray
    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    invoice_ids: list[str | int | None]
    client_weekdays: list[int | None]

    @classmethod
    def from_invoices(cls, invoices: list[Invoice]) -> InvoiceColumns:
        # The validator has filled year/month/day (from invoice_date when that was sent).
        return cls(
            amount=np.array([i.amount for i in invoices], dtype=np.float64),
            tax=np.array([i.tax for i in invoices], dtype=np.float64),
            total=np.array([i.total for i in invoices], dtype=np.float64),
            year=np.array([i.invoice_year for i in invoices], dtype=np.int64),
            month=np.array([i.invoice_month for i in invoices], dtype=np.int64),
            day=np.array([i.invoice_day for i in invoices], dtype=np.int64),
            invoice_ids=[i.invoice_id for i in invoices],
            client_weekdays=[i.invoice_weekday for i in invoices],
        )

    @classmethod
    def from_invoice(cls, invoice: Invoice) -> InvoiceColumns:
        return cls.from_invoices([invoice])

    @classmethod
    def from_items(cls, items: list[InvoiceItem]) -> InvoiceColumns:
        # A generator per column into np.fromiter beats building one table of tuples.
        n = len(items)
        year = np.fromiter((it.get("invoice_year") or 0 for it in items), np.int64, n)
        month = np.fromiter((it.get("invoice_month") or 0 for it in items), np.int64, n)
        day = np.fromiter((it.get("invoice_day") or 0 for it in items), np.int64, n)
        dated = np.fromiter((it.get("invoice_date") is not None for it in items), bool, n)
        check_batch_dates(items, year, month, day, dated)
        return cls(
            amount=np.fromiter((it["amount"] for it in items), np.float64, n),
            tax=np.fromiter((it["tax"] for it in items), np.float64, n),
            total=np.fromiter((it["total"] for it in items), np.float64, n),
            year=year,
            month=month,
            day=day,
            invoice_ids=[it.get("invoice_id") for it in items],
            client_weekdays=[it.get("invoice_weekday") for it in items],
        )

    def features_input(self) -> dict[str, np.ndarray]:
        return {
            "amount": self.amount,
            "tax": self.tax,
            "total": self.total,
            "invoice_year": self.year,
            "invoice_month": self.month,
            "invoice_day": self.day,
        }
