"""The DaemonSet controller: node eligibility on its own, then the controller against the real API
server. No scheduler or kubelet runs: the tests bind each daemon pod to the node its affinity
pins (``pods/binding``), write its status through ``pods/status`` and finish graceful deletions.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from control.client import errors
from control.controllers.controllerrevision import CONTROLLER_REVISION_HASH_LABEL
from control.controllers.daemonset import (
    DaemonSetController,
    add_daemon_tolerations,
    fits_node_affinity,
    node_should_run_daemon_pod,
    pin_to_node,
    target_node_name,
)
from control.controllers.kinds import CONTROLLER_REVISIONS, DAEMON_SETS, EVENTS, NODES, PODS
from control.controllers.ownership import format_time
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def node(name: str, *, labels: dict[str, str] | None = None, taints: list | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
    }


def daemonset(
    name: str = "agent", *, image: str = "kubelab", strategy: dict | None = None, **spec: Any
) -> dict:
    pod_spec: dict[str, Any] = {"containers": [{"name": "agent", "image": image}]}
    for key in ("nodeSelector", "tolerations", "affinity", "hostNetwork"):
        if key in spec:
            pod_spec[key] = spec.pop(key)
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            **spec,
        },
    }


def controller(ctx):
    return DaemonSetController(ctx, workers=2)


# --- eligibility -----------------------------------------------------------------------------------


def test_daemon_pods_get_upstreams_tolerations():
    spec: dict[str, Any] = {
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    }
    add_daemon_tolerations(spec)
    assert spec["tolerations"] == DAEMON_TOLERATIONS  # the existing one was replaced, not doubled
    host: dict[str, Any] = {"hostNetwork": True}
    add_daemon_tolerations(host)
    assert host["tolerations"][-1] == {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    }


@pytest.mark.parametrize(
    ("requirement", "labels", "expected"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"zone": "a"}, True),
        ({"key": "zone", "operator": "In", "values": ["a"]}, {}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"zone": "a"}, False),
        ({"key": "zone", "operator": "Exists"}, {"zone": ""}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, {"zone": ""}, False),
        ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"cores": "8"}, True),
        ({"key": "cores", "operator": "Lt", "values": ["4"]}, {"cores": "8"}, False),
        ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"cores": "many"}, False),
        ({"key": "cores", "operator": "Gt", "values": ["4"]}, {}, False),
        ({"key": "zone", "operator": "Near", "values": ["a"]}, {"zone": "a"}, False),
    ],
)
def test_node_affinity_operators(requirement, labels, expected):
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
                }
            }
        }
    }
    assert fits_node_affinity(spec, {"metadata": {"name": "n", "labels": labels}}) is expected


def terms(*node_selector_terms: dict[str, Any]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": list(node_selector_terms)}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}


def test_node_affinity_terms_selectors_and_fields():
    node_a = {"metadata": {"name": "a", "labels": {"disk": "ssd"}}}
    assert fits_node_affinity({}, node_a)
    assert fits_node_affinity({"nodeSelector": {"disk": "ssd"}}, node_a)
    assert not fits_node_affinity({"nodeSelector": {"disk": "hdd"}}, node_a)
    assert not fits_node_affinity(terms({}), node_a)  # an empty term matches nothing
    assert fits_node_affinity(
        terms({}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}), node_a
    )
    assert not fits_node_affinity(
        terms({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}), node_a
    )
    assert not fits_node_affinity(
        terms({"matchFields": [{"key": "spec.other", "operator": "Exists"}]}), node_a
    )


def test_which_nodes_run_and_keep_daemon_pods():
    ds = daemonset(nodeSelector={"role": "web"})
    plain = node("plain", labels={"role": "web"})
    assert node_should_run_daemon_pod(plain, ds) == (True, True)
    assert node_should_run_daemon_pod(node("other"), ds) == (False, False)
    cordoned = node(
        "cordoned",
        labels={"role": "web"},
        taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
    )
    assert node_should_run_daemon_pod(cordoned, ds) == (True, True)
    dedicated = node(
        "dedicated",
        labels={"role": "web"},
        taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
    )
    assert node_should_run_daemon_pod(dedicated, ds) == (False, True)  # no new pod, keep a running one
    evicting = node(
        "evicting",
        labels={"role": "web"},
        taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}],
    )
    assert node_should_run_daemon_pod(evicting, ds) == (False, False)
    unreachable = node(
        "gone",
        labels={"role": "web"},
        taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}],
    )
    assert node_should_run_daemon_pod(unreachable, ds) == (True, True)
    tolerant = daemonset(
        nodeSelector={"role": "web"}, tolerations=[{"key": "dedicated", "operator": "Exists"}]
    )
    assert node_should_run_daemon_pod(evicting, tolerant) == (True, True)
    pinned = copy.deepcopy(ds)
    pinned["spec"]["template"]["spec"]["nodeName"] = "plain"
    assert node_should_run_daemon_pod(plain, pinned) == (True, True)
    assert node_should_run_daemon_pod(node("elsewhere", labels={"role": "web"}), pinned) == (False, False)


def test_pinning_replaces_required_terms_and_is_read_back():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
        },
        "podAntiAffinity": {},
    }
    pinned = pin_to_node(affinity, "node-1")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
    ]
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert "podAntiAffinity" in pinned
    original = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert original[0]["matchExpressions"]  # the input is left alone
    assert target_node_name({"spec": {"affinity": pin_to_node(None, "n")}}) == "n"
    assert target_node_name({"spec": {"nodeName": "bound", "affinity": pin_to_node(None, "n")}}) == "bound"
    assert target_node_name({"spec": {}}) is None


# --- the controller --------------------------------------------------------------------------------


async def ds_pods(cluster: Cluster, name: str = "agent") -> list[dict[str, Any]]:
    return (await cluster.client.list(PODS, namespace=NS, label_selector=f"app={name}"))["items"]


async def pods_by_node(cluster: Cluster, name: str = "agent") -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pod in await ds_pods(cluster, name):
        grouped.setdefault(target_node_name(pod) or "", []).append(pod)
    return grouped


async def run_pods(cluster: Cluster, name: str = "agent") -> None:
    """Play scheduler and kubelet: bind unbound pods to their pinned node, make them Running and Ready."""
    for pod in await ds_pods(cluster, name):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        pod_name = pod["metadata"]["name"]
        if not pod["spec"].get("nodeName"):
            target = target_node_name(pod)
            await cluster.client.create(
                PODS,
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": pod_name, "namespace": NS},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": target},
                },
                subresource="binding",
            )
        if not any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in pod["status"].get("conditions") or ()
        ):
            await cluster.client.patch(
                PODS,
                pod_name,
                {
                    "status": {
                        "phase": "Running",
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "True",
                                "lastTransitionTime": format_time(datetime.now(UTC)),
                            }
                        ],
                    }
                },
                namespace=NS,
                subresource="status",
            )


async def finish_deletions(cluster: Cluster, name: str = "agent") -> None:
    for pod in await ds_pods(cluster, name):
        if pod["metadata"].get("deletionTimestamp"):
            await cluster.finish_pod_deletion(pod["metadata"]["name"])


async def status_of(cluster: Cluster, name: str = "agent") -> dict[str, Any]:
    return (await cluster.client.get(DAEMON_SETS, name, namespace=NS)).get("status") or {}


async def test_one_pinned_pod_per_eligible_node_and_status(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        client = cluster.client
        await client.create(NODES, node("web-1", labels={"role": "web"}))
        await client.create(
            NODES,
            node(
                "web-2",
                labels={"role": "web"},
                taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
            ),
        )
        await client.create(
            NODES,
            node(
                "web-3",
                labels={"role": "web"},
                taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
            ),
        )
        await client.create(NODES, node("db-1", labels={"role": "db"}))
        created = await client.create(DAEMON_SETS, daemonset(nodeSelector={"role": "web"}))

        async def two_pods() -> dict | None:
            grouped = await pods_by_node(cluster)
            return grouped if sorted(grouped) == ["web-1", "web-2"] else None

        grouped = await cluster.wait_for(two_pods, what="a pod on web-1 and web-2")
        pod = grouped["web-1"][0]
        revisions = (await client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]
        assert len(revisions) == 1 and revisions[0]["revision"] == 1
        hash_value = revisions[0]["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
        assert revisions[0]["metadata"]["name"] == f"agent-{hash_value}"
        assert revisions[0]["data"]["spec"]["template"]["$patch"] == "replace"
        assert pod["metadata"]["generateName"] == "agent-"
        assert pod["metadata"]["labels"] == {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: hash_value}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["web-1"]}]}
            ]
        }
        assert pod["spec"]["tolerations"] == DAEMON_TOLERATIONS
        assert not pod["spec"].get("nodeName")  # the scheduler binds it

        async def counted() -> dict | None:
            status = await status_of(cluster)
            return status if status.get("currentNumberScheduled") == 2 else None

        status = await cluster.wait_for(counted, what="both pods counted")
        assert status["desiredNumberScheduled"] == 2 and status["numberMisscheduled"] == 0
        assert status["numberReady"] == 0 and status["numberUnavailable"] == 2
        await run_pods(cluster)

        async def ready() -> dict | None:
            status = await status_of(cluster)
            return status if status.get("numberAvailable") == 2 else None

        status = await cluster.wait_for(ready, what="both pods available")
        assert status["numberReady"] == 2 and status["updatedNumberScheduled"] == 2
        assert "numberUnavailable" not in status and status["observedGeneration"] == 1
        events = (await client.list(EVENTS, namespace=NS))["items"]
        created_events = sorted(e["message"] for e in events if e["reason"] == "SuccessfulCreate")
        assert created_events == sorted(
            f"Created pod: {p['metadata']['name']}" for p in await ds_pods(cluster)
        )

        # The node stops matching: its pod goes and is counted misscheduled meanwhile.
        web1 = await client.get(NODES, "web-1")
        web1["metadata"]["labels"]["role"] = "db"
        await client.replace(NODES, web1)

        async def web1_pod_deleting() -> bool:
            pods = (await pods_by_node(cluster)).get("web-1") or []
            return all(p["metadata"].get("deletionTimestamp") for p in pods)

        await cluster.wait_for(web1_pod_deleting, what="the pod on web-1 to be deleted")
        await finish_deletions(cluster)

        async def one_desired() -> dict | None:
            status = await status_of(cluster)
            return (
                status
                if status.get("desiredNumberScheduled") == 1 and status.get("currentNumberScheduled") == 1
                else None
            )

        await cluster.wait_for(one_desired, what="the status to count one node")


async def test_nodes_coming_and_going(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        client = cluster.client
        await client.create(NODES, node("n1"))
        await client.create(DAEMON_SETS, daemonset())
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1"]), what="a pod on n1")
        await client.create(NODES, node("n2"))
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1", "n2"]), what="a pod on the new node")
        # n2's pod was never scheduled: once n2 is gone, the DaemonSet deletes it.
        await client.delete(NODES, "n2")
        await cluster.wait_for(
            lambda: _nodes_with_pods(cluster, ["n1"]), what="the pod of the deleted node to go"
        )
        # A NoExecute taint the pod does not tolerate evicts it.
        await run_pods(cluster)
        n1 = await client.get(NODES, "n1")
        n1["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
        await client.replace(NODES, n1)

        async def deleting() -> bool:
            pods = await ds_pods(cluster)
            return bool(pods) and all(p["metadata"].get("deletionTimestamp") for p in pods)

        await cluster.wait_for(deleting, what="the pod on the tainted node to be deleted")


async def _nodes_with_pods(cluster: Cluster, expected: list[str]) -> bool:
    grouped = await pods_by_node(cluster)
    live = {
        name
        for name, pods in grouped.items()
        if any(not p["metadata"].get("deletionTimestamp") for p in pods)
    }
    return sorted(live) == expected and all(len(pods) == 1 for pods in grouped.values())


async def _update_template(cluster: Cluster, image: str, name: str = "agent") -> None:
    while True:
        ds = await cluster.client.get(DAEMON_SETS, name, namespace=NS)
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
        try:
            await cluster.client.replace(DAEMON_SETS, ds)
        except errors.ConflictError:
            continue
        return


async def _hashes(cluster: Cluster) -> dict[str, set[str]]:
    """Node -> the revision hashes of its live pods."""
    result: dict[str, set[str]] = {}
    for pod in await ds_pods(cluster):
        if not pod["metadata"].get("deletionTimestamp"):
            result.setdefault(target_node_name(pod) or "", set()).add(
                pod["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
            )
    return result


async def _current_hash(cluster: Cluster) -> str:
    revisions = (await cluster.client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]
    newest = max(revisions, key=lambda r: r["revision"])
    return newest["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]


async def test_rolling_update_replaces_one_node_at_a_time(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        for name in ("n1", "n2", "n3"):
            await cluster.client.create(NODES, node(name))
        await cluster.client.create(DAEMON_SETS, daemonset())
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1", "n2", "n3"]), what="three pods")
        await run_pods(cluster)
        await cluster.wait_for(lambda: _available(cluster, 3), what="three available pods")
        await _update_template(cluster, "kubelab:v2")

        async def two_revisions() -> bool:
            return len((await cluster.client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]) == 2

        await cluster.wait_for(two_revisions, what="a second revision")
        new_hash = await _current_hash(cluster)
        while True:
            hashes = await _hashes(cluster)
            if len(hashes) == 3 and all(h == {new_hash} for h in hashes.values()):
                break
            pods = await ds_pods(cluster)
            deleting = [p for p in pods if p["metadata"].get("deletionTimestamp")]
            # maxUnavailable 1: never more than one node without an available pod.
            assert len(deleting) <= 1
            await finish_deletions(cluster)
            await run_pods(cluster)
            await cluster.wait_for(lambda: _progress(cluster), what="the rollout to move")
        await run_pods(cluster)  # the last replacement may not be running yet

        async def updated() -> dict | None:
            status = await status_of(cluster)
            return (
                status
                if status.get("updatedNumberScheduled") == 3 and status.get("numberAvailable") == 3
                else None
            )

        await cluster.wait_for(updated, what="the status to count three updated pods")


async def _available(cluster: Cluster, count: int) -> bool:
    return (await status_of(cluster)).get("numberAvailable") == count


async def _progress(cluster: Cluster) -> bool:
    """Something for the test to do: a pod being deleted, or one not yet running."""
    for pod in await ds_pods(cluster):
        if pod["metadata"].get("deletionTimestamp") or not pod["spec"].get("nodeName"):
            return True
    hashes = await _hashes(cluster)
    return len({h for values in hashes.values() for h in values}) == 1


async def test_surge_starts_the_new_pod_before_the_old_one_goes(apiserver):  # noqa: F811
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(NODES, node("n1"))
        await cluster.client.create(DAEMON_SETS, daemonset(strategy=strategy))
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1"]), what="a pod")
        await run_pods(cluster)
        await cluster.wait_for(lambda: _available(cluster, 1), what="an available pod")
        old_hash = await _current_hash(cluster)
        await _update_template(cluster, "kubelab:v2")

        async def both() -> bool:
            return len(await ds_pods(cluster)) == 2

        await cluster.wait_for(both, what="a surge pod beside the old one")
        new_hash = await _current_hash(cluster)
        assert (await _hashes(cluster))["n1"] == {old_hash, new_hash}
        await run_pods(cluster)

        async def old_deleting() -> bool:
            for pod in await ds_pods(cluster):
                if pod["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL] == old_hash:
                    return bool(pod["metadata"].get("deletionTimestamp"))
            return True

        await cluster.wait_for(old_deleting, what="the old pod to go once the new one is available")


async def test_on_delete_waits_for_pods_to_be_deleted(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(NODES, node("n1"))
        await cluster.client.create(NODES, node("n2"))
        await cluster.client.create(DAEMON_SETS, daemonset(strategy={"type": "OnDelete"}))
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1", "n2"]), what="two pods")
        await run_pods(cluster)
        old_hash = await _current_hash(cluster)
        await _update_template(cluster, "kubelab:v2")

        async def revised() -> dict | None:
            status = await status_of(cluster)
            return status if status.get("observedGeneration") == 2 else None

        status = await cluster.wait_for(revised, what="the new generation to be observed")
        assert "updatedNumberScheduled" not in status
        assert await _hashes(cluster) == {"n1": {old_hash}, "n2": {old_hash}}
        victim = (await pods_by_node(cluster))["n1"][0]["metadata"]["name"]
        await cluster.client.delete(PODS, victim, namespace=NS, grace_period_seconds=0)
        new_hash = await _current_hash(cluster)

        async def replaced() -> bool:
            return await _hashes(cluster) == {"n1": {new_hash}, "n2": {old_hash}}

        await cluster.wait_for(replaced, what="n1's pod replaced from the new template")


async def test_failed_pods_are_replaced(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(NODES, node("n1"))
        await cluster.client.create(DAEMON_SETS, daemonset())
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1"]), what="a pod")
        await run_pods(cluster)
        pod = (await ds_pods(cluster))[0]
        await cluster.client.patch(
            PODS, pod["metadata"]["name"], {"status": {"phase": "Failed"}}, namespace=NS, subresource="status"
        )

        async def replaced() -> bool:
            names = [p["metadata"]["name"] for p in await ds_pods(cluster)]
            return len(names) == 1 and names[0] != pod["metadata"]["name"]

        await cluster.wait_for(replaced, what="the failed pod replaced")
        events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        assert any(
            e["reason"] == "FailedDaemonPod"
            and e["type"] == "Warning"
            and e["message"]
            == f"Found failed daemon pod {NS}/{pod['metadata']['name']} on node n1, will try to kill it"
            for e in events
        )


async def test_a_template_that_comes_back_reuses_its_revision(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(NODES, node("n1"))
        await cluster.client.create(
            DAEMON_SETS, daemonset(revisionHistoryLimit=1, strategy={"type": "OnDelete"})
        )
        await cluster.wait_for(lambda: _nodes_with_pods(cluster, ["n1"]), what="a pod")
        first = await _current_hash(cluster)
        for image, generation in (("kubelab:v2", 2), ("kubelab:v3", 3), ("kubelab", 4)):
            await _update_template(cluster, image)

            async def observed(generation: int = generation) -> bool:
                return (await status_of(cluster)).get("observedGeneration") == generation

            await cluster.wait_for(observed, what=f"generation {generation}")
        revisions = (await cluster.client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]
        by_hash = {r["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]: r["revision"] for r in revisions}
        # v1 is current again (renumbered 4); v3 is the one old revision kept; v2 was pruned.
        assert by_hash[first] == 4
        assert sorted(by_hash.values()) == [3, 4]
