"""From a Service and its EndpointSlices to what one node's proxy listens on and where it forwards.

This is the decision half of the proxy, kept free of sockets so it can be tested with plain
dicts: :func:`routes_for_service` reads one Service and the EndpointSlices labelled with its name
and answers, for every address the proxy should serve, the backends to use. It follows
kube-proxy (``pkg/proxy/servicechangetracker.go``, ``endpointslicecache.go``, ``topology.go``):

- listeners: each IPv4 ClusterIP (``spec.clusterIPs``) on each port, and for NodePort and
  LoadBalancer Services each ``nodePort`` on the node's IP. Headless and ExternalName Services
  get none. Only TCP and UDP are proxied; SCTP ports are skipped.
- a Service port takes its backends from the EndpointSlice ports with the same name (``""``
  for the single unnamed port) and protocol; only ``IPv4`` slices count, and each endpoint's
  first address, as upstream.
- an endpoint is used when it is ready (a missing ``ready`` means ready). If none is, endpoints
  that are serving *and* terminating are used instead (KEP-1669), so that a rollout's last pod
  still answers while it drains. ``publishNotReadyAddresses`` makes every endpoint count as
  ready — upstream's EndpointSlice controller marks them ready for such Services, so this only
  matters for slices written by other hands.
- ``internalTrafficPolicy: Local`` (ClusterIP) and ``externalTrafficPolicy: Local`` (NodePort)
  restrict the backends to endpoints whose ``nodeName`` is this node. No topology hints.
- ``sessionAffinity: ClientIP`` carries ``timeoutSeconds`` (default 10800) to the balancer.

A port whose backend list comes out empty still appears in the result; the proxier decides
what that means (no listener: clients are refused).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROXIED_PROTOCOLS = ("TCP", "UDP")
DEFAULT_AFFINITY_TIMEOUT = 10800.0  # seconds, as the API server defaults it
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# An address a backend listens on: (IPv4 address, port), directly usable as a socket address.
Backend = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ListenerKey:
    """One socket the proxy listens on."""

    protocol: str  # "TCP" or "UDP"
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class PoolKey:
    """Names one balancer: listeners whose routes share a pool share round-robin and affinity.

    A Service port's ClusterIP and NodePort listeners share one pool when both use the same
    backends policy (``local`` is whether the pool is restricted to this node's endpoints).
    """

    service: str  # "namespace/name"
    port_name: str
    protocol: str
    local: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Where the traffic reaching one listener goes."""

    service: str  # "namespace/name:port-name", for logs and metrics
    pool: PoolKey
    backends: tuple[Backend, ...]  # sorted; empty when there is nothing to forward to
    affinity_timeout: float | None  # seconds with sessionAffinity ClientIP, else None


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """The slim endpoint: only what routing reads (CoreDNS's ``object`` package idea)."""

    backend: Backend
    ready: bool
    serving: bool
    terminating: bool
    node_name: str | None


def service_key_of_slice(endpoint_slice: Mapping[str, Any]) -> str | None:
    """``"namespace/service"`` for a slice labelled with its Service's name, else None."""
    metadata = endpoint_slice.get("metadata") or {}
    service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
    namespace = metadata.get("namespace")
    if not service or not namespace:
        return None
    return f"{namespace}/{service}"


def routes_for_service(
    service: Mapping[str, Any] | None,
    slices: Iterable[Mapping[str, Any]],
    *,
    node_ip: str,
    node_name: str,
) -> dict[ListenerKey, Route]:
    """Every listener this Service needs on this node, with its route (empty for None)."""
    if service is None:
        return {}
    spec = service.get("spec") or {}
    service_type = spec.get("type") or "ClusterIP"
    if service_type == "ExternalName":
        return {}
    metadata = service.get("metadata") or {}
    service_key = f"{metadata.get('namespace')}/{metadata.get('name')}"
    cluster_ips = [ip for ip in _cluster_ips(spec) if _is_ipv4(ip)]
    with_node_ports = service_type in ("NodePort", "LoadBalancer")
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_local = spec.get("externalTrafficPolicy") == "Local"
    affinity_timeout = _affinity_timeout(spec)
    endpoints = _endpoints_by_port(slices)

    routes: dict[ListenerKey, Route] = {}
    for port in spec.get("ports") or ():
        protocol = port.get("protocol") or "TCP"
        number = port.get("port")
        if protocol not in PROXIED_PROTOCOLS or not isinstance(number, int):
            continue
        name = port.get("name") or ""
        candidates = tuple(endpoints.get((name, protocol), {}).values())
        pools = {
            local: Route(
                service=f"{service_key}:{name}" if name else service_key,
                pool=PoolKey(service_key, name, protocol, local),
                backends=_usable(
                    candidates, node_name=node_name if local else None, all_ready=publish_not_ready
                ),
                affinity_timeout=affinity_timeout,
            )
            for local in {internal_local, external_local}
        }
        for ip in cluster_ips:
            routes[ListenerKey(protocol, ip, number)] = pools[internal_local]
        node_port = port.get("nodePort")
        if with_node_ports and isinstance(node_port, int) and node_port > 0:
            routes[ListenerKey(protocol, node_ip, node_port)] = pools[external_local]
    return routes


def _cluster_ips(spec: Mapping[str, Any]) -> list[str]:
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if isinstance(ip, str) and ip not in ("", "None")]


