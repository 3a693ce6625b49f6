"""The request model: its defaults, and what it refuses before any rule runs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.core.schemas import RestartRequest


def test_request_defaults() -> None:
    request = RestartRequest.model_validate({"pod": "web-0"})
    assert request.containers is None
    assert request.failurePolicy == "Fail"
    assert request.orderedRecreate is False
    assert request.unreadyGracePeriodSeconds == 3
    assert request.activeDeadlineSeconds == 300
    assert request.ttlSecondsAfterFinished == 1800
    assert request.terminationGracePeriodSeconds is None
    assert request.minStartedSeconds is None
    assert request.forceRecreate is None


@pytest.mark.parametrize(
    "body",
    [
        {"pod": "web-0", "extra": 1},
        {"pod": "web-0", "activeDeadlineSeconds": 2},
        {"pod": "web-0", "unreadyGracePeriodSeconds": -1},
        {"pod": "web-0", "failurePolicy": "fail"},
        {"pod": "web-0", "reason": "r" * 257},
        {"pod": "web-0", "orderedRecreate": "true"},
        {"pod": "web-0", "activeDeadlineSeconds": "30"},
        {"pod": "Web_0"},
        {"pod": ""},
        {"pod": "web-0", "containers": [""]},
        {"pod": "web-0", "containers": []},
    ],
)
def test_request_rejects(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RestartRequest.model_validate(body)


def test_an_empty_list_of_containers_says_to_omit_it() -> None:
    with pytest.raises(ValidationError) as error:
        RestartRequest.model_validate({"pod": "web-0", "containers": []})
    (problem,) = error.value.errors()
    assert problem["loc"] == ("containers",)
    assert problem["msg"] == "containers is empty: omit containers to restart all of them"
