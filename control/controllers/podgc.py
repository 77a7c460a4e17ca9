"""The pod garbage collector: pods nothing else will ever clean up are deleted (upstream's
``pkg/controller/podgc``).

Every ``period`` (20 s, upstream's gcCheckPeriod), over the informers' caches, in upstream's
order:

- **terminated**: when more than ``terminated_pod_gc_threshold`` pods (12500, kube-controller-
  manager's ``--terminated-pod-gc-threshold``; 0 turns this off) have finished (phase neither
  Pending, Running nor Unknown), the excess goes: evicted pods first, then the oldest, the name
  breaking ties;
- **terminating on an out-of-service node**: a pod being deleted on a node that is not Ready and
  carries the ``node.kubernetes.io/out-of-service`` taint is force deleted, so its controller can
  replace it elsewhere (non-graceful node shutdown);
- **orphaned**: a pod bound to a node that does not exist — missing from the node cache for the
  quarantine (40 s, upstream's quarantineTime, so a node that is only late to appear is not
  mistaken for a deleted one), then confirmed gone with a GET — is marked Failed with a
  ``DisruptionTarget`` condition (``DeletionByPodGC``, ``PodGC: node no longer exists``) and
  force deleted. This is what cleans up after ``kubectl delete node``: nobody else would, since
  no kubelet is left to report the pod gone;
- **unscheduled and terminating**: a pod being deleted that was never bound to a node is force
  deleted.

"Force deleted" is upstream's markFailedAndDeletePod: a pod not yet Succeeded or Failed is first
patched to phase Failed (its status subresource, a strategic merge patch that merges the condition
by type and carries the pod's uid, so a new pod of the same name is never touched), then deleted
with a grace period of 0. A pod already gone is no error; any other failure is logged and the pod
is tried again on the next pass. The clock, the period and the quarantine are injected so tests
need not wait.

Metrics (upstream's, on the controller manager's ``/metrics`` when it serves one):
``pod_gc_collector_force_delete_pods_total`` and ``pod_gc_collector_force_delete_pod_errors_total``,
labelled ``namespace`` and ``reason`` (``terminated``, ``out-of-service``, ``orphaned``,
``unscheduled``); as upstream, every attempt counts, and one whose requests failed (a pod already
gone included) counts as an error too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from control.client import errors
from control.client.rest import PatchType
from control.controllers.kinds import NODES, PODS
from control.controllers.manager import ControllerContext
from control.controllers.nodelifecycle import condition
from control.controllers.ownership import format_time

log = logging.getLogger("kubelab.controllers.podgc")

GC_PERIOD_SECONDS = 20.0
QUARANTINE_SECONDS = 40.0
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
_RUNNING_PHASES = frozenset({"Pending", "Running", "Unknown"})
_NODE_GONE = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByPodGC",
    "message": "PodGC: node no longer exists",
}

Obj = Mapping[str, Any]
Clock = Callable[[], float]


def is_terminated(pod: Obj) -> bool:
    """Upstream's isPodTerminated: the phase is neither Pending, Running nor Unknown."""
    return (pod.get("status") or {}).get("phase") not in _RUNNING_PHASES


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def node_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _is_evicted(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def deletion_order(pods: Iterable[Obj]) -> list[Obj]:
    """Upstream's byEvictionAndCreationTimestamp: evicted pods first, then the oldest, by name."""

    def key(pod: Obj) -> tuple[bool, str, str]:
        metadata = pod.get("metadata") or {}
        # RFC 3339 in UTC ("...Z") as the API server writes it: the text orders as the time does.
        return (not _is_evicted(pod), str(metadata.get("creationTimestamp") or ""), str(metadata.get("name")))

    return sorted(pods, key=key)


def _is_ready(node: Obj) -> bool:
    ready = condition(node, "Ready")
    return ready is not None and ready.get("status") == "True"


def _is_out_of_service(node: Obj) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return any(isinstance(taint, dict) and taint.get("key") == OUT_OF_SERVICE_TAINT for taint in taints)


class PodGCMetrics:
    """Upstream's ``pod_gc_collector`` counters (pkg/controller/podgc/metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("namespace", "reason")
        self.deleting = Counter(
            "pod_gc_collector_force_delete_pods",
            "Number of pods that are being forcefully deleted since the Pod GC Controller started.",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "pod_gc_collector_force_delete_pod_errors",
            "Number of errors encountered when forcefully deleting the pods since the Pod GC "
            "Controller started.",
            labels,
            registry=registry,
        )


def _transition_time(pod: Obj, condition: Mapping[str, str]) -> str:
    """Upstream's UpdatePodCondition: a condition whose status does not change keeps its time."""
    for existing in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(existing, dict) and existing.get("type") == condition["type"]:
            if existing.get("status") == condition["status"] and existing.get("lastTransitionTime"):
                return str(existing["lastTransitionTime"])
            break
    return format_time(datetime.now(UTC))


class PodGCController:
    name = "podgc"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        period: float = GC_PERIOD_SECONDS,
        quarantine: float = QUARANTINE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = ctx.client
        self._threshold = ctx.options.terminated_pod_gc_threshold
        self._period = period
        self._quarantine = quarantine
        self._clock = clock
        self._pods = ctx.informers.informer(PODS)
        self._nodes = ctx.informers.informer(NODES)
        self._missing_since: dict[str, float] = {}  # node name -> when first seen missing
        self._metrics = PodGCMetrics(ctx.registry) if ctx.registry is not None else None

    async def run(self) -> None:
        await self._pods.wait_for_sync()
        await self._nodes.wait_for_sync()
        while True:
            await self.gc()
            await asyncio.sleep(self._period)

    def pods(self) -> list[Obj]:
        """The pods a pass would look at now (the pod cache)."""
        return self._pods.cache.list()

    def knows_node(self, name: str) -> bool:
        """Whether the node cache holds ``name`` (what a pass decides by)."""
        return self._nodes.cache.get_by_key(name) is not None

    async def gc(self) -> None:
        """One pass (the module doc's four steps, in upstream's order)."""
        pods = self.pods()
        if self._threshold > 0:
            await self._gc_terminated(pods)
        await self._gc_terminating_out_of_service(pods)
        await self._gc_orphaned(pods)
        await self._gc_unscheduled_terminating(pods)

    async def _gc_terminated(self, pods: list[Obj]) -> None:
        terminated = [pod for pod in pods if is_terminated(pod)]
        excess = len(terminated) - self._threshold
        if excess <= 0:
            return
        log.info("garbage collecting %d terminated pods", excess)
        for pod in deletion_order(terminated)[:excess]:
            await self._force_delete(pod, why="terminated")

    async def _gc_terminating_out_of_service(self, pods: list[Obj]) -> None:
        doomed = []
        for pod in pods:
            if not is_terminating(pod):
                continue
            node = self._nodes.cache.get_by_key(node_name(pod))
            if node is not None and not _is_ready(node) and _is_out_of_service(node):
                doomed.append(pod)
        for pod in deletion_order(doomed):
            await self._force_delete(pod, why="out-of-service")

    async def _gc_orphaned(self, pods: list[Obj]) -> None:
        now = self._clock()
        missing = {name for pod in pods if (name := node_name(pod)) and not self.knows_node(name)}
        for name in list(self._missing_since):
            if name not in missing:
                del self._missing_since[name]  # it appeared, or its pods are gone
        deleted_nodes = set()
        for name in sorted(missing):
            since = self._missing_since.setdefault(name, now)
            if now - since < self._quarantine:
                continue
            try:
                await self._client.get(NODES, name)
            except errors.NotFoundError:
                deleted_nodes.add(name)
                continue
            except errors.RequestError as exc:
                log.warning("unable to check whether node %s exists: %s", name, exc)
            self._missing_since[name] = now  # still there, or unknown: checked again after a quarantine
        for pod in pods:
            if node_name(pod) not in deleted_nodes:
                continue
            log.info(
                "found orphaned pod %s/%s assigned to node %s, deleting",
                pod["metadata"].get("namespace"),
                pod["metadata"]["name"],
                node_name(pod),
            )
            await self._force_delete(pod, why="orphaned", condition=_NODE_GONE)

    async def _gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            if is_terminating(pod) and not node_name(pod):
                await self._force_delete(pod, why="unscheduled")

    async def _force_delete(self, pod: Obj, *, why: str, condition: Mapping[str, str] | None = None) -> None:
        """Upstream's markFailedAndDeletePod (see the module doc), counted under ``why``."""
        metadata = pod["metadata"]
        namespace, name = metadata.get("namespace"), metadata["name"]
        if self._metrics is not None:
            self._metrics.deleting.labels(namespace, why).inc()
        try:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                status: dict[str, Any] = {"phase": "Failed"}
                if condition is not None:  # merged by type (UpdatePodCondition)
                    status["conditions"] = [
                        {**condition, "lastTransitionTime": _transition_time(pod, condition)}
                    ]
                await self._client.patch(
                    PODS,
                    name,
                    {"metadata": {"uid": metadata.get("uid")}, "status": status},
                    namespace=namespace,
                    subresource="status",
                    patch_type=PatchType.STRATEGIC,
                )
            await self._client.delete(PODS, name, namespace=namespace, grace_period_seconds=0)
        except errors.RequestError as exc:
            if self._metrics is not None:
                self._metrics.errors.labels(namespace, why).inc()
            if not isinstance(exc, errors.NotFoundError):
                log.warning("unable to force delete pod %s/%s: %s", namespace, name, exc)
            return
        log.info("force deleted pod %s/%s", namespace, name)


def new_controller(ctx: ControllerContext) -> PodGCController:
    return PodGCController(ctx)
