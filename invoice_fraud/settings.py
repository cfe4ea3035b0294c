"""One validated settings class, read from ``INVOICE_FRAUD_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from invoice_fraud.schema import MAX_BATCH

# BentoML's tag rules: lowercase letters, digits, "_", "." and "-".
_NAME = r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$"


class Settings(BaseSettings):
    """Settings shared by training, serving, the sender and the UI.

    Built by :func:`get_settings` (never at import time) so tests can override any value
    through the environment or by passing keyword arguments.
    """

    model_config = SettingsConfigDict(
        env_prefix="INVOICE_FRAUD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    model_name: str = Field(
        default="invoice_fraud",
        pattern=_NAME,
        description="Name under which train.py saves the model in the BentoML store.",
    )
    model_tag: str = Field(
        default="invoice_fraud:latest",
        pattern=_NAME[:-1] + r"(:[a-z0-9_.-]+)?$",
        description="Model the service loads (and `bentoml build` packs); pin a version "
        "with name:version.",
    )
    api_url: str = Field(
        default="http://127.0.0.1:3000",
        description="Where the sender and the UI find the service.",
    )
    # Scoring (service only).
    direct_scoring: bool = Field(
        default=True,
        description="Answer the two scoring routes straight from the request body, ahead of "
        "BentoML's API handler (same validation, errors and metrics; about a third less CPU "
        "per request, benchmarks/README.md). false routes them through BentoML's handler.",
    )
    # The prediction store (service only).
    store_enabled: bool = Field(default=True, description="Keep every scored invoice.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@db:5432/invoices; "
        "unset means the SQLite file at store_path.",
    )
    store_path: Path = Field(
        default=Path("data/predictions.sqlite3"),
        description="SQLite file used when database_url is unset.",
    )
    store_flush_interval_seconds: float = Field(
        default=0.2, gt=0, le=60, description="Longest a scored invoice waits to be written."
    )
    store_backpressure_rows: int = Field(
        # Two 10,000-invoice batches: the writer never runs dry, and the rows waiting in a
        # worker's memory (about 1 KB each as Python objects) stay around 30 MB.
        default=20_000,
        ge=1_000,
        description="A batch is scored only while fewer rows than this wait to be written "
        "(or the database is failing): sustained batch load goes at the store's pace instead "
        "of dropping rows.",
    )
    store_backpressure_max_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        le=20,
        description="Longest a batch waits for room in the store; then it gets a 503, "
        "unscored, to retry (and always before BentoML's 30 s request timeout).",
    )
    store_max_pending_rows: int = Field(
        # About 1 KB of worker memory per queued row: 200,000 rows is hours of ordinary
        # traffic and about 200 MB, which a worker can hold without being killed.
        default=200_000,
        ge=1_000,
        description="Rows kept in memory while the database is unreachable; beyond, counted "
        "as dropped.",
    )
    # The traffic sender (python -m sender); its flags override these.
    sender_interval_seconds: float = Field(
        default=30.0, gt=0, le=86_400, description="Seconds between two invoices the sender posts."
    )
    sender_fraud_rate: float = Field(
        default=0.03, ge=0, le=1, description="Share of fraudulent invoices the sender generates."
    )
    sender_ready_timeout_seconds: float = Field(
        default=120.0, gt=0, description="How long the sender waits for /readyz before giving up."
    )
    sender_request_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="HTTP timeout of one request the sender makes."
    )

    @model_validator(mode="after")
    def _check_backpressure(self) -> Settings:
        # Batches are admitted below the backpressure mark, so the queue of a database that
        # works holds at most that plus one batch: the outage limit must leave room for it.
        needed = self.store_backpressure_rows + MAX_BATCH
        if self.store_max_pending_rows < needed:
            raise ValueError(
                f"INVOICE_FRAUD_STORE_MAX_PENDING_ROWS ({self.store_max_pending_rows}) must be "
                f"at least INVOICE_FRAUD_STORE_BACKPRESSURE_ROWS "
                f"({self.store_backpressure_rows}) + {MAX_BATCH} (one batch)"
            )
        return self

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        if "CHANGE_ME" in value or "<" in value:
            raise ValueError("still holds a placeholder; set the real credentials")
        return value

    def store_url(self) -> str:
        """The database URL the prediction store writes to."""
        return self.database_url or f"sqlite:///{self.store_path}"


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), with explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
