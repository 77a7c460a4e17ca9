"""The ReplicaSet controller: keep ``spec.replicas`` pods matching the selector running.

A port of kube-controller-manager's ``pkg/controller/replicaset``. One ``reconcile(key)`` per
ReplicaSet, over shared informers of ReplicaSets and Pods:

1. take the active pods (not finished, not being deleted) the ReplicaSet controls or could
   adopt, and claim them (:class:`~control.controllers.ownership.ControllerRefManager`): adopt
   matching orphans, release owned pods that stopped matching;
2. if the expectations recorded by the previous sync are met, create the missing pods (in
   "slow start" batches of 1, 2, 4... so a failing create is not repeated 500 times) or delete
   the surplus, choosing victims as upstream's ``ActivePodsWithRanks`` does: unscheduled before
   scheduled, Pending before Unknown before Running, not ready before ready, lower
   ``controller.kubernetes.io/pod-deletion-cost`` first, pods doubled up on a node with their
   siblings first, then the most recently ready and the most recently created (in logarithmic age
   buckets), more restarts first;
3. write ``status`` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas — ready for
   ``minReadySeconds`` —, observedGeneration, and a ``ReplicaFailure`` condition while creates or
   deletes fail), then come back when a ready pod is due to become available.

Expectations make the informer, not the API answers, the source of truth: the creations and
deletions a sync made must be seen in the cache before the next sync may act, so a burst of
events cannot create twice. Events (``SuccessfulCreate`` "Created pod: web-abcde",
``FailedCreate``, ``SuccessfulDelete``, ``FailedDelete``) are recorded on the ReplicaSet.

The same controller reconciles core/v1 ReplicationControllers, as upstream's
``pkg/controller/replication`` runs the ReplicaSet controller behind a conversion: a
:class:`ReplicatedKind` names what differs — the resource watched, owned (the pods' controller
reference) and written, the controller's and its Events' names, and how the selector is read (a
LabelSelector here, a label map there). ``control.controllers.replicationcontroller`` holds the
ReplicationController's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller, PermanentError, TemporaryError
from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown, InformerFactory
from control.client.rest import Resource, RESTClient
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import PODS, REPLICA_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ClaimError,
    ControllerRefManager,
    Expectations,
    PodControl,
    add_controller_uid_index,
    controller_of,
    controller_ref,
    controllers_selecting,
    error_text,
    format_time,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    namespace_terminating,
    owned_or_orphaned,
    parse_time,
    pod_ready_since,
    resolve_controller_ref,
    slow_start_batch,
    spec_label_selector,
)
from control.resources.selectors import LabelSelector, SelectorError

log = logging.getLogger("kubelab.controllers.replicaset")

BURST_REPLICAS = 500  # upstream's BurstReplicas: creates/deletes per sync at most
SLOW_START_INITIAL_BATCH_SIZE = 1
STATUS_UPDATE_RETRIES = 1
REPLICA_FAILURE = "ReplicaFailure"
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class ReplicatedKind:
    """What tells apart the kinds :class:`ReplicaSetController` reconciles."""

    resource: Resource  # watched, set as the pods' controller, its status written
    name: str  # the controller's name in the manager
    queue: str  # its workqueue's name (the ``name`` label of the workqueue metrics)
    component: str  # the source of its Events
    # The object's selector; raises SelectorError when it cannot be read.
    selector_of: Callable[[Mapping[str, Any]], LabelSelector]


REPLICA_SET = ReplicatedKind(
    resource=REPLICA_SETS,
    name="replicaset",
    queue="replicaset",
    component="replicaset-controller",
    selector_of=spec_label_selector,
)


def build(ctx: ControllerContext, kind: ReplicatedKind) -> ReplicaSetController:
    """The controller for ``kind``, from the manager's context."""
    return ReplicaSetController(
        kind=kind,
        client=ctx.client,
        informers=ctx.informers,
        recorder=ctx.recorder(kind.component),
        workers=ctx.options.concurrent_syncs,
    )


