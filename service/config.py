"""Settings, read once from the environment (prefix ``CRR_GATEWAY_``) and injected."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ALL_NAMESPACES = "*"


class Settings(BaseSettings):
    """Everything the service can be told. Tests build one explicitly and pass it to
    ``create_app``; production reads the environment through ``get_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="CRR_GATEWAY_", extra="ignore", frozen=True, validate_by_name=True
    )

    # --- Kubernetes connection
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file; unset means in-cluster configuration"
    )
    kube_context: str | None = Field(default=None, description="kubeconfig context to use")
    request_timeout_seconds: float = Field(
        default=10.0, gt=0, description="timeout of one apiserver call (create, get, delete)"
    )

    # --- scope
    namespaces: Annotated[list[str], NoDecode] = Field(
        default=[ALL_NAMESPACES],
        description='served namespaces, comma separated, or "*" for every namespace',
    )

    # --- restart rules
    max_active_deadline_seconds: int = Field(default=3600, ge=3)

    # --- watch cache
    retention_seconds: float = Field(
        default=3600.0, ge=0, description="how long a deleted CRR's final state is still served"
    )
    watch_timeout_seconds: int = Field(
        default=300, ge=1, description="server-side timeout of one watch request"
    )
    relist_backoff_initial_seconds: float = Field(default=0.5, gt=0)
    relist_backoff_max_seconds: float = Field(default=30.0, gt=0)

    # --- HTTP
    host: str = "127.0.0.1"
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("CRR_GATEWAY_PORT", "PORT", "port"),
    )
    max_wait_seconds: int = Field(default=60, ge=0, description="upper bound of ?wait=")
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    list_default_limit: int = Field(default=100, ge=1)
    list_max_limit: int = Field(default=500, ge=1)
    log_level: str = "info"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("namespaces")
    @classmethod
    def _check_namespaces(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one namespace (or '*') must be served")
        if ALL_NAMESPACES in value and len(value) > 1:
            raise ValueError("'*' cannot be combined with named namespaces")
        return sorted(set(value))

    @property
    def all_namespaces(self) -> bool:
        return self.namespaces == [ALL_NAMESPACES]

    def serves(self, namespace: str) -> bool:
        return self.all_namespaces or namespace in self.namespaces


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
