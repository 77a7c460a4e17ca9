"""The CronJob controller: creates a Job at each time a CronJob's schedule names (upstream's
``pkg/controller/cronjob``, the v2 controller).

A sync of one CronJob:

1. **Its Jobs.** Jobs it controls that finished leave ``status.active`` (``SawCompletedJob``;
   a successful one sets ``status.lastSuccessfulTime``); active references to Jobs that no
   longer exist are dropped (``MissingJob``).
2. **The schedule** (``control.resources.cron``), in ``spec.timeZone`` (else the controller's
   local zone): the most recent activation not yet run, counted from ``lastScheduleTime`` (or
   the CronJob's creation) and no earlier than ``startingDeadlineSeconds`` ago; more than 100
   missed activations are reported (``TooManyMissedTimes``) and only the latest runs. An
   unparseable schedule or unknown zone is reported once per sync (``UnparseableSchedule``,
   ``UnknownTimeZone``) and nothing runs.
3. **Concurrency.** ``Forbid`` skips the run while a Job is active (``JobAlreadyActive``);
   ``Replace`` deletes the active Jobs first (``SuccessfulDelete``); ``Allow`` runs beside them.
   ``suspend`` stops new runs.
4. **The Job**, from ``jobTemplate``: named ``<cronjob>-<minutes since the epoch of the scheduled
   time>`` (so a retried sync never runs one time twice), controlled by the CronJob, annotated
   ``batch.kubernetes.io/cronjob-scheduled-timestamp``; ``SuccessfulCreate``. Then
   ``status.active`` and ``lastScheduleTime`` are written.
5. **History**: finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit``
   (oldest first) are deleted.

The CronJob is synced again just after its next activation, and whenever it or one of its Jobs
changes.
"""

from __future__ import annotations

import copy
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller
from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PropagationPolicy
from control.client.workqueue import RateLimitingQueue
from control.controllers.events import EventRecorder
from control.controllers.kinds import CRON_JOBS, JOBS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    controller_of,
    controller_ref,
    error_text,
    format_time,
    namespace_terminating,
    parse_time,
    write_status,
)
from control.resources import cron

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
NEXT_SYNC_DELAY = timedelta(milliseconds=100)  # past the activation, so the sync finds it due

Obj = Mapping[str, Any]


def job_name(cron_job: Obj, scheduled: datetime) -> str:
    """``getJobName``: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{cron_job['metadata']['name']}-{int(scheduled.timestamp() // 60)}"


def finished(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` once the Job has that condition, else None."""
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def most_recent_time(
    schedule: cron.Schedule, *, earliest: datetime, now: datetime, zone: tzinfo
) -> tuple[datetime | None, int]:
    """``mostRecentScheduleTime``: the latest activation in (earliest, now], and how many there
    were (counted exactly up to ``MAX_MISSED``, estimated beyond)."""
    first = schedule.next(earliest, zone=zone)
    if first is None or first > now:
        return None, 0
    latest, count = first, 1
    while count <= MAX_MISSED:
        following = schedule.next(latest, zone=zone)
        if following is None or following > now:
            return latest, count
        latest, count = following, count + 1
    # Very many missed: jump close to now by the schedule's spacing, then step to the latest.
    spacing = latest - first
    if spacing > timedelta(0):
        per_step = spacing / (count - 1)
        steps = int((now - latest) / per_step) - 1
        if steps > 0:
            latest = schedule.next(latest + per_step * steps - timedelta(seconds=1), zone=zone) or latest
            count += steps
    while True:
        following = schedule.next(latest, zone=zone)
        if following is None or following > now:
            return latest, count
        latest, count = following, count + 1