def new_controller(ctx: ControllerContext) -> ReplicaSetController:
    return build(ctx, REPLICA_SET)


# --------------------------------------------------------------------------- choosing pods to delete

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True, slots=True)
class _Ranked:
    """One pod with everything the deletion order looks at, computed once."""

    pod: Mapping[str, Any]
    assigned: bool
    phase: int
    ready: bool
    cost: int
    colocated: int
    ready_at: float | None
    restarts: tuple[int, int]
    created_at: float | None
    uid: str


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    """``controller.kubernetes.io/pod-deletion-cost`` as an int32; 0 when absent or malformed."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST)
    if not value or not (value[0] == "-" or value == "0" or "1" <= value[0] <= "9"):
        return 0
    try:
        cost = int(value, 10)
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


def _max_restarts(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(most restarts of a regular container, most restarts of a sidecar init container)."""
    status = pod.get("status") or {}
    regular = max((int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ()), default=0)
    sidecars = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    sidecar = max(
        (
            int(c.get("restartCount") or 0)
            for c in status.get("initContainerStatuses") or ()
            if c.get("name") in sidecars
        ),
        default=0,
    )
    return regular, sidecar


def _timestamp(value: Any) -> float | None:
    moment = parse_time(value)
    return None if moment is None else moment.timestamp()


def _after_or_zero(first: float | None, second: float | None) -> bool:
    """``afterOrZero``: a missing time counts as later than any time."""
    if first is None or second is None:
        return first is None
    return first > second


def _log_rank(moment: float, now: float) -> int:
    age_ns = (now - moment) * 1e9
    return int(math.log2(age_ns)) if age_ns > 0 else -1


def _newer_first(first: _Ranked, second: _Ranked, *, a: float | None, b: float | None, now: float) -> bool:
    """Upstream's LogarithmicScaleDown comparison: younger first by power-of-two age buckets, the uid
    breaking ties inside a bucket (so scale-down is random among pods of similar age)."""
    if a is None or b is None:
        return _after_or_zero(a, b)
    rank_diff = _log_rank(a, now) - _log_rank(b, now)
    if rank_diff == 0:
        return first.uid < second.uid
    return rank_diff < 0


def _less(first: _Ranked, second: _Ranked, *, now: float) -> bool:
    """``ActivePodsWithRanks.Less``: True when ``first`` should be deleted before ``second``."""
    if first.assigned != second.assigned:
        return not first.assigned
    if first.phase != second.phase:
        return first.phase < second.phase
    if first.ready != second.ready:
        return not first.ready
    if first.cost != second.cost:
        return first.cost < second.cost
    if first.colocated != second.colocated:
        return first.colocated > second.colocated
    if first.ready and second.ready and first.ready_at != second.ready_at:
        return _newer_first(first, second, a=first.ready_at, b=second.ready_at, now=now)
    if first.restarts[0] != second.restarts[0]:
        return first.restarts[0] > second.restarts[0]
    if first.restarts[1] != second.restarts[1]:
        return first.restarts[1] > second.restarts[1]
    if first.created_at != second.created_at:
        return _newer_first(first, second, a=first.created_at, b=second.created_at, now=now)
    return False


def rank_pods_for_deletion(
    pods: Sequence[Mapping[str, Any]], *, related_pods: Sequence[Mapping[str, Any]], now: datetime
) -> list[Mapping[str, Any]]:
    """``pods`` ordered so that the first ones are the best to delete (upstream's ActivePodsWithRanks).

    ``related_pods`` are the pods of every ReplicaSet with the same controller (a Deployment's old
    and new ReplicaSets): a pod sharing its node with more of them is deleted first.
    """
    per_node: dict[str, int] = {}
    for pod in related_pods:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            per_node[node] = per_node.get(node, 0) + 1
    ranked = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ready = is_pod_ready(pod)
        since = pod_ready_since(pod) if ready else None
        ranked.append(
            _Ranked(
                pod=pod,
                assigned=bool(node),
                phase=_PHASE_ORDINAL.get((pod.get("status") or {}).get("phase") or "", 0),
                ready=ready,
                cost=_deletion_cost(pod),
                colocated=per_node.get(node, 0),
                ready_at=None if since is None else since.timestamp(),
                restarts=_max_restarts(pod),
                created_at=_timestamp(metadata.get("creationTimestamp")),
                uid=metadata.get("uid") or "",
            )
        )
    moment = now.timestamp()

    def compare(first: _Ranked, second: _Ranked) -> int:
        if _less(first, second, now=moment):
            return -1
        if _less(second, first, now=moment):
            return 1
        return 0

    ranked.sort(key=functools.cmp_to_key(compare))
    return [entry.pod for entry in ranked]


