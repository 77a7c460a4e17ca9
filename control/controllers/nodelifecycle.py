"""The node lifecycle controller: notices dead nodes, taints them, and evicts their pods
(upstream's ``pkg/controller/nodelifecycle`` with its taint-eviction controller,
``pkg/controller/tainteviction``).

**Health.** Every ``node_monitor_period`` each Node is checked as ``tryUpdateNodeHealth`` does. The
controller remembers, per Node, when it last saw a sign of life — the Ready condition's
``lastHeartbeatTime`` changing, or the Node's Lease in ``kube-node-lease`` being renewed — on
its own monotonic clock, so clock skew between machines does not matter. When no sign came for
``node_monitor_grace_period``, the Ready, MemoryPressure, DiskPressure and PIDPressure
conditions become ``Unknown`` (reason ``NodeStatusUnknown``, message ``Kubelet stopped posting
node status.``; ``NodeStatusNeverUpdated`` / ``Kubelet never posted node status.`` for a
condition the kubelet never wrote). On the pass where the Node turns from Ready to not Ready
the Node gets a ``NodeNotReady`` event (``Node <name> status is now: NodeNotReady``) and each of
its pods has its Ready condition set to False with a ``NodeNotReady`` warning (``Node is not
ready``).

**NoExecute taints.** From the Ready condition *as observed before this pass's update* (so one
period after the Node went Unknown, as upstream): ``False`` → ``node.kubernetes.io/not-ready``,
``Unknown`` → ``node.kubernetes.io/unreachable`` (the other one is swapped out), both with
``timeAdded``; ``True`` → both removed. Upstream rate-limits tainting per zone and stops
evicting when a whole zone is down; kubelab taints at once and has no zones.

**NoSchedule taints** follow conditions on every Node change (``doNoScheduleTaintingPass``):
Ready False/Unknown → not-ready/unreachable, MemoryPressure/DiskPressure/PIDPressure/
NetworkUnavailable True → the matching pressure taint, ``spec.unschedulable`` →
``node.kubernetes.io/unschedulable``.

**Eviction.** A pod bound to a Node with NoExecute taints is deleted at once if it does not
tolerate them all, else after the smallest ``tolerationSeconds`` among the tolerations used
(never, if none sets it), counted from when the controller first saw it tolerated — upstream's
taint-eviction controller. Before deleting, the pod gets a ``DisruptionTarget`` condition
(reason ``DeletionByTaintManager``) and a ``TaintManagerEviction`` event ``Marking for deletion
Pod <ns>/<name>``; a scheduled eviction that is no longer needed is cancelled with
``Cancelling deletion of Pod <ns>/<name>``. Pods already being deleted are left alone.

Upstream relies on the API server's ``DefaultTolerationSeconds`` admission plugin to give every
pod tolerations for not-ready and unreachable (``NoExecute``, 300 s). kubelab's API server does
not add them yet, so eviction applies the same defaulting to pods that lack such a toleration
(``ControllerOptions.default_not_ready_toleration_seconds`` / ``_unreachable_``): with or without
the admission plugin, pods are evicted after the same time.

Taints are written with merge patches carrying the Node's resourceVersion, retried on conflict,
so the kubelet's and this controller's writes never overwrite each other.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller
from control.client.indexer import object_key, split_key
from control.client.informer import DeletedFinalStateUnknown, SharedInformer
from control.client.rest import PatchType
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import LEASES, NODES, PODS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import format_time, parse_time
from control.resources.tolerations import Taint, Toleration, tolerates

log = logging.getLogger("kubelab.controllers.nodelifecycle")

CONTROLLER_NAME = "node-controller"
EVICTION_COMPONENT = "taint-eviction-controller"
NODE_LEASE_NAMESPACE = "kube-node-lease"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

# condition type -> condition status -> taint key (upstream's nodeConditionToTaintKeyStatusMap)
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": TAINT_MEMORY_PRESSURE},
    "DiskPressure": {"True": TAINT_DISK_PRESSURE},
    "NetworkUnavailable": {"True": TAINT_NETWORK_UNAVAILABLE},
    "PIDPressure": {"True": TAINT_PID_PRESSURE},
}
_CONDITION_TAINT_KEYS = frozenset(
    key for by_status in CONDITION_TAINTS.values() for key in by_status.values()
)
# The conditions set to Unknown when the kubelet goes quiet (NetworkUnavailable is not the kubelet's).
_KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

POD_NODE_INDEX = "kubelab.io/pod-node-name"

Obj = Mapping[str, Any]


# --- taints and tolerations -------------------------------------------------------------------


def untolerated_taint(
    taints: Iterable[Taint], tolerations: Sequence[Toleration], *, effects: Iterable[str]
) -> Taint | None:
    """The first taint with one of ``effects`` no toleration tolerates (``FindMatchingUntoleratedTaint``)."""
    wanted = set(effects)
    for taint in taints:
        if taint.get("effect") in wanted and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def matching_tolerations(
    taints: Sequence[Taint], tolerations: Sequence[Toleration]
) -> tuple[bool, list[Toleration]]:
    """Whether every taint is tolerated, and the toleration used for each (``GetMatchingTolerations``)."""
    used: list[Toleration] = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return False, []
        used.append(match)
    return True, used


def min_toleration_seconds(tolerations: Sequence[Toleration]) -> float | None:
    """How long the used tolerations allow a pod to stay: 0 if any says <= 0 or none were needed,
    None (forever) if none sets ``tolerationSeconds`` (upstream's ``getMinTolerationTime``)."""
    if not tolerations:
        return 0.0
    smallest: float | None = None
    for toleration in tolerations:
        seconds = toleration.get("tolerationSeconds")
        if seconds is None:
            continue
        if seconds <= 0:
            return 0.0
        if smallest is None or seconds < smallest:
            smallest = float(seconds)
    return smallest


def with_default_tolerations(
    tolerations: Sequence[Toleration], *, not_ready_seconds: int, unreachable_seconds: int
) -> list[Toleration]:
    """The pod's tolerations plus what the ``DefaultTolerationSeconds`` admission plugin would add:
    ``not-ready`` and ``unreachable`` (``Exists``, ``NoExecute``) for the given seconds, each unless
    a toleration for that key (or every key) with effect NoExecute (or every effect) is present."""
    result = list(tolerations)
    for key, seconds in ((TAINT_NOT_READY, not_ready_seconds), (TAINT_UNREACHABLE, unreachable_seconds)):
        covered = any(
            (t.get("key") or "") in (key, "") and (t.get("effect") or "") in (NO_EXECUTE, "")
            for t in tolerations
        )
        if not covered:
            result.append(
                {"key": key, "operator": "Exists", "effect": NO_EXECUTE, "tolerationSeconds": seconds}
            )
    return result


def _same_taint(a: Taint, b: Taint) -> bool:
    """``Taint.MatchTaint``: same key and effect."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def _has_taint(taints: Iterable[Taint], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


def node_taints(node: Obj) -> list[dict[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or ())


def condition(node: Obj, condition_type: str) -> Mapping[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == condition_type:
            return cond
    return None


def _pod_node_index(pod: Obj) -> list[str]:
    node_name = (pod.get("spec") or {}).get("nodeName")
    return [node_name] if node_name else []


def _wall_now() -> datetime:
    return datetime.now(UTC)


# --- the controller ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Health:
    """What the controller last saw of a Node (upstream's ``nodeHealthData``)."""

    probe: float  # monotonic time of the last sign of life
    ready: Mapping[str, Any] | None  # the Ready condition then
    renew_time: datetime | None  # the Lease's renewTime then


@dataclass(slots=True)
class _Eviction:
    fire_at: float  # monotonic


class TaintError(Exception):
    """The taints of a Node could not be written (it kept changing, or the API failed)."""


class NodeLifecycleController:
    """Node health, condition and NoExecute taints, and taint-based eviction (module docstring)."""

    name = "nodelifecycle"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = REAL_CLOCK,
        now: Callable[[], datetime] = _wall_now,
        workers: int | None = None,
    ) -> None:
        options = ctx.options
        if options.node_monitor_period <= 0 or options.node_monitor_grace_period <= 0:
            raise ValueError("node_monitor_period and node_monitor_grace_period must be positive")
        self._client = ctx.client
        self._clock = clock
        self._now = now
        self._period = options.node_monitor_period
        self._grace = options.node_monitor_grace_period
        self._not_ready_seconds = options.default_not_ready_toleration_seconds
        self._unreachable_seconds = options.default_unreachable_toleration_seconds
        self._workers = workers or options.concurrent_syncs
        self._recorder: EventRecorder = ctx.recorder(CONTROLLER_NAME)
        self._eviction_recorder: EventRecorder = ctx.recorder(EVICTION_COMPONENT)
        self._nodes = ctx.informers.informer(NODES)
        self._leases = ctx.informers.informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self._pods = ctx.informers.informer(PODS)
        if POD_NODE_INDEX not in self._pods.cache.index_names():
            self._pods.add_indexers({POD_NODE_INDEX: _pod_node_index})
        self._health: dict[str, _Health] = {}
        # Nodes whose pods could not all be marked not ready yet (upstream's nodesToRetry).
        self._retry_not_ready: set[str] = set()
        self._evictions: dict[str, _Eviction] = {}
        self._taint_queue: RateLimitingQueue[str] = RateLimitingQueue(
            name="node-noschedule-taint", clock=clock
        )
        self._eviction_queue: RateLimitingQueue[str] = RateLimitingQueue(name="taint-eviction", clock=clock)

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        self._taint_queue = taint_queue = RateLimitingQueue(name="node-noschedule-taint", clock=self._clock)
        self._eviction_queue = eviction_queue = RateLimitingQueue(name="taint-eviction", clock=self._clock)
        self._health = {}
        self._retry_not_ready = set()
        self._evictions = {}
        informers: list[SharedInformer] = [self._nodes, self._leases, self._pods]
        for informer in informers:
            if not await informer.wait_for_sync():
                return
        registrations = [
            (
                self._nodes,
                self._nodes.add_event_handler(
                    on_add=self._on_node_add, on_update=self._on_node_update, on_delete=self._on_node_delete
                ),
            ),
            (
                self._pods,
                self._pods.add_event_handler(
                    on_add=self._on_pod,
                    on_update=lambda old, new: self._on_pod(new),
                    on_delete=self._on_pod_delete,
                ),
            ),
        ]
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._monitor_loop(), name="node-monitor")
                group.create_task(
                    Controller(
                        "node-noschedule-taint",
                        taint_queue,
                        self.sync_noschedule_taints,
                        workers=1,
                        informers=informers,
                    ).run()
                )
                group.create_task(
                    Controller(
                        "taint-eviction",
                        eviction_queue,
                        self.sync_eviction,
                        workers=self._workers,
                        informers=informers,
                    ).run()
                )
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    async def _monitor_loop(self) -> None:
        while True:
            await self.monitor_node_health()
            await self._clock.sleep(self._period)

    # --- event handlers ---------------------------------------------------------------------

    def _on_node_add(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._taint_queue.add(name)
        self._queue_pods_on(name)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        name = new["metadata"]["name"]
        self._taint_queue.add(name)
        if [t for t in node_taints(old) if t.get("effect") == NO_EXECUTE] != [
            t for t in node_taints(new) if t.get("effect") == NO_EXECUTE
        ]:
            self._queue_pods_on(name)

    def _on_node_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        node = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        name = node["metadata"]["name"]
        self._health.pop(name, None)
        self._queue_pods_on(name)

    def _queue_pods_on(self, node_name: str) -> None:
        for key in self._pods.cache.index_keys(POD_NODE_INDEX, node_name):
            self._eviction_queue.add(key)

    def _on_pod(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self._eviction_queue.add(object_key(pod))

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self._evictions.pop(object_key(pod), None)

    # --- health -----------------------------------------------------------------------------

    async def monitor_node_health(self) -> None:
        """One pass over every Node (``monitorNodeHealth``); errors on one Node do not stop the pass."""
        nodes = sorted(self._nodes.cache.list(), key=lambda n: n["metadata"]["name"])
        for gone in set(self._health) - {n["metadata"]["name"] for n in nodes}:
            del self._health[gone]
        for node in nodes:
            try:
                await self._monitor_node(node)
            except (errors.RequestError, TaintError) as exc:
                log.warning("monitoring node %s: %s", node["metadata"]["name"], exc)

    async def _monitor_node(self, cached: Obj) -> None:
        node, observed, current = await self._update_node_health(cached)
        if current is None:
            return
        await self._taint_by_readiness(node, observed)
        name = node["metadata"]["name"]
        became_not_ready = current.get("status") != "True" and observed.get("status") == "True"
        if became_not_ready:
            await self._recorder.event(
                node, type="Normal", reason="NodeNotReady", message=f"Node {name} status is now: NodeNotReady"
            )
        if became_not_ready or (name in self._retry_not_ready and observed.get("status") != "True"):
            self._retry_not_ready.add(name)
            await self._mark_pods_not_ready(name)
        self._retry_not_ready.discard(name)

    def _observe(self, node: Obj) -> _Health:
        """Update what we know of ``node`` from its status and Lease; returns the record."""
        name = node["metadata"]["name"]
        now = self._clock.now()
        ready = condition(node, "Ready")
        saved = self._health.get(name)
        if saved is None or (saved.ready is None) != (ready is None):
            saved = _Health(probe=now, ready=ready, renew_time=saved.renew_time if saved else None)
        elif ready is not None and saved.ready is not None:
            if saved.ready.get("lastHeartbeatTime") != ready.get("lastHeartbeatTime"):
                saved.probe = now
            saved.ready = ready
        lease = self._leases.cache.get_by_key(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew_time = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
        if renew_time is not None and (saved.renew_time is None or saved.renew_time < renew_time):
            saved.renew_time = renew_time
            saved.probe = now
        self._health[name] = saved
        return saved

    async def _update_node_health(
        self, cached: Obj
    ) -> tuple[Obj, Mapping[str, Any], Mapping[str, Any] | None]:
        """``tryUpdateNodeHealth``: (the node as it is now, Ready as observed, Ready after this pass)."""
        health = self._observe(cached)
        ready = condition(cached, "Ready")
        observed: Mapping[str, Any] = ready if ready is not None else {"type": "Ready", "status": "Unknown"}
        if self._clock.now() - health.probe <= self._grace:
            return cached, observed, ready
        node = copy.deepcopy(dict(cached))
        now = format_time(self._now())
        conditions = node.setdefault("status", {}).setdefault("conditions", [])
        for condition_type in _KUBELET_CONDITIONS:
            current = next((c for c in conditions if c.get("type") == condition_type), None)
            if current is None:
                conditions.append(
                    {
                        "type": condition_type,
                        "status": "Unknown",
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                        "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                        "lastTransitionTime": now,
                    }
                )
            elif current.get("status") != "Unknown":
                current.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=now,
                )
        after = condition(node, "Ready")
        if after == ready:
            return cached, observed, after
        updated = await self._client.replace(NODES, node, subresource="status")
        health.ready = condition(updated, "Ready")
        return updated, observed, after

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """``MarkPodsNotReady``: every pod on the node gets Ready=False."""
        failures: list[errors.RequestError] = []
        for pod in self._pods.cache.by_index(POD_NODE_INDEX, node_name):
            changed = copy.deepcopy(pod)
            ready = next(
                (
                    c
                    for c in (changed.get("status") or {}).get("conditions") or ()
                    if c.get("type") == "Ready"
                ),
                None,
            )
            if ready is None or ready.get("status") == "False":
                continue
            ready["status"] = "False"
            ready["lastTransitionTime"] = format_time(self._now())
            try:
                await self._client.replace(PODS, changed, subresource="status")
            except errors.NotFoundError:
                continue
            except errors.RequestError as exc:
                failures.append(exc)
                continue
            await self._recorder.event(
                pod, type="Warning", reason="NodeNotReady", message="Node is not ready"
            )
        if failures:
            raise failures[0]

    # --- taints -----------------------------------------------------------------------------

    async def _taint_by_readiness(self, node: Obj, observed: Mapping[str, Any]) -> None:
        """``processTaintBaseEviction``: NoExecute not-ready/unreachable from the observed Ready status."""
        taints = node_taints(node)
        status = observed.get("status")
        not_ready = {"key": TAINT_NOT_READY, "effect": NO_EXECUTE}
        unreachable = {"key": TAINT_UNREACHABLE, "effect": NO_EXECUTE}
        if status == "False" and not _has_taint(taints, TAINT_NOT_READY, NO_EXECUTE):
            await self.swap_taints(node["metadata"]["name"], add=[not_ready], remove=[unreachable])
        elif status == "Unknown" and not _has_taint(taints, TAINT_UNREACHABLE, NO_EXECUTE):
            await self.swap_taints(node["metadata"]["name"], add=[unreachable], remove=[not_ready])
        elif status == "True" and (
            _has_taint(taints, TAINT_NOT_READY, NO_EXECUTE)
            or _has_taint(taints, TAINT_UNREACHABLE, NO_EXECUTE)
        ):
            await self.swap_taints(node["metadata"]["name"], add=[], remove=[not_ready, unreachable])

    async def sync_noschedule_taints(self, name: str) -> None:
        """``doNoScheduleTaintingPass``: the NoSchedule taints a Node's conditions call for."""
        node = self._nodes.cache.get_by_key(name)
        if node is None:
            return
        wanted: list[dict[str, Any]] = []
        for cond in (node.get("status") or {}).get("conditions") or ():
            key = CONDITION_TAINTS.get(cond.get("type") or "", {}).get(cond.get("status") or "")
            if key is not None:
                wanted.append({"key": key, "effect": NO_SCHEDULE})
        if (node.get("spec") or {}).get("unschedulable"):
            wanted.append({"key": TAINT_UNSCHEDULABLE, "effect": NO_SCHEDULE})
        present = [
            t
            for t in node_taints(node)
            if t.get("effect") == NO_SCHEDULE
            and (t.get("key") in _CONDITION_TAINT_KEYS or t.get("key") == TAINT_UNSCHEDULABLE)
        ]
        add = [t for t in wanted if not any(_same_taint(t, p) for p in present)]
        remove = [p for p in present if not any(_same_taint(p, t) for t in wanted)]
        if add or remove:
            await self.swap_taints(name, add=add, remove=remove)

    async def swap_taints(self, name: str, *, add: Sequence[Taint], remove: Sequence[Taint]) -> None:
        """Add ``add`` (stamped ``timeAdded``) and drop ``remove`` (matched by key and effect) on the
        Node named ``name`` in one patch (``SwapNodeControllerTaint``), retrying on conflicts."""
        node: Obj | None = self._nodes.cache.get_by_key(name)
        for attempt in range(5):
            if node is None or attempt > 0:
                try:
                    node = await self._client.get(NODES, name)
                except errors.NotFoundError:
                    return
            current = node_taints(node)
            stamped = format_time(self._now())
            kept = [t for t in current if not any(_same_taint(t, r) for r in remove)]
            for taint in add:
                kept = [t for t in kept if not _same_taint(t, taint)]
                kept.append({**taint, "timeAdded": stamped})
            if not add and len(kept) == len(current):
                return  # nothing to remove, nothing to add
            patch = {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": kept},
            }
            try:
                await self._client.patch(NODES, name, patch, patch_type=PatchType.MERGE)
            except errors.ConflictError:
                continue
            except errors.NotFoundError:
                return
            return
        raise TaintError(f"node {name} kept changing while its taints were written")

    # --- eviction ---------------------------------------------------------------------------

    def scheduled_evictions(self) -> dict[str, float]:
        """Pod key -> when (on the controller's monotonic clock) its eviction is due; for tests and logs."""
        return {key: eviction.fire_at for key, eviction in self._evictions.items()}

    def effective_tolerations(self, pod: Obj) -> list[Toleration]:
        return with_default_tolerations(
            (pod.get("spec") or {}).get("tolerations") or (),
            not_ready_seconds=self._not_ready_seconds,
            unreachable_seconds=self._unreachable_seconds,
        )

    async def _cancel_eviction(self, pod: Obj, key: str) -> None:
        if self._evictions.pop(key, None) is not None:
            await self._eviction_recorder.event(
                pod, type="Normal", reason="TaintManagerEviction", message=f"Cancelling deletion of Pod {key}"
            )

    async def sync_eviction(self, key: str) -> None:
        """``processPodOnNode``: evict the pod ``key`` now, later, or never."""
        pod = self._pods.cache.get_by_key(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._evictions.pop(key, None)
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self._nodes.cache.get_by_key(node_name) if node_name else None
        taints = [t for t in node_taints(node) if t.get("effect") == NO_EXECUTE] if node is not None else []
        if not taints:
            await self._cancel_eviction(pod, key)
            return
        tolerated, used = matching_tolerations(taints, self.effective_tolerations(pod))
        now = self._clock.now()
        if not tolerated:
            await self._evict(pod, key)
            return
        seconds = min_toleration_seconds(used)
        if seconds is None:
            await self._cancel_eviction(pod, key)
            return
        eviction = self._evictions.get(key)
        if eviction is None:
            eviction = self._evictions[key] = _Eviction(fire_at=now + seconds)
        if eviction.fire_at <= now:
            await self._evict(pod, key)
        else:
            self._eviction_queue.add_after(key, eviction.fire_at - now)

    async def _evict(self, pod: Obj, key: str) -> None:
        """Mark the pod a disruption target, then delete it (``addConditionAndDeletePod``)."""
        namespace, name = split_key(key)
        await self._eviction_recorder.event(
            pod, type="Normal", reason="TaintManagerEviction", message=f"Marking for deletion Pod {key}"
        )
        condition_patch = {
            "status": {
                "conditions": [
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByTaintManager",
                        "message": "Taint manager: deleting due to NoExecute taint",
                        "lastTransitionTime": format_time(self._now()),
                    }
                ]
            }
        }
        try:
            await self._client.patch(
                PODS,
                name,
                condition_patch,
                namespace=namespace,
                subresource="status",
                patch_type=PatchType.STRATEGIC,
            )
            await self._client.delete(PODS, name, namespace=namespace)
        except errors.NotFoundError:
            pass
        self._evictions.pop(key, None)


def new_controller(ctx: ControllerContext) -> NodeLifecycleController:
    return NodeLifecycleController(ctx)
