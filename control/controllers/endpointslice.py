"""The EndpointSlice controller: the endpoints of every selector-based Service as
``discovery.k8s.io/v1`` EndpointSlices (upstream's ``pkg/controller/endpointslice`` and the
reconciler of ``k8s.io/endpointslice``).

Each slice the controller manages carries ``kubernetes.io/service-name: <svc>`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` (plus the
Service's own labels and ``service.kubernetes.io/headless`` when it has no cluster IP), is
named from ``generateName: <svc>-`` and owned by the Service (a controller reference, so the
garbage collector removes the slices with it). One slice holds one address type (from the
Service's ``ipFamilies``) and one set of ports — pods resolving a named ``targetPort``
differently land in different slices — and at most 100 endpoints.

An endpoint is a pod with an IP that is not terminal, terminating ones included, with
upstream's conditions: ``serving`` is the pod's readiness, ``terminating`` whether it has a
``deletionTimestamp``, and ``ready`` is ``serving and not terminating`` — or always true
when the Service sets ``publishNotReadyAddresses``. It names its pod (``targetRef``),
``nodeName``, the node's zone when the node has one and, when the pod's ``subdomain``
names the Service, its ``hostname``. A pod whose node is unknown is left out and the
Service retried, unless the Service publishes not-ready addresses.

The reconcile keeps churn low the way upstream does: endpoints stay in the slice they are
in; a slice is written only when one of its endpoints or its labels changed; new endpoints
fill the slices being updated anyway, then the unchanged slice closest to full, before a
new slice is created; a slice about to be deleted is reused instead of deleting one and
creating another; a Service with no endpoints keeps one empty placeholder slice. Its own
writes are tracked, so its own watch events do not queue the Service again and a
reconcile against a cache that has not yet seen them is retried rather than acted on
(which would create duplicates).

The API server's ``default/kubernetes`` slice has no managed-by label and its Service no
selector: the controller never touches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from control.client import errors
from control.client.controller import Controller, TemporaryError
from control.client.indexer import split_key
from control.client.informer import DeletedFinalStateUnknown, deletion_handling_key
from control.client.workqueue import RateLimitingQueue
from control.controllers import servicepods
from control.controllers.kinds import ENDPOINT_SLICES, NODES, PODS, SERVICES
from control.controllers.manager import ControllerContext
from control.controllers.ownership import namespace_terminating

log = logging.getLogger("kubelab.controllers.endpointslice")

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
API_SERVER_KEY = "default/kubernetes"
# Index of the slice cache: "<namespace>/<service>" for the slices this controller manages.
SLICE_SERVICE_INDEX = "kubelab.io/endpointslice-service"
# Our own writes are expected in the cache within this time; past it they are forgotten.
EXPECTATION_TTL = 60.0
STALE_CACHE_RETRY_SECONDS = 0.1
# upstream's endpointSliceChangeMinSyncDelay: a slice changed by someone else is resynced after it.
SLICE_CHANGE_DELAY = 1.0

Obj = Mapping[str, Any]
NodeLookup = Callable[[str], Obj | None]
PortsKey = tuple[tuple[str, int, str, str], ...]
EndpointKey = tuple[tuple[str, ...], str, str, str]


def _managed(slice_: Obj) -> bool:
    return ((slice_.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def _service_key_of(slice_: Obj) -> str | None:
    metadata = slice_.get("metadata") or {}
    service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{metadata.get('namespace')}/{service}" if service else None


def _slice_service_index(slice_: Obj) -> list[str]:
    key = _service_key_of(slice_) if _managed(slice_) else None
    return [key] if key else []


@dataclass(slots=True)
class _Expectation:
    written: str | None  # resourceVersion of our create/update; None: we deleted it
    superseded: str | None  # the resourceVersion our update replaced; None for creates and deletes
    at: float


class SliceTracker:
    """Our own slice writes until the informer cache shows them (upstream's EndpointSliceTracker)."""

    def __init__(self) -> None:
        self._by_service: dict[str, dict[str, _Expectation]] = {}

    def wrote(self, service_key: str, slice_: Obj, *, superseded: str | None) -> None:
        metadata = slice_.get("metadata") or {}
        self._by_service.setdefault(service_key, {})[metadata["name"]] = _Expectation(
            metadata.get("resourceVersion"), superseded, time.monotonic()
        )

    def deleted(self, service_key: str, name: str) -> None:
        self._by_service.setdefault(service_key, {})[name] = _Expectation(None, None, time.monotonic())

    def forget_service(self, service_key: str) -> None:
        self._by_service.pop(service_key, None)

    def observe(self, slice_: Obj, *, deleted: bool) -> bool:
        """Record a watch event; True when it is the echo of our own write (nothing to do)."""
        service_key = _service_key_of(slice_)
        expected = self._by_service.get(service_key or "")
        metadata = slice_.get("metadata") or {}
        expectation = expected.get(metadata.get("name", "")) if expected else None
        if expectation is None or expected is None:
            return False
        if deleted:
            del expected[metadata["name"]]
            return expectation.written is None
        if expectation.written is not None and expectation.written == metadata.get("resourceVersion"):
            del expected[metadata["name"]]
            return True
        return False

    def stale(self, service_key: str, cached: list[dict[str, Any]]) -> bool:
        """Whether the cache has yet to show one of our writes for this Service."""
        expected = self._by_service.get(service_key)
        if not expected:
            return False
        versions = {s["metadata"]["name"]: s["metadata"].get("resourceVersion") for s in cached}
        now = time.monotonic()
        stale = False
        for name, expectation in list(expected.items()):
            if now - expectation.at > EXPECTATION_TTL:
                del expected[name]
                continue
            present = name in versions
            if expectation.written is None:
                waiting = present
            elif expectation.superseded is None:
                waiting = not present
            else:
                waiting = present and versions[name] == expectation.superseded
            if waiting:
                stale = True
            else:
                del expected[name]
        return stale


class EndpointSliceController:
    name = "endpointslice"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        if max_endpoints_per_slice < 1:
            raise ValueError(f"max_endpoints_per_slice must be at least 1, got {max_endpoints_per_slice}")
        self._client = ctx.client
        self._recorder = ctx.recorder("endpoint-slice-controller")
        self._workers = workers or ctx.options.concurrent_syncs
        self._max = max_endpoints_per_slice
        self._pods = ctx.informers.informer(PODS)
        self._services = ctx.informers.informer(SERVICES)
        self._slices = ctx.informers.informer(ENDPOINT_SLICES)
        self._nodes = ctx.informers.informer(NODES)
        servicepods.ensure_pod_label_index(self._pods)
        if SLICE_SERVICE_INDEX not in self._slices.cache.index_names():
            self._slices.add_indexers({SLICE_SERVICE_INDEX: _slice_service_index})
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="endpoint_slice")
        self._tracker = SliceTracker()

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="endpoint_slice")
        self._tracker = SliceTracker()
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
            (
                self._slices,
                self._slices.add_event_handler(
                    on_add=self._on_slice, on_update=self._on_slice_update, on_delete=self._on_slice_delete
                ),
            ),
        ]
        informers = [self._pods, self._services, self._slices, self._nodes]
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=informers
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    # --- event handlers ---------------------------------------------------------------------

    def _queue_service(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._queue.add(deletion_handling_key(obj))

    def _on_pod_add(self, pod: Obj) -> None:
        for key in servicepods.services_to_update(self._services, old=None, new=pod):
            self._queue.add(key)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        for key in servicepods.services_to_update(self._services, old=old, new=new):
            self._queue.add(key)

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._on_pod_add(servicepods.pod_from_event(obj))

    def _on_slice(self, slice_: Obj) -> None:
        if _managed(slice_) and not self._tracker.observe(slice_, deleted=False):
            self._queue_for_slice(slice_)

    def _on_slice_update(self, old: Obj, new: Obj) -> None:
        if _service_key_of(old) != _service_key_of(new) or _managed(old) != _managed(new):
            self._queue_for_slice(old)
            self._queue_for_slice(new)
            return
        if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get(
            "resourceVersion"
        ):
            return  # a resync: nothing changed
        self._on_slice(new)

    def _on_slice_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        slice_ = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if _managed(slice_) and not self._tracker.observe(slice_, deleted=True):
            self._queue_for_slice(slice_)

    def _queue_for_slice(self, slice_: Obj) -> None:
        key = _service_key_of(slice_)
        if key is not None:
            self._queue.add_after(key, SLICE_CHANGE_DELAY)

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Make the managed slices of the Service ``key`` list its pods."""
        namespace, name = split_key(key)
        service = self._services.cache.get_by_key(key)
        if service is None:
            self._tracker.forget_service(key)  # the garbage collector removes the slices
            return
        selector = servicepods.selector_of(service)
        if key == API_SERVER_KEY or (service.get("spec") or {}).get("type") == "ExternalName" or not selector:
            return
        pods = servicepods.selected_pods(self._pods, namespace=namespace, selector=selector)
        slices = [
            slice_
            for slice_ in self._slices.cache.by_index(SLICE_SERVICE_INDEX, key)
            if not (slice_.get("metadata") or {}).get("deletionTimestamp")
        ]
        if self._tracker.stale(key, slices):
            # The cache shows our own write within milliseconds: look again shortly, at a fixed
            # pace. A rate-limited retry would back off further with every stale look while pods
            # churn, and could leave a Service's endpoints untouched for a minute.
            raise TemporaryError(
                "EndpointSlice informer cache is out of date", delay=STALE_CACHE_RETRY_SECONDS
            )
        plan = plan_slices(
            service,
            pods=pods,
            slices=slices,
            nodes=self._nodes.cache.get_by_key,
            max_endpoints=self._max,
        )
        try:
            await self._apply(key, service=service, plan=plan)
        except errors.ConflictError as exc:
            raise TemporaryError(f"a slice of Service {key} changed since it was cached") from exc
        except errors.RequestError as exc:
            await self._recorder.event(
                service,
                type="Warning",
                reason="FailedToUpdateEndpointSlices",
                message=f"Error updating Endpoint Slices for Service {namespace}/{name}: {exc}",
            )
            raise
        if plan.missing_nodes:
            raise TemporaryError(
                f"skipping pods of Service {key} whose nodes are not known: {', '.join(sorted(plan.missing_nodes))}"
            )

    async def _apply(self, key: str, *, service: Obj, plan: SlicePlan) -> None:
        namespace = service["metadata"]["namespace"]
        if not (service.get("metadata") or {}).get("deletionTimestamp"):
            for body in plan.create:
                try:
                    created = await self._client.create(ENDPOINT_SLICES, body, namespace=namespace)
                except errors.ForbiddenError as exc:
                    if namespace_terminating(exc):
                        return
                    raise
                self._tracker.wrote(key, created, superseded=None)
        for body in plan.update:
            superseded = body["metadata"].get("resourceVersion")
            updated = await self._client.replace(ENDPOINT_SLICES, body)
            self._tracker.wrote(key, updated, superseded=superseded)
        for name in plan.delete:
            try:
                await self._client.delete(ENDPOINT_SLICES, name, namespace=namespace)
            except errors.NotFoundError:
                pass
            self._tracker.deleted(key, name)


def new_controller(ctx: ControllerContext) -> EndpointSliceController:
    return EndpointSliceController(ctx)


# --- the plan -------------------------------------------------------------------------------


@dataclass(slots=True)
class SlicePlan:
    create: list[dict[str, Any]]
    update: list[dict[str, Any]]
    delete: list[str]
    missing_nodes: set[str]


def plan_slices(
    service: Obj,
    *,
    pods: list[dict[str, Any]],
    slices: list[dict[str, Any]],
    nodes: NodeLookup,
    max_endpoints: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """What to create, update and delete so that ``slices`` (the managed slices of ``service``)
    list ``pods`` (the pods its selector selects). ``nodes`` maps a node name to the cached Node
    or None. Pure: reads its arguments, returns new bodies."""
    address_types = servicepods.ip_families(service)
    create: list[dict[str, Any]] = []
    update: list[dict[str, Any]] = []
    delete: list[dict[str, Any]] = []
    missing_nodes: set[str] = set()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for slice_ in slices:
        address_type = slice_.get("addressType")
        if address_type in address_types:
            by_type.setdefault(address_type, []).append(slice_)
        else:
            delete.append(slice_)
    for address_type in address_types:
        existing = by_type.get(address_type, [])
        result = _plan_address_type(
            service,
            pods=pods,
            existing=existing,
            address_type=address_type,
            nodes=nodes,
            max_endpoints=max_endpoints,
            missing_nodes=missing_nodes,
        )
        create.extend(result.create)
        update.extend(result.update)
        delete.extend(result.delete_slices)
    # Reuse slices about to be deleted for the ones about to be created (fewer writes, no gap).
    kept_deletes = []
    for doomed in delete:
        index = next(
            (
                i
                for i in range(len(create) - 1, -1, -1)
                if create[i]["addressType"] == doomed.get("addressType") and _owned_by(doomed, service)
            ),
            None,
        )
        if index is None:
            kept_deletes.append(doomed)
            continue
        replacement = create.pop(index)
        metadata = dict(doomed["metadata"])
        metadata["labels"] = replacement["metadata"]["labels"]
        metadata["ownerReferences"] = replacement["metadata"]["ownerReferences"]
        update.append({**replacement, "metadata": metadata})
    return SlicePlan(
        create=create,
        update=update,
        delete=[doomed["metadata"]["name"] for doomed in kept_deletes],
        missing_nodes=missing_nodes,
    )


@dataclass(slots=True)
class _TypePlan:
    create: list[dict[str, Any]]
    update: list[dict[str, Any]]
    delete_slices: list[dict[str, Any]]


def _plan_address_type(
    service: Obj,
    *,
    pods: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    address_type: str,
    nodes: NodeLookup,
    max_endpoints: int,
    missing_nodes: set[str],
) -> _TypePlan:
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    delete: list[dict[str, Any]] = []
    existing_by_ports: dict[PortsKey, list[dict[str, Any]]] = {}
    for slice_ in existing:
        if _owned_by(slice_, service):
            existing_by_ports.setdefault(_ports_key(slice_.get("ports") or []), []).append(slice_)
        else:
            delete.append(slice_)
    desired_ports: dict[PortsKey, list[dict[str, Any]]] = {}
    desired: dict[PortsKey, dict[EndpointKey, dict[str, Any]]] = {}
    for pod in pods:
        if not servicepods.should_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        ports_key = _ports_key(ports)
        desired_ports.setdefault(ports_key, ports)
        group = desired.setdefault(ports_key, {})
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes(node_name) if node_name else None
        if node is None and not publish:
            missing_nodes.add(f"{pod['metadata']['name']} (node {node_name or 'unassigned'!s})")
            continue
        endpoint = pod_to_endpoint(pod, node=node, service=service, address_type=address_type)
        if endpoint["addresses"]:
            group[_endpoint_key(endpoint)] = endpoint
    create: list[dict[str, Any]] = []
    update: list[dict[str, Any]] = []
    for ports_key, wanted in desired.items():
        result = _plan_ports(
            service,
            existing=existing_by_ports.get(ports_key, []),
            wanted=wanted,
            ports=desired_ports[ports_key],
            address_type=address_type,
            max_endpoints=max_endpoints,
        )
        create.extend(result.create)
        update.extend(result.update)
        delete.extend(result.delete_slices)
    for ports_key, slices in existing_by_ports.items():
        if ports_key not in desired:
            delete.extend(slices)
    if len(existing) == len(delete) and not create:
        placeholder = new_slice(service, ports=[], address_type=address_type)
        if len(delete) == 1 and _is_placeholder_of(delete[0], placeholder):
            delete = []
        else:
            create.append(placeholder)
    return _TypePlan(create, update, delete)


def _plan_ports(
    service: Obj,
    *,
    existing: list[dict[str, Any]],
    wanted: dict[EndpointKey, dict[str, Any]],
    ports: list[dict[str, Any]],
    address_type: str,
    max_endpoints: int,
) -> _TypePlan:
    """reconcileByPortMapping: keep endpoints where they are, fill partly written slices first."""
    wanted = dict(wanted)
    labels = slice_labels(service)
    to_update: dict[str, dict[str, Any]] = {}
    unchanged: dict[str, dict[str, Any]] = {}
    delete: list[dict[str, Any]] = []
    for slice_ in existing:
        kept: list[dict[str, Any]] = []
        changed = False
        for endpoint in slice_.get("endpoints") or ():
            desired = wanted.pop(_endpoint_key(endpoint), None)
            if desired is None:
                continue
            kept.append(desired)
            if not _endpoint_equal(desired, endpoint):
                changed = True
        name = slice_["metadata"]["name"]
        current_labels = (slice_.get("metadata") or {}).get("labels") or {}
        if changed or len(kept) != len(slice_.get("endpoints") or ()):
            if not kept:
                delete.append(slice_)
            else:
                to_update[name] = _with(slice_, endpoints=kept, labels=labels)
        elif current_labels != labels:
            to_update[name] = _with(slice_, endpoints=kept, labels=labels)
        else:
            unchanged[name] = slice_
    remaining = [wanted[key] for key in sorted(wanted)]
    # 2. fill the slices we write anyway, fullest first
    for body in sorted(to_update.values(), key=lambda s: -len(s["endpoints"])):
        room = max_endpoints - len(body["endpoints"])
        if room > 0 and remaining:
            body["endpoints"].extend(remaining[:room])
            del remaining[:room]
    # 3. then the unchanged slice that the rest fits best, then new slices
    create: list[dict[str, Any]] = []
    while remaining:
        target: dict[str, Any] | None = None
        if len(remaining) < max_endpoints and unchanged:
            fitting = [
                s
                for s in unchanged.values()
                if len(s.get("endpoints") or ()) + len(remaining) <= max_endpoints
            ]
            if fitting:
                best = max(fitting, key=lambda s: len(s.get("endpoints") or ()))
                del unchanged[best["metadata"]["name"]]
                target = _with(best, endpoints=list(best.get("endpoints") or ()), labels=labels)
                to_update[best["metadata"]["name"]] = target
        if target is None:
            target = new_slice(service, ports=ports, address_type=address_type)
            create.append(target)
        room = max_endpoints - len(target["endpoints"])
        target["endpoints"].extend(remaining[:room])
        del remaining[:room]
    return _TypePlan(create, list(to_update.values()), delete)


# --- building blocks ------------------------------------------------------------------------


def slice_labels(service: Obj) -> dict[str, str]:
    """The Service's labels, minus the reserved ones, plus the slice's reserved labels."""
    metadata = service.get("metadata") or {}
    reserved = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, servicepods.HEADLESS_LABEL)
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in reserved}
    if not servicepods.has_cluster_ip(service):
        labels[servicepods.HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = metadata["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def new_slice(service: Obj, *, ports: list[dict[str, Any]], address_type: str) -> dict[str, Any]:
    metadata = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{metadata['name']}-",
            "namespace": metadata["namespace"],
            "labels": slice_labels(service),
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": address_type,
        "endpoints": [],
        "ports": [dict(port) for port in ports],
    }


def endpoint_ports(service: Obj, pod: Obj) -> list[dict[str, Any]]:
    """The slice ports for this pod: every Service port whose target the pod has."""
    result = []
    for service_port in (service.get("spec") or {}).get("ports") or ():
        number = servicepods.find_port(pod, service_port)
        if number is None:
            continue
        port: dict[str, Any] = {
            "name": service_port.get("name") or "",
            "port": number,
            "protocol": service_port.get("protocol") or "TCP",
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        result.append(port)
    return result


def pod_to_endpoint(pod: Obj, *, node: Obj | None, service: Obj, address_type: str) -> dict[str, Any]:
    serving = servicepods.is_ready(pod)
    terminating = servicepods.is_terminating(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    want_ipv6 = address_type == "IPv6"
    endpoint: dict[str, Any] = {
        "addresses": [ip for ip in servicepods.pod_ips(pod) if servicepods.is_ipv6(ip) == want_ipv6],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    if servicepods.should_set_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    endpoint["targetRef"] = servicepods.target_ref(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)
    if zone:
        endpoint["zone"] = zone
    return endpoint


def _ports_key(ports: list[Any]) -> PortsKey:
    return tuple(
        sorted(
            (
                port.get("name") or "",
                int(port.get("port") or 0),
                port.get("protocol") or "TCP",
                port.get("appProtocol") or "",
            )
            for port in ports
        )
    )


def _endpoint_key(endpoint: Obj) -> EndpointKey:
    ref = endpoint.get("targetRef") or {}
    return (
        tuple(sorted(endpoint.get("addresses") or ())),
        endpoint.get("hostname") or "",
        ref.get("namespace") or "",
        ref.get("name") or "",
    )


def _endpoint_equal(desired: Obj, current: Obj) -> bool:
    """EndpointsEqualBeyondHash: node, zone, conditions and targetRef (its resourceVersion aside)."""
    for field in ("nodeName", "zone"):
        if desired.get(field) != current.get(field):
            return False
    conditions = current.get("conditions") or {}
    for field, value in desired["conditions"].items():
        if conditions.get(field) != value:
            return False
    current_ref = {k: v for k, v in (current.get("targetRef") or {}).items() if k != "resourceVersion"}
    return desired["targetRef"] == current_ref


def _with(slice_: Obj, *, endpoints: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    """A writable copy of a cached slice with new endpoints and labels (the cache stays untouched)."""
    return {**slice_, "metadata": {**slice_["metadata"], "labels": labels}, "endpoints": endpoints}


def _owned_by(slice_: Obj, service: Obj) -> bool:
    uid = (service.get("metadata") or {}).get("uid")
    return any(
        ref.get("uid") == uid and ref.get("kind") == "Service" and ref.get("apiVersion") == "v1"
        for ref in (slice_.get("metadata") or {}).get("ownerReferences") or ()
    )


def _is_placeholder_of(slice_: Obj, placeholder: Obj) -> bool:
    metadata = slice_.get("metadata") or {}
    return (
        not slice_.get("endpoints")
        and not slice_.get("ports")
        and slice_.get("addressType") == placeholder["addressType"]
        and metadata.get("namespace") == placeholder["metadata"]["namespace"]
        and (metadata.get("labels") or {}) == placeholder["metadata"]["labels"]
        and [dict(ref) for ref in metadata.get("ownerReferences") or ()]
        == placeholder["metadata"]["ownerReferences"]
    )
