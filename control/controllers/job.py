"""The Job controller: runs pods to completion (upstream's ``pkg/controller/job``, as of 1.33).

**Pods.** Up to ``parallelism`` pods run at a time, never more than the completions still
missing (any number while ``completions`` is unset, until one succeeds). They are created from
the template with ``generateName: <job>-`` and the tracking finalizer
``batch.kubernetes.io/job-tracking``. With ``completionMode: Indexed`` each pod gets an index in
``[0, completions)``: annotation and label ``batch.kubernetes.io/job-completion-index``, the
environment variable ``JOB_COMPLETION_INDEX`` (from that annotation), ``hostname <job>-<index>``
and ``generateName <job>-<index>-``; the lowest indexes neither succeeded nor running go first,
and duplicates are deleted. Events ``SuccessfulCreate`` (``Created pod: <name>``),
``SuccessfulDelete``, ``FailedCreate``.

**Counting with finalizers.** A finished pod is first recorded by uid in
``status.uncountedTerminatedPods`` (an Indexed job's successes go straight into
``status.completedIndexes``), then its finalizer is removed, then it is moved into
``status.succeeded`` / ``status.failed`` — so every pod is counted exactly once even if the
controller crashes in between or the pod object is deleted. A pod deleted before it succeeded
counts as failed (``podReplacementPolicy: TerminatingOrFailed``, the default; with ``Failed``
replacements also wait for terminating pods to finish). ``status.active``, ``ready``,
``terminating`` and ``startTime`` are kept up to date.

**Retries.** After a failure the next pod is created only after a back-off of 10 s doubling per
consecutive failure up to 6 min, counted from when the last pod finished. More failures than
``backoffLimit`` (or, for ``restartPolicy: OnFailure``, as many container restarts) fail the job
with reason ``BackoffLimitExceeded``; running longer than ``activeDeadlineSeconds`` fails it with
``DeadlineExceeded``.

**Finishing, as 1.33.** Success first adds ``SuccessCriteriaMet`` (reason ``CompletionsReached``,
or ``SuccessPolicy`` when a ``successPolicy`` rule of an Indexed job matched) and failure
``FailureTarget``; active pods are deleted; once no pod is left terminating and nothing is
uncounted, the terminal ``Complete`` (with ``completionTime``) or ``Failed`` condition follows
with the same reason and message, and the Event ``Completed`` (``Job completed``) or a warning
with the failure's reason and message. ``suspend`` deletes the active pods and sets the
``Suspended`` condition; resuming resets ``startTime``. ``ttlSecondsAfterFinished`` deletes a
finished job (foreground propagation) that long after its terminal condition, as upstream's
TTL-after-finished controller. Pods of deleted or finished jobs still carrying the tracking
finalizer lose it.

**Pod failure policy.** With ``podFailurePolicy`` (which implies ``restartPolicy: Never`` and
replacing only pods that reached ``Failed``), each failed pod is matched against the rules in
order: ``onExitCodes`` (the first terminated container, init containers first, with a non-zero
exit code that is ``In``/``NotIn`` the values, optionally of one named container) or
``onPodConditions`` (a condition of that type and status, e.g. ``DisruptionTarget`` after an
eviction). The first matching rule's action decides: ``FailJob`` fails the job at once
(``FailureTarget``/``Failed`` with reason ``PodFailurePolicy`` and upstream's message naming the
container, exit code and rule index), ``Ignore`` replaces the pod without counting it toward
``backoffLimit`` or ``status.failed`` (nor the back-off), ``Count`` (and no rule matching) counts
it as usual; ``FailIndex`` fails the pod's index at once (see below).

**Back-off limit per index.** An Indexed job with ``backoffLimitPerIndex`` retries each index on
its own: every pod carries ``batch.kubernetes.io/job-index-failure-count`` (counted failures of
its index before it) and ``...-ignored-failure-count``; a counted failure of a pod whose index has
already failed ``backoffLimitPerIndex`` times (or a ``FailIndex`` rule) fails the index, which goes
into ``status.failedIndexes`` and is not retried. Replacements of an index wait 10 s doubling per
failure of that index (up to 6 min) from its last failure; the job-wide back-off does not apply.
More failed indexes than ``maxFailedIndexes`` fail the job at once (``MaxFailedIndexesExceeded``);
otherwise it fails with ``FailedIndexes`` once every index has succeeded or failed. Upstream also
keeps the finalizer of each index's last failed pod until its replacement exists, so counts survive
the pod's deletion; here they are read from the failed pods still present.

Jobs whose ``spec.managedBy`` names another controller are left alone.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller, PermanentError
from control.client.indexer import object_key, split_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PatchType, Preconditions
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import JOBS, PODS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ControllerRefManager,
    Expectations,
    PodControl,
    add_controller_uid_index,
    controller_of,
    controller_ref,
    controllers_selecting,
    format_time,
    is_pod_active,
    is_pod_ready,
    owned_or_orphaned,
    parse_time,
    resolve_controller_ref,
    slow_start_batch,
)
from control.controllers.replicaset import rank_pods_for_deletion
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.controllers.job")

COMPONENT = "job-controller"
CONTROLLER_NAME = "kubernetes.io/job-controller"  # spec.managedBy of jobs this controller syncs
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 360.0
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_LENGTH = 58  # 63 minus the 5 random characters
SLOW_START_INITIAL_BATCH_SIZE = 1

Obj = Mapping[str, Any]
Now = Callable[[], datetime]
Intervals = list[tuple[int, int]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- completion indexes ----------------------------------------------------------------------------


def parse_indexes(text: str | None, *, completions: int) -> Intervals:
    """``parseIndexesFromString``: ``"1,3-5"`` as sorted intervals, dropping what is out of range."""
    result: Intervals = []
    for part in (text or "").split(","):
        if not part:
            continue
        first_text, _, last_text = part.partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if last_text else first
        except ValueError:
            return result
        if first >= completions:
            break
        result.append((first, min(last, completions - 1)))
    return result


def with_indexes(intervals: Intervals, indexes: Iterable[int]) -> Intervals:
    """``withOrderedIndexes``: the intervals plus ``indexes``, merged."""
    points = sorted(set(indexes))
    merged: Intervals = []
    for first, last in sorted([*intervals, *((i, i) for i in points)]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def total(intervals: Intervals) -> int:
    return sum(last - first + 1 for first, last in intervals)


def format_indexes(intervals: Intervals) -> str:
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in intervals)


def _covered(intervals: Intervals, index: int) -> bool:
    return any(first <= index <= last for first, last in intervals)


def completion_index(pod: Obj) -> int:
    """The pod's completion index, or -1 when it has none (or a bad one)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    try:
        index = int(value)
    except (TypeError, ValueError):
        return -1
    return index if index >= 0 else -1


