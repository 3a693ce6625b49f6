"""The OpenAPI description of each route's answers: statuses, models and headers. Only the
documentation reads these tables; the answers themselves come from the routes and the one
problem table (``service.http.problems``)."""

from __future__ import annotations

from typing import Any

from service.core.rollout_schemas import Rollout, RolloutList
from service.core.schemas import Problem, Restart, RestartList
from service.http.problems import PROBLEM_JSON

STALE_HEADER = {
    "Warning": {
        "description": '`299 - "stale: ..."` while the watch has lost the apiserver: the '
        "answer is the last state seen, changes since then are not in it yet",
        "schema": {"type": "string"},
    }
}


def event_stream(description: str) -> dict[str, Any]:
    """A ``text/event-stream`` body: each event has an ``event`` type, an ``id`` and ``data``
    (a JSON document) — described per event, as schemathesis and OpenAPI 3.2 read streams."""
    return {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": description,
                "properties": {
                    "event": {"type": "string"},
                    "id": {"type": "string"},
                    "data": {"type": "string", "description": "the object's JSON"},
                    "retry": {"type": "integer"},
                },
            }
        }
    }


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_JSON: {}}}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response("no bearer token, or one that does not authenticate"),
    403: problem_response("the namespace is not served, or the caller may not do this there"),
    422: problem_response("the request is not valid"),
    503: problem_response("not ready, the apiserver is unreachable, or OpenKruise is missing"),
}


CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "dry run, or a repeat of an earlier request with the same Idempotency-Key",
        "model": Restart,
    },
    201: {
        "description": "created",
        "model": Restart,
        "headers": {
            "Location": {"description": "the restart", "schema": {"type": "string"}},
            "Warning": {
                "description": "299 warnings, also in the body",
                "schema": {"type": "string"},
            },
        },
    },
    404: problem_response("the pod does not exist"),
    409: problem_response(
        "the pod is not active or not scheduled, its restartPolicy is Never (a killed "
        "container would not start again), a container has no containerID yet, a restart is "
        "already active on the pod, or the name is taken"
    ),
    422: problem_response(
        "the body is not valid (an empty containers list too: omit it for every container), "
        "names unknown or duplicate containers, reuses an Idempotency-Key with another body, "
        "or Kubernetes refused it"
    ),
    401: COMMON_ERRORS[401],
    403: COMMON_ERRORS[403],
    429: problem_response(
        "the caller's rate limit is spent, or the namespace has too many active "
        "restarts (see Retry-After)"
    ),
    400: problem_response("the body cannot be decoded (not UTF-8 JSON, or nested too deeply)"),
    413: problem_response("the body is larger than the configured limit"),
    415: problem_response("the body is not JSON"),
    503: COMMON_ERRORS[503],
    504: problem_response("the apiserver did not answer in time"),
}

GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the restart", "model": Restart, "headers": STALE_HEADER},
    404: problem_response("no such restart (or its retention has passed)"),
    **COMMON_ERRORS,
}

WATCH_STREAM = event_stream(
    "with ?watch=true: `event: RESET` and `event: ADDED` for each "
    'current object, `event: BOOKMARK` (`data: {"initialEventsEnd":true}`), then '
    "`event: ADDED|MODIFIED|DELETED` per change with the object as `data` and a resume "
    "token as `id` (send it back as Last-Event-ID); comment heartbeats in between. "
    "docs/watch.md"
)
WATCH_LIMIT = problem_response("with ?watch=true: the caller already holds its most streams")


def list_ok(description: str, model: Any) -> dict[str, Any]:
    return {
        "description": f"{description}, or with ?watch=true a stream of their changes",
        "model": model,
        "headers": STALE_HEADER,
        "content": {"application/json": {}, **WATCH_STREAM},
    }


LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: list_ok("a page of restarts", RestartList),
    **COMMON_ERRORS,
    429: WATCH_LIMIT,
}

EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`event: restart` with the restart as `data` and its "
        "resourceVersion as `id`, on every change; comment heartbeats in between; "
        "the stream ends after the finished snapshot",
        "content": event_stream("a restart snapshot per event"),
    },
    404: problem_response("no such restart"),
    **COMMON_ERRORS,
}

DELETE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the restart's last state", "model": Restart},
    404: problem_response("no such restart"),
    **COMMON_ERRORS,
    504: problem_response("the apiserver did not answer in time"),
}


# ---------------------------------------------------------------- rollouts

ROLLOUT_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "dry run (the plan: the pods in restart order, nothing created), or a "
        "repeat of an earlier request with the same Idempotency-Key",
        "model": Rollout,
    },
    201: {
        "description": "created; the controller starts the first pods at once",
        "model": Rollout,
        "headers": {"Location": {"description": "the rollout", "schema": {"type": "string"}}},
    },
    404: problem_response("the target workload does not exist"),
    409: problem_response(
        "an active rollout already covers some of these pods, or the name is taken"
    ),
    422: problem_response(
        "the body is not valid (both or neither of target and selector, an unknown kind, a "
        "bad selector or maxUnavailable, a container missing from some pods), no pod is "
        "selected, or an Idempotency-Key is reused with another body"
    ),
    401: COMMON_ERRORS[401],
    403: COMMON_ERRORS[403],
    429: problem_response("the caller's rate limit is spent (see Retry-After)"),
    400: CREATE_RESPONSES[400],
    413: CREATE_RESPONSES[413],
    415: CREATE_RESPONSES[415],
    503: COMMON_ERRORS[503],
    504: CREATE_RESPONSES[504],
}

ROLLOUT_GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the rollout", "model": Rollout, "headers": STALE_HEADER},
    404: problem_response("no such rollout (or its retention has passed)"),
    **COMMON_ERRORS,
}

ROLLOUT_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: list_ok("a page of rollouts", RolloutList),
    **COMMON_ERRORS,
    429: WATCH_LIMIT,
}

ROLLOUT_EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`event: rollout` with the rollout as `data` and its resourceVersion "
        "as `id`, on every change; comment heartbeats in between; the stream ends after the "
        "finished snapshot",
        "content": event_stream("a rollout snapshot per event"),
    },
    404: problem_response("no such rollout"),
    **COMMON_ERRORS,
}

ROLLOUT_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the rollout after the change", "model": Rollout},
    404: problem_response("no such rollout"),
    409: problem_response("the rollout has finished"),
    **COMMON_ERRORS,
    429: problem_response("the caller's rate limit is spent (see Retry-After)"),
    504: problem_response("the apiserver did not answer in time"),
}
