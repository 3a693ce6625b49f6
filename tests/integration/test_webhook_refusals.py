"""kruise's CRR webhook refusing a create the service let through, on the real control plane:
the pod turned inactive between the service's read of it and the create, and a create right
after the pod appeared, before kruise's informer has it. The service answers as if it had
seen it itself (409; 503 with Retry-After), in kruise's own words: each test asks the running
webhook what it says in that state (a dry-run create as the admin) and compares.

kruise v1.9.0 words them in ``pkg/webhook/containerrecreaterequest/mutating/
crr_mutating_handler.go`` (``handleV1beta1``): ``not allowed to recreate containers in an
inactive Pod`` and ``no found Pod named %s``, both 400, as the denial of webhook
``mcontainerrecreaterequest.kb.io``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from service.core.objects import KubeObject
from service.kube.adapter import KubeClient
from tests.support.api import (
    GROUP,
    PLURAL,
    assert_problem,
    crrs_in,
    follow,
    restarts_url,
    start_service_in,
)
from tests.support.faultproxy import FaultProxy
from tests.support.pods import MakePod
from tests.support.rest import Rest
from tests.support.waiting import wait_until

DENIED = 'admission webhook "mcontainerrecreaterequest.kb.io" denied the request: '
INACTIVE = "not allowed to recreate containers in an inactive Pod"
HOLD = "crr-gateway.test/hold"  # a finalizer: the deleted pod stays, inactive


def kruise_says(admin: Rest, namespace: str, pod: str) -> tuple[int, str]:
    """What kruise's webhook answers now to a CRR for ``pod`` (a dry run: nothing is made)."""
    status, answer = admin.call(
        "POST",
        f"/apis/{GROUP}/v1beta1/namespaces/{namespace}/{PLURAL}",
        {
            "apiVersion": f"{GROUP}/v1beta1",
            "kind": "ContainerRecreateRequest",
            "metadata": {"generateName": "probe-"},
            "spec": {"podName": pod, "containers": [{"name": "app"}]},
        },
        dryRun="All",
    )
    return status, str(answer.get("message", ""))


class CreateHook(KubeClient):
    """The real adapter, which calls ``before_create`` once, right before its first CRR create
    goes out: after the service has read and checked the pod, before kruise's webhook does."""

    def __init__(self, before_create: Callable[[], None], **options: Any) -> None:
        super().__init__(**options)
        self._before_create: Callable[[], None] | None = before_create

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        hook, self._before_create = self._before_create, None
        if hook is not None:
            hook()
        return super().create_crr(namespace, body, dry_run=dry_run)


def test_a_pod_that_turns_inactive_before_the_create_is_409_in_kruises_words(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    admin: Rest,
    namespace: str,
    make_pod: MakePod,
) -> None:
    make_pod("web-0", ["app"])
    core = k8s.CoreV1Api(kube)
    kruise: list[tuple[int, str]] = []

    def pod_turns_inactive() -> None:
        """Delete the pod (a finalizer keeps it, terminating) and wait until kruise's webhook
        refuses a CRR for it: its informer has seen the change."""
        core.patch_namespaced_pod("web-0", namespace, {"metadata": {"finalizers": [HOLD]}})
        core.delete_namespaced_pod("web-0", namespace)

        def refused() -> bool:
            kruise.append(kruise_says(admin, namespace, "web-0"))
            return kruise[-1][0] != 201

        wait_until("kruise's webhook to see the pod terminating", refused)

    with ExitStack() as stack:
        stack.callback(  # let the pod go at the end
            core.patch_namespaced_pod, "web-0", namespace, {"metadata": {"finalizers": None}}
        )
        api = start_service_in(
            stack,
            control_plane,
            [namespace],
            kube_factory=lambda settings: CreateHook(
                pod_turns_inactive,
                kubeconfig=settings.kubeconfig,
                request_timeout=settings.request_timeout_seconds,
            ),
        )
        refused = api.post(restarts_url(namespace), json={"pod": "web-0"})
        status, message = kruise[-1]
        # what kruise says, and what the service says after kruise said it
        assert (status, message) == (400, DENIED + INACTIVE)
        body = assert_problem(refused, 409, "pod-not-restartable")
        assert body["detail"] == INACTIVE
        assert crrs_in(kube, namespace) == []
        # asked again, the service refuses it itself (it reads the terminating pod now), in
        # the same words
        again = assert_problem(
            api.post(restarts_url(namespace), json={"pod": "web-0"}), 409, "pod-not-restartable"
        )
        assert again["detail"] == INACTIVE
    assert crrs_in(kube, namespace) == []


@pytest.fixture
def kruise_behind_proxy(control_plane: ControlPlane, tmp_path: Path) -> Iterator[FaultProxy]:
    """kruise-manager restarted to reach the apiserver through a ``FaultProxy``: pausing it
    freezes kruise's informers (its webhook server is still called by the apiserver directly).
    The plain kruise-manager is back after the test."""
    with FaultProxy(control_plane.apiserver_port) as proxy:
        kubeconfig = proxy.kubeconfig(control_plane.kubeconfig, tmp_path / "kruise.kubeconfig")
        control_plane.stop_kruise()
        try:
            control_plane.start_kruise(kubeconfig)
            yield proxy
        finally:
            proxy.paused = False
            control_plane.stop_kruise()
            control_plane.start_kruise()


def test_a_create_right_after_the_pod_appears_is_503_until_kruise_sees_it(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    admin: Rest,
    namespace: str,
    make_pod: MakePod,
    kruise_behind_proxy: FaultProxy,
) -> None:
    # kruise-manager starts its informers when first asked: a pod and a CRR (its dry run)
    # before the pause, so that none of its webhooks waits for an informer to sync
    make_pod("warm-up", ["app"])
    assert kruise_says(admin, namespace, "warm-up")[0] == 201
    with ExitStack() as stack:
        api = start_service_in(stack, control_plane, [namespace])
        kruise_behind_proxy.paused = True  # kruise hears of no new pod from here on
        make_pod("fresh", ["app"])  # runs, and the service sees it

        refused = api.post(restarts_url(namespace), json={"pod": "fresh"})
        status, message = kruise_says(admin, namespace, "fresh")
        assert (status, message) == (400, DENIED + "no found Pod named fresh")
        body = assert_problem(refused, 503, "openkruise-lagging")
        assert int(refused.headers["retry-after"]) > 0
        assert f"({message.removeprefix(DENIED)})" in body["detail"], body
        assert crrs_in(kube, namespace) == []

        kruise_behind_proxy.paused = False
        # kruise's informer catches up event by event; the caller retries as told once it
        # has the running pod (on its way it may hold the pod as created, unscheduled, and
        # refuse "a pending Pod")
        wait_until(
            "kruise's webhook to admit a CRR for the pod",
            lambda: kruise_says(admin, namespace, "fresh")[0] == 201,
        )

        def retried() -> httpx.Response | None:
            answer = api.post(restarts_url(namespace), json={"pod": "fresh"})
            if answer.status_code == 503:
                assert_problem(answer, 503, "openkruise-lagging")
                return None
            return answer

        created: httpx.Response = wait_until("the retry to be admitted", retried, timeout=60)
        assert created.status_code == 201, created.text
        assert follow(api, namespace, created.json()["name"])[-1]["result"] == "Succeeded"
    assert len(crrs_in(kube, namespace)) == 1
