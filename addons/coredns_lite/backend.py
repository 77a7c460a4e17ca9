"""What the DNS handler knows about the cluster: a narrow interface, and the informer-fed real one.

The record rules (``answers``) depend only on :class:`Backend` — services by name, endpoints of a
service, services and endpoints by IP, pods by IP, whether a namespace exists, whether the first
sync is done — as CoreDNS's kubernetes plugin depends on its ``dnsController``. Tests drive the
rules with a fake backend; production uses :class:`InformerBackend`.

:class:`InformerBackend` lists and watches Services, EndpointSlices, Namespaces and (only for
``pods verified``) Pods with ``control.client``'s reflector, but keeps **slim objects**: each API
object is converted on arrival to a small frozen record with only the fields DNS needs
(:class:`Service`, :class:`Endpoints`, :class:`Pod`), and the dict is dropped. Whole objects
cost memory at scale (CoreDNS's ``object`` package exists for the same reason); slim ones also
compare cheaply, so an update that changes nothing DNS sees (a status write, a resync) changes
nothing here either.

Every effective change is announced to the listeners as *tags* naming what it touched —
``("svc", namespace, name)``, ``("ns", namespace)``, ``("ip", address)`` — which is how the answer
table forgets exactly the names a change affects instead of the whole zone. ``modified()`` is the
Unix time of the last change: CoreDNS's SOA serial.

Readiness is CoreDNS's: an EndpointSlice endpoint counts when ``conditions.ready`` is true or
absent (the EndpointSlice controller already sets it for ``publishNotReadyAddresses``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from control.client import Resource, RESTClient
from control.client.reflector import Reflector

log = logging.getLogger(__name__)

SERVICES = Resource("", "v1", "services", "Service")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
EXTERNAL_NAME = "ExternalName"
HEADLESS = "None"
NO_PORT = -1  # CoreDNS's sentinel: a Service or slice without ports still has addresses

Tag = tuple[str, ...]
Listener = Callable[[list[Tag]], None]


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


NO_PORTS = (Port("", "", NO_PORT),)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    namespace: str
    type: str
    cluster_ips: tuple[str, ...]
    external_name: str
    ports: tuple[Port, ...]

    @property
    def headless(self) -> bool:
        return self.cluster_ips[0] == HEADLESS


@dataclass(frozen=True, slots=True)
class Address:
    ip: str
    hostname: str
    target_name: str  # the pod's name (for endpoint_pod_names), "" when longer than a label allows
    node_name: str


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One EndpointSlice: its Service, ports and *ready* addresses."""

    name: str
    namespace: str
    service: str
    addresses: tuple[Address, ...]
    ports: tuple[Port, ...]


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    namespace: str
    ip: str


class Backend(Protocol):
    """What answers are computed from. Returned objects are shared: never mutate them."""

    def has_synced(self) -> bool: ...

    def modified(self) -> int: ...

    def namespace_exists(self, namespace: str) -> bool: ...

    def service(self, namespace: str, name: str) -> Service | None: ...

    def endpoints(self, namespace: str, service: str) -> Sequence[Endpoints]: ...

    def services_by_ip(self, ip: str) -> Sequence[Service]: ...

    def endpoints_by_ip(self, ip: str) -> Sequence[Endpoints]: ...

    def pods_by_ip(self, ip: str) -> Sequence[Pod]: ...

    def add_listener(self, listener: Listener) -> None: ...


# --- conversion to slim objects --------------------------------------------------------------------


def _ports(items: Iterable[dict[str, Any]] | None) -> tuple[Port, ...]:
    ports = tuple(
        Port(str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p.get("port", NO_PORT)))
        for p in items or ()
    )
    return ports or NO_PORTS


def to_service(obj: dict[str, Any]) -> Service:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    ips = tuple(spec.get("clusterIPs") or ()) or (str(spec.get("clusterIP") or ""),)
    return Service(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ips=ips,
        external_name=str(spec.get("externalName") or ""),
        ports=_ports(spec.get("ports")),
    )


