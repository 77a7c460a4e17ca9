"""The disruption controller: keeps each PodDisruptionBudget's status (upstream's
``pkg/controller/disruption``), which the eviction API (``pods/eviction``) consults.

For each PDB it counts the pods its selector picks in its namespace and works out:

- **expectedPods** and **desiredHealthy**: ``minAvailable`` as a number is the desired count
  (expected = the pods found); a percentage ``minAvailable`` or any ``maxUnavailable`` is taken
  of the *scale* of the pods' controllers — a Deployment (through its ReplicaSet), a ReplicaSet,
  or a StatefulSet, each counted once — rounded up, as upstream;
- **currentHealthy**: pods that are Ready, not being deleted, and not recently evicted;
- **disruptionsAllowed**: ``currentHealthy - desiredHealthy``, never below 0 (0 with no
  expected pods), and the ``DisruptionAllowed`` condition (``SufficientPods`` /
  ``InsufficientPods``);
- **disruptedPods**: the evictions the API has granted but that have not deleted their pod
  yet; a pod still there two minutes after its eviction is dropped with a ``NotDeleted`` warning
  and counts again.

Pods without a controller under a percentage or ``maxUnavailable`` budget give an
``UnmanagedPods`` warning; a controller kind it cannot size fails the sync (``SyncFailed``
condition, no disruptions allowed), as upstream's fail-safe does. A PDB is synced when it or
any pod it selects changes, and again when an eviction it recorded times out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller
from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import Resource
from control.client.workqueue import RateLimitingQueue
from control.controllers.deployment import IntOrPercentError, scaled_value
from control.controllers.events import EventRecorder
from control.controllers.kinds import DEPLOYMENTS, PODS, REPLICA_SETS, STATEFUL_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import controller_of, format_time, is_pod_ready, parse_time, write_status
from control.resources.selectors import SelectorError, label_selector_from_spec

PDBS = Resource(group="policy", version="v1", plural="poddisruptionbudgets", kind="PodDisruptionBudget")
DELETION_TIMEOUT = timedelta(minutes=2)  # how long an eviction keeps its pod out of the count
CONDITION = "DisruptionAllowed"

Obj = Mapping[str, Any]


class ExpectedCountError(Exception):
    """The expected number of pods cannot be worked out (upstream's sync failure)."""


class DisruptionController:
    name = "disruption"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        clock: Clock = REAL_CLOCK,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = ctx.client
        self._clock = clock  # the queue's (monotonic) clock
        self._now = now  # wall time, for eviction timestamps
        self._workers = workers or ctx.options.concurrent_syncs
        self._recorder: EventRecorder = ctx.recorder("controllermanager")
        self._pdbs = ctx.informers.informer(PDBS)
        self._pods = ctx.informers.informer(PODS)
        self._replica_sets = ctx.informers.informer(REPLICA_SETS)
        self._deployments = ctx.informers.informer(DEPLOYMENTS)
        self._stateful_sets = ctx.informers.informer(STATEFUL_SETS)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="disruption", clock=clock)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="disruption", clock=self._clock)
        registrations = [
            (
                self._pdbs,
                self._pdbs.add_event_handler(
                    on_add=self._enqueue,
                    on_update=lambda old, new: self._enqueue(new),
                    on_delete=self._enqueue_deleted,
                ),
            ),
            (
                self._pods,
                self._pods.add_event_handler(
                    on_add=self._pod_changed,
                    on_update=self._pod_updated,
                    on_delete=self._pod_deleted,
                ),
            ),
        ]
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[
                    self._pdbs,
                    self._pods,
                    self._replica_sets,
                    self._deployments,
                    self._stateful_sets,
                ],
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    # ------------------------------------------------------------------ events

    def _enqueue(self, pdb: Obj) -> None:
        self._queue.add(object_key(pdb))

    def _enqueue_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._enqueue(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def _pod_changed(self, pod: Obj) -> None:
        for pdb in self._budgets_for(pod):
            self._enqueue(pdb)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._pod_changed(old)
        self._pod_changed(new)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._pod_changed(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def _budgets_for(self, pod: Obj) -> list[Obj]:
        """The PDBs of the pod's namespace whose selector picks it."""
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        found = []
        for pdb in self._pdbs.cache.by_index(NAMESPACE_INDEX, namespace):
            selector_spec = (pdb.get("spec") or {}).get("selector")
            if selector_spec is None:
                continue
            try:
                if label_selector_from_spec(selector_spec).matches(labels):
                    found.append(pdb)
            except SelectorError:
                continue
        return found

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: str) -> None:
        shared = self._pdbs.cache.get_by_key(key)
        if shared is None:
            return
        pdb = copy.deepcopy(dict(shared))
        try:
            await self._sync(pdb)
        except ExpectedCountError as exc:
            await self._fail_safe(pdb, str(exc))

    async def _sync(self, pdb: dict[str, Any]) -> None:
        pods = self._selected_pods(pdb)
        if not pods:
            await self._recorder.event(pdb, type="Normal", reason="NoPods", message="No matching pods found")
        expected, desired, unmanaged = self._expected_count(pdb, pods)
        if unmanaged:
            selector = _selector_text((pdb.get("spec") or {}).get("selector") or {})
            await self._recorder.event(
                pdb,
                type="Warning",
                reason="UnmanagedPods",
                message=(
                    f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
                    "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may "
                    'result in undefined behavior. To account for these pods please set ".spec.minAvailable" '
                    "field of the PDB to an integer value."
                ),
            )
        now = self._now()
        disrupted, recheck = await self._disrupted_pods(pdb, pods, now)
        healthy = sum(1 for pod in pods if _healthy(pod, disrupted, now))
        await self._write_status(
            pdb, current_healthy=healthy, desired_healthy=desired, expected=expected, disrupted=disrupted
        )
        if recheck is not None:
            self._queue.add_after(object_key(pdb), max((recheck - now).total_seconds(), 0.0))

    def _selected_pods(self, pdb: Obj) -> list[Obj]:
        selector_spec = (pdb.get("spec") or {}).get("selector")
        if selector_spec is None:
            return []  # policy/v1: a missing selector selects nothing, an empty one everything
        try:
            selector = label_selector_from_spec(selector_spec)
        except SelectorError:
            return []
        namespace = pdb["metadata"]["namespace"]
        return [
            pod
            for pod in self._pods.cache.by_index(NAMESPACE_INDEX, namespace)
            if selector.matches((pod.get("metadata") or {}).get("labels") or {})
        ]

    def _expected_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """``getExpectedPodCount``: (expected pods, desired healthy, unmanaged pod names)."""
        spec = pdb.get("spec") or {}
        try:
            if spec.get("maxUnavailable") is not None:
                expected, unmanaged = self._expected_scale(pdb, pods)
                unavailable = scaled_value(spec["maxUnavailable"], total=expected, round_up=True)
                return expected, max(expected - unavailable, 0), unmanaged
            minimum = spec.get("minAvailable")
            if isinstance(minimum, int) and not isinstance(minimum, bool):
                return len(pods), minimum, []
            if minimum is not None:
                expected, unmanaged = self._expected_scale(pdb, pods)
                return expected, scaled_value(minimum, total=expected, round_up=True), unmanaged
        except IntOrPercentError as exc:
            raise ExpectedCountError(str(exc)) from exc
        return 0, 0, []

    def _expected_scale(self, pdb: Obj, pods: list[Obj]) -> tuple[int, list[str]]:
        """``getExpectedScale``: the replicas of the pods' controllers, each counted once."""
        namespace = pdb["metadata"]["namespace"]
        counted: set[str] = set()
        expected = 0
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_of(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            owner = self._scaled_owner(namespace, ref)
            if owner is None:
                raise ExpectedCountError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            uid = owner["metadata"]["uid"]
            if uid in counted:
                continue
            counted.add(uid)
            expected += int((owner.get("spec") or {}).get("replicas", 1))
        return expected, unmanaged

    def _scaled_owner(self, namespace: str, ref: Obj) -> Obj | None:
        """The controller whose scale counts: a ReplicaSet's Deployment, else the ReplicaSet or
        StatefulSet itself (matched by uid, as upstream's finders)."""
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "StatefulSet":
            return _with_uid(self._stateful_sets.cache.get_by_key(f"{namespace}/{name}"), ref)
        if kind != "ReplicaSet":
            return None
        replica_set = _with_uid(self._replica_sets.cache.get_by_key(f"{namespace}/{name}"), ref)
        if replica_set is None:
            return None
        owner_ref = controller_of(replica_set)
        if owner_ref is not None and owner_ref.get("kind") == "Deployment":
            return _with_uid(
                self._deployments.cache.get_by_key(f"{namespace}/{owner_ref.get('name', '')}"), owner_ref
            )
        return replica_set

    async def _disrupted_pods(
        self, pdb: Obj, pods: list[Obj], now: datetime
    ) -> tuple[dict[str, str], datetime | None]:
        """``buildDisruptedPodMap``: evictions still pending, and when the first one times out."""
        recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
        result: dict[str, str] = {}
        recheck: datetime | None = None
        for pod in pods:
            metadata = pod["metadata"]
            if metadata.get("deletionTimestamp"):
                continue
            stamp = recorded.get(metadata["name"])
            evicted_at = parse_time(stamp)
            if evicted_at is None:
                continue
            deadline = evicted_at + DELETION_TIMEOUT
            if deadline < now:
                await self._recorder.event(
                    pod,
                    type="Warning",
                    reason="NotDeleted",
                    message=(
                        f"Pod was expected by PDB {pdb['metadata']['namespace']}/{pdb['metadata']['name']} "
                        "to be deleted but it wasn't"
                    ),
                )
                continue
            result[metadata["name"]] = stamp
            recheck = deadline if recheck is None or deadline < recheck else recheck
        return result, recheck

    async def _write_status(
        self,
        pdb: dict[str, Any],
        *,
        current_healthy: int,
        desired_healthy: int,
        expected: int,
        disrupted: dict[str, str],
    ) -> None:
        allowed = current_healthy - desired_healthy
        if expected <= 0 or allowed <= 0:
            allowed = 0
        old = pdb.get("status") or {}
        generation = (pdb.get("metadata") or {}).get("generation", 0)
        status = {
            "currentHealthy": current_healthy,
            "desiredHealthy": desired_healthy,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
            "observedGeneration": generation,
            "conditions": _with_condition(
                old.get("conditions") or [],
                status="True" if allowed > 0 else "False",
                reason="SufficientPods" if allowed > 0 else "InsufficientPods",
                message="",
                generation=generation,
                now=self._now(),
            ),
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        await self._update_status(pdb, status)

    async def _fail_safe(self, pdb: dict[str, Any], message: str) -> None:
        """``failSafe``: no disruptions while the budget cannot be computed."""
        await self._recorder.event(
            pdb,
            type="Warning",
            reason="CalculateExpectedPodCountFailed",
            message=f"Failed to calculate the number of expected pods: {message}",
        )
        old = pdb.get("status") or {}
        generation = (pdb.get("metadata") or {}).get("generation", 0)
        status = {
            **old,
            "disruptionsAllowed": 0,
            "conditions": _with_condition(
                old.get("conditions") or [],
                status="False",
                reason="SyncFailed",
                message=message,
                generation=generation,
                now=self._now(),
            ),
        }
        await self._update_status(pdb, status)

    async def _update_status(self, pdb: dict[str, Any], status: dict[str, Any]) -> None:
        if pdb.get("status") != status:
            await write_status(self._client, PDBS, {**pdb, "status": status})


def _with_uid(obj: Obj | None, ref: Obj) -> Obj | None:
    if obj is None or (ref.get("uid") and obj["metadata"].get("uid") != ref.get("uid")):
        return None
    return obj


def _healthy(pod: Obj, disrupted: Mapping[str, str], now: datetime) -> bool:
    """``countHealthyPods``: Ready, not being deleted, not evicted within the deletion timeout."""
    metadata = pod["metadata"]
    if metadata.get("deletionTimestamp"):
        return False
    evicted_at = parse_time(disrupted.get(metadata["name"]))
    if evicted_at is not None and evicted_at + DELETION_TIMEOUT > now:
        return False
    return is_pod_ready(pod)


def _with_condition(
    conditions: list[Obj], *, status: str, reason: str, message: str, generation: int, now: datetime
) -> list[dict[str, Any]]:
    """``meta.SetStatusCondition`` for ``DisruptionAllowed``: the transition time moves only when
    the status does."""
    result = [dict(c) for c in conditions if c.get("type") != CONDITION]
    previous = next((c for c in conditions if c.get("type") == CONDITION), None)
    changed = previous is None or previous.get("status") != status
    result.append(
        {
            "type": CONDITION,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": format_time(now) if changed else previous.get("lastTransitionTime"),
        }
    )
    return result


def _selector_text(selector: Obj) -> str:
    """A label selector as upstream's generated ``String()`` prints it in the event."""
    labels = "".join(f"{key}: {value}," for key, value in sorted((selector.get("matchLabels") or {}).items()))
    requirements = "".join(
        f"LabelSelectorRequirement{{Key:{r.get('key', '')},Operator:{r.get('operator', '')},"
        f"Values:[{' '.join(r.get('values') or ())}],}},"
        for r in selector.get("matchExpressions") or ()
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{requirements}}},}}"
    )


def new_controller(ctx: ControllerContext) -> DisruptionController:
    return DisruptionController(ctx)
