"""The garbage collector against the real API server, on ReplicaSet → Pod chains built by hand
(ownerReferences written by the test; no ReplicaSet controller runs)."""

from __future__ import annotations

import asyncio

import pytest

from control.client import errors
from control.controllers import garbagecollector
from control.controllers.garbagecollector import DependencyGraph, monitored_resources
from control.controllers.kinds import CONFIG_MAPS, DEPLOYMENTS, PODS, REPLICA_SETS
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, owner_reference, running


def replica_set(name: str, *, owner: dict | None = None) -> dict:
    metadata: dict = {"name": name, "namespace": "default"}
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {
        "metadata": metadata,
        "spec": {
            "replicas": 0,  # nothing reconciles it here; the test makes its pods
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }


async def chain(cluster: Cluster, name: str = "web", *, pods: int = 2, node: str | None = None) -> dict:
    rs = await cluster.client.create(REPLICA_SETS, replica_set(name))
    for index in range(pods):
        await cluster.create_pod(f"{name}-{index}", labels={"app": name}, node=node, owner=rs)
    return rs


async def pod_names(cluster: Cluster) -> list[str]:
    return sorted(
        p["metadata"]["name"] for p in (await cluster.client.list(PODS, namespace="default"))["items"]
    )


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, garbagecollector.new_controller) as cluster:
        await cluster.create_node("node-1")
        yield cluster


async def test_background_deletion_removes_the_dependents(cluster):
    await chain(cluster)
    await chain(cluster, "keep")
    await cluster.client.delete(REPLICA_SETS, "web", namespace="default")  # background is the default
    await cluster.wait_gone(PODS, "web-0", namespace="default")
    await cluster.wait_gone(PODS, "web-1", namespace="default")
    assert await pod_names(cluster) == ["keep-0", "keep-1"]


async def test_foreground_deletion_waits_for_blocking_dependents(cluster):
    rs = await chain(cluster, pods=1, node="node-1")  # bound: terminates gracefully
    await cluster.create_pod("loose", owner=None, node=None)
    await cluster.client.create(
        CONFIG_MAPS,
        {
            "metadata": {
                "name": "non-blocking",
                "namespace": "default",
                "ownerReferences": [owner_reference(rs, controller=False, block=False)],
            }
        },
    )
    await cluster.client.delete(REPLICA_SETS, "web", namespace="default", propagation_policy="Foreground")

    async def pod_terminating():
        pod = await cluster.client.get(PODS, "web-0", namespace="default")
        return pod if pod["metadata"].get("deletionTimestamp") else None

    await cluster.wait_for(pod_terminating, what="the pod to be deleted by the collector")
    await cluster.wait_gone(CONFIG_MAPS, "non-blocking", namespace="default")  # deleted, not waited for
    held = await cluster.client.get(REPLICA_SETS, "web", namespace="default")
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"] and held["metadata"]["deletionTimestamp"]
    await cluster.finish_pod_deletion("web-0")  # the kubelet is done with it
    await cluster.wait_gone(REPLICA_SETS, "web", namespace="default")
    assert await pod_names(cluster) == ["loose"]


async def test_foreground_deletion_cascades_down_a_chain(cluster):
    deployment = await cluster.client.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "app"}},
                "template": {
                    "metadata": {"labels": {"app": "app"}},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
                },
            },
        },
    )
    rs = await cluster.client.create(REPLICA_SETS, replica_set("app-5d9", owner=deployment))
    await cluster.create_pod("app-5d9-x", owner=rs, node=None)
    await cluster.client.delete(DEPLOYMENTS, "app", namespace="default", propagation_policy="Foreground")
    await cluster.wait_gone(DEPLOYMENTS, "app", namespace="default")
    with pytest.raises(errors.NotFoundError):
        await cluster.client.get(REPLICA_SETS, "app-5d9", namespace="default")
    with pytest.raises(errors.NotFoundError):
        await cluster.client.get(PODS, "app-5d9-x", namespace="default")


async def test_orphan_deletion_keeps_the_dependents_and_releases_them(cluster):
    rs = await chain(cluster)
    await cluster.client.delete(REPLICA_SETS, "web", namespace="default", propagation_policy="Orphan")
    await cluster.wait_gone(REPLICA_SETS, "web", namespace="default")
    for name in ("web-0", "web-1"):
        pod = await cluster.client.get(PODS, name, namespace="default")
        assert not pod["metadata"].get("ownerReferences"), pod["metadata"]
        assert not pod["metadata"].get("deletionTimestamp")
    assert rs["metadata"]["uid"]


async def test_dependents_of_owners_that_never_existed_are_deleted(cluster):
    ghost = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"},
    }
    await cluster.create_pod("haunted", owner=ghost, node=None)
    await cluster.wait_gone(PODS, "haunted", namespace="default")


async def test_a_recreated_owner_does_not_adopt_the_old_dependents(cluster):
    old = await chain(cluster, pods=1)
    await cluster.client.delete(REPLICA_SETS, "web", namespace="default", propagation_policy="Orphan")
    await cluster.wait_gone(REPLICA_SETS, "web", namespace="default")
    new = await cluster.client.create(REPLICA_SETS, replica_set("web"))
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    # A dependent pointing at the old uid, by the name the new owner now has: dangling.
    await cluster.create_pod("stale", owner=old, node=None)
    await cluster.wait_gone(PODS, "stale", namespace="default")
    assert await cluster.client.get(REPLICA_SETS, "web", namespace="default")
    assert await pod_names(cluster) == ["web-0"]  # orphaned earlier, so no longer a dependent


