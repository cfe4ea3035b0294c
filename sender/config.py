"""What one run of the sender does: validated, immutable, built from flags and settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FraudSpike:
    """A window of the run in which generated invoices are fraudulent more often.

    Times are seconds since the first invoice was sent.
    """

    start_seconds: float = 60.0
    duration_seconds: float = 300.0
    fraud_rate: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_seconds) and self.start_seconds >= 0):
            raise ValueError("spike start must be >= 0 seconds")
        if not (math.isfinite(self.duration_seconds) and self.duration_seconds > 0):
            raise ValueError("spike duration must be > 0 seconds")
        if not 0.0 <= self.fraud_rate <= 1.0:
            raise ValueError("spike fraud rate must be between 0 and 1")

    def active(self, elapsed: float) -> bool:
        """Whether the spike is on ``elapsed`` seconds into the run."""
        return self.start_seconds <= elapsed < self.start_seconds + self.duration_seconds


@dataclass(frozen=True)
class FraudSchedule:
    """The share of fraudulent invoices to generate over time: a base rate, maybe a spike."""

    fraud_rate: float = 0.03
    spike: FraudSpike | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraud_rate <= 1.0:
            raise ValueError("fraud rate must be between 0 and 1")

    def rate_at(self, elapsed: float) -> float:
        """The fraud share wanted ``elapsed`` seconds into the run."""
        if self.spike is not None and self.spike.active(elapsed):
            return self.spike.fraud_rate
        return self.fraud_rate


@dataclass(frozen=True)
class SenderConfig:
    """Everything a run needs; flags and ``INVOICE_FRAUD_*`` settings resolved already."""

    api_url: str
    interval_seconds: float = 30.0
    schedule: FraudSchedule = FraudSchedule()
    csv_path: Path | None = None
    count: int | None = None
    duration_seconds: float | None = None
    seed: int | None = None
    ready_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 10.0
    max_backoff_seconds: float = 30.0
    max_attempts: int | None = None
    heartbeat_file: Path | None = None

    def __post_init__(self) -> None:
        positive = {
            "interval": self.interval_seconds,
            "ready timeout": self.ready_timeout_seconds,
            "request timeout": self.request_timeout_seconds,
            "max backoff": self.max_backoff_seconds,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.duration_seconds is not None and not (
            math.isfinite(self.duration_seconds) and self.duration_seconds > 0
        ):
            raise ValueError("duration must be a positive number of seconds")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max attempts must be at least 1")
