"""Settings, read once from the environment (prefix ``CRR_GATEWAY_``) and injected."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ALL_NAMESPACES = "*"

AuthMode = Literal["kubernetes", "static", "none"]
TLSVersionName = Literal["1.2", "1.3"]
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """``host`` (as uvicorn binds it) is a loopback address only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_origin(origin: str) -> None:
    """``origin`` is one exact browser origin (``scheme://host[:port]``, as the ``Origin``
    header carries it), so the CORS allowlist compares it as a browser sends it. No "*": an
    allowlist names its portals (and the service needs no credentialed requests anyway)."""
    if origin in ("*", "null"):
        raise ValueError(
            f"CORS origin {origin!r} is not allowed: list each portal's origin, "
            "such as https://portal.example.com"
        )
    parsed = urlsplit(origin)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    host = parsed.hostname or ""
    canonical = f"{parsed.scheme.lower()}://{f'[{host}]' if ':' in host else host}"
    if port is not None and port != _DEFAULT_PORTS.get(parsed.scheme.lower()):
        canonical += f":{port}"
    if (
        parsed.scheme.lower() not in _DEFAULT_PORTS
        or not host
        or port == -1
        or parsed.username is not None
        or parsed.password is not None
        or "*" in parsed.netloc
    ):
        raise ValueError(
            f"CORS origin {origin!r} is not an origin: write scheme://host[:port], "
            "such as https://portal.example.com"
        )
    if origin != canonical:
        raise ValueError(
            f"CORS origin {origin!r} is not written as browsers send it: write {canonical!r} "
            "(lowercase, no path or trailing slash, no default port)"
        )


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

    # --- callers: authentication (docs/auth.md)
    auth_mode: AuthMode = Field(
        default="kubernetes",
        description="kubernetes (TokenReview + SubjectAccessReview), static (a tokens file), "
        "or none (development only: refused unless host is a loopback address)",
    )
    auth_audiences: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="kubernetes mode: audiences a token must carry, comma separated (empty: "
        "the apiserver's own)",
    )
    auth_tokens_file: Path | None = Field(
        default=None,
        description="static mode: YAML/JSON mapping sha256(token) hex to {user, groups, "
        "namespaces}; re-read when it changes",
    )
    auth_cache_ttl_seconds: float = Field(
        default=10.0, ge=0, description="how long a TokenReview that authenticated is reused"
    )
    auth_cache_failure_ttl_seconds: float = Field(
        default=2.0, ge=0, description="how long a rejected token's review is reused"
    )
    auth_cache_max_entries: int = Field(
        default=4096, ge=1, description="bound of each review cache (tokens, access decisions)"
    )
    # --- callers: authorization (kubernetes mode)
    authz_group: str = Field(default="apps.kruise.io", description="SubjectAccessReview group")
    authz_resource: str = Field(default="containerrecreaterequests", min_length=1)
    authz_subresource: str = ""
    authz_verb: str | None = Field(
        default=None,
        description="one verb for every route (e.g. restart); unset: create, delete, get, "
        "list, watch by route",
    )
    authz_cache_ttl_seconds: float = Field(
        default=10.0, ge=0, description="how long an allowed SubjectAccessReview is reused"
    )
    authz_cache_denied_ttl_seconds: float = Field(
        default=2.0, ge=0, description="how long a denied SubjectAccessReview is reused"
    )
    # --- callers: guardrails
    rate_limit_per_second: float = Field(
        default=5.0, ge=0, description="per-caller creates per second, per replica (0: off)"
    )
    rate_limit_burst: int = Field(default=20, ge=1, description="per-caller burst of creates")
    rate_limit_all_requests: bool = Field(
        default=False, description="count every authenticated request, not only creates"
    )
    max_active_restarts_per_namespace: int = Field(
        default=100, ge=0, description="unfinished restarts a namespace may have (0: no cap)"
    )
    record_events: bool = Field(
        default=True, description="record an Event on the pod for every create and delete"
    )

    # --- watch cache
    retention_seconds: float = Field(
        default=3600.0, ge=0, description="how long a deleted CRR's final state is still served"
    )
    watch_timeout_seconds: int = Field(
        default=300, ge=1, description="server-side timeout of one watch request"
    )
    relist_backoff_initial_seconds: float = Field(default=0.5, gt=0)
    relist_backoff_max_seconds: float = Field(default=30.0, gt=0)

    # --- rollouts
    rollout_retention_seconds: float = Field(
        default=86400.0, ge=0, description="how long a finished rollout stays readable"
    )
    rollout_resync_seconds: float = Field(
        default=1.0,
        gt=0,
        description="how often the controller looks again at every active rollout, for what "
        "has no event of its own (minReadySeconds passing, a restart gone missing)",
    )

    # --- HTTP
    host: str = "127.0.0.1"
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("CRR_GATEWAY_PORT", "PORT", "port"),
    )
    max_wait_seconds: int = Field(
        default=60,
        ge=0,
        le=60,  # the API's own bound on ?wait= (openapi.yaml): a higher setting would do nothing
        description="upper bound of ?wait= (lower it to end long polls sooner)",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    watch_streams_per_caller: int = Field(
        default=20,
        ge=1,
        description="namespace watch streams (?watch=true) one caller may hold open at once on "
        "one replica; one more is answered 429",
    )
    watch_max_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="a namespace watch stream ends after this long (or its timeoutSeconds); "
        "the client resumes with Last-Event-ID, so long-lived clients spread over replicas",
    )
    watch_backlog: int = Field(
        default=1000,
        ge=1,
        description="changes kept per namespace so that a watch stream reconnecting with "
        "Last-Event-ID gets only what it missed; an older token gets every object again",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="browser origins allowed to call the API (CORS), comma separated, each "
        "exactly as a browser sends it (https://portal.example.com); empty: CORS off",
    )
    list_max_limit: int = Field(default=500, ge=1)
    log_level: str = "info"
    access_log: bool = Field(
        default=False,
        description="log every HTTP request (uvicorn's access log); off by default: it costs "
        "status-poll throughput (BENCHMARKS.md), and creates/deletes have audit lines anyway",
    )
    keep_alive_seconds: int = Field(
        default=75,
        gt=0,
        description="how long an idle keep-alive connection stays open; longer than clients' "
        "and load balancers' idle timeouts (httpx 5 s, cloud LBs 60 s), so the server is never "
        "the side that closes a connection a client is about to reuse",
    )
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio",
        description="the event loop uvicorn runs; asyncio's by default: under hundreds of "
        "concurrent pollers uvloop left some connections waiting for seconds at the same "
        "throughput (BENCHMARKS.md, Tuning done from these figures)",
    )
    # --- the edge: slow clients and TLS (service/edge/)
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a connection whose request headers are not complete this long after it "
        "opened (or after the first byte of its next request) is closed, with 408 if a "
        "request had begun; also bounds the TLS handshake",
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="connections one replica serves at once; one more is answered 503 "
        "(Retry-After) when it is accepted and closed, established ones keep being served",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain (leaf first) to serve HTTPS with, e.g. a TLS "
        "Secret's tls.crt; re-read when the file changes, without a restart. With "
        "tls_key_file, or neither for plain HTTP",
    )
    tls_key_file: Path | None = Field(
        default=None, description="the unencrypted PEM private key of tls_cert_file"
    )
    tls_min_version: TLSVersionName = Field(
        default="1.2", description="the oldest TLS version accepted: 1.2 or 1.3"
    )

    @field_validator("namespaces", "auth_audiences", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
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

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            check_origin(origin)
        return sorted(set(value))

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if self.auth_mode == "none" and not is_loopback(self.host):
            raise ValueError(
                f"auth_mode none serves anyone unauthenticated: refused on host {self.host!r}; "
                "bind a loopback address (127.0.0.1) or choose kubernetes or static"
            )
        if self.auth_mode == "static" and self.auth_tokens_file is None:
            raise ValueError("auth_mode static needs auth_tokens_file")
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = (
                ("CRR_GATEWAY_TLS_CERT_FILE", "CRR_GATEWAY_TLS_KEY_FILE")
                if self.tls_key_file is None
                else ("CRR_GATEWAY_TLS_KEY_FILE", "CRR_GATEWAY_TLS_CERT_FILE")
            )
            raise ValueError(
                f"{given} is set but {missing} is not: set both to serve HTTPS, "
                "or neither to serve plain HTTP"
            )
        return self

    @property
    def all_namespaces(self) -> bool:
        return self.namespaces == [ALL_NAMESPACES]

    def serves(self, namespace: str) -> bool:
        return self.all_namespaces or namespace in self.namespaces


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