def _is_ipv4(address: Any) -> bool:
    try:
        return isinstance(address, str) and ipaddress.ip_address(address).version == 4
    except ValueError:
        return False


def _affinity_timeout(spec: Mapping[str, Any]) -> float | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    timeout = client_ip.get("timeoutSeconds")
    if isinstance(timeout, int) and timeout > 0:
        return float(timeout)
    return DEFAULT_AFFINITY_TIMEOUT


def _endpoints_by_port(
    slices: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], dict[Backend, _Endpoint]]:
    """(port name, protocol) -> backend -> endpoint, merged over slices (duplicates: ready wins)."""
    merged: dict[tuple[str, str], dict[Backend, _Endpoint]] = {}
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType") != "IPv4":
            continue
        parsed = [_parse_endpoint(endpoint) for endpoint in endpoint_slice.get("endpoints") or ()]
        for port in endpoint_slice.get("ports") or ():
            number = port.get("port")
            if not isinstance(number, int) or not 0 < number < 65536:
                continue  # a slice port without a number means "all ports": nothing to forward to
            by_backend = merged.setdefault((port.get("name") or "", port.get("protocol") or "TCP"), {})
            for address, ready, serving, terminating, node_name in parsed:
                if address is None:
                    continue
                backend = (address, number)
                known = by_backend.get(backend)
                if known is None or (ready and not known.ready):
                    by_backend[backend] = _Endpoint(backend, ready, serving, terminating, node_name)
    return merged


def _parse_endpoint(endpoint: Mapping[str, Any]) -> tuple[str | None, bool, bool, bool, str | None]:
    addresses = endpoint.get("addresses") or ()
    address = addresses[0] if addresses and _is_ipv4(addresses[0]) else None
    conditions = endpoint.get("conditions") or {}
    # Upstream: a missing ready or serving means true, a missing terminating means false.
    ready = conditions.get("ready") is not False
    serving = conditions.get("serving") is not False
    terminating = conditions.get("terminating") is True
    return address, ready, serving, terminating, endpoint.get("nodeName")


def _usable(endpoints: Iterable[_Endpoint], *, node_name: str | None, all_ready: bool) -> tuple[Backend, ...]:
    """Ready endpoints, else serving-and-terminating ones; only this node's when ``node_name``."""
    candidates = [e for e in endpoints if node_name is None or e.node_name == node_name]
    chosen = [e for e in candidates if e.ready or all_ready]
    if not chosen:
        chosen = [e for e in candidates if e.serving and e.terminating]
    return tuple(sorted(e.backend for e in chosen))