def pods_to_delete(
    pods: Sequence[Mapping[str, Any]], *, related_pods: Sequence[Mapping[str, Any]], count: int, now: datetime
) -> list[Mapping[str, Any]]:
    """The ``count`` pods to delete first (all of them, unsorted, when every pod goes)."""
    if count >= len(pods):
        return list(pods)
    return rank_pods_for_deletion(pods, related_pods=related_pods, now=now)[:count]


# --------------------------------------------------------------------------- status


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return None


def _replicas(rs: Mapping[str, Any]) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def calculate_status(
    rs: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    *,
    manage_error: BaseException | None,
    now: datetime,
) -> dict[str, Any]:
    """The ReplicaSet's new ``status`` (without observedGeneration) from its claimed active pods."""
    spec = rs.get("spec") or {}
    old = rs.get("status") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if all(labels.get(key) == value for key, value in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready_seconds=min_ready, now=now):
                available += 1
    conditions = [dict(c) for c in old.get("conditions") or ()]
    failure = _condition(old, REPLICA_FAILURE)
    if manage_error is not None and failure is None:
        diff = len(pods) - _replicas(rs)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append(
            {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": format_time(now),
                "reason": reason,
                "message": error_text(manage_error),
            }
        )
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: dict[str, Any] = {"replicas": len(pods)}
    for name, value in (
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", old.get("observedGeneration") or 0),
    ):
        if value:
            status[name] = value
    if conditions:
        status["conditions"] = conditions
    return status


