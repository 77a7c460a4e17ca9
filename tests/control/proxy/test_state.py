"""routes_for_service: Services and EndpointSlices as plain dicts in, listeners and backends out."""

from __future__ import annotations

from typing import Any

import pytest

from control.proxy.state import (
    DEFAULT_AFFINITY_TIMEOUT,
    ListenerKey,
    PoolKey,
    routes_for_service,
    service_key_of_slice,
)

NODE_IP = "127.100.0.1"
NODE = "node-1"


def service(**spec: Any) -> dict[str, Any]:
    spec.setdefault("clusterIP", "127.96.0.20")
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    return {"metadata": {"name": "web", "namespace": "shop"}, "spec": spec}


def ep(ip: str, *, node: str | None = None, **conditions: bool) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"addresses": [ip], "conditions": conditions}
    if node is not None:
        endpoint["nodeName"] = node
    return endpoint


def eps(*endpoints: dict[str, Any], ports: list[dict[str, Any]] | None = None, family: str = "IPv4") -> dict:
    return {
        "metadata": {"name": "web-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": family,
        "endpoints": list(endpoints),
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def routes(svc: dict | None, *slices: dict) -> dict[ListenerKey, Any]:
    return routes_for_service(svc, slices, node_ip=NODE_IP, node_name=NODE)


def backends(svc: dict | None, *slices: dict, key: ListenerKey | None = None) -> tuple:
    key = key or ListenerKey("TCP", "127.96.0.20", 80)
    return routes(svc, *slices)[key].backends


def test_cluster_ip_port_routes_to_ready_endpoints_sorted():
    result = routes(service(), eps(ep("127.244.1.9", ready=True), ep("127.244.1.2")))
    assert list(result) == [ListenerKey("TCP", "127.96.0.20", 80)]
    route = result[ListenerKey("TCP", "127.96.0.20", 80)]
    # A missing ready condition means ready, as upstream.
    assert route.backends == (("127.244.1.2", 8080), ("127.244.1.9", 8080))
    assert route.service == "shop/web:http"
    assert route.pool == PoolKey("shop/web", "http", "TCP", False)
    assert route.affinity_timeout is None


def test_not_ready_endpoints_are_left_out():
    assert backends(service(), eps(ep("127.244.1.2", ready=False), ep("127.244.1.3", ready=True))) == (
        ("127.244.1.3", 8080),
    )


def test_serving_terminating_endpoints_are_the_fallback_only():
    draining = ep("127.244.1.4", ready=False, serving=True, terminating=True)
    dead = ep("127.244.1.5", ready=False, serving=False, terminating=True)
    assert backends(service(), eps(draining, dead, ep("127.244.1.3"))) == (("127.244.1.3", 8080),)
    assert backends(service(), eps(draining, dead)) == (("127.244.1.4", 8080),)


def test_no_usable_endpoint_gives_an_empty_route_not_no_route():
    result = routes(service(), eps(ep("127.244.1.2", ready=False, serving=False)))
    assert result[ListenerKey("TCP", "127.96.0.20", 80)].backends == ()
    assert routes(service())[ListenerKey("TCP", "127.96.0.20", 80)].backends == ()


def test_publish_not_ready_addresses_uses_every_endpoint():
    svc = service(publishNotReadyAddresses=True)
    assert backends(svc, eps(ep("127.244.1.2", ready=False, serving=False))) == (("127.244.1.2", 8080),)


def test_ports_are_matched_by_name_and_protocol():
    svc = service(
        ports=[
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ]
    )
    slice_ports = [
        {"name": "http", "port": 8080, "protocol": "TCP"},
        {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 5354},  # protocol defaults to TCP
    ]
    result = routes(svc, eps(ep("127.244.1.2"), ports=slice_ports))
    assert {key: route.backends for key, route in result.items()} == {
        ListenerKey("TCP", "127.96.0.20", 80): (("127.244.1.2", 8080),),
        ListenerKey("UDP", "127.96.0.20", 53): (("127.244.1.2", 5353),),
        ListenerKey("TCP", "127.96.0.20", 53): (("127.244.1.2", 5354),),
    }


def test_unnamed_single_port_matches_the_unnamed_slice_port():
    svc = service(ports=[{"port": 443, "protocol": "TCP"}])
    result = routes(svc, eps(ep("127.244.1.2"), ports=[{"port": 6443, "protocol": "TCP"}]))
    route = result[ListenerKey("TCP", "127.96.0.20", 443)]
    assert route.backends == (("127.244.1.2", 6443),)
    assert route.service == "shop/web"


def test_slices_merge_and_duplicates_prefer_ready():
    first = eps(ep("127.244.1.2", ready=False), ep("127.244.1.3"))
    second = eps(ep("127.244.1.2", ready=True), ep("127.244.1.4"))
    assert backends(service(), first, second) == (
        ("127.244.1.2", 8080),
        ("127.244.1.3", 8080),
        ("127.244.1.4", 8080),
    )


@pytest.mark.parametrize(
    "bad_slice",
    [
        eps(ep("127.244.1.2"), family="IPv6"),
        eps(ep("127.244.1.2"), family="FQDN"),
        eps(ep("127.244.1.2"), ports=[{"name": "http", "protocol": "TCP"}]),  # no port: "all ports"
        eps(ep("127.244.1.2"), ports=[{"name": "http", "port": 0}]),
        eps(ep("127.244.1.2"), ports=[{"name": "other", "port": 8080}]),
        eps(ep("127.244.1.2"), ports=[{"name": "http", "port": 8080, "protocol": "UDP"}]),
        eps({"addresses": [], "conditions": {"ready": True}}),
        eps({"addresses": ["not-an-ip"]}),
        eps({"addresses": ["fd00::1"]}),
        eps(),
        {"metadata": {"name": "empty"}},
    ],
)
def test_unusable_slices_contribute_nothing(bad_slice):
    assert backends(service(), bad_slice) == ()


@pytest.mark.parametrize(
    "svc",
    [
        None,
        service(clusterIP="None", clusterIPs=["None"]),
        service(type="ExternalName", externalName="example.invalid", clusterIP=""),
        service(clusterIP="fd00::20", clusterIPs=["fd00::20"]),
        service(ports=[{"name": "http", "port": 80, "protocol": "SCTP"}]),
        service(ports=[{"name": "http", "port": "80"}]),
        {"metadata": {"name": "bare", "namespace": "shop"}},
    ],
    ids=["deleted", "headless", "external-name", "ipv6", "sctp", "port-not-int", "no-spec"],
)
def test_services_without_listeners(svc):
    assert routes(svc, eps(ep("127.244.1.2"))) == {}


def test_every_ipv4_cluster_ip_listens():
    svc = service(clusterIP="127.96.0.20", clusterIPs=["127.96.0.20", "fd00::20"])
    assert list(routes(svc, eps(ep("127.244.1.2")))) == [ListenerKey("TCP", "127.96.0.20", 80)]


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_node_ports_listen_on_the_node_ip_and_share_the_pool(service_type):
    svc = service(type=service_type, ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    result = routes(svc, eps(ep("127.244.1.2")))
    cluster, node = result[ListenerKey("TCP", "127.96.0.20", 80)], result[ListenerKey("TCP", NODE_IP, 30080)]
    assert cluster == node  # same backends, same balancer


def test_node_port_ignored_for_cluster_ip_services():
    svc = service(ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    assert list(routes(svc, eps(ep("127.244.1.2")))) == [ListenerKey("TCP", "127.96.0.20", 80)]


def test_traffic_policies_local_keep_this_nodes_endpoints():
    svc = service(
        type="NodePort",
        externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80, "nodePort": 30080}],
    )
    endpoint_slice = eps(ep("127.244.1.2", node=NODE), ep("127.244.2.2", node="node-2"))
    result = routes(svc, endpoint_slice)
    assert result[ListenerKey("TCP", "127.96.0.20", 80)].backends == (
        ("127.244.1.2", 8080),
        ("127.244.2.2", 8080),
    )
    node_route = result[ListenerKey("TCP", NODE_IP, 30080)]
    assert node_route.backends == (("127.244.1.2", 8080),)
    assert node_route.pool.local and not result[ListenerKey("TCP", "127.96.0.20", 80)].pool.local

    internal = service(internalTrafficPolicy="Local")
    assert backends(internal, eps(ep("127.244.2.2", node="node-2"))) == ()
    # The local fallback to serving-terminating endpoints looks at this node only too.
    draining_here = ep("127.244.1.2", node=NODE, ready=False, serving=True, terminating=True)
    assert backends(internal, eps(draining_here, ep("127.244.2.2", node="node-2"))) == (
        ("127.244.1.2", 8080),
    )


def test_session_affinity_timeout():
    sticky = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    default = service(sessionAffinity="ClientIP")
    bad = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": "x"}})
    key = ListenerKey("TCP", "127.96.0.20", 80)
    assert routes(sticky)[key].affinity_timeout == 60.0
    assert routes(default)[key].affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert routes(bad)[key].affinity_timeout == DEFAULT_AFFINITY_TIMEOUT


def test_service_key_of_slice():
    assert service_key_of_slice(eps()) == "shop/web"
    assert service_key_of_slice({"metadata": {"name": "x", "namespace": "shop"}}) is None
    assert service_key_of_slice({"metadata": {"labels": {"kubernetes.io/service-name": "web"}}}) is None
    assert service_key_of_slice({}) is None
