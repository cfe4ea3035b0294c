"""One validated settings class, read from ``INVOICE_FRAUD_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), with explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
