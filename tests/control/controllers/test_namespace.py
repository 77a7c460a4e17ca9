"""The Namespace controller against the real API server: deleting a namespace empties it, then
lets it go; pods terminating gracefully and finalizers hold it, and its status says why."""

from __future__ import annotations

from typing import Any

import pytest

from control.client.discovery import Discovery, GroupDiscoveryFailedError
from control.client.errors import ServiceUnavailableError
from control.controllers.kinds import CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, PODS, SECRETS, SERVICES
from control.controllers.namespace import (
    NamespaceController,
    deletable_namespaced_resources,
    upstream_remaining_delay,
)
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running


def fast(ctx, **kwargs):
    """The controller with a short wait for remaining content, so tests do not wait 16 s."""
    return NamespaceController(ctx, remaining_delay=lambda estimate: 0.1, **kwargs)


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, fast) as cluster:
        await cluster.create_node("node-1")
        yield cluster


def deployment(name: str, namespace: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }


def condition(namespace: dict, kind: str) -> dict[str, Any] | None:
    return next((c for c in namespace.get("status", {}).get("conditions") or () if c["type"] == kind), None)


async def fill(cluster: Cluster, namespace: str) -> None:
    await cluster.create_namespace(namespace)
    await cluster.client.create(CONFIG_MAPS, {"metadata": {"name": "settings", "namespace": namespace}})
    await cluster.client.create(SECRETS, {"metadata": {"name": "token", "namespace": namespace}})
    await cluster.client.create(
        SERVICES, {"metadata": {"name": "web", "namespace": namespace}, "spec": {"ports": [{"port": 80}]}}
    )
    await cluster.client.create(DEPLOYMENTS, deployment("web", namespace))
    await cluster.create_pod("loose", namespace=namespace, node=None)


async def test_deleting_a_namespace_deletes_its_content_then_the_namespace(cluster):
    await fill(cluster, "team")
    await fill(cluster, "bystander")
    await cluster.client.delete(NAMESPACES, "team")
    await cluster.wait_gone(NAMESPACES, "team")
    for resource in (CONFIG_MAPS, SECRETS, SERVICES, DEPLOYMENTS, PODS):
        assert (await cluster.client.list(resource, namespace="team"))["items"] == []
        assert (await cluster.client.list(resource, namespace="bystander"))["items"], resource.plural


async def test_gracefully_terminating_pods_hold_the_namespace(cluster):
    await cluster.create_namespace("slow")
    await cluster.create_pod("worker", namespace="slow", grace=30)
    await cluster.client.delete(NAMESPACES, "slow")

    async def waiting_for_the_pod():
        namespace = await cluster.client.get(NAMESPACES, "slow")
        remaining = condition(namespace, "NamespaceContentRemaining")
        return namespace if remaining and remaining["status"] == "True" else None

    namespace = await cluster.wait_for(waiting_for_the_pod, what="the NamespaceContentRemaining condition")
    assert namespace["status"]["phase"] == "Terminating"
    assert condition(namespace, "NamespaceContentRemaining")["message"] == (
        "Some resources are remaining: pods. has 1 resource instances"
    )
    assert condition(namespace, "NamespaceContentRemaining")["reason"] == "SomeResourcesRemain"
    assert condition(namespace, "NamespaceDeletionDiscoveryFailure")["status"] == "False"
    assert condition(namespace, "NamespaceDeletionContentFailure")["status"] == "False"
    assert condition(namespace, "NamespaceFinalizersRemaining")["status"] == "False"
    assert "kubernetes" in namespace["spec"]["finalizers"]
    pod = await cluster.client.get(PODS, "worker", namespace="slow")
    assert pod["metadata"]["deletionTimestamp"]
    await cluster.finish_pod_deletion("worker", namespace="slow")  # the kubelet stopped it
    await cluster.wait_gone(NAMESPACES, "slow")


async def test_finalizers_on_content_hold_the_namespace(cluster):
    await cluster.create_namespace("held")
    await cluster.client.create(
        CONFIG_MAPS,
        {"metadata": {"name": "guarded", "namespace": "held", "finalizers": ["example.com/hold"]}},
    )
    await cluster.client.delete(NAMESPACES, "held")

    async def finalizers_reported():
        namespace = await cluster.client.get(NAMESPACES, "held")
        held = condition(namespace, "NamespaceFinalizersRemaining")
        return held if held and held["status"] == "True" else None

    held = await cluster.wait_for(finalizers_reported, what="the NamespaceFinalizersRemaining condition")
    assert held["message"] == "Some finalizers are remaining: example.com/hold in 1 resource instances"
    assert held["reason"] == "SomeFinalizerRemain"
    await cluster.client.patch(CONFIG_MAPS, "guarded", {"metadata": {"finalizers": None}}, namespace="held")
    await cluster.wait_gone(NAMESPACES, "held")


