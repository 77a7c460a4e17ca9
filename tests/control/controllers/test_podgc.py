"""The pod garbage collector against a real API server: which pods it deletes, in what order, and
that it marks them Failed first; passes run on a short period and quarantine so nothing waits
for upstream's 20 s and 40 s."""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client import CollectorRegistry

from control.client import errors
from control.client.rest import RESTClient
from control.controllers.kinds import NODES, PODS
from control.controllers.manager import ControllerContext
from control.controllers.podgc import PodGCController, deletion_order, is_terminated
from tests.control.apiserver import conftest as apiserver_fixtures
from tests.control.apiserver.conftest import RunningServer
from tests.control.controllers.harness import Cluster, running

apiserver = apiserver_fixtures.apiserver  # the shared fixture


def pod(name: str, *, phase: str | None = None, created: str = "", reason: str = "") -> dict[str, Any]:
    status = {"phase": phase} if phase else {}
    if reason:
        status["reason"] = reason
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_terminated_means_a_final_phase():
    assert [is_terminated(pod("p", phase=phase)) for phase in ("Succeeded", "Failed")] == [True, True]
    assert [is_terminated(pod("p", phase=phase)) for phase in ("Pending", "Running", "Unknown")] == [
        False,
        False,
        False,
    ]


def test_deletion_order_is_evicted_first_then_oldest_then_name():
    pods = [
        pod("young", phase="Succeeded", created="2030-01-01T00:00:09Z"),
        pod("b-old", phase="Failed", created="2030-01-01T00:00:01Z"),
        pod("a-old", phase="Succeeded", created="2030-01-01T00:00:01Z"),
        pod("evicted", phase="Failed", created="2030-01-01T00:00:05Z", reason="Evicted"),
    ]
    assert [p["metadata"]["name"] for p in deletion_order(pods)] == ["evicted", "a-old", "b-old", "young"]


def podgc(
    *,
    threshold: int = 12500,
    quarantine: float = 0.3,
    period: float = 0.05,
    clock: Any = None,
    registry: CollectorRegistry | None = None,
):
    def build(ctx: ControllerContext) -> PodGCController:
        options = dataclasses.replace(ctx.options, terminated_pod_gc_threshold=threshold)
        ctx = dataclasses.replace(ctx, registry=registry)
        timing: dict[str, Any] = {"period": period, "quarantine": quarantine}
        if clock is not None:
            timing["clock"] = clock
        return PodGCController(dataclasses.replace(ctx, options=options), **timing)

    return build


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def phase_of(client: RESTClient, name: str) -> str | None:
    try:
        found = await client.get(PODS, name, namespace="default")
    except errors.NotFoundError:
        return None
    return found.get("status", {}).get("phase")


async def exists(client: RESTClient, name: str) -> bool:
    return await phase_of(client, name) is not None


async def marked_then_deleted(cluster: Cluster, name: str, *, since: str) -> dict[str, Any]:
    """The pod as the collector marked it (its MODIFIED event), once it has also been deleted."""
    seen: list[tuple[str, dict[str, Any]]] = []
    async with await cluster.client.watch(PODS, namespace="default", resource_version=since) as changes:
        async for event in changes:
            if event.object["metadata"]["name"] == name:
                seen.append((str(event.type), event.object))
                if event.type == "DELETED":
                    break
    return [obj for kind, obj in seen if kind == "MODIFIED"][-1]


async def test_pods_of_a_deleted_node_are_marked_failed_and_deleted(apiserver: RunningServer):
    async with running(apiserver, podgc()) as cluster:
        await cluster.create_node("node-1")
        await cluster.create_pod("kept", node="node-1")
        created = await cluster.create_pod("orphan", node="ghost")
        marked = await marked_then_deleted(cluster, "orphan", since=created["metadata"]["resourceVersion"])
        assert marked["metadata"]["uid"] == created["metadata"]["uid"]
        assert marked["status"]["phase"] == "Failed"
        disruption = [c for c in marked["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert disruption == [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists",
                "lastTransitionTime": disruption[0]["lastTransitionTime"],
            }
        ]
        assert await exists(cluster.client, "kept")


async def test_force_deletions_are_counted_under_upstreams_metric_names(apiserver: RunningServer):
    registry, clock = CollectorRegistry(), ManualClock()
    async with running(
        apiserver, podgc(quarantine=40, period=3600, clock=clock, registry=registry)
    ) as cluster:
        controller = cluster.controllers[0]
        assert isinstance(controller, PodGCController)
        await cluster.create_pod("orphan", node="ghost")
        await cluster.wait_for(lambda: _cached_pod(controller), what="the pod in the collector's cache")
        await controller.gc()  # ghost missing since 0
        clock.now = 41
        await controller.gc()
        await cluster.wait_gone(PODS, "orphan", namespace="default")
    orphaned = {"namespace": "default", "reason": "orphaned"}
    assert registry.get_sample_value("pod_gc_collector_force_delete_pods_total", orphaned) == 1
    assert registry.get_sample_value("pod_gc_collector_force_delete_pod_errors_total", orphaned) is None