def to_endpoints(obj: dict[str, Any]) -> Endpoints:
    meta = obj["metadata"]
    addresses = []
    for endpoint in obj.get("endpoints") or ():
        ready = (endpoint.get("conditions") or {}).get("ready")
        if ready is False:
            continue
        target = (endpoint.get("targetRef") or {}).get("name") or ""
        for ip in endpoint.get("addresses") or ():
            addresses.append(
                Address(
                    ip=ip,
                    hostname=endpoint.get("hostname") or "",
                    target_name=target if len(target) < 64 else "",
                    node_name=endpoint.get("nodeName") or "",
                )
            )
    slice_ports = obj.get("ports") or ()
    ports = tuple(
        Port(str(p.get("name") or ""), str(p.get("protocol") or ""), int(p.get("port") or NO_PORT))
        for p in slice_ports
    )
    return Endpoints(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        service=(meta.get("labels") or {}).get(SERVICE_NAME_LABEL, ""),
        addresses=tuple(addresses),
        ports=ports or NO_PORTS,
    )


def to_pod(obj: dict[str, Any]) -> Pod | None:
    """The pod's slim form, or None while it terminates (CoreDNS drops terminating pods)."""
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return None
    return Pod(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        ip=(obj.get("status") or {}).get("podIP") or "",
    )


# --- the stores the reflectors fill -----------------------------------------------------------------


class _SlimStore:
    """A reflector store that keeps slim objects by key and tells its owner what changed."""

    def __init__(
        self, *, name: str, convert: Callable[[dict[str, Any]], Any], on_change: Callable[[Any, Any], None]
    ) -> None:
        self.name = name
        self._convert = convert
        self._on_change = on_change
        self.objects: dict[tuple[str, str], Any] = {}
        self.synced = asyncio.Event()

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def _set(self, key: tuple[str, str], new: Any) -> None:
        old = self.objects.get(key)
        if old == new:
            return
        if new is None:
            del self.objects[key]
        else:
            self.objects[key] = new
        self._on_change(old, new)

    def replace(self, items: list[dict[str, Any]], resource_version: str) -> None:
        fresh = {self._key(obj): self._convert(obj) for obj in items}
        for key in [key for key in self.objects if key not in fresh]:
            self._set(key, None)
        for key, new in fresh.items():
            self._set(key, new)
        self.synced.set()

    def add(self, obj: dict[str, Any]) -> None:
        self._set(self._key(obj), self._convert(obj))

    update = add

    def delete(self, obj: dict[str, Any]) -> None:
        key = self._key(obj)
        if key in self.objects:
            self._set(key, None)


