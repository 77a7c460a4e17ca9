"""The Deployment controller: roll a pod template out through ReplicaSets.

A port of kube-controller-manager's ``pkg/controller/deployment`` (``deployment_controller.go``,
``sync.go``, ``rolling.go``, ``recreate.go``, ``progress.go`` and ``util/deployment_util.go``).
A Deployment owns one ReplicaSet per pod template it has run, named ``<deployment>-<hash>``
where the hash (:func:`~control.controllers.ownership.compute_hash` of the template and
``status.collisionCount``) is also the ``pod-template-hash`` label added to that ReplicaSet's
selector and template, so the ReplicaSets never fight over pods. Each sync, in upstream's order:

1. claim ReplicaSets by selector (adopt orphans, release the ones that stopped matching);
2. a Deployment being deleted only gets its status refreshed; a paused one, or one whose
   ``spec.replicas`` changed (a *scaling event*: the ``desired-replicas`` annotation of an active
   ReplicaSet differs), is scaled proportionally across its active ReplicaSets, without rolling;
3. otherwise the strategy runs. **RollingUpdate** scales the new ReplicaSet up as far as
   ``maxSurge`` allows, then scales old ones down as far as ``maxUnavailable`` allows (unhealthy
   replicas first), one step per sync; **Recreate** scales every old ReplicaSet to zero, waits
   until none of their pods runs, then creates and scales up the new one;
4. revisions: the new ReplicaSet gets ``deployment.kubernetes.io/revision`` = highest old revision
   + 1 (a ReplicaSet brought back by ``kubectl rollout undo`` keeps its earlier numbers in
   ``revision-history``), the Deployment carries the current revision, every active ReplicaSet
   carries ``desired-replicas`` and ``max-replicas``; the Deployment's own annotations (say
   ``kubernetes.io/change-cause``) are copied to the new ReplicaSet, which is what ``kubectl rollout
   history`` shows. Old ReplicaSets beyond ``revisionHistoryLimit`` are deleted once scaled down;
5. status: replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas and
   observedGeneration (what ``kubectl rollout status`` waits on), the ``Available`` condition
   (MinimumReplicasAvailable/Unavailable) and the ``Progressing`` condition (NewReplicaSetCreated,
   FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded,
   DeploymentPaused/Resumed, ReplicaSetCreateError), with upstream's messages; a rollout that
   stalls is looked at again when its ``progressDeadlineSeconds`` run out.

Events are upstream's: ``ScalingReplicaSet`` "Scaled up replica set web-5d9c from 0 to 3".
``kubectl rollout undo`` needs nothing from us: kubectl copies the old ReplicaSet's template into
the Deployment, and the controller recognises that ReplicaSet as the new one.

Two deliberate departures, both about fewer wasted writes: ReplicaSets and the Deployment written
during a sync replace their cached copies for the rest of that sync (upstream re-reads the stale
cache and lives with the 409s), and the revision annotation is written with a metadata patch
before the status update, because an API server may (kubelab's does) ignore metadata in a status
write where upstream's deployment status strategy keeps annotations. The rollback annotation of
the long-gone ``extensions/v1beta1`` rollback subresource (``deprecated.deployment.rollback.to``)
is not acted on: no served API version can set it.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller, PermanentError, TemporaryError
from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown, InformerFactory
from control.client.rest import PatchType, RESTClient
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import DEPLOYMENTS, PODS, REPLICA_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ClaimError,
    ControllerRefManager,
    add_controller_uid_index,
    compute_hash,
    controller_of,
    controller_ref,
    error_text,
    format_time,
    namespace_terminating,
    owned_or_orphaned,
    parse_time,
)
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.controllers.deployment")

COMPONENT = "deployment-controller"

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ANNOTATIONS_NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        "deprecated.deployment.rollback.to",
    }
)
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# Condition types and reasons (deploymentutil).
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"

Object = dict[str, Any]
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_controller(ctx: ControllerContext) -> DeploymentController:
    return DeploymentController(
        client=ctx.client,
        informers=ctx.informers,
        recorder=ctx.recorder(COMPONENT),
        workers=ctx.options.concurrent_syncs,
    )


# --------------------------------------------------------------------------- maxSurge / maxUnavailable


class IntOrPercentError(ValueError):
    """A maxSurge/maxUnavailable that is neither an integer nor ``"<n>%"``."""


def scaled_value(value: int | str | None, *, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``"25%"`` of ``total`` rounded up
    (maxSurge) or down (maxUnavailable)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise IntOrPercentError(f"invalid value {value!r}: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.endswith("%"):
        raise IntOrPercentError(f"invalid value {value!r}: string is not a percentage")
    try:
        percent = int(value[:-1], 10)
    except ValueError as exc:
        raise IntOrPercentError(f"invalid value {value!r}: {exc}") from exc
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(
    *, max_surge: int | str | None, max_unavailable: int | str | None, desired: int
) -> tuple[int, int]:
    """(surge, unavailable) for ``desired`` replicas; both resolving to 0 makes unavailable 1."""
    surge = scaled_value(max_surge, total=desired, round_up=True)
    unavailable = scaled_value(max_unavailable, total=desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # Validation forbids 0/0, but rounding down can produce it: allow one unavailable pod.
        unavailable = 1
    return surge, unavailable


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def replicas_of(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (1 when unset, as the API defaults it)."""
    value = _spec(obj).get("replicas")
    return 1 if value is None else int(value)


