"""RFC 9457 problem details: every error leaves the service as ``application/problem+json``.

One handler per base class (Starlette looks handlers up along the exception's MRO)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.core.errors import PROBLEM_BASE, GatewayError, RequestInvalid

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_UNAVAILABLE = "5"  # seconds; every 503 says when to try again


def problem(
    status: int,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return Response(
        content=json.dumps(body, separators=(",", ":"), default=str).encode(),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _instance(request: Request) -> str:
    return request.url.path


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.detail)
    headers = exc.headers
    if exc.status == 503 and "Retry-After" not in headers:
        headers = {**headers, "Retry-After": RETRY_AFTER_UNAVAILABLE}
    return problem(
        exc.status,
        type_=exc.type_uri,
        title=exc.title,
        detail=exc.detail,
        instance=_instance(request),
        extra=exc.extra,
        headers=headers,
    )


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return f"{where} {'.'.join(rest)}" if rest else where
    return ".".join(parts)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": list(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    detail = (
        "; ".join(f"{_location(e['location'])}: {e['message']}" for e in errors[:5])
        or "the request is not valid"
    )
    return problem(
        422,
        type_=PROBLEM_BASE + RequestInvalid.slug,
        title=RequestInvalid.title,
        detail=detail,
        instance=_instance(request),
        extra={"errors": errors},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == _phrase(exc.status_code):
        detail = None
    if exc.status_code == 404 and detail is None:
        detail = f"no route for {request.url.path}"
    if exc.status_code == 405 and detail is None:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(
        exc.status_code,
        detail=detail,
        instance=_instance(request),
        headers=exc.headers,
    )


async def unhandled_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        type_=PROBLEM_BASE + GatewayError.slug,
        title=GatewayError.title,
        detail="the service failed unexpectedly; the error is in its log",
        instance=_instance(request),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unhandled_error)
