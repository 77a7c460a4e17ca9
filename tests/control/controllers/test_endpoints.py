"""The Endpoints controller against the real API server, with the test playing the kubelet."""

from __future__ import annotations

import asyncio

import pytest

from control.client import errors
from control.controllers import endpoints
from control.controllers.endpoints import EndpointsController, repack, truncate
from control.controllers.kinds import ENDPOINTS, PODS, SERVICES
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

HTTP = {"name": "http", "containerPort": 8080, "protocol": "TCP"}


def service(name: str = "web", **spec: object) -> dict:
    body = {
        "metadata": {"name": name, "namespace": "default", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": name},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9090, "targetPort": 9090},
            ],
        },
    }
    body["spec"].update(spec)
    return body


async def endpoints_of(cluster: Cluster, name: str = "web") -> dict:
    return await cluster.client.get(ENDPOINTS, name, namespace="default")


def addresses(subsets: list[dict], field: str = "addresses") -> list[str]:
    return sorted({address["ip"] for subset in subsets for address in subset.get(field) or ()})


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, endpoints.new_controller) as cluster:
        await cluster.create_node("node-1")
        yield cluster


async def test_ready_and_not_ready_pods_with_named_ports(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.create_pod("b", labels={"app": "web"}, ports=[HTTP])
    await cluster.create_pod("c", labels={"app": "web"})  # no "http" port: only in the metrics subset
    await cluster.create_pod("other", labels={"app": "other"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    await cluster.set_pod_status("b", ip="127.244.1.3", ready=False)
    await cluster.set_pod_status("c", ip="127.244.1.4", ready=True)
    await cluster.set_pod_status("other", ip="127.244.1.9", ready=True)

    async def settled():
        ep = await endpoints_of(cluster)
        subsets = ep.get("subsets") or []
        return (
            ep
            if addresses(subsets) == ["127.244.1.2", "127.244.1.4"]
            and addresses(subsets, "notReadyAddresses") == ["127.244.1.3"]
            else None
        )

    ep = await cluster.wait_for(settled, what="endpoints of a, b and c")
    assert ep["metadata"]["labels"] == {
        "tier": "front",
        "endpoints.kubernetes.io/managed-by": "endpoint-controller",
    }
    # Addresses are grouped by the exact set of ports they serve, as upstream's RepackSubsets does.
    by_ports = {
        tuple((p.get("name"), p["port"]) for p in subset["ports"]): subset for subset in ep["subsets"]
    }
    assert set(by_ports) == {(("http", 8080),), (("metrics", 9090),)}
    http = by_ports[(("http", 8080),)]
    assert [a["ip"] for a in http["addresses"]] == ["127.244.1.2"]
    assert [a["ip"] for a in http["notReadyAddresses"]] == ["127.244.1.3"]
    metrics = by_ports[(("metrics", 9090),)]
    assert [a["ip"] for a in metrics["addresses"]] == ["127.244.1.2", "127.244.1.4"]
    pod_a = await cluster.client.get(PODS, "a", namespace="default")
    assert http["addresses"][0] == {
        "ip": "127.244.1.2",
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": pod_a["metadata"]["uid"]},
    }
    assert http["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_follows_readiness_and_termination(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=False)

    async def listed(field):
        async def check():
            ep = await endpoints_of(cluster)
            return addresses(ep.get("subsets") or [], field) == ["127.244.1.2"]

        return check

    await cluster.wait_for(await listed("notReadyAddresses"), what="a not ready")
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)
    await cluster.wait_for(await listed("addresses"), what="a ready")
    await cluster.client.delete(PODS, "a", namespace="default")  # bound to a node: terminates gracefully
    pod = await cluster.client.get(PODS, "a", namespace="default")
    assert pod["metadata"]["deletionTimestamp"]

    async def emptied():
        return not (await endpoints_of(cluster)).get("subsets")

    await cluster.wait_for(emptied, what="the terminating pod to leave the endpoints")


async def test_publish_not_ready_addresses_lists_everything_as_ready(cluster):
    await cluster.client.create(SERVICES, service(publishNotReadyAddresses=True))
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.create_pod("b", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=False)
    await cluster.set_pod_status("b", ip="127.244.1.3", ready=True)
    await cluster.client.delete(PODS, "b", namespace="default")

    async def both_ready():
        subsets = (await endpoints_of(cluster)).get("subsets") or []
        return addresses(subsets) == ["127.244.1.2", "127.244.1.3"] and not addresses(
            subsets, "notReadyAddresses"
        )

    await cluster.wait_for(both_ready, what="a (not ready) and b (terminating) as ready addresses")


async def test_hostname_when_the_subdomain_names_the_service(cluster):
    await cluster.client.create(SERVICES, service("db", clusterIP="None", ports=[]))
    await cluster.create_pod("db-0", labels={"app": "db"}, hostname="db-0", subdomain="db")
    await cluster.create_pod("db-x", labels={"app": "db"}, hostname="db-x", subdomain="elsewhere")
    await cluster.set_pod_status("db-0", ip="127.244.1.2", ready=True)
    await cluster.set_pod_status("db-x", ip="127.244.1.3", ready=True)

    async def both():
        ep = await endpoints_of(cluster, "db")
        subsets = ep.get("subsets") or []
        return ep if addresses(subsets) == ["127.244.1.2", "127.244.1.3"] else None

    ep = await cluster.wait_for(both, what="both db pods")
    (subset,) = ep["subsets"]
    assert "ports" not in subset  # a headless Service without ports still lists its pods
    hostnames = {a["ip"]: a.get("hostname") for a in subset["addresses"]}
    assert hostnames == {"127.244.1.2": "db-0", "127.244.1.3": None}
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_services_without_selector_and_the_api_servers_endpoints_are_left_alone(cluster):
    await cluster.client.create(
        SERVICES,
        {"metadata": {"name": "manual", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}},
    )
    manual = {
        "metadata": {"name": "manual", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "127.0.0.50"}], "ports": [{"port": 80}]}],
    }
    created = await cluster.client.create(ENDPOINTS, manual)
    await cluster.client.create(
        SERVICES, service("external", type="ExternalName", externalName="example.org")
    )
    kubernetes_before = await endpoints_of(cluster, "kubernetes")
    # A Service the controller does handle, created after: once it has Endpoints, the others were seen.
    await cluster.client.create(SERVICES, service("later"))
    await cluster.wait_for(lambda: endpoints_of(cluster, "later"), what="the later Service's endpoints")
    assert (await endpoints_of(cluster, "manual"))["metadata"]["resourceVersion"] == created["metadata"][
        "resourceVersion"
    ]
    kubernetes_after = await endpoints_of(cluster, "kubernetes")
    assert kubernetes_after["metadata"]["resourceVersion"] == kubernetes_before["metadata"]["resourceVersion"]
    with pytest.raises(errors.NotFoundError):
        await endpoints_of(cluster, "external")
    controller = cluster.controllers[0]
    await controller.reconcile("default/kubernetes")
    await controller.reconcile("default/manual")
    assert (await endpoints_of(cluster, "kubernetes"))["metadata"]["resourceVersion"] == kubernetes_before[
        "metadata"
    ]["resourceVersion"]


