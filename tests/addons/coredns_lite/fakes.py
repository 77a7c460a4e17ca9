"""A FAKE backend for the record-rule tests: the cluster as plain data, no API server.

It implements ``addons.coredns_lite.backend.Backend`` over lists of slim objects, so the table
tests say exactly which Services, EndpointSlices, Namespaces and Pods exist. Changes made with
``set_service``/``remove_service`` notify listeners with the same tags the real backend uses.
The real backend is tested against a real API server (``test_integration``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from addons.coredns_lite.backend import Address, Endpoints, Listener, Pod, Port, Service, Tag


def port(name: str = "http", number: int = 80, protocol: str = "TCP") -> Port:
    return Port(name, protocol, number)


def service(
    name: str,
    namespace: str = "testns",
    *,
    ips: Sequence[str] = ("10.0.0.1",),
    ports: Sequence[Port] = (Port("http", "TCP", 80),),
    type: str = "ClusterIP",
    external: str = "",
) -> Service:
    return Service(name, namespace, type, tuple(ips), external, tuple(ports) or (Port("", "", -1),))


def address(ip: str, hostname: str = "", pod: str = "") -> Address:
    return Address(ip=ip, hostname=hostname, target_name=pod, node_name="")


def endpoints(
    service_name: str,
    addresses: Sequence[Address],
    *,
    namespace: str = "testns",
    ports: Sequence[Port] = (Port("http", "TCP", 80),),
    name: str | None = None,
) -> Endpoints:
    return Endpoints(
        name=name or f"{service_name}-slice",
        namespace=namespace,
        service=service_name,
        addresses=tuple(addresses),
        ports=tuple(ports) or (Port("", "", -1),),
    )


class FakeBackend:
    """The cluster as lists. ``synced`` and ``serial`` are settable."""

    def __init__(
        self,
        *,
        namespaces: Iterable[str] = ("testns",),
        services: Iterable[Service] = (),
        slices: Iterable[Endpoints] = (),
        pods: Iterable[Pod] = (),
        synced: bool = True,
        serial: int = 1499347823,
    ) -> None:
        self.namespaces = set(namespaces)
        self.services = {(s.namespace, s.name): s for s in services}
        self.slices = list(slices)
        self.pods = list(pods)
        self.synced = synced
        self.serial = serial
        self.listeners: list[Listener] = []

    def has_synced(self) -> bool:
        return self.synced

    def modified(self) -> int:
        return self.serial

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def service(self, namespace: str, name: str) -> Service | None:
        return self.services.get((namespace, name))

    def endpoints(self, namespace: str, service: str) -> Sequence[Endpoints]:
        return [s for s in self.slices if s.namespace == namespace and s.service == service]

    def services_by_ip(self, ip: str) -> Sequence[Service]:
        return [s for s in self.services.values() if ip in s.cluster_ips]

    def endpoints_by_ip(self, ip: str) -> Sequence[Endpoints]:
        return [s for s in self.slices if any(a.ip == ip for a in s.addresses)]

    def pods_by_ip(self, ip: str) -> Sequence[Pod]:
        return [p for p in self.pods if p.ip == ip]

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    # --- changes, announced like the real backend ----------------------------------------------

    def _announce(self, tags: list[Tag]) -> None:
        self.serial += 1
        for listener in self.listeners:
            listener(tags)

    def set_service(self, svc: Service) -> None:
        old = self.services.get((svc.namespace, svc.name))
        self.services[(svc.namespace, svc.name)] = svc
        ips = {ip for s in (old, svc) if s is not None for ip in s.cluster_ips}
        self._announce([("svc", svc.namespace, svc.name), *(("ip", ip) for ip in ips)])

    def remove_service(self, namespace: str, name: str) -> None:
        old = self.services.pop((namespace, name))
        self._announce([("svc", namespace, name), *(("ip", ip) for ip in old.cluster_ips)])

    def set_slices(self, namespace: str, service_name: str, slices: Iterable[Endpoints]) -> None:
        old = [s for s in self.slices if s.namespace == namespace and s.service == service_name]
        self.slices = [s for s in self.slices if s not in old] + list(slices)
        ips = {a.ip for s in [*old, *self.slices] if s.service == service_name for a in s.addresses}
        self._announce([("svc", namespace, service_name), *(("ip", ip) for ip in ips)])