async def test_a_disruption_target_already_true_keeps_its_transition_time(apiserver: RunningServer):
    """As upstream's UpdatePodCondition: the taint manager marked the pod first; the collector
    changes the reason and message, not when the condition became true."""
    async with running(apiserver, podgc()) as cluster:
        await cluster.create_pod("evicted", node="ghost")
        earlier = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": "2030-01-01T00:00:00Z",
        }
        patched = await cluster.client.patch(
            PODS, "evicted", {"status": {"conditions": [earlier]}}, namespace="default", subresource="status"
        )
        marked = await marked_then_deleted(cluster, "evicted", since=patched["metadata"]["resourceVersion"])
        (disruption,) = [c for c in marked["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert (disruption["reason"], disruption["lastTransitionTime"]) == (
            "DeletionByPodGC",
            "2030-01-01T00:00:00Z",
        )


async def test_a_node_missing_for_less_than_the_quarantine_keeps_its_pods(apiserver: RunningServer):
    clock = ManualClock()
    async with running(apiserver, podgc(quarantine=40, period=3600, clock=clock)) as cluster:
        controller = cluster.controllers[0]
        assert isinstance(controller, PodGCController)
        await cluster.create_pod("early", node="late-node")
        await controller.gc()  # late-node missing since 0
        clock.now = 39
        await controller.gc()
        await cluster.create_node("late-node")
        await cluster.wait_for(
            lambda: _cached(controller, "late-node"), what="the node in the collector's cache"
        )
        clock.now = 41
        await controller.gc()
        assert await phase_of(cluster.client, "early") == "Pending"
        # Gone again: the quarantine starts over from when it went missing.
        await cluster.client.delete(NODES, "late-node")
        await cluster.wait_for(
            lambda: _uncached(controller, "late-node"), what="the node gone from the collector's cache"
        )
        await controller.gc()  # missing since 41
        clock.now = 80
        await controller.gc()
        assert await phase_of(cluster.client, "early") == "Pending"
        clock.now = 82
        await controller.gc()
        await cluster.wait_gone(PODS, "early", namespace="default")


async def _cached_pod(controller: PodGCController) -> bool:
    return bool(controller.pods())


async def _cached(controller: PodGCController, node: str) -> bool:
    return controller.knows_node(node)


async def _uncached(controller: PodGCController, node: str) -> bool:
    return not controller.knows_node(node)


async def test_finished_pods_over_the_threshold_go_oldest_first(apiserver: RunningServer):
    async with running(apiserver, podgc(threshold=2)) as cluster:
        await cluster.create_node("node-1")
        for name in ("done-1", "done-2", "done-3"):
            await cluster.create_pod(name)
            await cluster.set_pod_status(name, ip=None, ready=False, phase="Succeeded")
        await cluster.create_pod("running")
        await cluster.set_pod_status("running", ip=None, ready=True, phase="Running")
        # The three were created within a second or so: age first, then the name, picks done-1.
        await cluster.wait_gone(PODS, "done-1", namespace="default")
        assert [await exists(cluster.client, name) for name in ("done-2", "done-3", "running")] == [
            True,
            True,
            True,
        ]


async def test_unscheduled_terminating_pods_are_failed_and_force_deleted(apiserver: RunningServer):
    async with running(apiserver, podgc()) as cluster:
        body = {
            "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        }
        await cluster.client.create(PODS, body, namespace="default")
        await cluster.client.delete(PODS, "stuck", namespace="default")
        # The finalizer keeps it; the collector still marks it Failed and deletes it with no grace.
        await cluster.wait_for(
            lambda: _phase_is(cluster, "stuck", "Failed"), what="the stuck pod to be marked Failed"
        )
        await cluster.client.patch(PODS, "stuck", {"metadata": {"finalizers": []}}, namespace="default")
        await cluster.wait_gone(PODS, "stuck", namespace="default")


async def _phase_is(cluster: Cluster, name: str, phase: str) -> bool:
    return await phase_of(cluster.client, name) == phase


async def test_terminating_pods_on_an_out_of_service_node_are_force_deleted(apiserver: RunningServer):
    async with running(apiserver, podgc()) as cluster:
        await cluster.create_node("down")
        await cluster.create_node("up")
        await cluster.client.patch(
            NODES,
            "down",
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            subresource="status",
        )
        await cluster.create_pod("on-down", node="down", grace=600)
        await cluster.create_pod("on-up", node="up", grace=600)
        await cluster.client.delete(PODS, "on-down", namespace="default")
        await cluster.client.delete(PODS, "on-up", namespace="default")
        controller = cluster.controllers[0]
        assert isinstance(controller, PodGCController)
        await controller.gc()
        # Not Ready alone is not enough: the pod waits for its kubelet, as upstream.
        assert await exists(cluster.client, "on-down")
        taint = {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}
        await cluster.client.patch(NODES, "down", {"spec": {"taints": [taint]}})
        await cluster.wait_gone(PODS, "on-down", namespace="default")
        assert await exists(cluster.client, "on-up")