async def test_only_the_kubernetes_finalizer_is_removed(cluster):
    await cluster.client.create(
        NAMESPACES,
        {"metadata": {"name": "shared"}, "spec": {"finalizers": ["kubernetes", "example.com/other"]}},
    )
    await cluster.client.create(CONFIG_MAPS, {"metadata": {"name": "settings", "namespace": "shared"}})
    await cluster.client.delete(NAMESPACES, "shared")

    async def released():
        namespace = await cluster.client.get(NAMESPACES, "shared")
        return namespace if namespace["spec"]["finalizers"] == ["example.com/other"] else None

    namespace = await cluster.wait_for(released, what="the kubernetes finalizer to go")
    assert namespace["status"]["phase"] == "Terminating"
    assert (await cluster.client.list(CONFIG_MAPS, namespace="shared"))["items"] == []
    await cluster.client.replace(
        NAMESPACES, {**namespace, "spec": {"finalizers": []}}, subresource="finalize"
    )
    await cluster.wait_gone(NAMESPACES, "shared")


async def test_active_namespaces_are_left_alone(cluster):
    controller: NamespaceController = cluster.controllers[0]
    await fill(cluster, "alive")
    await controller.reconcile("alive")
    await controller.reconcile("never-existed")
    assert (await cluster.client.list(CONFIG_MAPS, namespace="alive"))["items"]


class FaultyDiscovery(Discovery):
    """A fake: the real discovery, plus one group version that fails as a down aggregated API
    would (the lab's API server has no aggregation to take down)."""

    async def server_resources(self) -> list[dict[str, Any]]:
        resources = await super().server_resources()
        failure = ServiceUnavailableError(
            {"code": 503, "reason": "ServiceUnavailable", "message": "backend down"}
        )
        raise GroupDiscoveryFailedError(failed={"metrics.k8s.io/v1beta1": failure}, resources=resources)


async def test_a_discovery_failure_is_reported_and_retried(apiserver):  # noqa: F811
    async with running(apiserver) as cluster:
        controller = fast(cluster.ctx, discovery=FaultyDiscovery(cluster.client))
        cluster.ctx.informers.start()
        await fill(cluster, "partial")
        await cluster.client.delete(NAMESPACES, "partial")
        with pytest.raises(Exception, match="Discovery failed for some groups, 1 failing"):
            await controller.reconcile("partial")
        namespace = await cluster.client.get(NAMESPACES, "partial")
        failure = condition(namespace, "NamespaceDeletionDiscoveryFailure")
        assert failure["status"] == "True" and failure["reason"] == "DiscoveryFailed"
        assert "metrics.k8s.io/v1beta1" in failure["message"]
        # What was discovered was deleted all the same; the namespace waits for complete discovery.
        assert (await cluster.client.list(CONFIG_MAPS, namespace="partial"))["items"] == []
        assert "kubernetes" in namespace["spec"]["finalizers"]


def test_deletable_resources_come_from_discovery_once_per_group():
    documents = [
        {
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "pods",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["list", "delete", "deletecollection"],
                },
                {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get", "patch"]},
                {"name": "bindings", "namespaced": True, "kind": "Binding", "verbs": ["create"]},
                {"name": "nodes", "namespaced": False, "kind": "Node", "verbs": ["list", "delete"]},
            ],
        },
        {
            "groupVersion": "autoscaling/v2",
            "resources": [{"name": "hpa", "namespaced": True, "verbs": ["list", "delete"]}],
        },
        {
            "groupVersion": "autoscaling/v1",
            "resources": [{"name": "hpa", "namespaced": True, "verbs": ["list", "delete"]}],
        },
    ]
    found = deletable_namespaced_resources(documents)
    assert [(r.group, r.resource.version, r.plural, r.deletable_collection) for r in found] == [
        ("", "v1", "pods", True),
        ("autoscaling", "v2", "hpa", False),
    ]


def test_upstream_waits_half_the_estimate_plus_a_second():
    assert upstream_remaining_delay(30) == 16
    assert upstream_remaining_delay(0) == 1
