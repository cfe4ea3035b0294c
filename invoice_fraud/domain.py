"""Facts about invoices the generator, the features and the explanations share.

Kept apart from :mod:`invoice_fraud.synthetic` so the serving side (features, explanations)
does not import the generator's pandas.
"""

from __future__ import annotations

#: Standard VAT/GST/sales-tax rates seen in practice, as fractions.
STANDARD_TAX_RATES: tuple[float, ...] = (
    0.0, 0.05, 0.07, 0.08, 0.10, 0.12, 0.13, 0.15, 0.18,
    0.19, 0.20, 0.21, 0.22, 0.23, 0.24, 0.25, 0.27,
)  # fmt: skip

#: Approval limits that "just below the limit" fraud aims under.
APPROVAL_LIMITS: tuple[float, ...] = (1_000.0, 2_500.0, 5_000.0, 10_000.0, 25_000.0, 50_000.0)
