"""The EndpointSlice controller against the real API server, with the test playing the kubelet."""

from __future__ import annotations

import pytest

from control.controllers import endpointslice
from control.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
    SliceTracker,
    plan_slices,
)
from control.controllers.kinds import ENDPOINT_SLICES, PODS, SERVICES
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

HTTP = {"name": "http", "containerPort": 8080, "protocol": "TCP"}


def service(name: str = "web", **spec: object) -> dict:
    body = {
        "metadata": {"name": name, "namespace": "default", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    body["spec"].update(spec)
    return body


async def slices_of(cluster: Cluster, name: str = "web") -> list[dict]:
    listing = await cluster.client.list(
        ENDPOINT_SLICES, namespace="default", label_selector=f"{SERVICE_NAME_LABEL}={name}"
    )
    return sorted(listing["items"], key=lambda s: s["metadata"]["name"])


async def some_slices(cluster: Cluster, name: str = "web") -> list[dict] | None:
    """The Service's slices, or None while it has none (for waiting)."""
    return await slices_of(cluster, name) or None


def endpoints_by_pod(slices: list[dict]) -> dict[str, dict]:
    return {ep["targetRef"]["name"]: ep for s in slices for ep in s["endpoints"] or ()}


async def wait_endpoints(cluster: Cluster, check, *, name: str = "web", what: str) -> list[dict]:
    async def probe():
        slices = await slices_of(cluster, name)
        return slices if check(endpoints_by_pod(slices)) else None

    return await cluster.wait_for(probe, what=what)


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, endpointslice.new_controller) as cluster:
        await cluster.create_node("node-1", labels={"topology.kubernetes.io/zone": "lab-a"})
        yield cluster


async def test_slice_shape_labels_owner_and_endpoints(cluster):
    svc = await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP], hostname="a", subdomain="web")
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    (slice_,) = await wait_endpoints(cluster, lambda eps: "a" in eps, what="a in a slice")
    metadata = slice_["metadata"]
    assert metadata["name"].startswith("web-") and metadata["generateName"] == "web-"
    assert metadata["labels"] == {
        "tier": "front",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: "endpointslice-controller.k8s.io",
    }
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    pod = await cluster.client.get(PODS, "a", namespace="default")
    assert slice_["endpoints"] == [
        {
            "addresses": ["127.244.1.2"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "hostname": "a",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": pod["metadata"]["uid"]},
            "nodeName": "node-1",
            "zone": "lab-a",
        }
    ]


async def test_conditions_follow_readiness_and_termination(cluster):
    await cluster.client.create(SERVICES, service())
    for name, ip in (("a", "127.244.1.2"), ("b", "127.244.1.3")):
        await cluster.create_pod(name, labels={"app": "web"}, ports=[HTTP])
        await cluster.set_pod_status(name, ip=ip, ready=False)
    await wait_endpoints(
        cluster,
        lambda eps: set(eps) == {"a", "b"} and not any(ep["conditions"]["ready"] for ep in eps.values()),
        what="two not-ready endpoints",
    )
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    await wait_endpoints(
        cluster,
        lambda eps: eps["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False},
        what="a ready",
    )
    await cluster.client.delete(PODS, "a", namespace="default")  # graceful: bound to node-1
    await cluster.client.delete(PODS, "b", namespace="default")
    slices = await wait_endpoints(
        cluster,
        lambda eps: eps["a"]["conditions"]["terminating"] and eps["b"]["conditions"]["terminating"],
        what="both terminating",
    )
    eps = endpoints_by_pod(slices)
    assert eps["a"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert eps["b"]["conditions"] == {"ready": False, "serving": False, "terminating": True}
    await cluster.finish_pod_deletion("a")
    await cluster.finish_pod_deletion("b")
    slices = await wait_endpoints(cluster, lambda eps: not eps, what="the slice emptied")
    assert len(slices) == 1 and slices[0]["endpoints"] == [] and slices[0]["ports"] == []


async def test_publish_not_ready_addresses_marks_everything_ready(cluster):
    await cluster.client.create(SERVICES, service(publishNotReadyAddresses=True))
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=False)
    await cluster.client.delete(PODS, "a", namespace="default")
    await wait_endpoints(
        cluster,
        lambda eps: (
            "a" in eps and eps["a"]["conditions"] == {"ready": True, "serving": False, "terminating": True}
        ),
        what="a terminating but published as ready",
    )


async def test_pods_resolving_a_named_port_differently_get_their_own_slices(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("old", labels={"app": "web"}, ports=[HTTP])
    await cluster.create_pod("new", labels={"app": "web"}, ports=[{**HTTP, "containerPort": 9000}])
    await cluster.create_pod("none", labels={"app": "web"})
    for name, ip in (("old", "127.244.1.2"), ("new", "127.244.1.3"), ("none", "127.244.1.4")):
        await cluster.set_pod_status(name, ip=ip, ready=True)
    slices = await wait_endpoints(cluster, lambda eps: set(eps) == {"old", "new", "none"}, what="three pods")
    by_ports = {
        tuple(p["port"] for p in s["ports"]): [ep["targetRef"]["name"] for ep in s["endpoints"]]
        for s in slices
    }
    assert by_ports == {(8080,): ["old"], (9000,): ["new"], (): ["none"]}


async def test_at_most_max_endpoints_per_slice(apiserver):  # noqa: F811
    async with running(
        apiserver, lambda ctx: EndpointSliceController(ctx, max_endpoints_per_slice=3)
    ) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(SERVICES, service())
        for index in range(7):
            await cluster.create_pod(f"p{index}", labels={"app": "web"}, ports=[HTTP])
            await cluster.set_pod_status(f"p{index}", ip=f"127.244.1.{index + 2}", ready=True)
        slices = await wait_endpoints(cluster, lambda eps: len(eps) == 7, what="seven endpoints")
        assert sorted(len(s["endpoints"]) for s in slices) == [1, 3, 3]
        names = [ep["targetRef"]["name"] for s in slices for ep in s["endpoints"]]
        assert sorted(names) == [f"p{index}" for index in range(7)]  # each pod exactly once


async def test_no_churn(cluster):
    controller: EndpointSliceController = cluster.controllers[0]
    await cluster.client.create(SERVICES, service())
    for index in range(3):
        await cluster.create_pod(f"p{index}", labels={"app": "web"}, ports=[HTTP])
        await cluster.set_pod_status(f"p{index}", ip=f"127.244.1.{index + 2}", ready=True)
    before = await wait_endpoints(cluster, lambda eps: len(eps) == 3, what="three endpoints")
    pod = await cluster.client.patch(
        PODS, "p0", {"metadata": {"annotations": {"x": "y"}}}, namespace="default"
    )
    pods = cluster.ctx.informers.informer(PODS)

    async def cached():
        return (
            pods.cache.get_by_key("default/p0")["metadata"]["resourceVersion"]
            == pod["metadata"]["resourceVersion"]
        )

    await cluster.wait_for(cached, what="the annotated pod in the cache")
    for _ in range(3):
        await controller.reconcile("default/web")
    after = await slices_of(cluster)
    assert [s["metadata"]["resourceVersion"] for s in after] == [
        s["metadata"]["resourceVersion"] for s in before
    ]


async def test_slice_labels_follow_the_service(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.wait_for(lambda: some_slices(cluster), what="the slice")
    await cluster.client.patch(
        SERVICES,
        "web",
        {"metadata": {"labels": {"tier": None, "team": "a", SERVICE_NAME_LABEL: "spoof"}}},
        namespace="default",
    )

    async def relabelled():
        (slice_,) = await slices_of(cluster)
        return slice_ if slice_["metadata"]["labels"].get("team") == "a" else None

    slice_ = await cluster.wait_for(relabelled, what="the slice relabelled")
    assert slice_["metadata"]["labels"] == {
        "team": "a",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
    }


async def test_a_service_without_pods_keeps_one_placeholder(cluster):
    controller: EndpointSliceController = cluster.controllers[0]
    await cluster.client.create(SERVICES, service())
    (placeholder,) = await cluster.wait_for(lambda: some_slices(cluster), what="the placeholder slice")
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    await controller.reconcile("default/web")
    assert await slices_of(cluster) == [placeholder]
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    (slice_,) = await wait_endpoints(cluster, lambda eps: "a" in eps, what="a listed")
    assert slice_["metadata"]["name"] == placeholder["metadata"]["name"]  # reused, not replaced


async def test_pods_on_unknown_nodes_wait_for_their_node(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP], node="node-2")
    await cluster.set_pod_status("a", ip="127.244.2.2", ready=True)
    await cluster.create_pod("b", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("b", ip="127.244.1.2", ready=True)
    slices = await wait_endpoints(cluster, lambda eps: "b" in eps, what="b listed")
    assert "a" not in endpoints_by_pod(slices)
    await cluster.create_node("node-2")
    await wait_endpoints(cluster, lambda eps: set(eps) == {"a", "b"}, what="a listed once its node exists")


async def test_leaves_the_api_servers_slice_and_selectorless_services_alone(cluster):
    controller: EndpointSliceController = cluster.controllers[0]
    (kubernetes,) = await slices_of(cluster, "kubernetes")
    await cluster.client.create(
        SERVICES, {"metadata": {"name": "manual", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}
    )
    await cluster.client.create(SERVICES, service("later"))
    await cluster.wait_for(lambda: some_slices(cluster, "later"), what="the later Service's slice")
    await controller.reconcile("default/kubernetes")
    await controller.reconcile("default/manual")
    assert await slices_of(cluster, "kubernetes") == [kubernetes]
    assert await slices_of(cluster, "manual") == []


async def test_a_slice_deleted_by_someone_else_comes_back(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    (first,) = await wait_endpoints(cluster, lambda eps: "a" in eps, what="a listed")
    await cluster.client.delete(ENDPOINT_SLICES, first["metadata"]["name"], namespace="default")

    async def replaced():
        slices = await slices_of(cluster)
        return len(slices) == 1 and slices[0]["metadata"]["uid"] != first["metadata"]["uid"]

    await cluster.wait_for(replaced, what="a new slice")


# --- planning and tracking, without a server -----------------------------------------------


def _service() -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {}},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "127.96.0.5",
            "ports": [{"name": "", "port": 80, "targetPort": 80}],
        },
    }


def _pod(index: int) -> dict:
    return {
        "metadata": {"name": f"p{index:03}", "namespace": "default", "uid": f"u{index}"},
        "spec": {"nodeName": "n"},
        "status": {
            "podIP": f"127.244.{index // 200}.{index % 200 + 1}",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _as_created(bodies: list[dict]) -> list[dict]:
    return [
        {**body, "metadata": {**body["metadata"], "name": f"web-{i}", "resourceVersion": str(i)}}
        for i, body in enumerate(bodies)
    ]


def test_plan_fills_slices_to_the_maximum_and_is_stable():
    nodes = {"n": {"metadata": {"name": "n"}}}.get
    pods = [_pod(i) for i in range(250)]
    plan = plan_slices(_service(), pods=pods, slices=[], nodes=nodes)
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    assert not plan.update and not plan.delete and not plan.missing_nodes
    existing = _as_created(plan.create)
    again = plan_slices(_service(), pods=pods, slices=existing, nodes=nodes)
    assert (again.create, again.update, again.delete) == ([], [], [])
    # One pod gone: only the slice holding it is written.
    fewer = plan_slices(_service(), pods=pods[1:], slices=existing, nodes=nodes)
    assert fewer.create == [] and fewer.delete == [] and len(fewer.update) == 1
    # A new pod goes into the slice with room rather than a new one.
    more = plan_slices(_service(), pods=[*pods, _pod(250)], slices=existing, nodes=nodes)
    assert more.create == [] and len(more.update) == 1 and len(more.update[0]["endpoints"]) == 51


def test_plan_drops_foreign_and_wrong_family_slices_and_reuses_them():
    nodes = {"n": {}}.get
    foreign = {
        "metadata": {
            "name": "web-old",
            "namespace": "default",
            "resourceVersion": "7",
            "ownerReferences": [],
        },
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [],
    }
    ipv6 = {**foreign, "metadata": {**foreign["metadata"], "name": "web-v6"}, "addressType": "IPv6"}
    plan = plan_slices(_service(), pods=[_pod(1)], slices=[foreign, ipv6], nodes=nodes)
    assert sorted(plan.delete) == ["web-old", "web-v6"]  # not owned by this Service: not reused
    assert len(plan.create) == 1


def test_missing_nodes_are_reported_unless_published():
    service = _service()
    plan = plan_slices(service, pods=[_pod(1)], slices=[], nodes={}.get)
    assert plan.missing_nodes and plan.create[0]["endpoints"] == []
    service["spec"]["publishNotReadyAddresses"] = True
    plan = plan_slices(service, pods=[_pod(1)], slices=[], nodes={}.get)
    assert not plan.missing_nodes and len(plan.create[0]["endpoints"]) == 1


def test_bad_max_endpoints_is_refused():
    with pytest.raises(ValueError, match="max_endpoints_per_slice"):
        EndpointSliceController(None, max_endpoints_per_slice=0)  # type: ignore[arg-type]


def test_tracker_knows_its_own_writes():
    tracker = SliceTracker()
    created = {
        "metadata": {
            "name": "web-a",
            "namespace": "default",
            "resourceVersion": "5",
            "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
        }
    }
    tracker.wrote("default/web", created, superseded=None)
    assert tracker.stale("default/web", [])  # the cache has not seen the create yet
    assert tracker.observe(created, deleted=False)  # the echo of our write
    assert not tracker.stale("default/web", [created])
    updated = {**created, "metadata": {**created["metadata"], "resourceVersion": "9"}}
    tracker.wrote("default/web", updated, superseded="5")
    assert tracker.stale("default/web", [created])
    assert not tracker.stale("default/web", [updated])
    tracker.deleted("default/web", "web-a")
    assert tracker.stale("default/web", [updated])
    assert tracker.observe(updated, deleted=True)
    assert not tracker.observe(updated, deleted=True)  # someone else's deletion now
