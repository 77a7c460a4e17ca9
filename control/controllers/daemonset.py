"""The DaemonSet controller: one pod per eligible node (upstream's ``pkg/controller/daemon``).

**Which nodes.** A node is eligible when the pod the DaemonSet would run there fits it
(``NodeShouldRunDaemonPod``): the template's ``nodeName`` (if any) is that node, its
``nodeSelector`` and required node affinity match the node, and every ``NoSchedule`` and
``NoExecute`` taint is tolerated. The pod's tolerations are the template's plus those every
daemon pod gets (``AddOrUpdateDaemonPodTolerations``): ``not-ready`` and ``unreachable``
(``NoExecute``, forever), ``disk-pressure``, ``memory-pressure``, ``pid-pressure``,
``unschedulable`` (``NoSchedule``), and ``network-unavailable`` for host-network pods. A pod
already running may stay while only ``NoSchedule`` taints are untolerated.

**Pods.** Created from the template with ``generateName: <ds>-``, the labels
``controller-revision-hash: <hash>`` (and ``pod-template-generation`` when the DaemonSet has
the ``deprecated.daemonset.template.generation`` annotation), the daemon tolerations, and a
required node affinity on ``metadata.name`` that pins the node (``matchFields``, replacing any
required terms of the template, as ``ReplaceDaemonSetPodNodeNameNodeAffinity``) — the
scheduler binds them. Creations go in slow-start batches of 1, 2, 4..., at most 250 a sync,
with expectations so a sync never creates twice for a pod not yet in the cache. Failed daemon
pods are deleted (``FailedDaemonPod`` warning) with a per-node backoff of 1 s doubling to 15
min; succeeded ones are deleted too (``SucceededDaemonPod``); extra pods on a node are pruned
to the oldest. Pods on ineligible nodes, and unscheduled pods pinned to nodes that no longer
exist, are deleted.

**Updates.** ``RollingUpdate`` (``maxUnavailable``, ``maxSurge``, integers or percentages of
the eligible nodes, rounded up) follows upstream's ``rollingUpdate`` exactly: without surge,
old pods are deleted while no more than ``maxUnavailable`` nodes lack an available pod; with
surge, new pods start beside available old ones (at most ``maxSurge`` at a time) and the old
pod goes once the new one is available. ``OnDelete`` replaces a pod only when someone deletes
it. The template history lives in ControllerRevisions (:mod:`.controllerrevision`), pruned to
``revisionHistoryLimit`` unused ones.

**Status.** ``desiredNumberScheduled``, ``currentNumberScheduled``, ``numberMisscheduled``,
``numberReady``, ``numberAvailable`` (ready for ``minReadySeconds``), ``numberUnavailable``,
``updatedNumberScheduled``, ``observedGeneration`` (only after a full sync) and
``collisionCount``; written only when they change.
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
from control.client.controller import Controller, PermanentError
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PatchType
from control.client.workqueue import RateLimitingQueue
from control.controllers import controllerrevision as history
from control.controllers.deployment import IntOrPercentError, scaled_value
from control.controllers.kinds import CONTROLLER_REVISIONS, DAEMON_SETS, NODES, PODS
from control.controllers.manager import ControllerContext
from control.controllers.nodelifecycle import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_DISK_PRESSURE,
    TAINT_MEMORY_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
    TAINT_NOT_READY,
    TAINT_PID_PRESSURE,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    node_taints,
    untolerated_taint,
)
from control.controllers.ownership import (
    ControllerRefManager,
    Expectations,
    PodControl,
    add_controller_uid_index,
    compute_hash,
    controller_of,
    controller_ref,
    controllers_selecting,
    is_pod_available,
    is_pod_ready,
    owned_or_orphaned,
    parse_time,
    resolve_controller_ref,
    slow_start_batch,
)
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.controllers.daemonset")

COMPONENT = "daemonset-controller"
BURST_REPLICAS = 250
SLOW_START_INITIAL_BATCH_SIZE = 1
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
FAILED_POD_BACKOFF = 1.0
FAILED_POD_BACKOFF_MAX = 900.0

Obj = Mapping[str, Any]
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- nodes: selectors, affinity, tolerations ----------------------------------------------------


def _requirement_matches(requirement: Obj, value: str | None) -> bool:
    """One ``NodeSelectorRequirement`` against a label (or field) value, None when absent."""
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """A ``NodeSelectorTerm``: all its requirements hold; a term with none matches nothing."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not all(_requirement_matches(r, labels.get(r.get("key") or "")) for r in expressions):
        return False
    name = (node.get("metadata") or {}).get("name")
    return all(_requirement_matches(r, name if r.get("key") == "metadata.name" else None) for r in fields)


