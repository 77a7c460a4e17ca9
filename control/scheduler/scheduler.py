"""The scheduling loop: take a pending pod, choose its node, assume, bind, report.

kube-scheduler's ``scheduleOne`` in asyncio. One loop takes pods off the
:class:`~control.scheduler.queue.SchedulingQueue` one at a time and runs the *scheduling cycle*
synchronously — read the pod from the informer, filter and score every node, and *assume* the
pod onto the winner in the :class:`~control.scheduler.cache.SchedulerCache` — so nothing else on
the event loop changes the cache mid-decision and the next pod already sees the capacity this
one took. The *binding cycle* then runs as its own task (PreBind — for a pod with claims to
provision, writing the node into them and waiting until they are bound —, POST
``pods/<name>/binding``, then the ``Scheduled`` event), and the loop moves on to the next pod
without waiting for the API server or the PV controller. A pod deleted while its binding waits has
its binding task cancelled.

Which pods: those with ``spec.schedulerName`` equal to ours (``default-scheduler`` by default,
which is what the API server defaults it to), no ``spec.nodeName``, not being deleted and not
finished. Every *assigned* pod, whoever scheduled it, is counted in the cache; a pod that
finished (Succeeded or Failed) counts as gone, as upstream's informer field selector makes it.

Failures, as upstream's ``handleSchedulingFailure``:

- no node fits: the pod waits among the unschedulable pods for a cluster event that may help;
  its ``PodScheduled`` condition becomes ``False``/``Unschedulable`` with the FitError message
  (patched through ``pods/status`` only when it changes) and a ``FailedScheduling`` Warning event
  carries the same message;
- an unreadable pod spec, a failed PreBind (``running PreBind plugin "VolumeBinding": ...``) or a
  failed binding: the pod backs off and is retried, with reason ``SchedulerError``; the assumed pod
  is forgotten, which frees its capacity for others.

Cluster events feed the queue: node added (everything may help), node changed (the plugins the
change concerns), assigned pod added or relabelled (pod affinity and spreading), assigned pod
deleted or finished (resources, ports, affinity, spreading), a PersistentVolumeClaim,
PersistentVolume or StorageClass added or changed (VolumeBinding).

Status writes and events are best effort and run in the background; they never hold up the
loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from control.client.clock import REAL_CLOCK, Clock
from control.client.errors import RequestError, is_not_found
from control.client.indexer import NAMESPACE_INDEX
from control.client.informer import (
    DeletedFinalStateUnknown,
    HandlerRegistration,
    InformerFactory,
    SharedInformer,
)
from control.client.rest import PatchType, Resource, RESTClient
from control.controllers.events import EventRecorder
from control.controllers.kinds import PERSISTENT_VOLUME_CLAIMS as CLAIMS
from control.controllers.kinds import PERSISTENT_VOLUMES as VOLUMES
from control.controllers.kinds import STORAGE_CLASSES
from control.scheduler.cache import SchedulerCache
from control.scheduler.framework import Framework, PreBindError, ScheduleResult, Unschedulable
from control.scheduler.metrics import ERROR, SCHEDULED, UNSCHEDULABLE, SchedulerMetrics
from control.scheduler.plugins import default_framework
from control.scheduler.plugins.inter_pod_affinity import NAME as INTER_POD_AFFINITY
from control.scheduler.plugins.node_affinity import NAME as NODE_AFFINITY
from control.scheduler.plugins.node_ports import NAME as NODE_PORTS
from control.scheduler.plugins.node_resources_fit import NAME as NODE_RESOURCES_FIT
from control.scheduler.plugins.node_unschedulable import NAME as NODE_UNSCHEDULABLE
from control.scheduler.plugins.pod_topology_spread import NAME as POD_TOPOLOGY_SPREAD
from control.scheduler.plugins.taint_toleration import NAME as TAINT_TOLERATION
from control.scheduler.plugins.volume_binding import DEFAULT_BIND_TIMEOUT
from control.scheduler.plugins.volume_binding import NAME as VOLUME_BINDING
from control.scheduler.podinfo import InvalidPodError, PodInfo
from control.scheduler.queue import QueueClosed, QueuedPod, SchedulingQueue
from control.scheduler.requests import InvalidResourcesError, node_allocatable
from control.scheduler.taints import effective_taints
from control.scheduler.volumes import SELECTED_NODE_ANNOTATION

log = logging.getLogger("kubelab.scheduler")

DEFAULT_SCHEDULER_NAME = "default-scheduler"

PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
NODES = Resource(group="", version="v1", plural="nodes", kind="Node", namespaced=False)
NAMESPACES = Resource(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False)
SERVICES = Resource(group="", version="v1", plural="services", kind="Service")
REPLICATION_CONTROLLERS = Resource(
    group="", version="v1", plural="replicationcontrollers", kind="ReplicationController"
)
REPLICA_SETS = Resource(group="apps", version="v1", plural="replicasets", kind="ReplicaSet")
STATEFUL_SETS = Resource(group="apps", version="v1", plural="statefulsets", kind="StatefulSet")

# Which plugins' rejections a cluster event may undo (None: any rejection).
ASSIGNED_POD_ADD = frozenset({INTER_POD_AFFINITY, POD_TOPOLOGY_SPREAD})
ASSIGNED_POD_UPDATE = frozenset({INTER_POD_AFFINITY, POD_TOPOLOGY_SPREAD})
ASSIGNED_POD_DELETE = frozenset({NODE_RESOURCES_FIT, NODE_PORTS, INTER_POD_AFFINITY, POD_TOPOLOGY_SPREAD})
VOLUME_CHANGE = frozenset({VOLUME_BINDING})  # a claim, volume or storage class added or changed

EVENT_MESSAGE_LIMIT = 1024
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCHEDULER_ERROR = "SchedulerError"


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _key(pod: Mapping[str, Any]) -> str:
    metadata = _metadata(pod)
    return f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"


def _assigned(pod: Mapping[str, Any]) -> bool:
    return bool(_spec(pod).get("nodeName"))


def _finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _gated(pod: Mapping[str, Any]) -> bool:
    return bool(_spec(pod).get("schedulingGates"))


def _spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether anything but status and bookkeeping metadata changed (upstream's ``isPodUpdated``)."""
    if _spec(old) != _spec(new):
        return True
    ignored = ("resourceVersion", "generation", "managedFields")
    old_meta, new_meta = _metadata(old), _metadata(new)
    return {k: v for k, v in old_meta.items() if k not in ignored} != {
        k: v for k, v in new_meta.items() if k not in ignored
    }


