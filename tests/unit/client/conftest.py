"""Running ``crr`` in-process against a fake gateway; no control plane here."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from crr_client.cli import main

from tests.support.crr_runs import Crr, Outcome
from tests.support.fake_gateway import FakeGateway, Script

CLEARED = (
    "CRR_GATEWAY_URL",
    "CRR_GATEWAY_TOKEN",
    "CRR_GATEWAY_TOKEN_FILE",
    "CRR_GATEWAY_CA",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def _no_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own CRR_GATEWAY_* settings must not leak into these tests."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gateway() -> Iterator[Callable[[Script], FakeGateway]]:
    """Start fake gateways for a test; all are stopped after it."""
    started: list[FakeGateway] = []

    def start(script: Script) -> FakeGateway:
        fake = FakeGateway(script).__enter__()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.__exit__(None, None, None)


@pytest.fixture
def crr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Crr:
    """``crr(fake, "get", "demo/x")``: run the command line against ``fake`` with a token."""

    def run(fake: FakeGateway | None, *argv: str, token: str | None = "t0ken") -> Outcome:
        if fake is not None:
            monkeypatch.setenv("CRR_GATEWAY_URL", fake.url)
        if token is not None:
            monkeypatch.setenv("CRR_GATEWAY_TOKEN", token)
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
