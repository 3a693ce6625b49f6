"""One table from an apiserver answer, or a transport failure, to our errors
(``service.core.errors``): every failure of the adapter is translated here, once."""

from __future__ import annotations

import json
from typing import Any

import urllib3

from service.core.errors import (
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeTimeout,
    KubeTooManyRequests,
    KubeUnavailable,
)


def _status_message(data: bytes, http_reason: str) -> tuple[str, str, dict[str, Any]]:
    """(message, reason, details) from a ``Status`` body, tolerating anything else."""
    try:
        status = json.loads(data)
    except ValueError:
        status = None
    if isinstance(status, dict):
        message = str(status.get("message") or http_reason)
        details = status.get("details")
        return (
            message,
            str(status.get("reason") or ""),
            details if isinstance(details, dict) else {},
        )
    text = data.decode("utf-8", "replace").strip()[:500]
    return text or http_reason, "", {}


def translate_status(status: int, data: bytes, headers: Any, http_reason: str = "") -> KubeError:
    """One table from an apiserver answer to our error classes."""
    message, reason, _details = _status_message(data, http_reason or f"HTTP {status}")
    kwargs: dict[str, Any] = {"reason": reason, "code": status}
    if status in (400, 422):
        return KubeInvalid(message, **kwargs)
    if status == 401:
        return KubeUnavailable(
            f"the apiserver rejected the service's own credentials: {message}", **kwargs
        )
    if status == 403:
        return KubeForbidden(message, **kwargs)
    if status == 404:
        return KubeNotFound(message, **kwargs)
    if status == 409:
        if reason == "AlreadyExists":
            return KubeAlreadyExists(message, **kwargs)
        return KubeConflict(message, **kwargs)
    if status == 410:
        return KubeGone(message, **kwargs)
    if status == 429:
        retry_after = headers.get("Retry-After") if headers is not None else None
        return KubeTooManyRequests(
            message, headers={"Retry-After": str(retry_after or 1)}, **kwargs
        )
    if status == 504 or reason == "Timeout":
        return KubeTimeout(message, **kwargs)
    if status >= 500:
        return KubeUnavailable(message, **kwargs)
    return KubeError(message, **kwargs)


def transport_error(exc: BaseException, what: str) -> KubeError:
    cause: BaseException | None = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        cause = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError for compatibility: refused first
    refused = isinstance(cause, urllib3.exceptions.NewConnectionError)
    if not refused and isinstance(cause, urllib3.exceptions.TimeoutError):
        return KubeTimeout(f"{what}: the apiserver did not answer in time")
    return KubeUnavailable(f"{what}: cannot reach the apiserver ({type(cause).__name__}: {cause})")