class CronJobController:
    name = "cronjob"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        clock: Clock = REAL_CLOCK,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        local_zone: tzinfo | None = None,
    ) -> None:
        self._client = ctx.client
        self._clock = clock
        self._now = now
        self._local_zone = local_zone or datetime.now().astimezone().tzinfo or UTC
        self._workers = workers or ctx.options.concurrent_syncs
        self._recorder: EventRecorder = ctx.recorder("cronjob-controller")
        self._cron_jobs = ctx.informers.informer(CRON_JOBS)
        self._jobs = ctx.informers.informer(JOBS)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="cronjob", clock=clock)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="cronjob", clock=self._clock)
        registrations = [
            (
                self._cron_jobs,
                self._cron_jobs.add_event_handler(
                    on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new)
                ),
            ),
            (
                self._jobs,
                self._jobs.add_event_handler(
                    on_add=self._job_changed,
                    on_update=lambda old, new: self._job_changed(new),
                    on_delete=self._job_deleted,
                ),
            ),
        ]
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self._cron_jobs, self._jobs],
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    def _enqueue(self, cron_job: Obj) -> None:
        self._queue.add(object_key(cron_job))

    def _job_changed(self, job: Obj) -> None:
        ref = controller_of(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self._queue.add(f"{job['metadata']['namespace']}/{ref.get('name', '')}")

    def _job_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._job_changed(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: str) -> None:
        shared = self._cron_jobs.cache.get_by_key(key)
        if shared is None:
            return
        cron_job = copy.deepcopy(dict(shared))
        namespace = cron_job["metadata"]["namespace"]
        uid = cron_job["metadata"]["uid"]
        jobs = [
            job
            for job in self._jobs.cache.by_index(NAMESPACE_INDEX, namespace)
            if (controller_of(job) or {}).get("uid") == uid
        ]
        status = cron_job.setdefault("status", {})
        before = copy.deepcopy(status)
        await self._track_jobs(cron_job, jobs)
        next_sync = await self._maybe_run(cron_job, jobs)
        if status != before:
            await write_status(self._client, CRON_JOBS, cron_job)
        await self._clean_up_history(cron_job, jobs)
        if next_sync is not None:
            self._queue.add_after(key, max((next_sync - self._now()).total_seconds(), 0.0))

    async def _track_jobs(self, cron_job: dict[str, Any], jobs: list[Obj]) -> None:
        status = cron_job["status"]
        by_uid = {job["metadata"]["uid"]: job for job in jobs}
        active = []
        for ref in status.get("active") or ():
            job = by_uid.get(ref.get("uid"))
            if job is None:
                try:
                    await self._client.get(
                        JOBS, ref.get("name", ""), namespace=cron_job["metadata"]["namespace"]
                    )
                except errors.NotFoundError:
                    await self._recorder.event(
                        cron_job,
                        type="Normal",
                        reason="MissingJob",
                        message=f"Active job went missing: {ref.get('name')}",
                    )
                    continue
                active.append(ref)  # the cache has not seen it yet
                continue
            outcome = finished(job)
            if outcome is None:
                active.append(ref)
                continue
            await self._recorder.event(
                cron_job,
                type="Normal",
                reason="SawCompletedJob",
                message=f"Saw completed job: {job['metadata']['name']}, condition: {outcome}",
            )
            if outcome == "Complete":
                completed = parse_time((job.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if completed is not None and (last is None or completed > last):
                    status["lastSuccessfulTime"] = format_time(completed)
        # Jobs it runs that are missing from active (a status write lost): add them back
        listed = {ref.get("uid") for ref in active}
        for job in jobs:
            if (
                job["metadata"]["uid"] not in listed
                and finished(job) is None
                and not job["metadata"].get("deletionTimestamp")
            ):
                active.append(_job_ref(job))
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _maybe_run(self, cron_job: dict[str, Any], jobs: list[Obj]) -> datetime | None:
        """Steps 2 to 4; returns when to look again."""
        spec = cron_job.get("spec") or {}
        if cron_job["metadata"].get("deletionTimestamp") or spec.get("suspend"):
            return None
        zone = self._zone(spec)
        if zone is None:
            await self._recorder.event(
                cron_job,
                type="Warning",
                reason="UnknownTimeZone",
                message=f"invalid timeZone: {spec.get('timeZone')!r}",
            )
            return None
        try:
            schedule = cron.parse(str(spec.get("schedule") or ""))
        except cron.CronError as exc:
            await self._recorder.event(
                cron_job,
                type="Warning",
                reason="UnparseableSchedule",
                message=f"unparseable schedule: {spec.get('schedule')!r} : {exc}",
            )
            return None
        now = self._now()
        status = cron_job["status"]
        earliest = parse_time(status.get("lastScheduleTime")) or parse_time(
            cron_job["metadata"].get("creationTimestamp")
        )
        earliest = earliest or now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent_time(schedule, earliest=earliest, now=now, zone=zone)
        upcoming = schedule.next(now, zone=zone)
        next_sync = upcoming + NEXT_SYNC_DELAY if upcoming is not None else None
        if scheduled is None:
            return next_sync
        if missed > MAX_MISSED:
            await self._recorder.event(
                cron_job,
                type="Warning",
                reason="TooManyMissedTimes",
                message=f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            await self._recorder.event(
                cron_job,
                type="Warning",
                reason="MissSchedule",
                message=f"Missed scheduled time to start a job: {format_time(scheduled)}",
            )
            return next_sync
        name = job_name(cron_job, scheduled)
        if any(job["metadata"]["name"] == name for job in jobs):
            return next_sync  # this time already ran
        active = status.get("active") or []
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            await self._recorder.event(
                cron_job,
                type="Normal",
                reason="JobAlreadyActive",
                message="Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return next_sync
        if policy == "Replace":
            for ref in list(active):
                await self._delete_job(cron_job, ref.get("name", ""))
            status.pop("active", None)
        created = await self._create_job(cron_job, name=name, scheduled=scheduled, zone=zone)
        if created is not None:
            status.setdefault("active", []).append(_job_ref(created))
        status["lastScheduleTime"] = format_time(scheduled)
        return next_sync

    def _zone(self, spec: Obj) -> tzinfo | None:
        name = spec.get("timeZone")
        if not name:
            return self._local_zone
        try:
            return zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None

    async def _create_job(
        self, cron_job: dict[str, Any], *, name: str, scheduled: datetime, zone: tzinfo
    ) -> dict[str, Any] | None:
        template = copy.deepcopy((cron_job.get("spec") or {}).get("jobTemplate") or {})
        metadata = template.get("metadata") or {}
        annotations = dict(metadata.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = scheduled.astimezone(zone).isoformat()
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": cron_job["metadata"]["namespace"],
                "labels": dict(metadata.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [controller_ref(cron_job, CRON_JOBS)],
            },
            "spec": template.get("spec") or {},
        }
        try:
            created = await self._client.create(JOBS, job, namespace=cron_job["metadata"]["namespace"])
        except errors.AlreadyExistsError:
            return None  # made by an earlier sync whose status write was lost; tracked next time
        except errors.RequestError as exc:
            if not namespace_terminating(exc):
                await self._recorder.event(
                    cron_job,
                    type="Warning",
                    reason="FailedCreate",
                    message=f"Error creating job: {error_text(exc)}",
                )
            raise
        await self._recorder.event(
            cron_job, type="Normal", reason="SuccessfulCreate", message=f"Created job {name}"
        )
        return created

    async def _delete_job(self, cron_job: Obj, name: str) -> None:
        try:
            await self._client.delete(
                JOBS,
                name,
                namespace=cron_job["metadata"]["namespace"],
                propagation_policy=PropagationPolicy.BACKGROUND,
            )
        except errors.NotFoundError:
            return
        await self._recorder.event(
            cron_job, type="Normal", reason="SuccessfulDelete", message=f"Deleted job {name}"
        )

    async def _clean_up_history(self, cron_job: Obj, jobs: list[Obj]) -> None:
        spec = cron_job.get("spec") or {}
        for outcome, limit_key in (
            ("Complete", "successfulJobsHistoryLimit"),
            ("Failed", "failedJobsHistoryLimit"),
        ):
            limit = spec.get(limit_key)
            if limit is None:
                continue
            done = [
                job
                for job in jobs
                if finished(job) == outcome and not job["metadata"].get("deletionTimestamp")
            ]
            done.sort(
                key=lambda job: (
                    (job.get("status") or {}).get("startTime") or job["metadata"]["creationTimestamp"]
                )
            )
            for job in done[: max(len(done) - int(limit), 0)]:
                await self._delete_job(cron_job, job["metadata"]["name"])


def _job_ref(job: Obj) -> dict[str, Any]:
    metadata = job["metadata"]
    return {
        "kind": "Job",
        "namespace": metadata["namespace"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": metadata.get("resourceVersion", ""),
    }


def new_controller(ctx: ControllerContext) -> CronJobController:
    return CronJobController(ctx)