def node_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> frozenset[str]:
    """The plugins whose verdicts a node update may change (empty: nothing that matters to scheduling)."""
    plugins: set[str] = set()
    try:
        if node_allocatable(old.get("status") or {}) != node_allocatable(new.get("status") or {}):
            plugins.add(NODE_RESOURCES_FIT)
    except InvalidResourcesError:
        plugins.add(NODE_RESOURCES_FIT)
    if _metadata(old).get("labels") != _metadata(new).get("labels"):
        plugins.update((NODE_AFFINITY, POD_TOPOLOGY_SPREAD, INTER_POD_AFFINITY, VOLUME_BINDING))
    if effective_taints(old) != effective_taints(new):
        plugins.add(TAINT_TOLERATION)
    if bool(_spec(old).get("unschedulable")) != bool(_spec(new).get("unschedulable")):
        plugins.add(NODE_UNSCHEDULABLE)
    return frozenset(plugins)


def truncate(message: str) -> str:
    """An event message within the 1 kB events allow, cut as upstream's ``truncateMessage`` does."""
    if len(message) <= EVENT_MESSAGE_LIMIT:
        return message
    return message[: EVENT_MESSAGE_LIMIT - 4] + " ..."


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InformerListers:
    """The plugins' :class:`~control.scheduler.framework.Listers`, read from informer caches."""

    def __init__(
        self,
        *,
        namespaces: SharedInformer,
        services: SharedInformer,
        replication_controllers: SharedInformer,
        replica_sets: SharedInformer,
        stateful_sets: SharedInformer,
        claims: SharedInformer,
        volumes: SharedInformer,
        storage_classes: SharedInformer,
    ) -> None:
        self._namespaces = namespaces
        self._services = services
        self._replication_controllers = replication_controllers
        self._replica_sets = replica_sets
        self._stateful_sets = stateful_sets
        self._claims = claims
        self._volumes = volumes
        self._storage_classes = storage_classes

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        obj = self._namespaces.cache.get_by_key(namespace)
        return (_metadata(obj).get("labels") or {}) if obj is not None else {}

    def services(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self._services.cache.by_index(NAMESPACE_INDEX, namespace)

    def replication_controller(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._replication_controllers.cache.get_by_key(f"{namespace}/{name}")

    def replica_set(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._replica_sets.cache.get_by_key(f"{namespace}/{name}")

    def stateful_set(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._stateful_sets.cache.get_by_key(f"{namespace}/{name}")

    def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._claims.cache.get_by_key(f"{namespace}/{name}")

    def volume(self, name: str) -> Mapping[str, Any] | None:
        return self._volumes.cache.get_by_key(name)

    def persistent_volumes(self) -> Iterable[Mapping[str, Any]]:
        return self._volumes.cache.list()

    def storage_class(self, name: str) -> Mapping[str, Any] | None:
        return self._storage_classes.cache.get_by_key(name)


class InformerClaimBinder:
    """VolumeBinding's :class:`~control.scheduler.plugins.volume_binding.ClaimBinder`: writes volumes
    and claims through the scheduler's client and wakes waiters on every change the claim informer
    sees."""

    def __init__(self, *, client: RESTClient) -> None:
        self._client = client
        self._changed = asyncio.Event()

    def claims_changed(self) -> None:
        """Call on every claim event: wakes every waiter, who re-checks."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def update_volume(self, volume: Mapping[str, Any]) -> None:
        try:
            await self._client.replace(VOLUMES, volume)
        except RequestError as exc:
            raise PreBindError(f"binding volumes: {exc}") from exc

    async def select_node(self, *, namespace: str, name: str, node: str) -> str:
        try:
            written = await self._client.patch(
                CLAIMS,
                name,
                {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except RequestError as exc:
            raise PreBindError(f"binding volumes: {exc}") from exc
        return written["metadata"].get("resourceVersion") or ""

    async def wait(self, ready: Callable[[], bool], *, timeout: float) -> bool:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True


class Scheduler:
    """One scheduler profile over shared informers.

    Build it inside the running loop (it registers its informers and handlers), start the
    informer factory, then :meth:`run`. ``registry`` receives the metrics (a private one if
    omitted); ``rng`` breaks ties between equally good nodes.
    """

    def __init__(
        self,
        *,
        client: RESTClient,
        informers: InformerFactory,
        recorder: EventRecorder,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        registry: CollectorRegistry | None = None,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        volume_bind_timeout: float = DEFAULT_BIND_TIMEOUT,
    ) -> None:
        self.scheduler_name = scheduler_name
        self._client = client
        self._recorder = recorder
        self._clock = clock
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(clock=clock)
        self.metrics = SchedulerMetrics(registry=registry or CollectorRegistry(), pending=self.queue.counts)
        self._pods = informers.informer(PODS)
        self._nodes = informers.informer(NODES)
        namespaces, services = informers.informer(NAMESPACES), informers.informer(SERVICES)
        replication_controllers = informers.informer(REPLICATION_CONTROLLERS)
        replica_sets, stateful_sets = informers.informer(REPLICA_SETS), informers.informer(STATEFUL_SETS)
        claims, volumes = informers.informer(CLAIMS), informers.informer(VOLUMES)
        storage_classes = informers.informer(STORAGE_CLASSES)
        self._informers = [
            self._pods,
            self._nodes,
            namespaces,
            services,
            replication_controllers,
            replica_sets,
            stateful_sets,
            claims,
            volumes,
            storage_classes,
        ]
        listers = InformerListers(
            namespaces=namespaces,
            services=services,
            replication_controllers=replication_controllers,
            replica_sets=replica_sets,
            stateful_sets=stateful_sets,
            claims=claims,
            volumes=volumes,
            storage_classes=storage_classes,
        )
        self._claim_binder = InformerClaimBinder(client=client)
        self.framework: Framework = default_framework(
            listers, binder=self._claim_binder, bind_timeout=volume_bind_timeout, rng=rng
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._binding: dict[str, asyncio.Task[None]] = {}
        self._registrations: list[tuple[SharedInformer, HandlerRegistration]] = [
            (
                self._pods,
                self._pods.add_event_handler(
                    on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
                ),
            ),
            (
                self._nodes,
                self._nodes.add_event_handler(
                    on_add=self._on_node_add, on_update=self._on_node_update, on_delete=self._on_node_delete
                ),
            ),
            (
                claims,
                claims.add_event_handler(
                    on_add=self._on_claim_change,
                    on_update=lambda old, new: self._on_claim_change(new),
                    on_delete=self._on_claim_change,
                ),
            ),
            *(
                (
                    informer,
                    informer.add_event_handler(
                        on_add=self._on_volume_change, on_update=lambda old, new: self._on_volume_change(new)
                    ),
                )
                for informer in (volumes, storage_classes)
            ),
        ]

    # --- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled. Start the informers first: this waits for their caches to sync."""
        try:
            for informer in self._informers:
                while not await informer.wait_for_sync(timeout=60):
                    if not informer.running:
                        raise RuntimeError(f"informer {informer.name} stopped before its cache synced")
                    log.warning("scheduler: still waiting for the %s cache to sync", informer.name)
            log.info("scheduler %s started", self.scheduler_name)
            while True:
                queued = await self.queue.pop()
                self.schedule_one(queued)
                await asyncio.sleep(0)  # let watch events and bindings in between pods
        except QueueClosed:
            return
        finally:
            self.queue.close()
            for informer, registration in self._registrations:
                informer.remove_event_handler(registration)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.metrics.unregister()

    def schedule_one(self, queued: QueuedPod) -> None:
        """One scheduling cycle, synchronously; the binding continues in a task."""
        start = self._clock.now()
        pod = self._pods.cache.get_by_key(queued.key)
        if pod is None or not self._pending(pod) or self.cache.pod_node(queued.key) is not None:
            return  # deleted, bound, no longer ours, or already assumed and binding
        try:
            info = PodInfo(pod)
            result = self.framework.schedule(info, self.cache.node_infos())
        except Unschedulable as exc:
            self.queue.requeue_unschedulable(queued, rejected_by=exc.plugins)
            self.metrics.attempt(UNSCHEDULABLE, self._clock.now() - start)
            log.info("unable to schedule pod %s: %s", queued.key, exc.message)
            self._report_failure(pod, reason=REASON_UNSCHEDULABLE, message=exc.message)
            return
        except InvalidPodError as exc:
            self._error(queued, pod, message=str(exc), start=start)
            return
        except Exception as exc:  # a plugin bug must not stop scheduling for everyone
            log.exception("scheduling %s failed", queued.key)
            self._error(queued, pod, message=f"internal scheduler error: {exc!r}", start=start)
            return
        self.cache.assume(info, result.node)
        self.framework.reserve(result)
        log.debug(
            "assumed %s on %s (%d of %d nodes feasible)",
            queued.key,
            result.node,
            result.feasible,
            result.evaluated,
        )
        task = self._spawn(self._bind(queued, pod=pod, info=info, result=result, start=start))
        self._binding[info.key] = task
        task.add_done_callback(lambda done, key=info.key: self._binding_done(key, done))

    def _binding_done(self, key: str, task: asyncio.Task[None]) -> None:
        if self._binding.get(key) is task:
            del self._binding[key]

    async def _bind(
        self,
        queued: QueuedPod,
        *,
        pod: Mapping[str, Any],
        info: PodInfo,
        result: ScheduleResult,
        start: float,
    ) -> None:
        """The binding cycle: PreBind (volumes), then ``pods/binding``; a failure frees the node."""
        node = result.node
        try:
            await self.framework.pre_bind(result)
        except asyncio.CancelledError:
            self.framework.unreserve(result)  # the pod went away, or the scheduler stops
            raise
        except PreBindError as exc:
            self.framework.unreserve(result)
            self.cache.forget(info.key)
            self.queue.move(ASSIGNED_POD_DELETE)
            current = self._pods.cache.get_by_key(info.key)
            if current is not None and self._pending(current):
                self._error(queued, current, message=str(exc), start=start)
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        try:
            await self._client.create(
                PODS, binding, namespace=info.namespace, name=info.name, subresource="binding"
            )
        except RequestError as exc:
            self.framework.unreserve(result)
            self.cache.forget(info.key)
            self.queue.move(ASSIGNED_POD_DELETE)  # the capacity it held is free again
            current = self._pods.cache.get_by_key(info.key)
            if is_not_found(exc) or current is None or not self._pending(current):
                return  # the pod went away (or got bound) meanwhile: nothing to retry
            self._error(queued, current, message=f"binding rejected: {exc}", start=start)
            return
        self.metrics.attempt(SCHEDULED, self._clock.now() - start)
        self.metrics.pod_attempts.observe(queued.attempts)
        log.debug("bound %s to %s", info.key, node)
        await self._recorder.event(
            pod, type="Normal", reason="Scheduled", message=f"Successfully assigned {info.key} to {node}"
        )

    def _error(self, queued: QueuedPod, pod: Mapping[str, Any], *, message: str, start: float) -> None:
        self.queue.requeue_backoff(queued)
        self.metrics.attempt(ERROR, self._clock.now() - start)
        log.warning("error scheduling pod %s, retrying: %s", queued.key, message)
        self._report_failure(pod, reason=REASON_SCHEDULER_ERROR, message=message)

    def _report_failure(self, pod: Mapping[str, Any], *, reason: str, message: str) -> None:
        self._spawn(self._write_failure(pod, reason=reason, message=message))

    async def _write_failure(self, pod: Mapping[str, Any], *, reason: str, message: str) -> None:
        await self._recorder.event(pod, type="Warning", reason="FailedScheduling", message=truncate(message))
        conditions = (pod.get("status") or {}).get("conditions") or ()
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current is not None and (current.get("status"), current.get("reason"), current.get("message")) == (
            "False",
            reason,
            message,
        ):
            return
        transition = (
            current.get("lastTransitionTime") if current and current.get("status") == "False" else None
        )
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": transition or _now(),
        }
        metadata = _metadata(pod)
        try:
            await self._client.patch(
                PODS,
                metadata.get("name") or "",
                {"status": {"conditions": [condition]}},
                namespace=metadata.get("namespace"),
                subresource="status",
                patch_type=PatchType.STRATEGIC,
            )
        except RequestError as exc:
            if not is_not_found(exc):
                log.warning("could not set PodScheduled=False on %s: %s", _key(pod), exc)

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler task failed", exc_info=task.exception())

    # --- informer events ------------------------------------------------------------------------

    def _pending(self, pod: Mapping[str, Any]) -> bool:
        """Ours to schedule: our name, no node yet, not being deleted, not finished."""
        return (
            (_spec(pod).get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name
            and not _assigned(pod)
            and not _metadata(pod).get("deletionTimestamp")
            and not _finished(pod)
        )

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        if _finished(pod):
            return
        if _assigned(pod):
            self.cache.set_pod(pod)
            self.queue.move(ASSIGNED_POD_ADD)
        elif self._pending(pod):
            self.queue.add(_key(pod), priority=_spec(pod).get("priority") or 0, gated=_gated(pod))

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = _key(new)
        if _finished(new):
            self._on_pod_delete(new)
        elif _assigned(new):
            self.queue.delete(key)
            self.cache.set_pod(new)
            if not _assigned(old):
                self.queue.move(ASSIGNED_POD_ADD)
            elif _metadata(old).get("labels") != _metadata(new).get("labels"):
                self.queue.move(ASSIGNED_POD_UPDATE)
        elif self._pending(new):
            self.queue.update(
                key,
                priority=_spec(new).get("priority") or 0,
                gated=_gated(new),
                spec_changed=_spec_changed(old, new),
            )
        else:
            self.queue.delete(key)

    def _on_pod_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        key = _key(pod)
        self.queue.delete(key)
        binding = self._binding.pop(key, None)
        if binding is not None:
            binding.cancel()  # a pod waiting for its volumes to bind is gone: stop waiting
        if self.cache.pod_node(key) is not None:
            self.cache.remove_pod(key)
            self.queue.move(ASSIGNED_POD_DELETE)

    def _on_claim_change(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self._claim_binder.claims_changed()
        self.queue.move(VOLUME_CHANGE)

    def _on_volume_change(self, obj: dict[str, Any]) -> None:
        self.queue.move(VOLUME_CHANGE)

    def _on_node_add(self, node: dict[str, Any]) -> None:
        self.cache.set_node(node)
        self.queue.move(None)

    def _on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.cache.set_node(new)
        plugins = node_change(old, new)
        if plugins:
            self.queue.move(plugins)

    def _on_node_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        node = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.cache.remove_node(_metadata(node).get("name") or "")