class InformerBackend:
    """The :class:`Backend` over the API server. ``start()`` inside the loop; ``await stop()``.

    ``label_selector`` filters Services and EndpointSlices (CoreDNS's ``labels``); ``pods`` says
    whether to watch Pods (only ``pods verified`` needs them), ``endpoints`` whether to watch
    EndpointSlices (not with ``noendpoints``).
    """

    def __init__(
        self,
        client: RESTClient,
        *,
        pods: bool = False,
        endpoints: bool = True,
        label_selector: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._modified = int(clock())
        self._listeners: list[Listener] = []
        self._services: dict[tuple[str, str], Service] = {}
        self._services_by_ip: dict[str, dict[tuple[str, str], Service]] = {}
        self._slices_by_service: dict[tuple[str, str], dict[str, Endpoints]] = {}
        self._slices_by_ip: dict[str, dict[tuple[str, str], Endpoints]] = {}
        self._pods_by_ip: dict[str, dict[tuple[str, str], Pod]] = {}
        self._namespaces: set[str] = set()
        stores = [
            (
                SERVICES,
                label_selector,
                _SlimStore(name="services", convert=to_service, on_change=self._service_changed),
            ),
            (
                NAMESPACES,
                None,
                _SlimStore(
                    name="namespaces",
                    convert=lambda o: o["metadata"]["name"],
                    on_change=self._namespace_changed,
                ),
            ),
        ]
        if endpoints:
            stores.append(
                (
                    ENDPOINT_SLICES,
                    label_selector,
                    _SlimStore(name="endpointslices", convert=to_endpoints, on_change=self._slice_changed),
                )
            )
        if pods:
            stores.append((PODS, None, _SlimStore(name="pods", convert=to_pod, on_change=self._pod_changed)))
        self._stores = [store for _, _, store in stores]
        self._reflectors = [
            Reflector(
                client.lister_watcher(resource, label_selector=selector),
                store,
                name=f"coredns_lite {store.name}",
            )
            for resource, selector, store in stores
        ]
        self._tasks: list[asyncio.Task[None]] = []

    # --- Backend ------------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        return all(store.synced.is_set() for store in self._stores)

    def modified(self) -> int:
        return self._modified

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def service(self, namespace: str, name: str) -> Service | None:
        return self._services.get((namespace, name))

    def endpoints(self, namespace: str, service: str) -> Sequence[Endpoints]:
        return list(self._slices_by_service.get((namespace, service), {}).values())

    def services_by_ip(self, ip: str) -> Sequence[Service]:
        return list(self._services_by_ip.get(ip, {}).values())

    def endpoints_by_ip(self, ip: str) -> Sequence[Endpoints]:
        return list(self._slices_by_ip.get(ip, {}).values())

    def pods_by_ip(self, ip: str) -> Sequence[Pod]:
        return list(self._pods_by_ip.get(ip, {}).values())

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(reflector.run(), name=reflector.name) for reflector in self._reflectors
            ]

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        waiters = [asyncio.ensure_future(store.synced.wait()) for store in self._stores]
        try:
            await asyncio.wait(waiters, timeout=timeout)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.has_synced()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- indexes ------------------------------------------------------------------------------------

    def _announce(self, tags: list[Tag]) -> None:
        self._modified = int(self._clock())
        for listener in self._listeners:
            try:
                listener(tags)
            except Exception:
                log.exception("a change listener failed")

    def _service_changed(self, old: Service | None, new: Service | None) -> None:
        tags: list[Tag] = []
        for svc, present in ((old, False), (new, True)):
            if svc is None:
                continue
            key = (svc.namespace, svc.name)
            tags.append(("svc", svc.namespace, svc.name))
            for ip in svc.cluster_ips:
                if ip and ip != HEADLESS:
                    tags.append(("ip", ip))
                    by_ip = self._services_by_ip.setdefault(ip, {})
                    if present:
                        by_ip[key] = svc
                    else:
                        by_ip.pop(key, None)
                        if not by_ip:
                            del self._services_by_ip[ip]
            if present:
                self._services[key] = svc
            else:
                self._services.pop(key, None)
        self._announce(tags)

    def _slice_changed(self, old: Endpoints | None, new: Endpoints | None) -> None:
        tags: list[Tag] = []
        for eps, present in ((old, False), (new, True)):
            if eps is None or not eps.service:
                continue
            service_key = (eps.namespace, eps.service)
            slice_key = (eps.namespace, eps.name)
            tags.append(("svc", eps.namespace, eps.service))
            slices = self._slices_by_service.setdefault(service_key, {})
            if present:
                slices[eps.name] = eps
            else:
                slices.pop(eps.name, None)
                if not slices:
                    del self._slices_by_service[service_key]
            for address in eps.addresses:
                tags.append(("ip", address.ip))
                by_ip = self._slices_by_ip.setdefault(address.ip, {})
                if present:
                    by_ip[slice_key] = eps
                else:
                    by_ip.pop(slice_key, None)
                    if not by_ip:
                        del self._slices_by_ip[address.ip]
        self._announce(tags)

    def _namespace_changed(self, old: str | None, new: str | None) -> None:
        if old is not None:
            self._namespaces.discard(old)
        if new is not None:
            self._namespaces.add(new)
        self._announce([("ns", new or old or "")])

    def _pod_changed(self, old: Pod | None, new: Pod | None) -> None:
        tags: list[Tag] = []
        for pod, present in ((old, False), (new, True)):
            if pod is None or not pod.ip:
                continue
            tags.append(("ip", pod.ip))
            by_ip = self._pods_by_ip.setdefault(pod.ip, {})
            if present:
                by_ip[(pod.namespace, pod.name)] = pod
            else:
                by_ip.pop((pod.namespace, pod.name), None)
                if not by_ip:
                    del self._pods_by_ip[pod.ip]
        self._announce(tags)