def first_pending_indexes(*, non_pending: Intervals, count: int, completions: int) -> list[int]:
    """``firstPendingIndexes``: the ``count`` lowest indexes below ``completions`` not in ``non_pending``."""
    result: list[int] = []
    candidate = 0
    for first, last in sorted(non_pending):
        while candidate < completions and len(result) < count and candidate < first:
            result.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
    while candidate < completions and len(result) < count:
        result.append(candidate)
        candidate += 1
    return result


def match_success_policy(policy: Obj | None, *, completions: int, succeeded: Intervals) -> str | None:
    """``matchSuccessPolicy``: the message of the first rule the succeeded indexes satisfy."""
    if policy is None or not succeeded:
        return None
    for number, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], completions=completions)
            if not required:
                continue
            contained = sum(
                max(0, min(last, s_last) - max(first, s_first) + 1)
                for first, last in required
                for s_first, s_last in succeeded
            )
            if contained == total(required) or (count is not None and contained >= count):
                return f"Matched rules at index {number}"
        elif count is not None and total(succeeded) >= count:
            return f"Matched rules at index {number}"
    return None


# --- pods ------------------------------------------------------------------------------------------


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def only_replace_failed_pods(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """``isPodFailed``: Failed, or — unless only failed pods are replaced — deleted before success."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return _deleting(pod) and _phase(pod) != "Succeeded"


@dataclass(frozen=True, slots=True)
class FailurePolicyMatch:
    """What ``podFailurePolicy`` makes of one failed pod (upstream's ``matchPodFailurePolicy``)."""

    counts: bool  # toward status.failed, backoffLimit and the back-off
    action: str | None = None  # the matching rule's action; None when no rule matched
    fail_job_message: str | None = None  # set for FailJob


_COUNTED = FailurePolicyMatch(counts=True)


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> FailurePolicyMatch:
    """The first rule of ``policy`` matching ``pod`` and what it means; no rule: counted."""
    if not policy:
        return _COUNTED
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    for index, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        message: str | None = None
        exit_codes = rule.get("onExitCodes")
        if exit_codes is not None:
            container = _matching_container(status, exit_codes)
            if container is None:
                continue
            code = container["state"]["terminated"].get("exitCode", 0)
            message = (
                f"Container {container.get('name')} for pod {metadata.get('namespace')}/{metadata.get('name')} "
                f"failed with exit code {code} matching {action} rule at index {index}"
            )
        else:
            condition = _matching_condition(status, rule.get("onPodConditions") or ())
            if condition is None:
                continue
            message = (
                f"Pod {metadata.get('namespace')}/{metadata.get('name')} has condition "
                f"{condition.get('type')} matching {action} rule at index {index}"
            )
        if action == "Ignore":
            return FailurePolicyMatch(counts=False, action=action)
        if action == "FailJob":
            return FailurePolicyMatch(counts=True, action=action, fail_job_message=message)
        return FailurePolicyMatch(counts=True, action=action)
    return _COUNTED


def _matching_container(status: Obj, requirement: Obj) -> Obj | None:
    """``getMatchingContainerFromList`` over init containers, then containers: a terminated one
    (of the named container, if any) whose non-zero exit code satisfies the operator."""
    wanted = requirement.get("containerName")
    values = set(requirement.get("values") or ())
    operator = requirement.get("operator")
    for container in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is None or (wanted is not None and container.get("name") != wanted):
            continue
        code = terminated.get("exitCode", 0)
        if code == 0:
            continue
        if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
            return container
    return None


def _matching_condition(status: Obj, requirements: Iterable[Obj]) -> Obj | None:
    conditions = status.get("conditions") or ()
    for requirement in requirements:
        wanted = (requirement.get("type"), requirement.get("status", "True"))
        for condition in conditions:
            if (condition.get("type"), condition.get("status")) == wanted:
                return condition
    return None


def counts_as_failure(pod: Obj, job: Obj) -> bool:
    """A failed pod that counts toward ``status.failed`` (``Ignore`` rules exempt it)."""
    if not is_pod_failed(pod, job):
        return False
    return match_pod_failure_policy((job.get("spec") or {}).get("podFailurePolicy"), pod).counts


def fail_job_message(job: Obj, pods: Iterable[Obj]) -> str | None:
    """``getFailJobMessage``: the message of the first failed pod matching a ``FailJob`` rule."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not policy:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            message = match_pod_failure_policy(policy, pod).fail_job_message
            if message is not None:
                return message
    return None


def _annotation_count(pod: Obj, annotation: str) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(annotation)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def has_backoff_limit_per_index(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("completionMode") == "Indexed" and spec.get("backoffLimitPerIndex") is not None


def is_index_failed(pod: Obj, job: Obj) -> bool:
    """``isIndexFailed``: the pod failed by a ``FailIndex`` rule, or its counted failure was one too many."""
    if not is_pod_failed(pod, job):
        return False
    match = match_pod_failure_policy((job.get("spec") or {}).get("podFailurePolicy"), pod)
    if match.action == "FailIndex":
        return True
    limit = int((job.get("spec") or {}).get("backoffLimitPerIndex") or 0)
    return match.counts and _annotation_count(pod, INDEX_FAILURE_COUNT_ANNOTATION) >= limit


def replacement_failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """``getNewIndexFailureCounts``: (counted, ignored) failures of an index for the pod replacing ``replaced``."""
    if replaced is None:
        return 0, 0
    counted = _annotation_count(replaced, INDEX_FAILURE_COUNT_ANNOTATION)
    ignored = _annotation_count(replaced, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION)
    if match_pod_failure_policy((job.get("spec") or {}).get("podFailurePolicy"), replaced).counts:
        return counted + 1, ignored
    return counted, ignored + 1


def index_backoff_remaining(last_failed: Obj, now: datetime) -> float:
    """``getRemainingTimePerIndex``: seconds before an index may be retried after ``last_failed``."""
    failures = (
        _annotation_count(last_failed, INDEX_FAILURE_COUNT_ANNOTATION)
        + _annotation_count(last_failed, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION)
        + 1
    )
    delay = min(DEFAULT_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
    return max(0.0, (finished_time(last_failed) + timedelta(seconds=delay) - now).total_seconds())


def is_pod_terminating(pod: Obj) -> bool:
    return _deleting(pod) and _phase(pod) not in ("Succeeded", "Failed")


def finished_time(pod: Obj) -> datetime:
    """``getFinishedTime``: Ready turning False, else the last container end, else deletion, else creation."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready" and condition.get("status") == "False":
            moment = parse_time(condition.get("lastTransitionTime"))
            if moment is not None:
                return moment
    sidecars = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    ends = [
        parse_time(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for s in [
            *(status.get("containerStatuses") or ()),
            *(s for s in status.get("initContainerStatuses") or () if s.get("name") in sidecars),
        ]
    ]
    found = [end for end in ends if end is not None]
    if found:
        return max(found)
    metadata = pod.get("metadata") or {}
    return (
        parse_time(metadata.get("deletionTimestamp"))
        or parse_time(metadata.get("creationTimestamp"))
        or datetime.fromtimestamp(0, UTC)
    )


def past_backoff_limit_on_failure(job: Obj, pods: Iterable[Obj]) -> bool:
    """``pastBackoffLimitOnFailure``: container restarts of running pods reach ``backoffLimit``."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if _phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for container in [
                *(status.get("initContainerStatuses") or ()),
                *(status.get("containerStatuses") or ()),
            ]:
                restarts += int(container.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


# --- back-off --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackoffRecord:
    """Failures since the last success and when the last one finished (upstream's ``backoffRecord``)."""

    failures: int = 0
    last_failure: datetime | None = None

    def after(self, succeeded: Sequence[Obj], failed: Sequence[Obj]) -> BackoffRecord:
        """``newBackoffRecord``: this record updated with newly finished pods."""
        failed_times = sorted(finished_time(pod) for pod in failed)
        if not succeeded:
            if not failed_times:
                return self
            return BackoffRecord(failures=self.failures + len(failed_times), last_failure=failed_times[-1])
        last_success = max(finished_time(pod) for pod in succeeded)
        later = [moment for moment in failed_times if moment > last_success]
        return BackoffRecord(failures=len(later), last_failure=later[-1] if later else None)

    def remaining(self, now: datetime) -> float:
        """Seconds until the next pod may be created: 10 s doubling per failure, at most 6 min."""
        if self.failures == 0 or self.last_failure is None:
            return 0.0
        delay = DEFAULT_BACKOFF
        for _ in range(1, self.failures):
            delay *= 2
            if delay >= MAX_BACKOFF:
                delay = MAX_BACKOFF
                break
        elapsed = (now - self.last_failure).total_seconds()
        return 0.0 if delay < elapsed else delay - elapsed


# --- conditions ------------------------------------------------------------------------------------


def new_condition(kind: str, status: str, *, reason: str, message: str, now: datetime) -> dict[str, Any]:
    stamp = format_time(now)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def find_condition(job: Obj, kind: str) -> Obj | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return None


def is_finished(job: Obj) -> bool:
    """``IsJobFinished``: a true Complete or Failed condition."""
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or ()
    )


def ensure_condition(
    conditions: list[dict[str, Any]], kind: str, status: str, *, reason: str, message: str, now: datetime
) -> bool:
    """``ensureJobConditionStatus``: set the condition (a False one only if present); True if changed."""
    for index, condition in enumerate(conditions):
        if condition.get("type") == kind:
            if (condition.get("status"), condition.get("reason"), condition.get("message")) != (
                status,
                reason,
                message,
            ):
                conditions[index] = new_condition(kind, status, reason=reason, message=message, now=now)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(kind, status, reason=reason, message=message, now=now))
        return True
    return False


def _suspended(job: Obj) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def _indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def _completions(job: Obj) -> int | None:
    value = (job.get("spec") or {}).get("completions")
    return None if value is None else int(value)


# --- one sync --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SyncState:
    """What one sync of one job has learned (upstream's ``syncJobCtx``)."""

    job: dict[str, Any]
    pods: list[Obj]
    active_pods: list[Obj]
    expected_removals: set[str]
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    now: datetime
    ready: int = 0
    terminating: int = 0
    succeeded: int = 0
    failed: int = 0
    finished: dict[str, Any] | None = None
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    previous_indexes: Intervals = field(default_factory=list)
    failed_indexes: Intervals = field(default_factory=list)
    succeeded_indexes: Intervals = field(default_factory=list)


class JobController:
    """Reconciles Jobs; :meth:`run` works until cancelled and may be called again."""

    name = "job"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = REAL_CLOCK,
        now: Now = _utcnow,
        workers: int | None = None,
    ) -> None:
        self._client = ctx.client
        self._recorder: EventRecorder = ctx.recorder(COMPONENT)
        self._pod_control = PodControl(client=ctx.client, recorder=self._recorder)
        self._clock = clock
        self._now = now
        self._workers = workers or ctx.options.concurrent_syncs
        self.expectations = Expectations(clock=clock)
        # job key -> uids of pods whose finalizer removal is not yet seen in the cache
        self._removals: dict[str, set[str]] = {}
        self._backoffs: dict[str, BackoffRecord] = {}
        # job key -> resourceVersions our status writes replaced: a cache still holding one of them
        # is stale, and the watch event of our write will queue the job again.
        self._superseded: dict[str, set[str]] = {}
        self._queue: RateLimitingQueue[str] | None = None
        self._orphans: RateLimitingQueue[str] | None = None
        self._jobs = ctx.informers.informer(JOBS)
        self._pods = ctx.informers.informer(PODS)
        add_controller_uid_index(self._pods)
        self._jobs.add_event_handler(
            on_add=self._on_job_add, on_update=self._on_job_update, on_delete=self._on_job_delete
        )
        self._pods.add_event_handler(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name, clock=self._clock)
        orphans: RateLimitingQueue[str] = RateLimitingQueue(name="job_orphan_pod", clock=self._clock)
        self._queue, self._orphans = queue, orphans
        for job in self._jobs.cache.list():
            queue.add(object_key(job))
        for pod in self._pods.cache.list():
            if has_tracking_finalizer(pod):
                orphans.add(object_key(pod))
        informers = [self._jobs, self._pods]
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    Controller(
                        self.name, queue, self.reconcile, workers=self._workers, informers=informers
                    ).run()
                )
                group.create_task(
                    Controller("job-orphan-pod", orphans, self.sync_orphan_pod, informers=informers).run()
                )
        finally:
            if self._queue is queue:
                self._queue = self._orphans = None

    # --- event handlers -----------------------------------------------------------------------

    def _enqueue(self, key: str, *, after: float = 0.0) -> None:
        if self._queue is not None:
            self._queue.add_after(key, after)

    def _enqueue_orphan(self, pod: Obj) -> None:
        if self._orphans is not None:
            self._orphans.add(object_key(pod))

    def _on_job_add(self, job: Obj) -> None:
        self._enqueue(object_key(job))

    def _on_job_update(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        self._enqueue(key)
        if is_finished(new):
            self._queue_finalized_pods(new)
        start = parse_time((new.get("status") or {}).get("startTime"))
        deadline = (new.get("spec") or {}).get("activeDeadlineSeconds")
        if (
            start is not None
            and deadline is not None
            and deadline != (old.get("spec") or {}).get("activeDeadlineSeconds")
        ):
            self._enqueue(key, after=deadline - (self._now() - start).total_seconds())

    def _on_job_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self._enqueue(object_key(job))
        self._queue_finalized_pods(job)

    def _queue_finalized_pods(self, job: Obj) -> None:
        """Pods of a finished or deleted job still holding the finalizer lose it (``cleanupPodFinalizers``)."""
        for pod in self._pods.cache.by_index(CONTROLLER_UID_INDEX, job["metadata"].get("uid") or ""):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("apiVersion") != JOBS.api_version:
            return None
        return resolve_controller_ref(self._jobs.cache, namespace=namespace, ref=ref, kind=JOBS.kind)

    def _selecting(self, pod: Obj) -> list[Obj]:
        return controllers_selecting(self._jobs.cache, pod)

    def _removal_observed(self, key: str, uid: str) -> None:
        uids = self._removals.get(key)
        if uids is not None:
            uids.discard(uid)

    def _on_pod_add(self, pod: Obj) -> None:
        if _deleting(pod):
            self._on_pod_deleted(pod, final=False)
            return
        ref = controller_of(pod)
        if ref is not None:
            job = self._resolve(pod["metadata"]["namespace"], ref)
            if job is None:
                if has_tracking_finalizer(pod):
                    self._enqueue_orphan(pod)
                return
            key = object_key(job)
            self.expectations.creation_observed(key)
            self._enqueue(key)
            return
        if has_tracking_finalizer(pod):
            self._enqueue_orphan(pod)
        for job in self._selecting(pod):
            self._enqueue(object_key(job))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if _deleting(new):
            self._on_pod_deleted(new, final=False)
            return
        namespace = new["metadata"]["namespace"]
        removed = not has_tracking_finalizer(new)
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                if removed:
                    self._removal_observed(object_key(previous), new["metadata"]["uid"])
                self._enqueue(object_key(previous))
        if new_ref is not None:
            job = self._resolve(namespace, new_ref)
            if job is None:
                if has_tracking_finalizer(new):
                    self._enqueue_orphan(new)
                return
            key = object_key(job)
            if removed:
                self._removal_observed(key, new["metadata"]["uid"])
            self._enqueue(key)
            return
        if has_tracking_finalizer(new):
            self._enqueue_orphan(new)
        if old_ref != new_ref or old["metadata"].get("labels") != new["metadata"].get("labels"):
            for job in self._selecting(new):
                self._enqueue(object_key(job))

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._on_pod_deleted(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj, final=True)

    def _on_pod_deleted(self, pod: Obj, *, final: bool) -> None:
        ref = controller_of(pod)
        finalizer = has_tracking_finalizer(pod)
        if ref is None:
            if finalizer:
                self._enqueue_orphan(pod)
            return
        job = self._resolve((pod.get("metadata") or {}).get("namespace") or "", ref)
        if job is None or is_finished(job):
            if finalizer:
                self._enqueue_orphan(pod)
            return
        key = object_key(job)
        self.expectations.deletion_observed(key, object_key(pod))
        if final or not finalizer:
            self._removal_observed(key, pod["metadata"]["uid"])
        self._enqueue(key)

    # --- orphans ------------------------------------------------------------------------------

    async def sync_orphan_pod(self, key: str) -> None:
        """``syncOrphanPod``: drop the finalizer of a pod no unfinished Job controls."""
        pod = self._pods.cache.get_by_key(key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_of(pod)
        if ref is not None:
            if ref.get("kind") != JOBS.kind or ref.get("apiVersion") != JOBS.api_version:
                return  # someone else's pod: not ours to release
            job = self._resolve(pod["metadata"]["namespace"], ref)
            if job is not None and not is_finished(job):
                return  # still tracked by its job
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: Obj) -> None:
        namespace, name = split_key(object_key(pod))
        try:
            await self._client.patch(
                PODS,
                name,
                {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}},
                namespace=namespace,
                patch_type=PatchType.STRATEGIC,
            )
        except errors.NotFoundError:
            return

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """``syncJob``: count finished pods, start or stop pods, set conditions, write status."""
        shared = self._jobs.cache.get_by_key(key)
        if shared is None:
            self.expectations.forget(key)
            self._removals.pop(key, None)
            self._backoffs.pop(key, None)
            self._superseded.pop(key, None)
            return
        superseded = self._superseded.get(key)
        if superseded is not None:
            if shared["metadata"].get("resourceVersion") in superseded:
                return
            del self._superseded[key]
        managed_by = (shared.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != CONTROLLER_NAME:
            return
        if is_finished(shared):
            self._backoffs.pop(key, None)
            await self._expire(key, shared)
            return
        if (shared.get("spec") or {}).get("completionMode", "NonIndexed") not in ("NonIndexed", "Indexed"):
            await self._recorder.event(
                shared,
                type="Warning",
                reason="UnknownCompletionMode",
                message="Skipped Job sync because completion mode is unknown",
            )
            return
        job = copy.deepcopy(shared)
        status = job.setdefault("status", {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for(job)
        state = _SyncState(
            job=job,
            pods=pods,
            active_pods=[pod for pod in pods if is_pod_active(pod)],
            expected_removals=set(self._removals.get(key, ())),
            uncounted_succeeded=set(uncounted.get("succeeded") or ()),
            uncounted_failed=set(uncounted.get("failed") or ()),
            now=self._now(),
        )
        state.ready = sum(1 for pod in state.active_pods if is_pod_ready(pod))
        state.terminating = sum(1 for pod in pods if is_pod_terminating(pod))
        active = len(state.active_pods)
        new_succeeded = self._new_finished(
            state, state.uncounted_succeeded, lambda pod: _phase(pod) == "Succeeded"
        )
        new_failed = self._new_finished(
            state, state.uncounted_failed, lambda pod: counts_as_failure(pod, job)
        )
        state.succeeded = (
            int(status.get("succeeded") or 0) + len(new_succeeded) + len(state.uncounted_succeeded)
        )
        state.failed = int(status.get("failed") or 0) + len(new_failed) + len(state.uncounted_failed)
        if status.get("startTime") is None and not _suspended(job):
            status["startTime"] = format_time(state.now)
        state.backoff = self._backoffs.get(key, BackoffRecord()).after(new_succeeded, new_failed)
        self._judge(key, state)

        manage_error: Exception | None = None
        suspend_changed = False
        if state.finished is not None:
            deleted_ready, deleted, manage_error = await self._delete_pods(
                job, key, state.active_pods, count_as_failed=True
            )
            if deleted != active or not satisfied:
                state.finished = None  # pods or finalizers may remain that the cache does not show yet
            active -= deleted
            state.terminating += deleted
            state.ready -= deleted_ready
        else:
            managed = False
            if satisfied and not _deleting(job):
                active, manage_error = await self._manage(job, key, state)
                managed = True
            completions = _completions(job)
            if completions is None:
                complete = state.succeeded > 0 and active == 0
            else:
                complete = state.succeeded >= completions and active == 0
            if complete:
                state.finished = self._condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    state,
                )
            elif managed:
                suspend_changed = await self._suspend_conditions(job, state)
        needs_flush = (
            suspend_changed
            or active != int(status.get("active") or 0)
            or state.ready != status.get("ready")
            or state.terminating != status.get("terminating")
        )
        status["active"] = active
        status["ready"] = state.ready
        status["terminating"] = state.terminating
        await self._track_status(key, state, needs_flush)
        if manage_error is not None:
            raise manage_error

    def _judge(self, key: str, state: _SyncState) -> None:
        """Whether the job has already succeeded or failed, before any pod is started or stopped:
        a recorded SuccessCriteriaMet or FailureTarget, too many failures, the deadline passed, or
        (Indexed) a success policy met. Sets ``state.finished``; counts succeeded indexes."""
        job, pods, status = state.job, state.pods, state.job["status"]
        spec = job.get("spec") or {}

        success = find_condition(job, "SuccessCriteriaMet")
        if success is not None and success.get("status") == "True":
            state.finished = dict(success)
        else:
            target = find_condition(job, "FailureTarget")
            if target is not None and target.get("status") == "True":
                state.finished = self._condition(
                    "Failed", target.get("reason", ""), target.get("message", ""), state
                )
            else:
                message = fail_job_message(job, pods)
                if message is not None:
                    state.finished = self._condition("FailureTarget", "PodFailurePolicy", message, state)
        if state.finished is None:
            if state.failed > int(spec.get("backoffLimit", 6)) or past_backoff_limit_on_failure(job, pods):
                state.finished = self._condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    state,
                )
            elif self._past_deadline(job, state.now):
                state.finished = self._condition(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    state,
                )
            elif spec.get("activeDeadlineSeconds") is not None and not _suspended(job):
                started = parse_time(status.get("startTime")) or state.now
                elapsed = (state.now - started).total_seconds()
                self._enqueue(key, after=spec["activeDeadlineSeconds"] - elapsed)
        if _indexed(job):
            completions = _completions(job) or 0
            state.previous_indexes = parse_indexes(status.get("completedIndexes"), completions=completions)
            state.succeeded_indexes = with_indexes(
                state.previous_indexes,
                (
                    completion_index(pod)
                    for pod in pods
                    if _phase(pod) == "Succeeded"
                    and 0 <= completion_index(pod) < completions
                    and has_tracking_finalizer(pod)
                ),
            )
            state.succeeded = total(state.succeeded_indexes)
            if has_backoff_limit_per_index(job):
                self._judge_indexes(state, completions=completions)
            if state.finished is None:
                message = match_success_policy(
                    spec.get("successPolicy"), completions=completions, succeeded=state.succeeded_indexes
                )
                if message is not None:
                    state.finished = self._condition("SuccessCriteriaMet", "SuccessPolicy", message, state)

    def _judge_indexes(self, state: _SyncState, *, completions: int) -> None:
        """``calculateFailedIndexes`` and the two ways failed indexes fail the job."""
        job = state.job
        state.failed_indexes = with_indexes(
            parse_indexes(job["status"].get("failedIndexes"), completions=completions),
            (
                completion_index(pod)
                for pod in state.pods
                if has_tracking_finalizer(pod)
                and 0 <= completion_index(pod) < completions
                and is_index_failed(pod, job)
            ),
        )
        if state.finished is not None:
            return
        failed = total(state.failed_indexes)
        most = (job.get("spec") or {}).get("maxFailedIndexes")
        if most is not None and failed > int(most):
            state.finished = self._condition(
                "FailureTarget",
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
                state,
            )
        elif failed > 0 and failed + total(state.succeeded_indexes) >= completions:
            state.finished = self._condition(
                "FailureTarget", "FailedIndexes", "Job has failed indexes", state
            )

    def _condition(self, kind: str, reason: str, message: str, state: _SyncState) -> dict[str, Any]:
        return new_condition(kind, "True", reason=reason, message=message, now=state.now)

    def _past_deadline(self, job: Obj, now: datetime) -> bool:
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        started = parse_time((job.get("status") or {}).get("startTime"))
        if deadline is None or started is None or _suspended(job):
            return False
        return (now - started).total_seconds() >= deadline

    def _new_finished(
        self, state: _SyncState, uncounted: set[str], accept: Callable[[Obj], bool]
    ) -> list[Obj]:
        """``getValidPodsWithFilter``: finished pods not yet counted anywhere."""
        completions = _completions(state.job) or 0
        result = []
        for pod in state.pods:
            uid = pod["metadata"]["uid"]
            if not has_tracking_finalizer(pod) or uid in uncounted or uid in state.expected_removals:
                continue
            if _indexed(state.job) and not 0 <= completion_index(pod) < completions:
                continue
            if accept(pod):
                result.append(pod)
        return result

    async def _pods_for(self, job: dict[str, Any]) -> list[Obj]:
        """``getPodsForJob``: claim the job's pods; adopted ones get the tracking finalizer."""
        try:
            selector = label_selector_from_spec((job.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            raise PermanentError(f"Job {object_key(job)} has an invalid selector: {exc}") from exc
        candidates = owned_or_orphaned(self._pods.cache, job)
        orphans = {pod["metadata"]["uid"] for pod in candidates if controller_of(pod) is None}
        manager = ControllerRefManager(
            client=self._client, owner=job, owner_resource=JOBS, resource=PODS, selector=selector
        )
        pods = await manager.claim(candidates)
        result: list[Obj] = []
        for pod in pods:
            if pod["metadata"]["uid"] in orphans and not has_tracking_finalizer(pod):
                await self._client.patch(
                    PODS,
                    pod["metadata"]["name"],
                    {
                        "metadata": {
                            "finalizers": [*(pod["metadata"].get("finalizers") or ()), TRACKING_FINALIZER]
                        }
                    },
                    namespace=pod["metadata"]["namespace"],
                    patch_type=PatchType.MERGE,
                )
                adopted = copy.deepcopy(pod)
                adopted["metadata"].setdefault("finalizers", []).append(TRACKING_FINALIZER)
                result.append(adopted)
            else:
                result.append(pod)
        return result

    # --- starting and stopping pods -----------------------------------------------------------

    async def _manage(self, job: dict[str, Any], key: str, state: _SyncState) -> tuple[int, Exception | None]:
        """``manageJob``: (active pods after this sync, the first error)."""
        spec = job.get("spec") or {}
        active = len(state.active_pods)
        if _suspended(job):
            ready, deleted, failure = await self._delete_pods(
                job, key, self._for_removal(job, state.active_pods, active), count_as_failed=False
            )
            state.terminating += deleted
            state.ready -= ready
            return active - deleted, failure
        parallelism = int(spec.get("parallelism", 1))
        completions = _completions(job)
        if completions is None:
            wanted = active if state.succeeded > 0 else parallelism
        else:
            wanted = max(0, min(completions - state.succeeded, parallelism))
        to_remove = self._for_removal(job, state.active_pods, max(0, active - wanted))[
            :MAX_POD_CREATE_DELETE_PER_SYNC
        ]
        if to_remove:
            ready, deleted, failure = await self._delete_pods(job, key, to_remove, count_as_failed=False)
            state.terminating += deleted
            state.ready -= ready
            return active - deleted, failure
        terminating = state.terminating if only_replace_failed_pods(job) else 0
        missing = min(wanted - terminating - active, MAX_POD_CREATE_DELETE_PER_SYNC)
        if missing <= 0:
            return active, None
        per_index = has_backoff_limit_per_index(job)
        delay = 0.0 if per_index else state.backoff.remaining(state.now)
        if delay > 0:
            self._enqueue(key, after=delay)
            return active, None
        indexes: list[int | None] = [None] * missing
        replaced: dict[int, Obj] = {}
        if _indexed(job):
            non_pending = with_indexes(
                [*state.succeeded_indexes, *state.failed_indexes],
                (completion_index(pod) for pod in state.active_pods if completion_index(pod) >= 0),
            )
            if only_replace_failed_pods(job):
                non_pending = with_indexes(
                    non_pending,
                    (
                        completion_index(p)
                        for p in state.pods
                        if is_pod_terminating(p) and completion_index(p) >= 0
                    ),
                )
            indexes = list(
                first_pending_indexes(non_pending=non_pending, count=missing, completions=completions or 0)
            )
            if per_index:
                indexes, replaced = self._indexes_past_backoff(key, state, indexes)
        created, failure = await self._create_pods(job, key, indexes, replaced=replaced)
        return active + created, failure

    def _indexes_past_backoff(
        self, key: str, state: _SyncState, indexes: Sequence[int | None]
    ) -> tuple[list[int | None], dict[int, Obj]]:
        """``getPodCreationInfoForIndependentIndexes``: the indexes whose own back-off is over, and
        the last failed pod of each (its replacement inherits the failure counts); requeues for the rest."""
        last_failed: dict[int, Obj] = {}
        for pod in state.pods:
            index = completion_index(pod)
            if index < 0 or not is_pod_failed(pod, state.job):
                continue
            known = last_failed.get(index)
            if known is None or finished_time(pod) >= finished_time(known):
                last_failed[index] = pod
        ready: list[int | None] = []
        waits: list[float] = []
        for index in indexes:
            previous = last_failed.get(index) if index is not None else None
            remaining = index_backoff_remaining(previous, state.now) if previous is not None else 0.0
            if remaining > 0:
                waits.append(remaining)
            else:
                ready.append(index)
        if waits:
            self._enqueue(key, after=min(waits))
        return ready, {index: pod for index, pod in last_failed.items() if index in ready}

    async def _create_pods(
        self, job: Obj, key: str, indexes: Sequence[int | None], *, replaced: Mapping[int, Obj] | None = None
    ) -> tuple[int, Exception | None]:
        """Create one pod per entry of ``indexes`` (an index, or None for a NonIndexed job) in
        slow-start batches of 1, 2, 4...; (pods created, the first failure). ``replaced``: the last
        failed pod of an index, whose failure counts the new pod carries on (backoffLimitPerIndex)."""
        if not indexes:
            return 0, None
        self.expectations.expect_creations(key, len(indexes))
        template = copy.deepcopy(dict((job.get("spec") or {}).get("template") or {}))
        if _indexed(job):
            _add_index_env(template)
        metadata = template.setdefault("metadata", {})
        if TRACKING_FINALIZER not in (metadata.get("finalizers") or []):
            metadata["finalizers"] = [*(metadata.get("finalizers") or []), TRACKING_FINALIZER]
        ref = controller_ref(job, JOBS)
        pending = iter(indexes)

        async def create() -> None:
            index = next(pending)
            replaced_pod = None if index is None else (replaced or {}).get(index)
            await self._create_pod(job, template=template, ref=ref, index=index, replaced=replaced_pod)

        created, failure = await slow_start_batch(
            len(indexes), initial_batch_size=SLOW_START_INITIAL_BATCH_SIZE, create=create
        )
        if failure is not None:
            # Failed creations, and those never attempted, will not be observed.
            self.expectations.creation_observed(key, len(indexes) - created)
        return created, failure

    async def _create_pod(
        self, job: Obj, *, template: Obj, ref: Obj, index: int | None, replaced: Obj | None
    ) -> None:
        name = job["metadata"]["name"]
        if index is not None:
            template = copy.deepcopy(dict(template))
            metadata = template.setdefault("metadata", {})
            annotations = metadata.setdefault("annotations", {})
            annotations[COMPLETION_INDEX_ANNOTATION] = str(index)
            if has_backoff_limit_per_index(job):
                counted, ignored = replacement_failure_counts(job, replaced)
                annotations[INDEX_FAILURE_COUNT_ANNOTATION] = str(counted)
                if ignored:
                    annotations[INDEX_IGNORED_FAILURE_COUNT_ANNOTATION] = str(ignored)
            metadata.setdefault("labels", {})[COMPLETION_INDEX_LABEL] = str(index)
            template.setdefault("spec", {})["hostname"] = f"{name}-{index}"
        suffix = f"-{index}-" if index is not None else "-"
        await self._pod_control.create_pod(
            job,
            template=template,
            controller_ref=ref,
            generate_name=name[: MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix,
        )

    def _for_removal(self, job: Obj, pods: Sequence[Obj], at_least: int) -> list[Obj]:
        """``activePodsForRemoval``: duplicate or out-of-range indexes first, then the least advanced."""
        remove: list[Obj] = []
        keep = list(pods)
        if _indexed(job):
            completions = _completions(job) or 0
            by_index: dict[int, list[Obj]] = {}
            for pod in pods:
                by_index.setdefault(completion_index(pod), []).append(pod)
            keep = []
            for index, group in sorted(by_index.items()):
                if index < 0 or index >= completions:
                    remove.extend(group)
                elif len(group) == 1:
                    keep.append(group[0])
                else:
                    ranked = rank_pods_for_deletion(group, related_pods=(), now=self._now())
                    remove.extend(ranked[:-1])
                    keep.append(ranked[-1])
        if len(remove) < at_least:
            ranked = rank_pods_for_deletion(keep, related_pods=(), now=self._now())
            remove.extend(ranked[: at_least - len(remove)])
        return remove

    async def _delete_pods(
        self, job: Obj, key: str, pods: Sequence[Obj], *, count_as_failed: bool
    ) -> tuple[int, int, Exception | None]:
        """Delete ``pods``: (ready ones deleted, deleted, first error).

        ``count_as_failed`` (a finishing job, ``deleteActivePods``) keeps their finalizers so they are
        counted as failed; otherwise (surplus or suspended pods, ``deleteJobPods``) the finalizer
        goes first and deletions are expected.
        """
        if not pods:
            return 0, 0, None
        if not count_as_failed:
            self.expectations.expect_deletions(key, (object_key(pod) for pod in pods))

        async def delete(pod: Obj) -> tuple[bool, Exception | None]:
            try:
                if not count_as_failed and has_tracking_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self._pod_control.delete_pod(job, name=pod["metadata"]["name"])
            except errors.NotFoundError:
                self.expectations.deletion_observed(key, object_key(pod))
            except errors.RequestError as exc:
                self.expectations.deletion_observed(key, object_key(pod))
                return False, exc
            return True, None

        results = await asyncio.gather(*(delete(pod) for pod in pods))
        deleted = sum(1 for ok, _ in results if ok)
        ready = sum(1 for pod, (ok, _) in zip(pods, results, strict=True) if ok and is_pod_ready(pod))
        failure = next((exc for _, exc in results if exc is not None), None)
        return ready, deleted, failure

    async def _suspend_conditions(self, job: dict[str, Any], state: _SyncState) -> bool:
        conditions = job["status"].setdefault("conditions", [])
        if _suspended(job):
            changed = ensure_condition(
                conditions, "Suspended", "True", reason="JobSuspended", message="Job suspended", now=state.now
            )
            if changed:
                await self._recorder.event(job, type="Normal", reason="Suspended", message="Job suspended")
            return changed
        changed = ensure_condition(
            conditions, "Suspended", "False", reason="JobResumed", message="Job resumed", now=state.now
        )
        if changed:
            await self._recorder.event(job, type="Normal", reason="Resumed", message="Job resumed")
            # The deadline counts from the resumption, as from a first start.
            job["status"]["startTime"] = format_time(state.now)
        return changed

    # --- status -------------------------------------------------------------------------------

    async def _track_status(self, key: str, state: _SyncState, needs_flush: bool) -> None:
        """``trackJobStatusAndRemoveFinalizers``: uncounted pods, finalizers, terminal conditions."""
        job = state.job
        status = job["status"]
        uncounted = status["uncountedTerminatedPods"]
        indexed = _indexed(job)
        completions = _completions(job) or 0
        pods = sorted(state.pods, key=completion_index) if indexed else list(state.pods)
        with_finalizer = {
            pod["metadata"]["uid"]
            for pod in pods
            if has_tracking_finalizer(pod) and pod["metadata"]["uid"] not in state.expected_removals
        }
        if _clean_uncounted(status, with_finalizer):
            needs_flush = True
        succeeded_list = list(uncounted.get("succeeded") or ())
        failed_list = list(uncounted.get("failed") or ())
        new_indexes: list[int] = []
        to_release: list[Obj] = []
        reached_max = False
        failure_finish = state.finished is not None and state.finished["type"] != "SuccessCriteriaMet"
        policy = (job.get("spec") or {}).get("podFailurePolicy")
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if not has_tracking_finalizer(pod) or uid in state.expected_removals:
                continue
            failed = is_pod_failed(pod, job)
            if not (_deleting(job) or state.finished is not None or _phase(pod) == "Succeeded" or failed):
                continue  # still running: its finalizer stays
            to_release.append(pod)
            index = completion_index(pod)
            if _phase(pod) == "Succeeded" and uid not in state.uncounted_failed:
                if indexed:
                    if 0 <= index < completions and not _covered(state.previous_indexes, index):
                        new_indexes.append(index)
                elif uid not in state.uncounted_succeeded and uid not in succeeded_list:
                    needs_flush = True
                    succeeded_list.append(uid)
            elif (
                (failed or failure_finish)
                and match_pod_failure_policy(policy, pod).counts
                and uid not in state.uncounted_failed
                and uid not in failed_list
                and (not indexed or 0 <= index < completions)
            ):
                # When the job is finishing in failure, every pod not yet terminated counts as failed.
                needs_flush = True
                failed_list.append(uid)
            if len(new_indexes) + len(succeeded_list) + len(failed_list) >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        _set_uids(uncounted, "succeeded", succeeded_list)
        _set_uids(uncounted, "failed", failed_list)
        if indexed:
            state.succeeded_indexes = with_indexes(state.succeeded_indexes, new_indexes)
            text = format_indexes(state.succeeded_indexes)
            if text != status.get("completedIndexes"):
                needs_flush = True
            status["succeeded"] = total(state.succeeded_indexes)
            status["completedIndexes"] = text
            if has_backoff_limit_per_index(job):
                failed_text = format_indexes(state.failed_indexes)
                if failed_text != status.get("failedIndexes"):
                    needs_flush = True
                status["failedIndexes"] = failed_text
        if state.finished is not None and state.finished["type"] == "FailureTarget":
            status.setdefault("conditions", []).append(state.finished)
            needs_flush = True
            finished = state.finished
            state.finished = self._condition("Failed", finished["reason"], finished["message"], state)
        if state.finished is not None and state.finished["type"] == "SuccessCriteriaMet":
            existing = find_condition(job, "SuccessCriteriaMet")
            if existing is None or existing.get("status") != "True":
                status.setdefault("conditions", []).append(state.finished)
                needs_flush = True
            finished = state.finished
            state.finished = self._condition(
                "Complete", finished.get("reason", ""), finished.get("message", ""), state
            )
        needs_flush = await self._flush_and_release(key, state, to_release, with_finalizer, needs_flush)
        finished_now = not reached_max and self._enact_finished(state)
        if finished_now:
            needs_flush = True
        if needs_flush:
            state.job = await self._write_status(state.job)
            if finished_now:
                await self._record_finished(state.job, state.finished)

    async def _flush_and_release(
        self, key: str, state: _SyncState, pods: Sequence[Obj], with_finalizer: set[str], needs_flush: bool
    ) -> bool:
        """``flushUncountedAndRemoveFinalizers``: record the uncounted uids, release the pods, count
        the released ones. Returns whether the status still needs writing."""
        if needs_flush:
            state.job = await self._write_status(state.job)
            self._backoffs[key] = state.backoff
            needs_flush = False
        failure: Exception | None = None
        if pods:
            self._removals.setdefault(key, set()).update(pod["metadata"]["uid"] for pod in pods)

            async def release(pod: Obj) -> Exception | None:
                try:
                    await self._remove_finalizer(pod)
                except errors.RequestError as exc:
                    self._removal_observed(key, pod["metadata"]["uid"])
                    return exc
                with_finalizer.discard(pod["metadata"]["uid"])
                return None

            failures = [
                exc for exc in await asyncio.gather(*(release(pod) for pod in pods)) if exc is not None
            ]
            failure = failures[0] if failures else None
        if _clean_uncounted(state.job["status"], with_finalizer):
            needs_flush = True
        if failure is not None:
            if needs_flush:
                state.job = await self._write_status(state.job)
            raise failure
        return needs_flush

    def _enact_finished(self, state: _SyncState) -> bool:
        """``enactJobFinished``: the terminal condition, once nothing is uncounted or terminating."""
        if state.finished is None:
            return False
        status = state.job["status"]
        uncounted = status.get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed") or state.terminating > 0:
            return False
        finished = state.finished
        ensure_condition(
            status.setdefault("conditions", []),
            finished["type"],
            finished["status"],
            reason=finished.get("reason", ""),
            message=finished.get("message", ""),
            now=state.now,
        )
        if finished["type"] == "Complete":
            status["completionTime"] = finished["lastTransitionTime"]
        return True

    async def _write_status(self, job: dict[str, Any]) -> dict[str, Any]:
        """PUT the job's status (409 if the job changed since it was read); returns the job as stored."""
        stored = await self._client.replace(JOBS, job, subresource="status")
        self._superseded.setdefault(object_key(job), set()).add(job["metadata"].get("resourceVersion") or "")
        return stored

    async def _record_finished(self, job: Obj, finished: Obj | None) -> None:
        if finished is None:
            return
        if finished["type"] == "Complete":
            completions = _completions(job)
            if completions is not None and int(job["status"].get("succeeded") or 0) > completions:
                await self._recorder.event(
                    job,
                    type="Warning",
                    reason="TooManySucceededPods",
                    message="Too many succeeded pods running after completion count reached",
                )
            await self._recorder.event(job, type="Normal", reason="Completed", message="Job completed")
        else:
            await self._recorder.event(
                job, type="Warning", reason=finished["reason"], message=finished["message"]
            )

    # --- TTL after finished -------------------------------------------------------------------

    async def _expire(self, key: str, job: Obj) -> None:
        """Delete a finished job ``ttlSecondsAfterFinished`` after it finished (the TTL controller)."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None or _deleting(job):
            return
        finished_at = max(
            (
                moment
                for condition in (job.get("status") or {}).get("conditions") or ()
                if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True"
                for moment in [parse_time(condition.get("lastTransitionTime"))]
                if moment is not None
            ),
            default=None,
        )
        if finished_at is None:
            return
        remaining = (finished_at + timedelta(seconds=ttl) - self._now()).total_seconds()
        if remaining > 0:
            self._enqueue(key, after=remaining)
            return
        namespace, name = split_key(key)
        try:
            await self._client.delete(
                JOBS,
                name,
                namespace=namespace,
                propagation_policy="Foreground",
                preconditions=Preconditions(uid=job["metadata"]["uid"]),
            )
        except (errors.NotFoundError, errors.ConflictError):
            return


def _clean_uncounted(status: dict[str, Any], with_finalizer: set[str]) -> bool:
    """``cleanUncountedPodsWithoutFinalizers``: count the uncounted pods whose finalizer is gone."""
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for kind, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        uids = list(uncounted.get(kind) or ())
        remaining = [uid for uid in uids if uid in with_finalizer]
        if len(remaining) != len(uids):
            changed = True
            status[counter] = int(status.get(counter) or 0) + len(uids) - len(remaining)
            _set_uids(uncounted, kind, remaining)
    return changed


def _set_uids(uncounted: dict[str, Any], kind: str, uids: list[str]) -> None:
    """Empty lists are left out, as the API's ``omitempty`` does."""
    if uids:
        uncounted[kind] = uids
    else:
        uncounted.pop(kind, None)


def _add_index_env(template: dict[str, Any]) -> None:
    """``addCompletionIndexEnvVariables``: JOB_COMPLETION_INDEX from the annotation, in every container."""
    spec = template.setdefault("spec", {})
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        env = container.setdefault("env", [])
        if not any(var.get("name") == COMPLETION_INDEX_ENV for var in env):
            env.append(
                {
                    "name": COMPLETION_INDEX_ENV,
                    "valueFrom": {
                        "fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}
                    },
                }
            )


def new_controller(ctx: ControllerContext) -> JobController:
    return JobController(ctx)
