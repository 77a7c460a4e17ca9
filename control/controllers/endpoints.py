"""The Endpoints controller: one ``Endpoints`` object per selector-based Service (upstream's
``pkg/controller/endpoint``).

For every Service with a selector (and not of type ExternalName) the controller keeps an
``Endpoints`` of the same name listing the selected pods: ready pods under ``addresses``,
the others under ``notReadyAddresses`` — or all of them as ready when the Service sets
``publishNotReadyAddresses``, the only case where terminating pods are listed too. Each
address carries the pod IP of the Service's first IP family, ``nodeName``, a ``targetRef``
to the pod and, when the pod's ``subdomain`` names the Service, its ``hostname``. Ports are
resolved per pod (a named ``targetPort`` is looked up in the pod's container ports; a pod
lacking it is left out of that port), then repacked into upstream's canonical layout:
addresses grouped by the exact set of ports they serve, sorted, so that an unchanged world
produces an identical object and no write. Labels are the Service's plus
``endpoints.kubernetes.io/managed-by: endpoint-controller`` (1.33) and
``service.kubernetes.io/headless`` for Services without a cluster IP; past 1000 addresses
the object is truncated and annotated ``endpoints.kubernetes.io/over-capacity: truncated``.

Like upstream the controller does not set ``endpointslice.kubernetes.io/skip-mirror`` on
what it writes (the mirroring controller skips Services with selectors on its own), and it
never touches ``default/kubernetes``, which the API server owns. Services without a
selector are left alone. Endpoints whose Service is gone are deleted: on the Service's
deletion event, and once at start-up for leftovers (except leader-election records).

After a write the controller remembers what the cache should show — the object it created,
or not the resourceVersion its update replaced — and a reconcile against a cache that has
not caught up is retried instead of computing from a stale copy (upstream's
staleEndpointsTracker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller, TemporaryError
from control.client.indexer import object_key, split_key
from control.client.informer import DeletedFinalStateUnknown, deletion_handling_key
from control.client.workqueue import RateLimitingQueue
from control.controllers import servicepods
from control.controllers.kinds import ENDPOINTS, PODS, SERVICES
from control.controllers.manager import ControllerContext
from control.controllers.ownership import namespace_terminating

log = logging.getLogger("kubelab.controllers.endpoints")

CONTROLLER_NAME = "endpoint-controller"
MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_CAPACITY = 1000
API_SERVER_KEY = "default/kubernetes"
# Our own writes are expected in the cache within this time; past it they are forgotten.
EXPECTATION_TTL = 60.0

Obj = Mapping[str, Any]


class EndpointsController:
    name = "endpoints"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._recorder = ctx.recorder(CONTROLLER_NAME)
        self._workers = workers or ctx.options.concurrent_syncs
        self._pods = ctx.informers.informer(PODS)
        self._services = ctx.informers.informer(SERVICES)
        self._endpoints = ctx.informers.informer(ENDPOINTS)
        servicepods.ensure_pod_label_index(self._pods)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="endpoint")
        # key -> (what the cache should show after a write of ours, when we wrote): "" for "the
        # object we created", else the resourceVersion our update superseded (stale while shown)
        self._written: dict[str, tuple[str, float]] = {}

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="endpoint")
        self._written = {}
        registrations = [
            (
                self._services,
                self._services.add_event_handler(
                    on_add=self._queue_service,
                    on_update=lambda old, new: self._queue_service(new),
                    on_delete=self._queue_service,
                ),
            ),
            (
                self._pods,
                self._pods.add_event_handler(
                    on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
                ),
            ),
            (self._endpoints, self._endpoints.add_event_handler(on_delete=self._on_endpoints_delete)),
        ]
        informers = [self._pods, self._services, self._endpoints]
        try:
            for informer in informers:
                if not await informer.wait_for_sync():
                    return
            self._queue_leftover_endpoints()
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=informers
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    # --- event handlers ---------------------------------------------------------------------

    def _queue_service(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._queue.add(deletion_handling_key(obj))

    def _on_endpoints_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = deletion_handling_key(obj)
        self._written.pop(key, None)  # whatever we wrote last is gone now
        self._queue.add(key)

    def _on_pod_add(self, pod: Obj) -> None:
        for key in servicepods.services_to_update(self._services, old=None, new=pod):
            self._queue.add(key)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        for key in servicepods.services_to_update(self._services, old=old, new=new):
            self._queue.add(key)

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._on_pod_add(servicepods.pod_from_event(obj))

    def _queue_leftover_endpoints(self) -> None:
        for endpoints in self._endpoints.cache.list():
            if LEADER_ANNOTATION not in ((endpoints.get("metadata") or {}).get("annotations") or {}):
                self._queue.add(object_key(endpoints))

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Make the Endpoints named ``key`` match its Service's pods (or delete it)."""
        if key == API_SERVER_KEY:
            return
        namespace, name = split_key(key)
        service = self._services.cache.get_by_key(key)
        if service is None:
            try:
                await self._client.delete(ENDPOINTS, name, namespace=namespace)
            except errors.NotFoundError:
                pass
            self._written.pop(key, None)
            return
        spec = service.get("spec") or {}
        selector = servicepods.selector_of(service)
        if spec.get("type") == "ExternalName" or not selector:
            return
        pods = servicepods.selected_pods(self._pods, namespace=namespace, selector=selector)
        subsets = desired_subsets(service, pods)
        current = self._endpoints.cache.get_by_key(key)
        self._check_cache_caught_up(key, current)
        labels = desired_labels(service)
        truncated, subsets = truncate(subsets)
        if current is not None and _up_to_date(current, subsets=subsets, labels=labels, truncated=truncated):
            return
        await self._write(service, current, subsets=subsets, labels=labels, truncated=truncated)

    def _check_cache_caught_up(self, key: str, current: Obj | None) -> None:
        """Fail (to be retried) while the cache does not yet show our last write of ``key``."""
        written = self._written.get(key)
        if written is None:
            return
        expected, at = written
        if time.monotonic() - at > EXPECTATION_TTL:
            del self._written[key]
            return
        if current is None:
            if expected == "":
                raise TemporaryError("the endpoints cache does not show the endpoints created yet")
        elif (current.get("metadata") or {}).get("resourceVersion") == expected:
            raise TemporaryError(
                f"the endpoints cache is out of date: resourceVersion {expected} was already replaced"
            )
        del self._written[key]

    async def _write(
        self,
        service: Obj,
        current: Obj | None,
        *,
        subsets: list[dict[str, Any]],
        labels: dict[str, str],
        truncated: bool,
    ) -> None:
        metadata = service["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        if current is None:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace},
            }
        else:
            body = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": dict(current["metadata"]),
            }
        body["metadata"]["labels"] = labels
        annotations = dict(body["metadata"].get("annotations") or {})
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if annotations:
            body["metadata"]["annotations"] = annotations
        else:
            body["metadata"].pop("annotations", None)
        if subsets:
            body["subsets"] = subsets
        try:
            if current is None:
                await self._client.create(ENDPOINTS, body, namespace=namespace)
                self._written[f"{namespace}/{name}"] = ("", time.monotonic())
            else:
                updated = await self._client.replace(ENDPOINTS, body)
                old_version = current["metadata"].get("resourceVersion")
                if updated["metadata"].get("resourceVersion") != old_version and old_version:
                    self._written[f"{namespace}/{name}"] = (old_version, time.monotonic())
        except errors.AlreadyExistsError as exc:
            raise TemporaryError(f"endpoints {namespace}/{name} exist but are not cached yet") from exc
        except errors.ConflictError as exc:
            raise TemporaryError(f"endpoints {namespace}/{name} changed since they were cached") from exc
        except errors.RequestError as exc:
            if current is None and namespace_terminating(exc):
                return  # creates keep failing until the namespace is gone: drop the key
            reason, verb = (
                ("FailedToCreateEndpoint", "create")
                if current is None
                else ("FailedToUpdateEndpoint", "update")
            )
            await self._recorder.event(
                body,
                type="Warning",
                reason=reason,
                message=f"Failed to {verb} endpoint for service {namespace}/{name}: {exc}",
            )
            raise