def fits_node_affinity(pod_spec: Obj, node: Obj) -> bool:
    """``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``: nodeSelector and required terms."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or None
    if required is None:
        return True
    return any(node_selector_term_matches(term, node) for term in required.get("nodeSelectorTerms") or ())


def _add_or_update_toleration(tolerations: list[dict[str, Any]], toleration: dict[str, Any]) -> None:
    """``AddOrUpdateTolerationInPodSpec``: replace a toleration with the same key, operator, value
    and effect, else append."""
    for index, existing in enumerate(tolerations):
        if all(
            (existing.get(field) or "") == (toleration.get(field) or "")
            for field in ("key", "operator", "value", "effect")
        ):
            tolerations[index] = toleration
            return
    tolerations.append(toleration)


def add_daemon_tolerations(pod_spec: dict[str, Any]) -> None:
    """Give ``pod_spec`` (a private copy) the tolerations every daemon pod has."""
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in (
        (TAINT_NOT_READY, NO_EXECUTE),
        (TAINT_UNREACHABLE, NO_EXECUTE),
        (TAINT_DISK_PRESSURE, NO_SCHEDULE),
        (TAINT_MEMORY_PRESSURE, NO_SCHEDULE),
        (TAINT_PID_PRESSURE, NO_SCHEDULE),
        (TAINT_UNSCHEDULABLE, NO_SCHEDULE),
    ):
        _add_or_update_toleration(tolerations, {"key": key, "operator": "Exists", "effect": effect})
    if pod_spec.get("hostNetwork"):
        _add_or_update_toleration(
            tolerations, {"key": TAINT_NETWORK_UNAVAILABLE, "operator": "Exists", "effect": NO_SCHEDULE}
        )


def daemon_pod_spec(ds: Obj) -> dict[str, Any]:
    """The spec of the pod ``ds`` would run (``NewPod`` without the node): template plus tolerations."""
    spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def node_should_run_daemon_pod(node: Obj, ds: Obj, *, pod_spec: Obj | None = None) -> tuple[bool, bool]:
    """(should run, should continue running) — ``NodeShouldRunDaemonPod``.

    ``pod_spec`` is :func:`daemon_pod_spec` of ``ds``, when the caller has it already.
    """
    spec = pod_spec if pod_spec is not None else daemon_pod_spec(ds)
    node_name = (node.get("metadata") or {}).get("name")
    if spec.get("nodeName") and spec.get("nodeName") != node_name:
        return False, False
    if not fits_node_affinity(spec, node):
        return False, False
    taints = node_taints(node)
    tolerations = spec.get("tolerations") or []
    if untolerated_taint(taints, tolerations, effects=(NO_EXECUTE, NO_SCHEDULE)) is not None:
        return False, untolerated_taint(taints, tolerations, effects=(NO_EXECUTE,)) is None
    return True, True


def pin_to_node(affinity: Obj | None, node_name: str) -> dict[str, Any]:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: require ``metadata.name`` = ``node_name``."""
    pinned = copy.deepcopy(dict(affinity)) if affinity else {}
    node_affinity = pinned.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    required["nodeSelectorTerms"] = [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    ]
    return pinned


def target_node_name(pod: Obj) -> str | None:
    """The node a daemon pod is for: ``spec.nodeName``, else its pinned affinity (``GetTargetNodeName``)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for requirement in term.get("matchFields") or ():
            if requirement.get("key") == "metadata.name" and requirement.get("operator") == "In":
                values = requirement.get("values") or []
                return values[0] if len(values) == 1 else None
    return None


# --- pods and templates -------------------------------------------------------------------------


def template_generation(ds: Obj) -> str | None:
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    return str(value) if value else None


def is_pod_updated(pod: Obj, *, hash_value: str, generation: str | None) -> bool:
    """``IsPodUpdated``: the pod carries the current revision hash (or template generation)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation:
        return True
    return bool(hash_value) and labels.get(history.CONTROLLER_REVISION_HASH_LABEL) == hash_value


def pod_template(ds: Obj, *, hash_value: str) -> dict[str, Any]:
    """``CreatePodTemplate``: the template with daemon tolerations and the revision labels."""
    template = copy.deepcopy(dict((ds.get("spec") or {}).get("template") or {}))
    spec = template.setdefault("spec", {})
    add_daemon_tolerations(spec)
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_value:
        labels[history.CONTROLLER_REVISION_HASH_LABEL] = hash_value
    return template


