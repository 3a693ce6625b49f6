"""Property-based tests of the published contract: schemathesis generates requests from
``openapi.yaml`` (valid ones, and ones that break it) and sends them to the running service on
the real control plane. No answer may be a 5xx, and every answer must be one the contract
describes (status, content type, body schema).

Fixed: ``derandomize`` (the same cases every run, for this Hypothesis version), a fixed seed,
no example database; about 1,400 cases, a few minutes on a CI runner."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from harness.controlplane import ControlPlane
from service.app import create_app
from service.openapi import OPENAPI_FILE
from tests.support.pods import MakePod
from tests.support.service_process import open_settings
from tests.support.serving import serve
from tests.support.waiting import wait_until

EXAMPLES_PER_OPERATION_AND_MODE = 50  # 15 operations, most in both modes: ~1,400 cases
MINIMUM_CASES = 1000
SEED = 20261127
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


@pytest.fixture
def service_url(control_plane: ControlPlane, namespace: str, make_pod: MakePod) -> Iterator[str]:
    make_pod("web-0", ["app", "sidecar"])
    with ExitStack() as stack:
        # ?watch=true streams end after a second, as a client's timeoutSeconds would end them
        settings_ = open_settings(control_plane.kubeconfig, [namespace], watch_max_seconds=1)
        url = stack.enter_context(serve(create_app(settings_)))
        wait_until("the service to be ready", lambda: httpx.get(url + "/readyz").status_code == 200)
        yield url


def exercise(
    operation: Any, mode: GenerationMode, url: str, namespace: str, answers: Counter[int]
) -> int:
    """Run the generated cases of one operation in one mode; how many were sent."""
    sent = 0

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), ours=st.booleans())
    def run(case: Any, ours: bool) -> None:
        nonlocal sent
        # valid cases go to the served namespace, and some create on the real pod
        if mode is GenerationMode.POSITIVE and "namespace" in (case.path_parameters or {}):
            case.path_parameters["namespace"] = namespace
            if ours and isinstance(case.body, dict) and "pod" in case.body:
                case.body["pod"] = "web-0"
        response = case.call_and_validate(base_url=url, checks=CHECKS, timeout=30)
        answers[response.status_code] += 1
        sent += 1

    run()
    return sent


def test_generated_requests_get_answers_the_contract_describes(
    service_url: str, namespace: str
) -> None:
    schema = schemathesis.openapi.from_path(OPENAPI_FILE)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # the restarts' 5, the rollouts' 7 (with pause, resume and cancel), and 3 for monitoring
    assert len(operations) == 15, [operation.label for operation in operations]
    sent: Counter[str] = Counter()
    answers: Counter[int] = Counter()
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if operation.path_parameters or operation.query or operation.headers or operation.body:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            sent[f"{operation.label} ({mode.value})"] = exercise(
                operation, mode, service_url, namespace, answers
            )
    assert sum(sent.values()) >= MINIMUM_CASES, sent
    # the real paths were reached: restarts made on the pod, refusals from the cluster
    assert answers[201] > 0 and answers[404] > 0 and answers[422] > 0, answers
    print(f"schemathesis: {sum(sent.values())} cases: {dict(sent)}; answers {dict(answers)}")
