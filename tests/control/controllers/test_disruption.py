"""The disruption controller against the real API server: PDB status from the selected pods
and their controllers' scale, the DisruptionAllowed condition, pending evictions, warnings; and
the eviction API spending the budget it computed."""

from __future__ import annotations

from typing import Any

import pytest

from control.client import errors
from control.controllers.disruption import PDBS, DisruptionController
from control.controllers.kinds import EVENTS, PODS, REPLICA_SETS
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"
LABELS = {"app": "web"}


def budget(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": LABELS}, **spec},
    }


async def status_of(cluster: Cluster, name: str = "web", **expected: Any):
    async def check() -> dict | None:
        status = (await cluster.client.get(PDBS, name, namespace=NS)).get("status") or {}
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    return await cluster.wait_for(check, what=f"PDB status {expected}")


async def ready_pods(
    cluster: Cluster, count: int, *, owner: dict | None = None, ready: int | None = None
) -> None:
    for index in range(count):
        await cluster.create_pod(f"web-{index}", labels=LABELS, owner=owner)
        await cluster.set_pod_status(
            f"web-{index}", ip=f"127.244.1.{index + 2}", ready=index < (ready or count)
        )


async def replica_set(cluster: Cluster, replicas: int) -> dict[str, Any]:
    return await cluster.client.create(
        REPLICA_SETS,
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
                },
            },
        },
    )


async def test_min_available_counts_ready_pods(apiserver):  # noqa: F811
    async with running(apiserver, DisruptionController) as cluster:
        await cluster.create_node("node-1")
        await ready_pods(cluster, 3, ready=2)
        await cluster.client.create(PDBS, budget(minAvailable=1))
        status = await status_of(
            cluster, currentHealthy=2, desiredHealthy=1, expectedPods=3, disruptionsAllowed=1
        )
        condition = status["conditions"][0]
        assert (condition["type"], condition["status"], condition["reason"]) == (
            "DisruptionAllowed",
            "True",
            "SufficientPods",
        )
        assert status["observedGeneration"] == 1
        # a pod turning unready leaves no disruption to spend
        await cluster.set_pod_status("web-0", ip="127.244.1.2", ready=False)
        status = await status_of(cluster, currentHealthy=1, disruptionsAllowed=0)
        assert (status["conditions"][0]["status"], status["conditions"][0]["reason"]) == (
            "False",
            "InsufficientPods",
        )


async def test_max_unavailable_is_taken_of_the_controllers_scale(apiserver):  # noqa: F811
    async with running(apiserver, DisruptionController) as cluster:
        await cluster.create_node("node-1")
        owner = await replica_set(cluster, 4)
        await ready_pods(cluster, 3, owner=owner)  # one of the four replicas is missing
        await cluster.client.create(PDBS, budget(maxUnavailable="50%"))
        await status_of(cluster, expectedPods=4, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)


async def test_unmanaged_pods_under_a_percentage_are_warned_about(apiserver):  # noqa: F811
    async with running(apiserver, DisruptionController) as cluster:
        await cluster.create_node("node-1")
        await ready_pods(cluster, 2)
        await cluster.client.create(PDBS, budget(minAvailable="50%"))
        await status_of(cluster, expectedPods=0, disruptionsAllowed=0)

        async def warned() -> list | None:
            events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
            found = [e for e in events if e["reason"] == "UnmanagedPods"]
            return found or None

        (event,) = await cluster.wait_for(warned, what="the UnmanagedPods warning")
        assert event["type"] == "Warning" and "were found to be unmanaged" in event["message"]
        assert "MatchLabels:map[string]string{app: web,}" in event["message"]


async def test_evictions_spend_the_budget_and_stop_at_zero(apiserver):  # noqa: F811
    async with running(apiserver, DisruptionController) as cluster:
        await cluster.create_node("node-1")
        await ready_pods(cluster, 3)
        await cluster.client.create(PDBS, budget(minAvailable=2))
        await status_of(cluster, disruptionsAllowed=1)
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": NS},
        }
        await cluster.client.create(PODS, eviction, namespace=NS, name="web-0", subresource="eviction")
        evicted = await cluster.client.get(PODS, "web-0", namespace=NS)
        assert evicted["metadata"].get("deletionTimestamp")  # graceful deletion has begun
        status = (await cluster.client.get(PDBS, "web", namespace=NS))["status"]
        assert status["disruptionsAllowed"] == 0 and "web-0" in status["disruptedPods"]
        await status_of(cluster, currentHealthy=2)  # the controller saw web-0 go

        second = {**eviction, "metadata": {"name": "web-1", "namespace": NS}}
        with pytest.raises(errors.TooManyRequestsError) as refused:
            await cluster.client.create(PODS, second, namespace=NS, name="web-1", subresource="eviction")
        assert refused.value.code == 429
        assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
        assert refused.value.details["causes"] == [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
            }
        ]
        # the evicted pod goes; the controller counts what is left and forgets the eviction
        await cluster.finish_pod_deletion("web-0", namespace=NS)
        status = await status_of(cluster, currentHealthy=2, disruptionsAllowed=0)
        assert "disruptedPods" not in status