async def test_references_to_missing_owners_are_dropped_while_one_owner_lives(cluster):
    alive = await cluster.client.create(REPLICA_SETS, replica_set("alive"))
    gone = await cluster.client.create(REPLICA_SETS, replica_set("gone"))
    await cluster.client.create(
        CONFIG_MAPS,
        {
            "metadata": {
                "name": "shared",
                "namespace": "default",
                "ownerReferences": [
                    owner_reference(alive, controller=False),
                    owner_reference(gone, controller=False),
                ],
            }
        },
    )
    await cluster.client.delete(REPLICA_SETS, "gone", namespace="default")

    async def one_reference_left():
        config_map = await cluster.client.get(CONFIG_MAPS, "shared", namespace="default")
        references = config_map["metadata"].get("ownerReferences") or []
        return references if len(references) == 1 else None

    references = await cluster.wait_for(one_reference_left, what="the dangling reference to go")
    assert references[0]["uid"] == alive["metadata"]["uid"]


async def test_collects_what_was_left_while_it_was_down(apiserver):  # noqa: F811
    async with running(apiserver) as cluster:
        await chain(cluster)
        await cluster.client.delete(REPLICA_SETS, "web", namespace="default")
        assert len(await pod_names(cluster)) == 2  # nobody collects yet
    async with running(apiserver, garbagecollector.new_controller) as cluster:
        await cluster.wait_gone(PODS, "web-0", namespace="default")
        await cluster.wait_gone(PODS, "web-1", namespace="default")


# --- the graph and the monitors, without a server ------------------------------------------


def _obj(
    uid: str, *owners: str, kind: str = "Pod", finalizers: tuple[str, ...] = (), deleting: bool = False
) -> dict:
    metadata: dict = {
        "name": uid,
        "namespace": "default",
        "uid": uid,
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": o, "blockOwnerDeletion": True}
            for o in owners
        ],
        "finalizers": list(finalizers),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def test_graph_links_owners_and_dependents_through_virtual_nodes():
    deletes: list[str] = []
    orphans: list[str] = []
    graph = DependencyGraph(attempt_delete=deletes.append, attempt_orphan=orphans.append)
    graph.observe(_obj("pod-a", "rs"))
    assert graph.nodes["rs"].virtual and graph.nodes["rs"].dependents == {"pod-a"}
    assert deletes == ["rs"]  # an owner not seen yet is checked against the API
    graph.observe(_obj("rs", kind="ReplicaSet"))
    assert not graph.nodes["rs"].virtual
    graph.observe(_obj("rs", kind="ReplicaSet", finalizers=("foregroundDeletion",), deleting=True))
    assert graph.nodes["rs"].deleting_dependents and deletes[-2:] == ["pod-a", "rs"]
    deletes.clear()
    graph.observe_deletion(_obj("pod-a", "rs"))
    assert graph.nodes["rs"].dependents == set() and deletes == ["rs"]  # the waiting owner looks again
    graph.observe(_obj("rs", kind="ReplicaSet", finalizers=("orphan",), deleting=True))
    assert orphans == ["rs"]


def test_a_dependent_seen_after_its_owner_began_foreground_deletion_is_queued():
    """The owner's and the dependent's informers deliver in either order."""
    deletes: list[str] = []
    graph = DependencyGraph(attempt_delete=deletes.append, attempt_orphan=lambda uid: None)
    graph.observe(_obj("rs", kind="ReplicaSet", finalizers=("foregroundDeletion",), deleting=True))
    deletes.clear()

    graph.observe(_obj("cm", "rs", kind="ConfigMap"))

    assert deletes == ["cm"] and graph.nodes["rs"].dependents == {"cm"}
    deletes.clear()
    graph.observe(_obj("cm", "rs", kind="ConfigMap"))  # an update with the same owners: once is enough
    assert deletes == []


def test_graph_forgets_virtual_owners_nobody_references():
    graph = DependencyGraph(attempt_delete=lambda uid: None, attempt_orphan=lambda uid: None)
    graph.observe(_obj("pod-a", "rs-1"))
    graph.observe(_obj("pod-a", "rs-2"))  # the reference moved
    assert "rs-1" not in graph.nodes and graph.nodes["rs-2"].dependents == {"pod-a"}
    graph.observe_deletion(_obj("pod-a", "rs-2"))
    assert len(graph) == 0


def test_monitors_every_deletable_watchable_resource_but_events():
    documents = [
        {
            "groupVersion": "v1",
            "resources": [
                {"name": "pods", "namespaced": True, "kind": "Pod", "verbs": ["list", "watch", "delete"]},
                {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                {"name": "events", "namespaced": True, "kind": "Event", "verbs": ["list", "watch", "delete"]},
                {"name": "bindings", "namespaced": True, "kind": "Binding", "verbs": ["create"]},
                {"name": "nodes", "namespaced": False, "kind": "Node", "verbs": ["list", "watch", "delete"]},
            ],
        },
        {
            "groupVersion": "events.k8s.io/v1",
            "resources": [
                {"name": "events", "namespaced": True, "kind": "Event", "verbs": ["list", "watch", "delete"]}
            ],
        },
    ]
    assert [(r.group, r.plural, r.namespaced) for r in monitored_resources(documents)] == [
        ("", "pods", True),
        ("", "nodes", False),
    ]


async def test_runs_again_after_being_stopped(apiserver):  # noqa: F811
    async with running(apiserver) as cluster:
        collector = garbagecollector.GarbageCollector(cluster.ctx)
        for attempt in ("first", "second"):  # as the manager restarts a crashed controller
            task = asyncio.create_task(collector.run())
            await chain(cluster, attempt, pods=1)
            await cluster.client.delete(REPLICA_SETS, attempt, namespace="default")
            await cluster.wait_gone(PODS, f"{attempt}-0", namespace="default")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        for informer in cluster.ctx.informers.informers():
            assert not informer._handlers, f"{informer.name} kept handlers of stopped runs"