async def test_service_deletion_deletes_its_endpoints(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.wait_for(lambda: endpoints_of(cluster), what="endpoints")
    await cluster.client.delete(SERVICES, "web", namespace="default")
    await cluster.wait_gone(ENDPOINTS, "web", namespace="default")


async def test_deleted_endpoints_come_back(cluster):
    await cluster.client.create(SERVICES, service())
    first = await cluster.wait_for(lambda: endpoints_of(cluster), what="endpoints")
    await cluster.client.delete(ENDPOINTS, "web", namespace="default")

    async def recreated():
        ep = await endpoints_of(cluster)
        return ep["metadata"]["uid"] != first["metadata"]["uid"]

    await cluster.wait_for(recreated, what="the endpoints to be recreated")


async def test_no_write_when_nothing_relevant_changed(cluster):
    await cluster.client.create(SERVICES, service())
    await cluster.create_pod("a", labels={"app": "web"}, ports=[HTTP])
    await cluster.set_pod_status("a", ip="127.244.1.2", ready=True)

    async def listed():
        ep = await endpoints_of(cluster)
        return ep if addresses(ep.get("subsets") or []) == ["127.244.1.2"] else None

    before = await cluster.wait_for(listed, what="a listed")
    controller: EndpointsController = cluster.controllers[0]
    pod = await cluster.client.patch(
        PODS, "a", {"metadata": {"annotations": {"note": "irrelevant"}}}, namespace="default"
    )

    async def cached():
        informer = cluster.ctx.informers.informer(PODS)
        cached_pod = informer.cache.get_by_key("default/a")
        return cached_pod["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]

    await cluster.wait_for(cached, what="the annotated pod in the cache")
    for _ in range(3):
        await controller.reconcile("default/web")
    after = await endpoints_of(cluster)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_leftover_endpoints_are_deleted_at_start(apiserver):  # noqa: F811
    async with running(apiserver) as cluster:
        await cluster.client.create(
            ENDPOINTS, {"metadata": {"name": "orphan", "namespace": "default"}, "subsets": []}
        )
        await cluster.client.create(
            ENDPOINTS,
            {
                "metadata": {
                    "name": "lock",
                    "namespace": "default",
                    "annotations": {"control-plane.alpha.kubernetes.io/leader": "{}"},
                }
            },
        )
    async with running(apiserver, endpoints.new_controller) as cluster:
        await cluster.wait_gone(ENDPOINTS, "orphan", namespace="default")
        assert await cluster.client.get(ENDPOINTS, "lock", namespace="default")
        assert await cluster.client.get(ENDPOINTS, "kubernetes", namespace="default")


async def test_runs_again_after_being_stopped(apiserver):  # noqa: F811
    async with running(apiserver) as cluster:
        controller = EndpointsController(cluster.ctx)
        cluster.ctx.informers.start()
        for attempt in ("first", "second"):  # as the manager restarts a crashed controller
            task = asyncio.create_task(controller.run())
            await cluster.client.create(SERVICES, service(attempt))
            await cluster.wait_for(
                lambda name=attempt: endpoints_of(cluster, name), what=f"endpoints of the {attempt} run"
            )
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        for informer in cluster.ctx.informers.informers():
            assert not informer._handlers, f"{informer.name} kept handlers of stopped runs"


# --- the canonical layout, without a server ------------------------------------------------


def _address(ip: str, uid: str) -> dict:
    return {"ip": ip, "targetRef": {"kind": "Pod", "namespace": "default", "name": uid, "uid": uid}}


def test_repack_groups_addresses_by_their_ports_and_sorts():
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    metrics = {"name": "metrics", "port": 9090, "protocol": "TCP"}
    a, b, c = _address("127.244.1.3", "a"), _address("127.244.1.2", "b"), _address("127.244.1.4", "c")
    entries = [(a, metrics, True), (a, http, True), (b, http, True), (b, metrics, True), (c, metrics, False)]
    subsets = repack(entries)
    assert subsets == repack(list(reversed(entries)))  # order of discovery does not matter
    by_ports = {tuple(p["name"] for p in s["ports"]): s for s in subsets}
    assert [x["ip"] for x in by_ports[("http",)]["addresses"]] == ["127.244.1.2", "127.244.1.3"]
    assert by_ports[("metrics",)]["addresses"] == [b, a]
    assert by_ports[("metrics",)]["notReadyAddresses"] == [c]


def test_repack_not_ready_wins_and_portless_addresses_survive():
    a = _address("127.244.1.2", "a")
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    assert repack([(a, http, True), (a, http, False)]) == [{"notReadyAddresses": [a], "ports": [http]}]
    assert repack([(a, None, True)]) == [{"addresses": [a]}]
    assert repack([]) == []


def test_truncate_keeps_ready_addresses_first():
    ready = [_address(f"127.244.{i // 250}.{i % 250}", f"r{i}") for i in range(900)]
    not_ready = [_address(f"127.245.{i // 250}.{i % 250}", f"n{i}") for i in range(300)]
    subsets = [{"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 80}]}]
    truncated, result = truncate(subsets)
    assert truncated
    assert len(result[0]["addresses"]) == 900 and len(result[0]["notReadyAddresses"]) == 100
    assert truncate(result) == (False, result)
    too_ready = [{"addresses": ready + ready[:200], "notReadyAddresses": not_ready}]
    truncated, result = truncate(too_ready)
    assert truncated and len(result[0]["addresses"]) == endpoints.MAX_CAPACITY
    assert "notReadyAddresses" not in result[0]