def _status_unchanged(rs: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    old = rs.get("status") or {}
    return (
        all(
            int(old.get(name) or 0) == int(status.get(name) or 0)
            for name in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        )
        and int((rs.get("metadata") or {}).get("generation") or 0) == int(old.get("observedGeneration") or 0)
        and (old.get("conditions") or []) == (status.get("conditions") or [])
    )


# --------------------------------------------------------------------------- the controller


class ReplicaSetController:
    """Reconciles ReplicaSets (or ReplicationControllers, as ``kind`` says); :meth:`run` works until
    cancelled and may be called again."""

    def __init__(
        self,
        *,
        kind: ReplicatedKind = REPLICA_SET,
        client: RESTClient,
        informers: InformerFactory,
        recorder: EventRecorder,
        workers: int = 5,
        clock: Clock = REAL_CLOCK,
        now: Now = _utcnow,
    ) -> None:
        self._kind = kind
        self.name = kind.name
        self._client = client
        self._recorder = recorder
        self._pod_control = PodControl(client=client, recorder=recorder)
        self._workers = workers
        self._clock = clock
        self._now = now
        # Expectations outlive a crashed run: the informers (and the events they still owe us) do.
        self.expectations = Expectations(clock=clock)
        self._queue: RateLimitingQueue[str] | None = None
        self._replicasets = informers.informer(kind.resource)
        self._pods = informers.informer(PODS)
        add_controller_uid_index(self._replicasets)
        add_controller_uid_index(self._pods)
        self._replicasets.add_event_handler(
            on_add=self._on_rs_add, on_update=self._on_rs_update, on_delete=self._on_rs_delete
        )
        self._pods.add_event_handler(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(name=self._kind.queue, clock=self._clock)
        self._queue = queue
        for rs in self._replicasets.cache.list():
            queue.add(object_key(rs))
        try:
            await Controller(
                self._kind.queue,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self._replicasets, self._pods],
            ).run()
        finally:
            if self._queue is queue:
                self._queue = None

    # --- event handlers ----------------------------------------------------------------------------

    def _enqueue(self, key: str) -> None:
        if self._queue is not None:
            self._queue.add(key)

    def _on_rs_add(self, rs: dict[str, Any]) -> None:
        self._enqueue(object_key(rs))

    def _on_rs_update(self, old: dict[str, Any], cur: dict[str, Any]) -> None:
        self._enqueue(object_key(cur))

    def _on_rs_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        self.expectations.forget(key)
        self._enqueue(key)

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The cached ReplicaSet a controller reference points to, if it is still that one."""
        return resolve_controller_ref(
            self._replicasets.cache, namespace=namespace, ref=ref, kind=self._kind.resource.kind
        )

    def _replicasets_selecting(self, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        """ReplicaSets in the pod's namespace whose selector matches it (candidates to adopt an
        orphan); none for a pod without labels, as upstream's ``GetPodReplicaSets``."""
        if not (pod.get("metadata") or {}).get("labels"):
            return []
        return controllers_selecting(self._replicasets.cache, pod, selector_of=self._kind.selector_of)

    def _on_pod_add(self, pod: dict[str, Any]) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            # A restarted controller may first see a pod already being deleted.
            self._on_pod_delete(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            rs = self._resolve(pod["metadata"]["namespace"], ref)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                self._enqueue(key)
            return
        for rs in self._replicasets_selecting(pod):
            self._enqueue(object_key(rs))

    def _on_pod_update(self, old: dict[str, Any], cur: dict[str, Any]) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return  # a resync: nothing changed
        labels_changed = old["metadata"].get("labels") != cur["metadata"].get("labels")
        if cur["metadata"].get("deletionTimestamp"):
            # Being deleted (gracefully): count the deletion now, not when the pod is finally gone.
            self._on_pod_delete(cur)
            if labels_changed:
                self._on_pod_delete(old)
            return
        namespace = cur["metadata"]["namespace"]
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(object_key(previous))
        if cur_ref is not None:
            rs = self._resolve(namespace, cur_ref)
            if rs is None:
                return
            self._enqueue(object_key(rs))
            return
        if labels_changed or ref_changed:
            for rs in self._replicasets_selecting(cur):
                self._enqueue(object_key(rs))

    def _on_pod_delete(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        rs = self._resolve(pod["metadata"].get("namespace") or "", controller_of(pod))
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, object_key(pod))
        self._enqueue(key)

    # --- reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        try:
            await self._sync(key)
        except (errors.ConflictError, ClaimError) as exc:
            # Our cache is behind a write (often our own), or an adoption raced one: an ordinary
            # retry, not an error.
            raise TemporaryError(f"{key}: {exc}") from exc

    async def _sync(self, key: str) -> None:
        rs = self._replicasets.cache.get_by_key(key)
        if rs is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self._kind.selector_of(rs)
        except SelectorError as exc:
            raise PermanentError(f"{self._kind.resource.kind} {key} has an invalid selector: {exc}") from exc
        candidates = [pod for pod in owned_or_orphaned(self._pods.cache, rs) if is_pod_active(pod)]
        manager = ControllerRefManager(
            client=self._client,
            owner=rs,
            owner_resource=self._kind.resource,
            resource=PODS,
            selector=selector,
        )
        pods = await manager.claim(candidates)
        manage_error: errors.RequestError | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self._manage_replicas(key, rs=rs, pods=pods)
            except errors.RequestError as exc:
                manage_error = exc
        now = self._now()
        status = calculate_status(rs, pods, manage_error=manage_error, now=now)
        updated = await self._update_status(rs, status)
        if manage_error is not None:
            raise manage_error
        self._requeue_for_availability(key, rs=updated, pods=pods, now=now)

    async def _manage_replicas(self, key: str, *, rs: Mapping[str, Any], pods: list[dict[str, Any]]) -> None:
        diff = len(pods) - _replicas(rs)
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            # Expect before creating: the informer may report a new pod before create() returns.
            self.expectations.expect_creations(key, count)
            log.info("%s: too few replicas: need %d, creating %d", key, _replicas(rs), count)
            template = (rs.get("spec") or {}).get("template") or {}
            ref = controller_ref(rs, self._kind.resource)

            async def create() -> None:
                try:
                    await self._pod_control.create_pod(rs, template=template, controller_ref=ref)
                except errors.RequestError as exc:
                    if not namespace_terminating(exc):
                        raise

            successes, failure = await slow_start_batch(
                count, initial_batch_size=SLOW_START_INITIAL_BATCH_SIZE, create=create
            )
            if successes < count:
                # Pods never created will never be observed.
                self.expectations.creation_observed(key, count - successes)
            if failure is not None:
                raise failure
        elif diff > 0:
            count = min(diff, BURST_REPLICAS)
            log.info("%s: too many replicas: need %d, deleting %d", key, _replicas(rs), count)
            victims = pods_to_delete(pods, related_pods=self._related_pods(rs), count=count, now=self._now())
            self.expectations.expect_deletions(key, [object_key(pod) for pod in victims])
            results = await asyncio.gather(
                *(self._pod_control.delete_pod(rs, name=pod["metadata"]["name"]) for pod in victims),
                return_exceptions=True,
            )
            first_failure: errors.RequestError | None = None
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    # No event will come for a delete that failed.
                    self.expectations.deletion_observed(key, object_key(pod))
                    if not isinstance(result, errors.RequestError):
                        raise result
                    if not isinstance(result, errors.NotFoundError) and first_failure is None:
                        first_failure = result
            if first_failure is not None:
                raise first_failure

    def _related_pods(self, rs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Pods selected by every ReplicaSet sharing ``rs``'s controller (for the colocation rank)."""
        ref = controller_of(rs)
        if ref is None:
            return []
        namespace = rs["metadata"]["namespace"]
        seen: set[str] = set()
        related: list[dict[str, Any]] = []
        namespace_pods = self._pods.cache.by_index(NAMESPACE_INDEX, namespace)
        for sibling in self._replicasets.cache.by_index(CONTROLLER_UID_INDEX, ref["uid"]):
            selector = self._selector_or_none(sibling)
            if selector is None or sibling["metadata"].get("namespace") != namespace:
                continue
            for pod in namespace_pods:
                uid = pod["metadata"].get("uid") or ""
                if uid not in seen and selector.matches(pod["metadata"].get("labels") or {}):
                    seen.add(uid)
                    related.append(pod)
        return related

    async def _update_status(self, rs: Mapping[str, Any], status: dict[str, Any]) -> Mapping[str, Any]:
        """Write ``status`` (with observedGeneration) unless nothing changed; one retry on a conflict."""
        if _status_unchanged(rs, status):
            return rs
        current: Mapping[str, Any] = rs
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            generation = int(current["metadata"].get("generation") or 0)
            new_status = {**status, "observedGeneration": generation} if generation else dict(status)
            body = {**current, "status": new_status}
            try:
                return await self._client.replace(self._kind.resource, body, subresource="status")
            except errors.RequestError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
            meta = current["metadata"]
            current = await self._client.get(self._kind.resource, meta["name"], namespace=meta["namespace"])
        raise AssertionError("unreachable")

    def _requeue_for_availability(
        self, key: str, *, rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime
    ) -> None:
        """Sync again when the next ready pod has been ready for ``minReadySeconds``."""
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0 or self._queue is None:
            return
        waits = []
        for pod in pods:
            since = pod_ready_since(pod)
            if since is not None and not is_pod_available(pod, min_ready_seconds=min_ready, now=now):
                waits.append(since.timestamp() + min_ready - now.timestamp())
        if waits:
            self._queue.add_after(key, max(min(waits), 0.0) + 0.1)

    def _selector_or_none(self, rs: Mapping[str, Any]) -> LabelSelector | None:
        try:
            return self._kind.selector_of(rs)
        except SelectorError:
            return None