def new_controller(ctx: ControllerContext) -> EndpointsController:
    return EndpointsController(ctx)


# --- the desired object -------------------------------------------------------------------


def desired_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if servicepods.has_cluster_ip(service):
        labels.pop(servicepods.HEADLESS_LABEL, None)
    else:
        labels[servicepods.HEADLESS_LABEL] = ""
    return labels


def desired_subsets(service: Obj, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The canonical subsets for ``service`` over ``pods`` (already selected by its selector)."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    want_ipv6 = servicepods.ip_families(service)[0] == "IPv6"
    service_ports = spec.get("ports") or []
    headless = not servicepods.has_cluster_ip(service)
    entries: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []
    for pod in pods:
        if not servicepods.should_be_in_endpoints(pod, include_terminating=publish):
            continue
        ip = next((ip for ip in servicepods.pod_ips(pod) if servicepods.is_ipv6(ip) == want_ipv6), None)
        if ip is None:
            continue
        address: dict[str, Any] = {"ip": ip}
        if servicepods.should_set_hostname(pod, service):
            address["hostname"] = pod["spec"]["hostname"]
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            address["nodeName"] = node_name
        address["targetRef"] = servicepods.target_ref(pod)
        ready = publish or servicepods.is_ready(pod)
        if not service_ports:
            if headless:
                entries.append((address, None, ready))
            continue
        for service_port in service_ports:
            number = servicepods.find_port(pod, service_port)
            if number is None:
                continue
            port: dict[str, Any] = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
            if service_port.get("name"):
                port["name"] = service_port["name"]
            if service_port.get("appProtocol"):
                port["appProtocol"] = service_port["appProtocol"]
            entries.append((address, port, ready))
    return repack(entries)


def _address_key(address: Obj) -> tuple[str, str]:
    return address["ip"], (address.get("targetRef") or {}).get("uid", "")


def _port_key(port: Obj | None) -> tuple[str, int, str, str]:
    if port is None:
        return ("", -1, "", "")
    return (port.get("name", ""), port["port"], port.get("protocol", "TCP"), port.get("appProtocol", ""))


def repack(entries: list[tuple[dict[str, Any], dict[str, Any] | None, bool]]) -> list[dict[str, Any]]:
    """Upstream's RepackSubsets: group addresses by the set of ports they serve, in a fixed order.

    ``entries`` are (address, port or None for a portless headless Service, ready). An address
    not ready on any of its entries for a port is not ready for that port.
    """
    addresses: dict[tuple[str, str], dict[str, Any]] = {}
    ports: dict[tuple[str, int, str, str], dict[str, Any] | None] = {}
    readiness: dict[tuple[str, int, str, str], dict[tuple[str, str], bool]] = {}
    for address, port, ready in entries:
        address_key = _address_key(address)
        addresses.setdefault(address_key, address)
        port_key = _port_key(port)
        ports.setdefault(port_key, port)
        by_address = readiness.setdefault(port_key, {})
        by_address[address_key] = by_address.get(address_key, True) and ready
    groups: dict[tuple[tuple[tuple[str, str], bool], ...], list[tuple[str, int, str, str]]] = {}
    for port_key, by_address in readiness.items():
        groups.setdefault(tuple(sorted(by_address.items())), []).append(port_key)
    subsets = []
    for members, port_keys in groups.items():
        subset: dict[str, Any] = {}
        ready = [addresses[key] for key, is_ready in members if is_ready]
        not_ready = [addresses[key] for key, is_ready in members if not is_ready]
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subset_ports = [ports[key] for key in sorted(port_keys) if ports[key] is not None]
        if subset_ports:
            subset["ports"] = subset_ports
        subsets.append((members, sorted(port_keys), subset))
    subsets.sort(key=lambda item: (item[0], item[1]))
    return [subset for _, _, subset in subsets]


def truncate(subsets: list[dict[str, Any]]) -> tuple[bool, list[dict[str, Any]]]:
    """Upstream's truncateEndpoints: at most MAX_CAPACITY addresses, ready ones first, spread
    over the subsets in proportion to their size. Returns (truncated, subsets)."""
    total_ready = sum(len(s.get("addresses") or ()) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False, subsets
    truncate_ready = total_ready > MAX_CAPACITY
    budget = MAX_CAPACITY if truncate_ready else MAX_CAPACITY - total_ready
    total = total_ready if truncate_ready else total_not_ready
    remaining = budget
    result = []
    for subset in subsets:
        subset = dict(subset)
        field = "addresses" if truncate_ready else "notReadyAddresses"
        members = subset.get(field) or []
        share = min(-(-len(members) * budget // total), remaining)
        kept = members[:share]
        remaining -= len(kept)
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        if subset.get("addresses") or subset.get("notReadyAddresses"):
            result.append(subset)
    return True, result


def _up_to_date(
    current: Obj, *, subsets: list[dict[str, Any]], labels: dict[str, str], truncated: bool
) -> bool:
    metadata = current.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return (
        _comparable(current.get("subsets") or []) == _comparable(subsets)
        and (metadata.get("labels") or {}) == labels
        and (OVER_CAPACITY_ANNOTATION in annotations) == truncated
    )


def _comparable(subsets: list[Any]) -> list[Any]:
    """Subsets with targetRef resourceVersions dropped (upstream ignores them when comparing)."""
    result = []
    for subset in subsets:
        copied = dict(subset)
        for field in ("addresses", "notReadyAddresses"):
            if field in copied:
                copied[field] = [_without_ref_version(address) for address in copied[field] or ()]
        result.append(copied)
    return result


def _without_ref_version(address: Obj) -> Obj:
    ref = address.get("targetRef")
    if not ref or "resourceVersion" not in ref:
        return address
    return {**address, "targetRef": {k: v for k, v in ref.items() if k != "resourceVersion"}}
