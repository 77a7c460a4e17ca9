"""A pod's RuntimeClass on a real node agent: the process runtime has one handler, ``runc``, so a
class with that handler runs its pods as any other pod, while a class with another handler (or a
class that does not exist yet) leaves the pod ``ContainerCreating`` with upstream's
``FailedCreatePodSandBox`` event, retried until the sandbox can be made."""

from __future__ import annotations

import pytest

from control.kubelet.pods import RUNTIME_CLASSES
from control.kubelet.runtime.process import check_runtime_handler
from control.kubelet.runtime.protocol import RuntimeHandlerError
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import Cluster, condition, pod, shell, state_of


def test_the_process_runtime_has_only_the_runc_handler() -> None:
    check_runtime_handler("")
    check_runtime_handler("runc")
    with pytest.raises(RuntimeHandlerError) as caught:
        check_runtime_handler("kata")
    assert str(caught.value) == (
        'rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "kata" is configured'
    )


async def runtime_class(cluster: Cluster, name: str, handler: str) -> None:
    body = {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": name},
        "handler": handler,
    }
    await cluster.client.create(RUNTIME_CLASSES, body)


def creating(pod_obj: dict) -> bool:
    return state_of(pod_obj, "app").get("waiting", {}).get("reason") == "ContainerCreating"


async def test_a_runc_class_runs_and_another_handler_stays_pending(cluster: Cluster) -> None:
    await cluster.start_agent()
    await runtime_class(cluster, "default-runc", "runc")
    await runtime_class(cluster, "kata", "kata")
    await cluster.create_pod(pod("runs", shell("app", "sleep 60"), runtimeClassName="default-runc"))
    await cluster.create_pod(pod("stuck", shell("app", "sleep 60"), runtimeClassName="kata"))

    running = await cluster.wait_pod("runs", lambda p: condition(p, "Ready").get("status") == "True")
    assert running["status"]["phase"] == "Running"

    await cluster.wait_event(
        "stuck",
        "FailedCreatePodSandBox",
        contains=(
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: "
            'no runtime for "kata" is configured'
        ),
    )
    stuck = await cluster.wait_pod("stuck", creating)
    assert stuck["status"]["phase"] == "Pending"
    assert "podIP" not in stuck["status"]  # no sandbox, no address
    assert condition(stuck, "PodReadyToStartContainers").get("status") == "False"
    events = [e for e in await cluster.events("stuck") if e["reason"] == "FailedCreatePodSandBox"]
    assert events[0]["type"] == "Warning"
    assert not [e for e in await cluster.events("stuck") if e["reason"] in ("Created", "Started")]

    await cluster.client.delete(PODS, "stuck", namespace="default")
    await cluster.wait_gone("stuck")


async def test_a_pod_waits_for_its_missing_class_and_starts_once_it_exists(cluster: Cluster) -> None:
    # Admission refuses a pod whose class does not exist; a class deleted after the pod was
    # admitted is what the node agent meets.
    await runtime_class(cluster, "later", "runc")
    await cluster.create_pod(pod("late", shell("app", "sleep 60"), runtimeClassName="later"))
    await cluster.client.delete(RUNTIME_CLASSES, "later")
    await cluster.start_agent()
    await cluster.wait_event(
        "late",
        "FailedCreatePodSandBox",
        contains='Failed to create pod sandbox: runtimeclass.node.k8s.io "later" not found',
    )
    await cluster.wait_pod("late", creating)
    await runtime_class(cluster, "later", "runc")  # the retry finds it
    started = await cluster.wait_pod("late", lambda p: condition(p, "Ready").get("status") == "True")
    assert started["status"]["podIP"].startswith("127.244.")