def _creation_order(pod: Obj) -> tuple[bool, float, str]:
    """``podByCreationTimestampAndPhase``: scheduled pods first, then oldest, then by name."""
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    return (
        not (pod.get("spec") or {}).get("nodeName"),
        created.timestamp() if created is not None else 0.0,
        (pod.get("metadata") or {}).get("name") or "",
    )


def _is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


@dataclass(slots=True)
class _BackoffEntry:
    delay: float
    updated: float


class _Backoff:
    """``flowcontrol.Backoff``: per-key delay doubling from ``initial`` to ``maximum``; an entry left
    alone for twice the maximum starts over."""

    def __init__(self, *, clock: Clock, initial: float, maximum: float) -> None:
        self._clock = clock
        self._initial = initial
        self._maximum = maximum
        self._entries: dict[str, _BackoffEntry] = {}

    def in_backoff(self, key: str) -> float | None:
        """The remaining delay if ``key`` was hit less than its delay ago."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        elapsed = self._clock.now() - entry.updated
        return entry.delay - elapsed if elapsed < entry.delay else None

    def hit(self, key: str) -> None:
        now = self._clock.now()
        entry = self._entries.get(key)
        if entry is None or now - entry.updated > 2 * self._maximum:
            self._entries[key] = _BackoffEntry(delay=self._initial, updated=now)
        else:
            entry.delay = min(entry.delay * 2, self._maximum)
            entry.updated = now


# --- the controller -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    type: str
    reason: str
    message: str


@dataclass(slots=True)
class _Counts:
    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0


class DaemonSetController:
    """Reconciles DaemonSets; :meth:`run` works until cancelled and may be called again."""

    name = "daemonset"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = REAL_CLOCK,
        now: Now = _utcnow,
        workers: int | None = None,
    ) -> None:
        self._client = ctx.client
        self._recorder = ctx.recorder(COMPONENT)
        self._pod_control = PodControl(client=ctx.client, recorder=self._recorder)
        self._clock = clock
        self._now = now
        self._workers = workers or ctx.options.concurrent_syncs
        # Creations and deletions are expected separately: one sync may do both.
        self._creations = Expectations(clock=clock)
        self._deletions = Expectations(clock=clock)
        self._failed_backoff = _Backoff(
            clock=clock, initial=FAILED_POD_BACKOFF, maximum=FAILED_POD_BACKOFF_MAX
        )
        self._queue: RateLimitingQueue[str] | None = None
        self._daemonsets = ctx.informers.informer(DAEMON_SETS)
        self._pods = ctx.informers.informer(PODS)
        self._nodes = ctx.informers.informer(NODES)
        self._revisions = ctx.informers.informer(CONTROLLER_REVISIONS)
        self._history = history.History(
            client=ctx.client, revisions=self._revisions, owner_resource=DAEMON_SETS
        )
        add_controller_uid_index(self._pods)
        # Handlers stay registered across runs: expectations must see every event.
        self._daemonsets.add_event_handler(
            on_add=self._on_ds, on_update=lambda old, new: self._on_ds(new), on_delete=self._on_ds_delete
        )
        self._pods.add_event_handler(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )
        self._nodes.add_event_handler(
            on_add=self._on_node_add, on_update=self._on_node_update, on_delete=self._on_node_delete
        )
        self._revisions.add_event_handler(
            on_add=self._on_revision,
            on_update=lambda old, new: self._on_revision(new),
            on_delete=self._on_revision,
        )

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name, clock=self._clock)
        self._queue = queue
        informers = [self._daemonsets, self._pods, self._nodes, self._revisions]
        for ds in self._daemonsets.cache.list():
            queue.add(object_key(ds))
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=informers
            ).run()
        finally:
            if self._queue is queue:
                self._queue = None

    # --- event handlers -----------------------------------------------------------------------

    def _enqueue(self, key: str, *, after: float = 0.0) -> None:
        if self._queue is not None:
            self._queue.add_after(key, after)

    def _on_ds(self, ds: Obj) -> None:
        self._enqueue(object_key(ds))

    def _on_ds_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        self._creations.forget(key)
        self._deletions.forget(key)
        self._enqueue(key)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        return resolve_controller_ref(
            self._daemonsets.cache, namespace=namespace, ref=ref, kind=DAEMON_SETS.kind
        )

    def _selecting(self, obj: Obj) -> list[Obj]:
        """DaemonSets in the object's namespace whose selector matches it (may adopt an orphan)."""
        return controllers_selecting(self._daemonsets.cache, obj)

    def _on_pod_add(self, pod: Obj) -> None:
        if _deleting(pod):
            self._on_pod_delete(pod)
            return
        ds = self._resolve(pod["metadata"]["namespace"], controller_of(pod))
        if ds is not None:
            key = object_key(ds)
            self._creations.creation_observed(key)
            self._enqueue(key)
        elif controller_of(pod) is None:
            for candidate in self._selecting(pod):
                self._enqueue(object_key(candidate))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if _deleting(new):
            self._on_pod_delete(new)
            return
        namespace = new["metadata"]["namespace"]
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(object_key(previous))
        ds = self._resolve(namespace, new_ref)
        if ds is not None:
            key = object_key(ds)
            self._enqueue(key)
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready and not is_pod_ready(old) and is_pod_ready(new):
                self._enqueue(key, after=min_ready + 1)
        elif new_ref is None and (
            old_ref != new_ref or old["metadata"].get("labels") != new["metadata"].get("labels")
        ):
            for candidate in self._selecting(new):
                self._enqueue(object_key(candidate))

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ds = self._resolve((pod.get("metadata") or {}).get("namespace") or "", controller_of(pod))
        if ds is not None:
            key = object_key(ds)
            self._deletions.deletion_observed(key, object_key(pod))
            self._enqueue(key)

    def _on_node_add(self, node: Obj) -> None:
        for ds in self._daemonsets.cache.list():
            if node_should_run_daemon_pod(node, ds)[0]:
                self._enqueue(object_key(ds))

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if old["metadata"].get("labels") == new["metadata"].get("labels") and old.get("spec") == new.get(
            "spec"
        ):
            return  # a status heartbeat: eligibility depends on labels, taints and the name only
        for ds in self._daemonsets.cache.list():
            spec = daemon_pod_spec(ds)
            if node_should_run_daemon_pod(old, ds, pod_spec=spec) != node_should_run_daemon_pod(
                new, ds, pod_spec=spec
            ):
                self._enqueue(object_key(ds))

    def _on_node_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        # Unscheduled pods pinned to a node that is gone are the DaemonSet's to delete (PodGC
        # only deletes bound ones); upstream finds them on the next sync, we look at once.
        for ds in self._daemonsets.cache.list():
            self._enqueue(object_key(ds))

    def _on_revision(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        revision = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ds = self._resolve((revision.get("metadata") or {}).get("namespace") or "", controller_of(revision))
        if ds is not None:
            self._enqueue(object_key(ds))
        elif controller_of(revision) is None:
            for candidate in self._selecting(revision):
                self._enqueue(object_key(candidate))

    # --- reconcile ----------------------------------------------------------------------------

    def _satisfied(self, key: str) -> bool:
        return self._creations.satisfied(key) and self._deletions.satisfied(key)

    async def reconcile(self, key: str) -> None:
        """Sync the DaemonSet ``key``: history, pods per node, rolling update, status."""
        ds = self._daemonsets.cache.get_by_key(key)
        if ds is None:
            self._creations.forget(key)
            self._deletions.forget(key)
            return
        spec = ds.get("spec") or {}
        try:
            selector = label_selector_from_spec(spec.get("selector"))
        except SelectorError as exc:
            raise PermanentError(f"DaemonSet {key} has an invalid selector: {exc}") from exc
        if selector.empty:
            await self._recorder.event(
                ds,
                type="Warning",
                reason="SelectingAll",
                message="This daemon set is selecting all pods. A non-empty selector is required.",
            )
            return
        if ds["metadata"].get("deletionTimestamp"):
            return  # its history may be gone already: no status can be trusted (upstream)
        nodes = sorted(self._nodes.cache.list(), key=lambda n: n["metadata"]["name"])
        current, old, collision_count = await self._construct_history(ds, selector)
        hash_value = current["metadata"]["labels"].get(history.CONTROLLER_REVISION_HASH_LABEL, "")
        candidates = owned_or_orphaned(self._pods.cache, ds)
        manager = ControllerRefManager(
            client=self._client, owner=ds, owner_resource=DAEMON_SETS, resource=PODS, selector=selector
        )
        claimed = await manager.claim(candidates)
        live = [pod for pod in claimed if not (_is_terminal(pod) and _deleting(pod))]
        node_to_pods = _group_by_node(live)
        if not self._satisfied(key):
            await self._update_status(ds, nodes, node_to_pods, hash_value, collision_count, observed=False)
            return
        failure: Exception | None = None
        try:
            await self._manage(ds, key, nodes, node_to_pods, hash_value)
            if self._satisfied(key) and (spec.get("updateStrategy") or {}).get("type") == "RollingUpdate":
                await self._rolling_update(ds, key, nodes, node_to_pods, hash_value)
            await self._cleanup_history(ds, old, claimed)
        except (errors.RequestError, IntOrPercentError) as exc:
            failure = exc
        await self._update_status(ds, nodes, node_to_pods, hash_value, collision_count, observed=True)
        if isinstance(failure, IntOrPercentError):
            raise PermanentError(f"DaemonSet {key}: {failure}") from failure
        if failure is not None:
            raise failure

    # --- history ------------------------------------------------------------------------------

    async def _construct_history(self, ds: Obj, selector: Any) -> tuple[Obj, list[Obj], int | None]:
        """``constructHistory``: (current revision, old revisions, collision count)."""
        collision_count = (ds.get("status") or {}).get("collisionCount")
        current: list[Obj] = []
        old: list[Obj] = []
        for revision in await self._history.claim(ds, selector=selector):
            if history.CONTROLLER_REVISION_HASH_LABEL not in (revision["metadata"].get("labels") or {}):
                revision = await self._history.relabel(
                    revision, key=history.CONTROLLER_REVISION_HASH_LABEL, value=revision["metadata"]["name"]
                )
            (current if history.matches_owner(ds, revision) else old).append(revision)
        next_number = history.max_revision(old) + 1
        if not current:
            template = (ds.get("spec") or {}).get("template") or {}
            body = history.new_revision(
                ds,
                owner_resource=DAEMON_SETS,
                data=history.template_patch(ds),
                number=next_number,
                labels=(template.get("metadata") or {}).get("labels") or {},
            )
            created, collision_count = await self._history.create(
                body,
                prefix=ds["metadata"]["name"],
                hash_label=history.CONTROLLER_REVISION_HASH_LABEL,
                hash_for=lambda count: compute_hash(template, count),
                collision_count=collision_count,
            )
            return created, old, collision_count
        keep = await self._dedup_current(ds, current)
        if history.revision_number(keep) < next_number:
            keep = await self._history.renumber(keep, next_number)
        return keep, old, collision_count

    async def _dedup_current(self, ds: Obj, current: list[Obj]) -> Obj:
        """``dedupCurHistories``: keep the newest equal revision, relabel pods onto it, drop the rest."""
        if len(current) == 1:
            return current[0]
        keep = max(current, key=history.revision_number)
        keep_hash = keep["metadata"]["labels"][history.CONTROLLER_REVISION_HASH_LABEL]
        for pod in owned_or_orphaned(self._pods.cache, ds):
            labels = pod["metadata"].get("labels") or {}
            if (
                controller_of(pod) is not None
                and labels.get(history.CONTROLLER_REVISION_HASH_LABEL) != keep_hash
            ):
                await self._client.patch(
                    PODS,
                    pod["metadata"]["name"],
                    {"metadata": {"labels": {history.CONTROLLER_REVISION_HASH_LABEL: keep_hash}}},
                    namespace=pod["metadata"]["namespace"],
                    patch_type=PatchType.MERGE,
                )
        for revision in current:
            if revision["metadata"]["name"] != keep["metadata"]["name"]:
                await self._history.delete(revision)
        return keep

    async def _cleanup_history(self, ds: Obj, old: Sequence[Obj], pods: Iterable[Obj]) -> None:
        """``cleanupHistory``: delete the oldest unused revisions beyond ``revisionHistoryLimit``."""
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        excess = len(old) - limit
        if excess <= 0:
            return
        live = {
            (pod["metadata"].get("labels") or {}).get(history.CONTROLLER_REVISION_HASH_LABEL) for pod in pods
        }
        for revision in history.sorted_by_revision(old):
            if excess <= 0:
                break
            if (revision["metadata"].get("labels") or {}).get(history.CONTROLLER_REVISION_HASH_LABEL) in live:
                continue
            await self._history.delete(revision)
            excess -= 1

    # --- pods per node ------------------------------------------------------------------------

    def _pods_should_be_on_node(
        self, ds: Obj, node: Obj, pods: list[Obj] | None, hash_value: str, pod_spec: Obj, events: list[_Event]
    ) -> tuple[bool, list[Obj]]:
        """``podsShouldBeOnNode``: (create a pod here?, pods to delete here); Events to record go
        to ``events``."""
        should_run, should_continue = node_should_run_daemon_pod(node, ds, pod_spec=pod_spec)
        node_name = node["metadata"]["name"]
        if should_run and pods is None:
            return True, []
        if not should_continue:
            return False, [pod for pod in pods or () if not _deleting(pod)]
        to_delete: list[Obj] = []
        running: list[Obj] = []
        for pod in pods or ():
            if _deleting(pod):
                continue
            phase = (pod.get("status") or {}).get("phase")
            namespaced = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if phase == "Failed":
                generation = (ds.get("status") or {}).get("observedGeneration", 0)
                backoff_key = f"{ds['metadata']['uid']}/{generation}/{node_name}"
                remaining = self._failed_backoff.in_backoff(backoff_key)
                if remaining is not None:
                    self._enqueue(object_key(ds), after=remaining)
                    continue
                self._failed_backoff.hit(backoff_key)
                events.append(
                    _Event(
                        "Warning",
                        "FailedDaemonPod",
                        f"Found failed daemon pod {namespaced} on node {node_name}, will try to kill it",
                    )
                )
                to_delete.append(pod)
            elif phase == "Succeeded":
                events.append(
                    _Event(
                        "Normal",
                        "SucceededDaemonPod",
                        f"Found succeeded daemon pod {namespaced} on node {node_name}, will try to delete it",
                    )
                )
                to_delete.append(pod)
            else:
                running.append(pod)
        running.sort(key=_creation_order)
        if not _allows_surge(ds):
            return False, to_delete + running[1:]
        if len(running) <= 1:
            return not running and should_run, to_delete
        oldest_new: Obj | None = None
        oldest_old: Obj | None = None
        for pod in running:
            if (pod["metadata"].get("labels") or {}).get(
                history.CONTROLLER_REVISION_HASH_LABEL
            ) == hash_value:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            to_delete.append(pod)
        # Two pods may share a node only while the new one is not yet available and the old one ready.
        if (
            oldest_new is not None
            and oldest_old is not None
            and (not is_pod_ready(oldest_old) or self._available(ds, oldest_new))
        ):
            to_delete.append(oldest_old)
        return False, to_delete

    def _available(self, ds: Obj, pod: Obj) -> bool:
        return is_pod_available(
            pod, min_ready_seconds=int((ds.get("spec") or {}).get("minReadySeconds") or 0), now=self._now()
        )

    async def _manage(
        self, ds: Obj, key: str, nodes: Sequence[Obj], node_to_pods: dict[str, list[Obj]], hash_value: str
    ) -> None:
        """``manage``: create daemon pods where missing, delete them where they should not be."""
        pod_spec = daemon_pod_spec(ds)
        create_on: list[str] = []
        to_delete: list[Obj] = []
        events: list[_Event] = []
        for node in nodes:
            create, delete = self._pods_should_be_on_node(
                ds, node, node_to_pods.get(node["metadata"]["name"]), hash_value, pod_spec, events
            )
            if create:
                create_on.append(node["metadata"]["name"])
            to_delete.extend(delete)
        existing = {node["metadata"]["name"] for node in nodes}
        for node_name, pods in node_to_pods.items():
            if node_name not in existing:
                to_delete.extend(pod for pod in pods if not (pod.get("spec") or {}).get("nodeName"))
        for event in events:
            await self._recorder.event(ds, type=event.type, reason=event.reason, message=event.message)
        await self._sync_nodes(ds, key, to_delete, create_on, hash_value)

    async def _sync_nodes(
        self, ds: Obj, key: str, to_delete: Sequence[Obj], create_on: Sequence[str], hash_value: str
    ) -> None:
        """``syncNodes``: delete ``to_delete``, create a pod on each node of ``create_on``."""
        create_on = list(create_on)[:BURST_REPLICAS]
        to_delete = list(to_delete)[:BURST_REPLICAS]
        failures: list[Exception] = []
        if create_on:
            self._creations.expect_creations(key, len(create_on))
            template = pod_template(ds, hash_value=hash_value)
            ref = controller_ref(ds, DAEMON_SETS)
            pending = iter(create_on)
            attempted = 0

            async def create() -> None:
                nonlocal attempted
                attempted += 1
                pod = copy.deepcopy(template)
                pod["spec"]["affinity"] = pin_to_node(pod["spec"].get("affinity"), next(pending))
                try:
                    await self._pod_control.create_pod(ds, template=pod, controller_ref=ref)
                except errors.RequestError:
                    self._creations.creation_observed(key)
                    raise

            _, failure = await slow_start_batch(
                len(create_on), initial_batch_size=SLOW_START_INITIAL_BATCH_SIZE, create=create
            )
            if failure is not None:
                # Creations never attempted will not be observed either.
                self._creations.creation_observed(key, count=len(create_on) - attempted)
                failures.append(failure)
        if to_delete:
            self._deletions.expect_deletions(key, (object_key(pod) for pod in to_delete))

            async def delete(pod: Obj) -> None:
                try:
                    await self._pod_control.delete_pod(ds, name=pod["metadata"]["name"])
                except errors.NotFoundError:
                    self._deletions.deletion_observed(key, object_key(pod))
                except errors.RequestError as exc:
                    self._deletions.deletion_observed(key, object_key(pod))
                    failures.append(exc)

            await asyncio.gather(*(delete(pod) for pod in to_delete))
        if failures:
            raise failures[0]

    # --- rolling update -----------------------------------------------------------------------

    async def _rolling_update(
        self, ds: Obj, key: str, nodes: Sequence[Obj], node_to_pods: dict[str, list[Obj]], hash_value: str
    ) -> None:
        """``rollingUpdate``: replace old pods within maxUnavailable / maxSurge."""
        pod_spec = daemon_pod_spec(ds)
        should_run = {
            node["metadata"]["name"]: node_should_run_daemon_pod(node, ds, pod_spec=pod_spec)[0]
            for node in nodes
        }
        by_node = {name: list(pods) for name, pods in node_to_pods.items()}
        for name, runs in should_run.items():
            if runs:
                by_node.setdefault(name, [])
        desired = sum(should_run.values())
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_surge = scaled_value(rolling.get("maxSurge"), total=desired, round_up=True)
        max_unavailable = scaled_value(rolling.get("maxUnavailable"), total=desired, round_up=True)
        if desired > 0 and max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        generation = template_generation(ds)
        pods_by_name = {pod["metadata"]["name"]: pod for pods in by_node.values() for pod in pods}
        if max_surge == 0:
            unavailable = 0
            replacements: list[str] = []
            candidates: list[str] = []
            for name in sorted(by_node):
                found = _find_updated_pods(by_node[name], hash_value=hash_value, generation=generation)
                if found is None:
                    unavailable += 1
                    continue
                new_pod, old_pod = found
                if (old_pod is None) == (new_pod is None):
                    unavailable += 1
                elif new_pod is not None:
                    if not self._available(ds, new_pod):
                        unavailable += 1
                elif old_pod is not None:
                    if not self._available(ds, old_pod):
                        replacements.append(old_pod["metadata"]["name"])
                        unavailable += 1
                    elif unavailable < max_unavailable:
                        candidates.append(old_pod["metadata"]["name"])
            room = max(0, min(max_unavailable - unavailable, len(candidates)))
            delete = [pods_by_name[name] for name in replacements + candidates[:room]]
            await self._sync_nodes(ds, key, delete, [], hash_value)
            return
        old_to_delete: list[str] = []
        sunset: list[str] = []
        candidate_nodes: list[str] = []
        allowed_nodes: list[str] = []
        surging = 0
        available = 0
        for name in sorted(by_node):
            found = _find_updated_pods(by_node[name], hash_value=hash_value, generation=generation)
            if found is None:
                surging += 1
                continue
            new_pod, old_pod = found
            if old_pod is not None:
                available += self._available(ds, old_pod)
            elif new_pod is not None:
                available += self._available(ds, new_pod)
            if old_pod is None:
                continue
            if new_pod is None:
                if not should_run.get(name, False):
                    if self._available(ds, old_pod):
                        sunset.append(old_pod["metadata"]["name"])
                    else:
                        old_to_delete.append(old_pod["metadata"]["name"])
                    continue
                if not self._available(ds, old_pod):
                    allowed_nodes.append(name)
                elif surging < max_surge:
                    candidate_nodes.append(name)
                continue
            if not self._available(ds, new_pod):
                surging += 1
                continue
            old_to_delete.append(old_pod["metadata"]["name"])
        deletable = available - desired
        if deletable > 0:
            old_to_delete.extend(sunset[: min(deletable, len(sunset))])
        room = max(0, min(max_surge - surging, len(candidate_nodes)))
        await self._sync_nodes(
            ds,
            key,
            [pods_by_name[n] for n in old_to_delete],
            allowed_nodes + candidate_nodes[:room],
            hash_value,
        )

    # --- status -------------------------------------------------------------------------------

    def _count(
        self, ds: Obj, nodes: Sequence[Obj], node_to_pods: Mapping[str, list[Obj]], hash_value: str
    ) -> _Counts:
        counts = _Counts()
        pod_spec = daemon_pod_spec(ds)
        generation = template_generation(ds)
        for node in nodes:
            pods = node_to_pods.get(node["metadata"]["name"]) or []
            if not node_should_run_daemon_pod(node, ds, pod_spec=pod_spec)[0]:
                counts.misscheduled += bool(pods)
                continue
            counts.desired += 1
            if not pods:
                continue
            counts.current += 1
            pod = min(pods, key=_creation_order)
            if is_pod_ready(pod):
                counts.ready += 1
                counts.available += self._available(ds, pod)
            counts.updated += is_pod_updated(pod, hash_value=hash_value, generation=generation)
        return counts

    async def _update_status(
        self,
        ds: Obj,
        nodes: Sequence[Obj],
        node_to_pods: Mapping[str, list[Obj]],
        hash_value: str,
        collision_count: int | None,
        *,
        observed: bool,
    ) -> None:
        """``updateDaemonSetStatus`` / ``storeDaemonSetStatus``: write the counts if they changed."""
        counts = self._count(ds, nodes, node_to_pods, hash_value)
        wanted: dict[str, Any] = {
            "desiredNumberScheduled": counts.desired,
            "currentNumberScheduled": counts.current,
            "numberMisscheduled": counts.misscheduled,
            "numberReady": counts.ready,
            "updatedNumberScheduled": counts.updated,
            "numberAvailable": counts.available,
            "numberUnavailable": counts.desired - counts.available,
        }
        if collision_count is not None:
            wanted["collisionCount"] = collision_count
        generation = int(ds["metadata"].get("generation") or 0)
        status = ds.get("status") or {}
        unchanged = all(int(status.get(field) or 0) == value for field, value in wanted.items())
        if unchanged and int(status.get("observedGeneration") or 0) >= generation:
            self._requeue_for_availability(ds, counts)
            return
        current: Obj = ds
        for attempt in range(2):
            changed = copy.deepcopy(dict(current))
            new_status = changed.setdefault("status", {})
            new_status.update(wanted)
            for omitted_when_zero in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
                if not new_status[omitted_when_zero]:
                    del new_status[omitted_when_zero]
            if observed:
                new_status["observedGeneration"] = generation
            try:
                await self._client.replace(DAEMON_SETS, changed, subresource="status")
                break
            except errors.ConflictError:
                if attempt:
                    raise
                current = await self._client.get(
                    DAEMON_SETS, ds["metadata"]["name"], namespace=ds["metadata"]["namespace"]
                )
        self._requeue_for_availability(ds, counts)

    def _requeue_for_availability(self, ds: Obj, counts: _Counts) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and counts.ready != counts.available:
            self._enqueue(object_key(ds), after=min_ready)


def _allows_surge(ds: Obj) -> bool:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return False
    try:
        return (
            scaled_value((strategy.get("rollingUpdate") or {}).get("maxSurge"), total=1, round_up=True) != 0
        )
    except IntOrPercentError:
        return False


def _group_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    grouped: dict[str, list[Obj]] = {}
    for pod in pods:
        node_name = target_node_name(pod)
        if node_name is not None:
            grouped.setdefault(node_name, []).append(pod)
    return grouped


def _find_updated_pods(
    pods: Iterable[Obj], *, hash_value: str, generation: str | None
) -> tuple[Obj | None, Obj | None] | None:
    """``findUpdatedPodsOnNode``: (new pod, old pod) among those not being deleted; None if a node
    has two of either (the manage loop prunes those first)."""
    new_pod: Obj | None = None
    old_pod: Obj | None = None
    for pod in pods:
        if _deleting(pod):
            continue
        if is_pod_updated(pod, hash_value=hash_value, generation=generation):
            if new_pod is not None:
                return None
            new_pod = pod
        else:
            if old_pod is not None:
                return None
            old_pod = pod
    return new_pod, old_pod


def new_controller(ctx: ControllerContext) -> DaemonSetController:
    return DaemonSetController(ctx)
