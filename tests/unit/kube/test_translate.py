"""The one table from an apiserver answer to our errors."""

from __future__ import annotations

import pytest

from service.core.errors import (
    GatewayError,
    KubeForbidden,
    KubeInvalid,
    KubeTimeout,
    KubeTooManyRequests,
)
from service.kube.translate import translate_status


@pytest.mark.parametrize(
    ("status", "body", "kind", "answer"),
    [
        (400, b'{"kind":"Status","message":"denied","reason":"BadRequest"}', KubeInvalid, 422),
        (401, b'{"message":"Unauthorized"}', GatewayError, 503),
        (403, b'{"message":"forbidden"}', KubeForbidden, 403),
        (404, b'{"message":"nope","reason":"NotFound"}', GatewayError, 404),
        (409, b'{"message":"exists","reason":"AlreadyExists"}', GatewayError, 409),
        (410, b'{"message":"too old","reason":"Expired"}', GatewayError, 503),
        (422, b'{"message":"invalid"}', KubeInvalid, 422),
        (429, b"{}", KubeTooManyRequests, 429),
        (500, b"not json", GatewayError, 503),
        (504, b"{}", KubeTimeout, 504),
        (418, b"{}", GatewayError, 502),
    ],
)
def test_the_status_table(status: int, body: bytes, kind: type[GatewayError], answer: int) -> None:
    error = translate_status(status, body, {}, "reason")
    assert isinstance(error, kind)
    assert error.status == answer
    assert error.code == status
