"""HTTPS with a private CA (CRR_GATEWAY_CA), and a refusal of a certificate nobody vouched for."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from crr_client.errors import EXIT_OK, EXIT_UNAVAILABLE

from harness.certs import Pki, write_pki
from tests.support.crr_runs import Crr
from tests.support.fake_gateway import FakeGateway, Reply, restart_doc


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_gateway(pki: Pki) -> Iterator[FakeGateway]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.serving_cert, pki.serving_key)
    with FakeGateway(lambda _seen: Reply(200, restart_doc()), tls=context) as fake:
        yield fake


def test_a_private_ca_is_trusted_when_named(
    https_gateway: FakeGateway, crr: Crr, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRR_GATEWAY_CA", str(pki.ca_cert))
    outcome = crr(https_gateway, "get", "demo/web-0-x7k2p")
    assert outcome.code == EXIT_OK
    assert https_gateway.requests()[0].headers["authorization"] == "Bearer t0ken"


def test_an_unknown_ca_is_refused_at_once_and_the_token_never_sent(
    https_gateway: FakeGateway, crr: Crr
) -> None:
    outcome = crr(https_gateway, "get", "demo/web-0-x7k2p")
    assert outcome.code == EXIT_UNAVAILABLE
    assert "certificate verify failed" in outcome.err
    assert "retrying" not in outcome.err
    assert https_gateway.requests() == []


def test_an_unreadable_ca_file_is_a_usage_error(
    https_gateway: FakeGateway, crr: Crr, tmp_path: Path
) -> None:
    outcome = crr(https_gateway, "get", "demo/x", "--ca", str(tmp_path / "missing.pem"))
    assert outcome.code == 2
    assert "cannot load the CA file" in outcome.err