def is_rolling_update(d: Mapping[str, Any]) -> bool:
    return ((_spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    rolling = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(
        max_surge=rolling.get("maxSurge"),
        max_unavailable=rolling.get("maxUnavailable"),
        desired=replicas_of(d),
    )


def max_surge(d: Mapping[str, Any]) -> int:
    return _fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    replicas = replicas_of(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    deadline = _spec(d).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def has_revision_history_limit(d: Mapping[str, Any]) -> bool:
    limit = _spec(d).get("revisionHistoryLimit")
    return limit is not None and int(limit) != MAX_INT32


# --------------------------------------------------------------------------- ReplicaSets of a Deployment


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def revision(rs: Mapping[str, Any]) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation (0 when absent); ValueError when malformed."""
    value = _annotations(rs).get(REVISION_ANNOTATION)
    return 0 if value is None else int(value, 10)


def _revision_or_none(rs: Mapping[str, Any]) -> int | None:
    try:
        return revision(rs)
    except ValueError:
        return None


def max_revision(replica_sets: Sequence[Mapping[str, Any]]) -> int:
    return max((v for v in map(_revision_or_none, replica_sets) if v is not None), default=0)


def last_revision(replica_sets: Sequence[Mapping[str, Any]]) -> int:
    """The second highest revision: the one ``kubectl rollout undo`` goes back to."""
    highest = second = 0
    for value in map(_revision_or_none, replica_sets):
        if value is None:
            continue
        if value >= highest:
            second, highest = highest, value
        elif value > second:
            second = value
    return second


def _semantic(value: Any) -> Any:
    """A JSON value with unset-equivalent fields dropped, so that two templates compare the way
    apimachinery's semantic equality compares the Go structs they decode to."""
    if isinstance(value, dict):
        return {
            key: _semantic(item) for key, item in value.items() if item not in (None, "", False, 0, [], {})
        }
    if isinstance(value, list):
        return [_semantic(item) for item in value]
    return value


def _without_hash(template: Mapping[str, Any]) -> Any:
    copy = orjson.loads(orjson.dumps(template))
    labels = (copy.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return _semantic(copy)


def equal_ignore_hash(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Two pod templates are the same apart from their ``pod-template-hash`` label."""
    return _without_hash(first) == _without_hash(second)


def _created_at(obj: Mapping[str, Any]) -> float:
    moment = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return moment.timestamp() if moment is not None else 0.0


def _by_creation(obj: Mapping[str, Any]) -> tuple[float, str]:
    """``ReplicaSetsByCreationTimestamp``: oldest first, the name breaking ties."""
    return _created_at(obj), obj["metadata"]["name"]


def _compare_creation(first: Mapping[str, Any], second: Mapping[str, Any]) -> int:
    a, b = _by_creation(first), _by_creation(second)
    return (a > b) - (a < b)


def sort_by_creation(replica_sets: Sequence[Object]) -> list[Object]:
    return sorted(replica_sets, key=_by_creation)


def sort_by_revision(replica_sets: Sequence[Object]) -> list[Object]:
    """``ReplicaSetsByRevision``: by revision, creation order when a revision is missing or equal."""

    def compare(first: Object, second: Object) -> int:
        a, b = _revision_or_none(first), _revision_or_none(second)
        if a is None or b is None or a == b:
            return _compare_creation(first, second)
        return -1 if a < b else 1

    return sorted(replica_sets, key=functools.cmp_to_key(compare))


def sort_by_size(replica_sets: Sequence[Object], *, newer_first: bool) -> list[Object]:
    """Largest first; among equal sizes the newer first (scaling up) or the older first (down)."""

    def compare(first: Object, second: Object) -> int:
        a, b = replicas_of(first), replicas_of(second)
        if a != b:
            return -1 if a > b else 1
        order = _compare_creation(first, second)
        return -order if newer_first else order

    return sorted(replica_sets, key=functools.cmp_to_key(compare))


def filter_active(replica_sets: Sequence[Object | None]) -> list[Object]:
    """The ReplicaSets that should have pods (``spec.replicas > 0``)."""
    return [rs for rs in replica_sets if rs is not None and replicas_of(rs) > 0]


def find_new_replica_set(d: Mapping[str, Any], replica_sets: Sequence[Object]) -> Object | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    template = _spec(d).get("template") or {}
    for rs in sort_by_creation(replica_sets):
        if equal_ignore_hash(_spec(rs).get("template") or {}, template):
            return rs
    return None


def find_old_replica_sets(
    d: Mapping[str, Any], replica_sets: Sequence[Object]
) -> tuple[list[Object], list[Object]]:
    """(old ReplicaSets with replicas, every old ReplicaSet)."""
    new_rs = find_new_replica_set(d, replica_sets)
    new_uid = None if new_rs is None else new_rs["metadata"]["uid"]
    every = [rs for rs in replica_sets if rs["metadata"]["uid"] != new_uid]
    return [rs for rs in every if replicas_of(rs) != 0], every


def find_active_or_latest(new_rs: Object | None, old_rss: Sequence[Object]) -> Object | None:
    """The only active ReplicaSet, or the newest one when none is active; None when several are."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=_by_creation, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def _int_annotation(rs: Mapping[str, Any], name: str) -> int | None:
    value = _annotations(rs).get(name)
    if value is None:
        return None
    try:
        return int(value, 10)
    except ValueError:
        return None


def set_replicas_annotations(rs: Object, *, desired: int, maximum: int) -> bool:
    """Record desired-replicas and max-replicas on ``rs`` (a private copy); True if they changed."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for name, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(maximum))):
        if annotations.get(name) != value:
            annotations[name] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Mapping[str, Any], *, desired: int, maximum: int) -> bool:
    annotations = _annotations(rs)
    return annotations.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or annotations.get(
        MAX_REPLICAS_ANNOTATION
    ) != str(maximum)


def set_new_replica_set_annotations(
    d: Mapping[str, Any], rs: Object, *, new_revision: int, exists: bool
) -> bool:
    """Copy the Deployment's annotations onto ``rs`` (a private copy), raise its revision to
    ``new_revision`` (remembering the previous one in revision-history), and for a ReplicaSet about
    to be created set the replica annotations. True if anything changed."""
    annotations: dict[str, str] = rs["metadata"].setdefault("annotations", {})
    changed = False
    for name, value in _annotations(d).items():
        if name not in ANNOTATIONS_NOT_COPIED and annotations.get(name) != value:
            annotations[name] = value
            changed = True
    old_text = annotations.get(REVISION_ANNOTATION)
    try:
        old_revision = 0 if old_text is None or old_text == "" else int(old_text, 10)
    except ValueError:
        log.warning("replica set %s has a malformed revision %r", rs["metadata"].get("name"), old_text)
        return False
    if old_revision < new_revision:
        annotations[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if old_text is not None:
            # Rolling back to this ReplicaSet: keep the revisions it served before.
            history = annotations.get(REVISION_HISTORY_ANNOTATION, "")
            if not history:
                annotations[REVISION_HISTORY_ANNOTATION] = old_text
            else:
                parts = history.split(",")
                total = len(history) + len(old_text) + 1
                start = 0
                while total > MAX_REVISION_HISTORY_CHARS and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= MAX_REVISION_HISTORY_CHARS:
                    annotations[REVISION_HISTORY_ANNOTATION] = ",".join([*parts[start:], old_text])
    if not exists and set_replicas_annotations(
        rs, desired=replicas_of(d), maximum=replicas_of(d) + max_surge(d)
    ):
        changed = True
    return changed


def new_rs_new_replicas(d: Mapping[str, Any], *, all_rss: Sequence[Object], new_rs: Mapping[str, Any]) -> int:
    """How many replicas the new ReplicaSet may have now (RollingUpdate: within maxSurge)."""
    if not is_rolling_update(d):
        return replicas_of(d)
    desired = replicas_of(d)
    rolling = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), total=desired, round_up=True)
    current = sum(replicas_of(rs) for rs in all_rss)
    max_total = desired + surge
    if current >= max_total:
        return replicas_of(new_rs)
    scale_up = min(max_total - current, desired - replicas_of(new_rs))
    return replicas_of(new_rs) + scale_up


def _replica_set_fraction(rs: Mapping[str, Any], d: Mapping[str, Any]) -> int:
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    deployment_replicas = replicas_of(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None:
        annotated = int(_status(d).get("replicas") or 0)
    if annotated == 0:
        return 0
    size = replicas_of(rs) * deployment_replicas / annotated
    return math.floor(size + 0.5) - replicas_of(rs)  # Go's math.Round: halves away from zero


def get_proportion(rs: Mapping[str, Any] | None, d: Mapping[str, Any], *, to_add: int, added: int) -> int:
    """This ReplicaSet's share of ``to_add`` replicas in a proportional scaling (never beyond what
    is left to add or remove)."""
    if rs is None or replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_saturated(d: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    """The new ReplicaSet runs all the Deployment's replicas, and all of them are available."""
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
    replicas = replicas_of(d)
    return (
        desired is not None
        and replicas_of(rs) == replicas
        and desired == replicas
        and int(_status(rs).get("availableReplicas") or 0) == replicas
    )


# --------------------------------------------------------------------------- status and conditions


def new_condition(kind: str, status: str, *, reason: str, message: str, now: datetime) -> Object:
    moment = format_time(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": moment,
        "lastTransitionTime": moment,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Mapping[str, Any], kind: str) -> Object | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return None


def set_condition(status: Object, condition: Object) -> None:
    """Add or replace a condition; the same status and reason leave it alone, and the same status
    keeps its lastTransitionTime."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"]:
        if current.get("reason") == condition["reason"]:
            return
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: Object, kind: str) -> None:
    conditions = [c for c in status.get("conditions") or () if c.get("type") != kind]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def _sum(replica_sets: Sequence[Mapping[str, Any] | None], field: str) -> int:
    return sum(int(_status(rs).get(field) or 0) for rs in replica_sets if rs is not None)


def _omit_empty(status: Object) -> Object:
    """Status as Go serialises it: zero counts and empty lists left out."""
    return {key: value for key, value in status.items() if value not in (0, None, [])}


def calculate_status(
    d: Mapping[str, Any],
    *,
    all_rss: Sequence[Mapping[str, Any] | None],
    new_rs: Mapping[str, Any] | None,
    now: datetime,
) -> Object:
    """The Deployment's status from its ReplicaSets, with the Available condition refreshed."""
    available = _sum(all_rss, "availableReplicas")
    total = sum(replicas_of(rs) for rs in all_rss if rs is not None)
    old = _status(d)
    status: Object = {
        "observedGeneration": int((d.get("metadata") or {}).get("generation") or 0),
        "replicas": _sum(all_rss, "replicas"),
        "updatedReplicas": _sum([new_rs], "replicas"),
        "readyReplicas": _sum(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
        "conditions": [dict(c) for c in old.get("conditions") or ()],
        "collisionCount": old.get("collisionCount"),
    }
    if available >= replicas_of(d) - max_unavailable(d):
        condition = new_condition(
            AVAILABLE,
            "True",
            reason=MINIMUM_REPLICAS_AVAILABLE,
            message="Deployment has minimum availability.",
            now=now,
        )
    else:
        condition = new_condition(
            AVAILABLE,
            "False",
            reason=MINIMUM_REPLICAS_UNAVAILABLE,
            message="Deployment does not have minimum availability.",
            now=now,
        )
    set_condition(status, condition)
    return _omit_empty(status)


def _count(status: Mapping[str, Any], field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Every desired replica updated and available, no old pod left, the spec observed."""
    replicas = replicas_of(d)
    return (
        _count(status, "updatedReplicas") == replicas
        and _count(status, "replicas") == replicas
        and _count(status, "availableReplicas") == replicas
        and _count(status, "observedGeneration") >= int((d.get("metadata") or {}).get("generation") or 0)
    )


def deployment_progressing(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Something moved since the last status: more updated, fewer old, more ready or available."""
    old = _status(d)
    old_old = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_old = _count(status, "replicas") - _count(status, "updatedReplicas")
    return (
        _count(status, "updatedReplicas") > _count(old, "updatedReplicas")
        or new_old < old_old
        or _count(status, "readyReplicas") > _count(old, "readyReplicas")
        or _count(status, "availableReplicas") > _count(old, "availableReplicas")
    )


def deployment_timed_out(d: Mapping[str, Any], status: Mapping[str, Any], *, now: datetime) -> bool:
    """No progress reported for ``progressDeadlineSeconds``."""
    if not has_progress_deadline(d):
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    since = parse_time(condition.get("lastUpdateTime"))
    if since is None:
        return False
    return since.timestamp() + int(_spec(d)["progressDeadlineSeconds"]) < now.timestamp()


def _quoted(name: str) -> str:
    """Go's ``%q`` for the names these messages quote."""
    return orjson.dumps(name).decode()


# --------------------------------------------------------------------------- the controller


class DeploymentController:
    """Reconciles Deployments; :meth:`run` works until cancelled and may be called again."""

    name = "deployment"

    def __init__(
        self,
        *,
        client: RESTClient,
        informers: InformerFactory,
        recorder: EventRecorder,
        workers: int = 5,
        clock: Clock = REAL_CLOCK,
        now: Now = _utcnow,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self._workers = workers
        self._clock = clock
        self.now = now
        self.queue: RateLimitingQueue[str] | None = None
        self.deployments = informers.informer(DEPLOYMENTS)
        self.replicasets = informers.informer(REPLICA_SETS)
        self.pods = informers.informer(PODS)
        add_controller_uid_index(self.replicasets)
        add_controller_uid_index(self.pods)
        self.deployments.add_event_handler(
            on_add=self._on_deployment,
            on_update=lambda old, cur: self._on_deployment(cur),
            on_delete=self._on_deployment_delete,
        )
        self.replicasets.add_event_handler(
            on_add=self._on_rs_add, on_update=self._on_rs_update, on_delete=self._on_rs_delete
        )
        self.pods.add_event_handler(on_delete=self._on_pod_delete)

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name, clock=self._clock)
        self.queue = queue
        for d in self.deployments.cache.list():
            queue.add(object_key(d))
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self.deployments, self.replicasets, self.pods],
            ).run()
        finally:
            if self.queue is queue:
                self.queue = None

    # --- event handlers ----------------------------------------------------------------------------

    def enqueue(self, key: str, *, after: float | None = None, rate_limited: bool = False) -> None:
        queue = self.queue
        if queue is None:
            return
        if rate_limited:
            queue.add_rate_limited(key)
        elif after is not None:
            queue.add_after(key, after)
        else:
            queue.add(key)

    def _on_deployment(self, d: Object) -> None:
        self.enqueue(object_key(d))

    def _on_deployment_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        self.enqueue(obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj))

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Object | None:
        if ref is None or ref.get("kind") != DEPLOYMENTS.kind:
            return None
        d = self.deployments.cache.get_by_key(f"{namespace}/{ref.get('name')}")
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return d

    def _deployments_selecting(self, rs: Mapping[str, Any]) -> list[Object]:
        metadata = rs.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if not labels:
            return []
        matching = []
        for d in self.deployments.cache.by_index(NAMESPACE_INDEX, metadata.get("namespace") or ""):
            try:
                selector = label_selector_from_spec(_spec(d).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                matching.append(d)
        return matching

    def _on_rs_add(self, rs: Object) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._on_rs_delete(rs)
            return
        ref = controller_of(rs)
        if ref is not None:
            d = self._resolve(rs["metadata"]["namespace"], ref)
            if d is not None:
                self.enqueue(object_key(d))
            return
        for d in self._deployments_selecting(rs):
            self.enqueue(object_key(d))

    def _on_rs_update(self, old: Object, cur: Object) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        namespace = cur["metadata"]["namespace"]
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self.enqueue(object_key(previous))
        if cur_ref is not None:
            d = self._resolve(namespace, cur_ref)
            if d is not None:
                self.enqueue(object_key(d))
            return
        if ref_changed or old["metadata"].get("labels") != cur["metadata"].get("labels"):
            for d in self._deployments_selecting(cur):
                self.enqueue(object_key(d))

    def _on_rs_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        rs = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        d = self._resolve(rs["metadata"].get("namespace") or "", controller_of(rs))
        if d is not None:
            self.enqueue(object_key(d))

    def _on_pod_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        """A Recreate Deployment waits for its old pods to be gone: wake it when the last one goes."""
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        namespace = pod["metadata"].get("namespace") or ""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != REPLICA_SETS.kind:
            return
        rs = self.replicasets.cache.get_by_key(f"{namespace}/{ref.get('name')}")
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return
        d = self._resolve(namespace, controller_of(rs))
        if d is None or is_rolling_update(d):
            return
        for owned in self.replicasets.cache.by_index(CONTROLLER_UID_INDEX, d["metadata"]["uid"]):
            if self.pods.cache.index_keys(CONTROLLER_UID_INDEX, owned["metadata"]["uid"]):
                return
        self.enqueue(object_key(d))

    # --- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.deployments.cache.get_by_key(key)
        if cached is None:
            return
        try:
            await _Sync(self, cached).run()
        except (errors.ConflictError, ClaimError) as exc:
            # Our cache is behind a write (often our own), or an adoption raced one: an ordinary
            # retry, not an error.
            raise TemporaryError(f"{key}: {exc}") from exc


class _Sync:
    """One sync of one Deployment: a private working copy, and the ReplicaSets as this sync last
    wrote them."""

    def __init__(self, controller: DeploymentController, cached: Mapping[str, Any]) -> None:
        self.c = controller
        self.d: Object = orjson.loads(orjson.dumps(cached))
        self.stored_annotations = dict(_annotations(self.d))
        self.key = object_key(self.d)
        self.rs_list: list[Object] = []

    @property
    def name(self) -> str:
        return self.d["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.d["metadata"]["namespace"]

    # --- the entry point ----------------------------------------------------------------------------

    async def run(self) -> None:
        d = self.d
        selector_spec = _spec(d).get("selector")
        if (
            isinstance(selector_spec, Mapping)
            and not selector_spec.get("matchLabels")
            and not selector_spec.get("matchExpressions")
        ):
            await self.c.recorder.event(
                d,
                type="Warning",
                reason="SelectingAll",
                message="This deployment is selecting all pods. A non-empty selector is required.",
            )
            generation = int(d["metadata"].get("generation") or 0)
            if _count(_status(d), "observedGeneration") < generation:
                d.setdefault("status", {})["observedGeneration"] = generation
                await self.update_status()
            return
        try:
            selector = label_selector_from_spec(selector_spec)
        except SelectorError as exc:
            raise PermanentError(f"deployment {self.key} has invalid label selector: {exc}") from exc
        manager = ControllerRefManager(
            client=self.c.client,
            owner=d,
            owner_resource=DEPLOYMENTS,
            resource=REPLICA_SETS,
            selector=selector,
        )
        self.rs_list = await manager.claim(owned_or_orphaned(self.c.replicasets.cache, d))
        if d["metadata"].get("deletionTimestamp"):
            await self.sync_status_only()
            return
        await self.check_paused_conditions()
        if _spec(d).get("paused"):
            await self.sync()
            return
        if await self.is_scaling_event():
            await self.sync()
            return
        strategy = (_spec(d).get("strategy") or {}).get("type") or "RollingUpdate"
        if strategy == "Recreate":
            await self.rollout_recreate()
        elif strategy == "RollingUpdate":
            await self.rollout_rolling()
        else:
            raise PermanentError(f"deployment {self.key}: unexpected strategy type {strategy!r}")

    # --- writes --------------------------------------------------------------------------------------

    def _remember(self, rs: Object) -> Object:
        """Use the ReplicaSet as just written for the rest of this sync."""
        uid = rs["metadata"]["uid"]
        self.rs_list = [rs if item["metadata"]["uid"] == uid else item for item in self.rs_list]
        return rs

    async def update_replica_set(self, rs: Object) -> Object:
        return self._remember(await self.c.client.replace(REPLICA_SETS, rs))

    async def update_status(self) -> None:
        """Write the working copy's status (and, first, its revision annotation if it changed)."""
        d = self.d
        annotations = dict(_annotations(d))
        if annotations != self.stored_annotations:
            changes: dict[str, str | None] = {
                k: v for k, v in annotations.items() if self.stored_annotations.get(k) != v
            }
            changes.update({k: None for k in self.stored_annotations if k not in annotations})
            patched = await self.c.client.patch(
                DEPLOYMENTS,
                self.name,
                {
                    "metadata": {
                        "annotations": changes,
                        "resourceVersion": d["metadata"].get("resourceVersion"),
                    }
                },
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
            )
            d["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]
            self.stored_annotations = annotations
        updated = await self.c.client.replace(DEPLOYMENTS, d, subresource="status")
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def event(self, *, type: str, reason: str, message: str) -> None:
        await self.c.recorder.event(self.d, type=type, reason=reason, message=message)

    # --- ReplicaSets: finding, creating, scaling ----------------------------------------------------------

    async def get_all_replica_sets(self, *, create: bool) -> tuple[Object | None, list[Object]]:
        """(the new ReplicaSet — created if ``create`` and missing —, every old one), revisions synced."""
        _, old_rss = find_old_replica_sets(self.d, self.rs_list)
        new_rs = await self.get_new_replica_set(old_rss, create=create)
        return new_rs, old_rss

    async def get_new_replica_set(self, old_rss: list[Object], *, create: bool) -> Object | None:
        d = self.d
        c = self.c
        existing = find_new_replica_set(d, self.rs_list)
        new_revision = max_revision(old_rss) + 1
        if existing is not None:
            rs = orjson.loads(orjson.dumps(existing))
            annotations_updated = set_new_replica_set_annotations(
                d, rs, new_revision=new_revision, exists=True
            )
            min_ready = int(_spec(d).get("minReadySeconds") or 0)
            if annotations_updated or int(_spec(rs).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                return await self.update_replica_set(rs)
            needs_update = self.set_deployment_revision(_annotations(rs).get(REVISION_ANNOTATION, ""))
            if has_progress_deadline(d) and get_condition(_status(d), PROGRESSING) is None:
                set_condition(
                    d.setdefault("status", {}),
                    new_condition(
                        PROGRESSING,
                        "True",
                        reason=FOUND_NEW_RS,
                        message=f"Found new replica set {_quoted(rs['metadata']['name'])}",
                        now=c.now(),
                    ),
                )
                needs_update = True
            if needs_update:
                await self.update_status()
            return rs
        if not create:
            return None

        template = orjson.loads(orjson.dumps(_spec(d).get("template") or {}))
        collision_count = _status(d).get("collisionCount")
        template_hash = compute_hash(template, None if collision_count is None else int(collision_count))
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH_LABEL] = template_hash
        selector = orjson.loads(orjson.dumps(_spec(d).get("selector") or {}))
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH_LABEL] = template_hash
        name = f"{self.name}-{template_hash}"
        new_rs: Object = {
            "apiVersion": REPLICA_SETS.api_version,
            "kind": REPLICA_SETS.kind,
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "ownerReferences": [controller_ref(d, DEPLOYMENTS)],
                "labels": dict(template["metadata"]["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(_spec(d).get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        new_count = new_rs_new_replicas(d, all_rss=[*old_rss, new_rs], new_rs=new_rs)
        new_rs["spec"]["replicas"] = new_count
        set_new_replica_set_annotations(d, new_rs, new_revision=new_revision, exists=False)
        already_exists = False
        try:
            created = await c.client.create(REPLICA_SETS, new_rs, namespace=self.namespace)
        except errors.AlreadyExistsError as exc:
            # A slow cache or a fast resync; or a hash collision with a ReplicaSet that is not ours.
            found = c.replicasets.cache.get_by_key(f"{self.namespace}/{name}")
            if found is None:
                raise TemporaryError(f"replica set {name} exists but is not in the cache yet") from exc
            ref = controller_of(found)
            if (
                ref is None
                or ref.get("uid") != d["metadata"]["uid"]
                or not equal_ignore_hash(_spec(d).get("template") or {}, _spec(found).get("template") or {})
            ):
                status = d.setdefault("status", {})
                previous = int(status.get("collisionCount") or 0)
                status["collisionCount"] = previous + 1
                try:
                    await self.update_status()
                except errors.RequestError:
                    log.info("%s: could not record hash collision %d", self.key, previous + 1)
                else:
                    log.info("%s: hash collision; collisionCount %d -> %d", self.key, previous, previous + 1)
                raise TemporaryError(
                    f"replica set {name} exists with another template (hash collision)"
                ) from exc
            created = orjson.loads(orjson.dumps(found))
            already_exists = True
        except errors.RequestError as exc:
            if namespace_terminating(exc):
                raise
            message = f"Failed to create new replica set {_quoted(name)}: {error_text(exc)}"
            if has_progress_deadline(d):
                set_condition(
                    d.setdefault("status", {}),
                    new_condition(
                        PROGRESSING, "False", reason=FAILED_RS_CREATE, message=message, now=c.now()
                    ),
                )
                try:
                    await self.update_status()
                except errors.RequestError:
                    pass  # the create error is the one worth reporting
            await self.event(type="Warning", reason=FAILED_RS_CREATE, message=message)
            raise
        if not already_exists:
            self.rs_list.append(created)
            if new_count > 0:
                await self.event(
                    type="Normal",
                    reason="ScalingReplicaSet",
                    message=f"Scaled up replica set {created['metadata']['name']} from 0 to {new_count}",
                )
        needs_update = self.set_deployment_revision(str(new_revision))
        if not already_exists and has_progress_deadline(d):
            set_condition(
                d.setdefault("status", {}),
                new_condition(
                    PROGRESSING,
                    "True",
                    reason=NEW_REPLICA_SET,
                    message=f"Created new replica set {_quoted(created['metadata']['name'])}",
                    now=c.now(),
                ),
            )
            needs_update = True
        if needs_update:
            await self.update_status()
        return created

    def set_deployment_revision(self, value: str) -> bool:
        annotations = self.d["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION_ANNOTATION) == value:
            return False
        annotations[REVISION_ANNOTATION] = value
        return True

    async def scale_replica_set(self, rs: Object, new_scale: int, *, operation: str) -> tuple[bool, Object]:
        """Set ``rs`` to ``new_scale`` replicas (and refresh its replica annotations); records a
        ScalingReplicaSet event when the size changed."""
        d = self.d
        desired, maximum = replicas_of(d), replicas_of(d) + max_surge(d)
        old_scale = replicas_of(rs)
        size_changes = old_scale != new_scale
        if not size_changes and not replicas_annotations_need_update(rs, desired=desired, maximum=maximum):
            return False, rs
        copy = orjson.loads(orjson.dumps(rs))
        copy["spec"]["replicas"] = new_scale
        set_replicas_annotations(copy, desired=desired, maximum=maximum)
        updated = await self.update_replica_set(copy)
        if size_changes:
            await self.event(
                type="Normal",
                reason="ScalingReplicaSet",
                message=f"Scaled {operation} replica set {updated['metadata']['name']} from {old_scale} to {new_scale}",
            )
        return size_changes, updated

    async def scale_replica_set_and_record_event(self, rs: Object, new_scale: int) -> tuple[bool, Object]:
        if replicas_of(rs) == new_scale:
            return False, rs
        return await self.scale_replica_set(
            rs, new_scale, operation="up" if replicas_of(rs) < new_scale else "down"
        )

    # --- scaling events and pauses (sync.go) ----------------------------------------------------------

    async def sync_status_only(self) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def sync(self) -> None:
        """Scale without rolling (a paused Deployment, or a change of spec.replicas)."""
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        await self.scale(new_rs, old_rss)
        if _spec(self.d).get("paused"):
            await self.cleanup(old_rss)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def check_paused_conditions(self) -> None:
        d = self.d
        if not has_progress_deadline(d):
            return
        condition = get_condition(_status(d), PROGRESSING)
        if condition is not None and condition.get("reason") == TIMED_OUT:
            return
        paused_recorded = condition is not None and condition.get("reason") == PAUSED
        paused = bool(_spec(d).get("paused"))
        if paused and not paused_recorded:
            status, reason, message = "Unknown", PAUSED, "Deployment is paused"
        elif not paused and paused_recorded:
            status, reason, message = "Unknown", RESUMED, "Deployment is resumed"
        else:
            return
        set_condition(
            d.setdefault("status", {}),
            new_condition(PROGRESSING, status, reason=reason, message=message, now=self.c.now()),
        )
        await self.update_status()

    async def is_scaling_event(self) -> bool:
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        replicas = replicas_of(self.d)
        for rs in filter_active([*old_rss, new_rs]):
            desired = _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
            if desired is not None and desired != replicas:
                return True
        return False

    async def scale(self, new_rs: Object | None, old_rss: list[Object]) -> None:
        """Proportional scaling: spread a change of replicas over the active ReplicaSets by size."""
        d = self.d
        replicas = replicas_of(d)
        active_or_latest = find_active_or_latest(new_rs, old_rss)
        if active_or_latest is not None:
            if replicas_of(active_or_latest) != replicas:
                await self.scale_replica_set_and_record_event(active_or_latest, replicas)
            return
        if is_saturated(d, new_rs):
            for old in filter_active(old_rss):
                await self.scale_replica_set_and_record_event(old, 0)
            return
        if not is_rolling_update(d):
            return
        active = filter_active([*old_rss, new_rs])
        current_total = sum(replicas_of(rs) for rs in active)
        allowed = replicas + max_surge(d) if replicas > 0 else 0
        to_add = allowed - current_total
        if to_add > 0:
            active = sort_by_size(active, newer_first=True)
            operation = "up"
        elif to_add < 0:
            active = sort_by_size(active, newer_first=False)
            operation = "down"
        else:
            operation = ""
        added = 0
        sizes: dict[str, int] = {}
        for rs in active:
            if to_add != 0:
                proportion = get_proportion(rs, d, to_add=to_add, added=added)
                sizes[rs["metadata"]["name"]] = replicas_of(rs) + proportion
                added += proportion
            else:
                sizes[rs["metadata"]["name"]] = replicas_of(rs)
        for index, rs in enumerate(active):
            name = rs["metadata"]["name"]
            if index == 0 and to_add != 0:
                # Leftovers go to the largest ReplicaSet.
                sizes[name] = max(sizes[name] + to_add - added, 0)
            await self.scale_replica_set(rs, sizes[name], operation=operation)

    async def cleanup(self, old_rss: list[Object]) -> None:
        """Delete the oldest scaled-down ReplicaSets beyond ``revisionHistoryLimit``."""
        d = self.d
        if not has_revision_history_limit(d):
            return
        alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
        surplus = len(alive) - int(_spec(d)["revisionHistoryLimit"])
        if surplus <= 0:
            return
        for rs in sort_by_revision(alive)[:surplus]:
            metadata = rs["metadata"]
            if (
                _count(_status(rs), "replicas") != 0
                or replicas_of(rs) != 0
                or int(metadata.get("generation") or 0) > _count(_status(rs), "observedGeneration")
            ):
                continue
            log.info("%s: deleting old replica set %s", self.key, metadata["name"])
            try:
                await self.c.client.delete(REPLICA_SETS, metadata["name"], namespace=self.namespace)
            except errors.NotFoundError:
                pass

    async def sync_deployment_status(self, all_rss: list[Object | None], new_rs: Object | None) -> None:
        status = calculate_status(self.d, all_rss=all_rss, new_rs=new_rs, now=self.c.now())
        if status == _omit_empty(dict(_status(self.d))):
            return
        self.d["status"] = status
        await self.update_status()

    # --- rolling updates (rolling.go) ------------------------------------------------------------------

    async def rollout_rolling(self) -> None:
        new_rs, old_rss = await self.get_all_replica_sets(create=True)
        assert new_rs is not None
        all_rss: list[Object | None] = [*old_rss, new_rs]
        if await self.reconcile_new_replica_set(all_rss, new_rs):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if await self.reconcile_old_replica_sets(all_rss, old_rss=filter_active(old_rss), new_rs=new_rs):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if deployment_complete(self.d, _status(self.d)):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(all_rss, new_rs)

    async def reconcile_new_replica_set(self, all_rss: list[Object | None], new_rs: Object) -> bool:
        replicas = replicas_of(self.d)
        if replicas_of(new_rs) == replicas:
            return False
        if replicas_of(new_rs) > replicas:
            scaled, _ = await self.scale_replica_set_and_record_event(new_rs, replicas)
            return scaled
        target = new_rs_new_replicas(self.d, all_rss=[rs for rs in all_rss if rs is not None], new_rs=new_rs)
        scaled, _ = await self.scale_replica_set_and_record_event(new_rs, target)
        return scaled

    async def reconcile_old_replica_sets(
        self, all_rss: list[Object | None], *, old_rss: list[Object], new_rs: Object
    ) -> bool:
        if sum(replicas_of(rs) for rs in old_rss) == 0:
            return False
        if any(
            _count(_status(rs), "availableReplicas") > replicas_of(rs) for rs in all_rss if rs is not None
        ):
            # A ReplicaSet was scaled down and its status has not caught up: its availability is
            # overstated. Upstream gets here too and bails out (with an error from the cleanup);
            # the ReplicaSet's next status update brings us back.
            return False
        all_pods = sum(replicas_of(rs) for rs in all_rss if rs is not None)
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        new_unavailable = replicas_of(new_rs) - _count(_status(new_rs), "availableReplicas")
        # Never let the new ReplicaSet's unavailable pods make us remove available old ones.
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_rss, cleaned = await self.cleanup_unhealthy_replicas(old_rss, max_scaled_down)
        scaled = await self.scale_down_old_replica_sets_for_rolling_update([*old_rss, new_rs], old_rss)
        return cleaned + scaled > 0

    async def cleanup_unhealthy_replicas(
        self, old_rss: list[Object], max_cleanup: int
    ) -> tuple[list[Object], int]:
        """Scale old ReplicaSets down by their unavailable replicas first: removing those costs no
        availability (the ReplicaSet deletes not-ready pods first)."""
        old_rss = sort_by_creation(old_rss)
        total = 0
        for index, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            replicas = replicas_of(rs)
            available = _count(_status(rs), "availableReplicas")
            if replicas == 0 or replicas <= available:
                continue
            down = min(max_cleanup - total, replicas - available)
            _, old_rss[index] = await self.scale_replica_set_and_record_event(rs, replicas - down)
            total += down
        return old_rss, total

    async def scale_down_old_replica_sets_for_rolling_update(
        self, all_rss: list[Object | None], old_rss: list[Object]
    ) -> int:
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        available = _sum(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in sort_by_creation(old_rss):
            if total >= budget:
                break
            replicas = replicas_of(rs)
            if replicas == 0:
                continue
            down = min(replicas, budget - total)
            await self.scale_replica_set_and_record_event(rs, replicas - down)
            total += down
        return total

    # --- Recreate (recreate.go) -----------------------------------------------------------------------

    async def rollout_recreate(self) -> None:
        # Do not create the new ReplicaSet yet: old pods must be gone before any new one starts.
        new_rs, old_rss = await self.get_all_replica_sets(create=False)
        all_rss: list[Object | None] = [*old_rss, new_rs]
        scaled_down = False
        for rs in filter_active(old_rss):
            scaled, _ = await self.scale_replica_set_and_record_event(rs, 0)
            scaled_down = scaled_down or scaled
        if scaled_down:
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if self.old_pods_running(new_rs, old_rss):
            await self.sync_rollout_status(all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self.get_all_replica_sets(create=True)
            all_rss = [*old_rss, new_rs]
        assert new_rs is not None
        await self.scale_replica_set_and_record_event(new_rs, replicas_of(self.d))
        if deployment_complete(self.d, _status(self.d)):
            await self.cleanup(old_rss)
        await self.sync_rollout_status(all_rss, new_rs)

    def old_pods_running(self, new_rs: Object | None, old_rss: list[Object]) -> bool:
        """Any pod of an old ReplicaSet still counted or not finished (terminating ones included)."""
        if _sum(old_rss, "replicas") > 0:
            return True
        selector = label_selector_from_spec(_spec(self.d).get("selector"))
        new_uid = None if new_rs is None else new_rs["metadata"]["uid"]
        for rs in self.rs_list:
            uid = rs["metadata"]["uid"]
            if uid == new_uid:
                continue
            for pod in self.c.pods.cache.by_index(CONTROLLER_UID_INDEX, uid):
                if (pod.get("metadata") or {}).get("namespace") != self.namespace:
                    continue
                if not selector.matches(pod["metadata"].get("labels") or {}):
                    continue
                if _status(pod).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    # --- progress (progress.go) ---------------------------------------------------------------------

    async def sync_rollout_status(self, all_rss: list[Object | None], new_rs: Object | None) -> None:
        d = self.d
        now = self.c.now()
        status = calculate_status(d, all_rss=all_rss, new_rs=new_rs, now=now)
        if not has_progress_deadline(d):
            remove_condition(status, PROGRESSING)
        current = get_condition(_status(d), PROGRESSING)
        complete_before = (
            _count(status, "replicas") == _count(status, "updatedReplicas")
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        rs_name = None if new_rs is None else _quoted(new_rs["metadata"]["name"])
        subject = f"ReplicaSet {rs_name}" if rs_name else f"Deployment {_quoted(self.name)}"
        if has_progress_deadline(d) and not complete_before:
            if deployment_complete(d, status):
                set_condition(
                    status,
                    new_condition(
                        PROGRESSING,
                        "True",
                        reason=NEW_RS_AVAILABLE,
                        message=f"{subject} has successfully progressed.",
                        now=now,
                    ),
                )
            elif deployment_progressing(d, status):
                condition = new_condition(
                    PROGRESSING,
                    "True",
                    reason=REPLICA_SET_UPDATED,
                    message=f"{subject} is progressing.",
                    now=now,
                )
                # Progress refreshes lastUpdateTime even when the reason stays the same.
                if current is not None:
                    if current.get("status") == "True":
                        condition["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, PROGRESSING)
                set_condition(status, condition)
            elif deployment_timed_out(d, status, now=now):
                set_condition(
                    status,
                    new_condition(
                        PROGRESSING,
                        "False",
                        reason=TIMED_OUT,
                        message=f"{subject} has timed out progressing.",
                        now=now,
                    ),
                )
        failures = self.replica_failures(all_rss, new_rs)
        if failures:
            set_condition(status, failures[0])
        else:
            remove_condition(status, REPLICA_FAILURE)
        status = _omit_empty(status)
        if status == _omit_empty(dict(_status(d))):
            self.requeue_stuck_deployment(status, now=now)
            return
        d["status"] = status
        await self.update_status()

    @staticmethod
    def replica_failures(all_rss: list[Object | None], new_rs: Object | None) -> list[Object]:
        """ReplicaFailure conditions of the new ReplicaSet, else of any ReplicaSet, as Deployment conditions."""

        def conditions_of(rs: Mapping[str, Any]) -> list[Object]:
            return [
                {
                    "type": REPLICA_FAILURE,
                    "status": c.get("status"),
                    "lastUpdateTime": c.get("lastTransitionTime"),
                    "lastTransitionTime": c.get("lastTransitionTime"),
                    "reason": c.get("reason"),
                    "message": c.get("message"),
                }
                for c in _status(rs).get("conditions") or ()
                if c.get("type") == REPLICA_FAILURE
            ]

        if new_rs is not None:
            found = conditions_of(new_rs)
            if found:
                return found
        return [condition for rs in all_rss if rs is not None for condition in conditions_of(rs)]

    def requeue_stuck_deployment(self, status: Mapping[str, Any], *, now: datetime) -> None:
        """A rollout without visible progress: look again when its progress deadline runs out."""
        d = self.d
        condition = get_condition(status, PROGRESSING)
        if not has_progress_deadline(d) or condition is None:
            return
        if deployment_complete(d, status) or condition.get("reason") == TIMED_OUT:
            return
        since = parse_time(condition.get("lastUpdateTime"))
        if since is None:
            return
        after = since.timestamp() + int(_spec(d)["progressDeadlineSeconds"]) - now.timestamp()
        if after < 1:
            self.c.enqueue(self.key, rate_limited=True)
        else:
            self.c.enqueue(self.key, after=after + 1)
