"""The Job controller: index arithmetic and back-off on their own, then the controller against the
real API server on a fake clock. No kubelet runs: the tests finish pods by writing their status
through ``pods/status`` (a terminated container and Ready turning False, as the kubelet does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.client import errors
from control.client.testing import FakeClock
from control.controllers.job import (
    COMPLETION_INDEX_ANNOTATION,
    INDEX_FAILURE_COUNT_ANNOTATION,
    TRACKING_FINALIZER,
    BackoffRecord,
    JobController,
    finished_time,
    first_pending_indexes,
    format_indexes,
    match_pod_failure_policy,
    match_success_policy,
    parse_indexes,
    with_indexes,
)
from control.controllers.kinds import EVENTS, JOBS, PODS
from control.controllers.ownership import format_time
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"
START = 1000.0
WALL = datetime(2030, 1, 1, tzinfo=UTC)


# --- indexes and back-off --------------------------------------------------------------------------


def test_index_intervals_parse_merge_and_print():
    assert parse_indexes("0,2-4,7", completions=10) == [(0, 0), (2, 4), (7, 7)]
    assert parse_indexes("3-9,12", completions=6) == [(3, 5)]  # cut to the completions
    assert parse_indexes("", completions=3) == [] and parse_indexes(None, completions=3) == []
    assert parse_indexes("1,x", completions=3) == [(1, 1)]  # stops at garbage
    merged = with_indexes([(0, 0), (4, 5)], [1, 2, 7, 2])
    assert merged == [(0, 2), (4, 5), (7, 7)]
    assert format_indexes(merged) == "0-2,4-5,7"
    assert format_indexes([]) == ""


def test_first_pending_indexes_skip_succeeded_and_active():
    assert first_pending_indexes(non_pending=[(0, 1), (3, 3)], count=2, completions=6) == [2, 4]
    assert first_pending_indexes(non_pending=[], count=5, completions=3) == [0, 1, 2]
    assert first_pending_indexes(non_pending=[(0, 2)], count=1, completions=3) == []


def test_success_policy_rules():
    policy = {"rules": [{"succeededIndexes": "0-1", "succeededCount": 5}, {"succeededCount": 3}]}
    assert match_success_policy(policy, completions=6, succeeded=[(1, 1)]) is None
    assert match_success_policy(policy, completions=6, succeeded=[(0, 1)]) == "Matched rules at index 0"
    assert match_success_policy(policy, completions=6, succeeded=[(3, 5)]) == "Matched rules at index 1"
    counted = {"rules": [{"succeededIndexes": "0-4", "succeededCount": 2}]}
    assert match_success_policy(counted, completions=6, succeeded=[(2, 3)]) == "Matched rules at index 0"
    assert match_success_policy(None, completions=6, succeeded=[(0, 5)]) is None


POLICY = {
    "rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
    ]
}


def _failed_pod(
    *statuses: tuple[str, int], init: Sequence[tuple[str, int]] = (), conditions: Sequence[str] = ()
):
    def container(name: str, code: int) -> dict[str, Any]:
        return {"name": name, "state": {"terminated": {"exitCode": code}}}

    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "containerStatuses": [container(*status) for status in statuses],
            "initContainerStatuses": [container(*status) for status in init],
            "conditions": [{"type": kind, "status": "True"} for kind in conditions],
        },
    }


def test_pod_failure_policy_rules_match_in_order() -> None:
    fail = match_pod_failure_policy(POLICY, _failed_pod(("main", 42)))
    assert (fail.action, fail.counts) == ("FailJob", True)
    assert (
        fail.fail_job_message
        == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"
    )
    # FailJob names its container: 42 from another container falls through to the NotIn rule (42 not in [1, 2])
    assert match_pod_failure_policy(POLICY, _failed_pod(("side", 42))).action == "Count"
    ignored = match_pod_failure_policy(POLICY, _failed_pod(("main", 1), conditions=["DisruptionTarget"]))
    assert (ignored.action, ignored.counts, ignored.fail_job_message) == ("Ignore", False, None)
    # exit code 1 is excluded by NotIn and there is no condition: no rule matches, the failure counts
    plain = match_pod_failure_policy(POLICY, _failed_pod(("main", 1)))
    assert (plain.action, plain.counts) == (None, True)
    # init containers are looked at first; exit code 0 never matches
    assert match_pod_failure_policy(POLICY, _failed_pod(("main", 0), init=[("main", 42)])).action == "FailJob"
    assert match_pod_failure_policy(POLICY, _failed_pod(("main", 0))).action is None
    assert match_pod_failure_policy(None, _failed_pod(("main", 42))).counts


def _finished_pod(at: datetime, *, phase: str = "Failed") -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": format_time(at - timedelta(seconds=60))},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": format_time(at)}}}
            ],
        },
    }


def test_backoff_doubles_from_ten_seconds_and_resets_on_success():
    record = BackoffRecord().after([], [_finished_pod(WALL)])
    assert record.failures == 1 and record.remaining(WALL + timedelta(seconds=4)) == 6
    record = record.after([], [_finished_pod(WALL + timedelta(seconds=20))])
    assert record.remaining(WALL + timedelta(seconds=20)) == 20
    many = BackoffRecord(failures=12, last_failure=WALL)
    assert many.remaining(WALL) == 360  # capped at 6 minutes
    assert many.remaining(WALL + timedelta(seconds=400)) == 0
    success = _finished_pod(WALL + timedelta(seconds=30), phase="Succeeded")
    reset = record.after([success], [_finished_pod(WALL + timedelta(seconds=40))])
    assert (reset.failures, reset.last_failure) == (1, WALL + timedelta(seconds=40))  # only the later failure
    assert BackoffRecord().remaining(WALL) == 0


def test_finished_time_prefers_ready_false_then_containers_then_creation():
    pod = _finished_pod(WALL)
    assert finished_time(pod) == WALL
    pod["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "lastTransitionTime": format_time(WALL + timedelta(seconds=5))}
    ]
    assert finished_time(pod) == WALL + timedelta(seconds=5)
    bare = {"metadata": {"creationTimestamp": format_time(WALL)}, "status": {}}
    assert finished_time(bare) == WALL


# --- the controller --------------------------------------------------------------------------------


class Clocked:
    """A fake monotonic clock for the queue, and wall time moving with it."""

    def __init__(self) -> None:
        self.clock = FakeClock(START)

    def now(self) -> datetime:
        return WALL + timedelta(seconds=self.clock.now() - START)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def job_cluster(server: Any) -> AsyncIterator[tuple[Cluster, Clocked]]:
    time = Clocked()
    async with running(
        server, lambda ctx: JobController(ctx, clock=time.clock, now=time.now, workers=2)
    ) as cluster:
        yield cluster, time


def job(name: str = "pi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "kubelab"}]},
            },
            **spec,
        },
    }


async def job_pods(cluster: Cluster, name: str = "pi", *, live_only: bool = True) -> list[dict[str, Any]]:
    pods = (
        await cluster.client.list(PODS, namespace=NS, label_selector=f"batch.kubernetes.io/job-name={name}")
    )["items"]
    if live_only:
        pods = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")]
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


async def wait_live(cluster: Cluster, count: int, name: str = "pi") -> list[dict[str, Any]]:
    async def check() -> list | None:
        pods = await job_pods(cluster, name)
        return pods if len(pods) == count else None

    return await cluster.wait_for(check, what=f"{count} running pods of job {name}")


async def finish(
    cluster: Cluster,
    pod: dict[str, Any],
    *,
    phase: str,
    at: datetime,
    exit_code: int | None = None,
    conditions: Sequence[dict[str, Any]] = (),
) -> None:
    """Play the kubelet: the container exits (0 or 1 unless ``exit_code``) and the pod turns
    Succeeded or Failed, with ``conditions`` besides Ready=False."""
    stamp = format_time(at)
    code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
    await cluster.client.patch(
        PODS,
        pod["metadata"]["name"],
        {
            "status": {
                "phase": phase,
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": stamp},
                    *conditions,
                ],
                "containerStatuses": [
                    {
                        "name": pod["spec"]["containers"][0]["name"],
                        "image": "kubelab",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if phase == "Succeeded" else "Error",
                                "finishedAt": stamp,
                            }
                        },
                    }
                ],
            }
        },
        namespace=NS,
        subresource="status",
    )


async def job_status(cluster: Cluster, name: str = "pi") -> dict[str, Any]:
    return (await cluster.client.get(JOBS, name, namespace=NS)).get("status") or {}


def status_with(cluster: Cluster, name: str = "pi", **expected: Any):
    async def check() -> dict | None:
        status = await job_status(cluster, name)
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    return check


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or ()}


def has_condition(cluster: Cluster, kind: str, name: str = "pi"):
    async def check() -> dict | None:
        status = await job_status(cluster, name)
        found = conditions(status).get(kind)
        return status if found is not None and found["status"] == "True" else None

    return check


async def reasons(cluster: Cluster, reason: str, *, count: int = 1) -> list[dict[str, Any]]:
    """Wait for at least ``count`` Events with ``reason`` (controllers record them right after acting,
    so they may trail the state the test saw) and return all of them."""

    async def enough() -> list[dict[str, Any]] | None:
        items = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        found = [e for e in items if e["reason"] == reason]
        return found if len(found) >= count else None

    return await cluster.wait_for(enough, what=f"{count} {reason} event(s)")


async def test_a_job_runs_its_completions_with_tracking_finalizers(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        created = await cluster.client.create(JOBS, job(completions=3, parallelism=2))
        first, _ = await wait_live(cluster, 2)
        assert first["metadata"]["generateName"] == "pi-"
        assert first["metadata"]["finalizers"] == [TRACKING_FINALIZER]
        assert first["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert first["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
        status = await cluster.wait_for(status_with(cluster, active=2), what="two active")
        assert status["startTime"] == format_time(time.now())
        assert (status["ready"], status["terminating"]) == (0, 0)
        assert status["uncountedTerminatedPods"] == {}

        await finish(cluster, first, phase="Succeeded", at=time.now())
        await cluster.wait_for(status_with(cluster, succeeded=1, active=2), what="one success, a replacement")
        done = await cluster.client.get(PODS, first["metadata"]["name"], namespace=NS)
        assert TRACKING_FINALIZER not in (done["metadata"].get("finalizers") or [])
        for pod in await job_pods(cluster):
            await finish(cluster, pod, phase="Succeeded", at=time.now())
        status = await cluster.wait_for(has_condition(cluster, "Complete"), what="the job to complete")
        found = conditions(status)
        for kind in ("SuccessCriteriaMet", "Complete"):
            assert (found[kind]["reason"], found[kind]["message"]) == (
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            )
        assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
        assert status["completionTime"] == found["Complete"]["lastTransitionTime"]
        assert (status["succeeded"], status["active"], status.get("failed", 0)) == (3, 0, 0)
        assert not status["uncountedTerminatedPods"].get("succeeded")
        everything = await job_pods(cluster, live_only=False)
        assert len(everything) == 3 and not any(p["metadata"].get("finalizers") for p in everything)
        completed = await reasons(cluster, "Completed")
        assert [e["message"] for e in completed] == ["Job completed"]
        created_events = await reasons(cluster, "SuccessfulCreate", count=3)
        assert sorted(e["message"] for e in created_events) == sorted(
            f"Created pod: {p['metadata']['name']}" for p in everything
        )


async def test_failures_back_off_then_exceed_the_backoff_limit(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job(backoffLimit=1))
        (first,) = await wait_live(cluster, 1)
        await finish(cluster, first, phase="Failed", at=time.now())
        await cluster.wait_for(status_with(cluster, failed=1, active=0), what="one failure counted")
        # The sync that counted the failure chose not to replace the pod yet: 10 s of back-off.
        assert await job_pods(cluster) == []
        await time.advance(9)
        await asyncio.sleep(0.05)
        assert await job_pods(cluster) == []
        await time.advance(1)
        (second,) = await wait_live(cluster, 1)
        await finish(cluster, second, phase="Failed", at=time.now())
        status = await cluster.wait_for(has_condition(cluster, "Failed"), what="the job to fail")
        found = conditions(status)
        for kind in ("FailureTarget", "Failed"):
            assert (found[kind]["reason"], found[kind]["message"]) == (
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        assert (status["failed"], status["active"]) == (2, 0) and "completionTime" not in status
        warnings = await reasons(cluster, "BackoffLimitExceeded")
        assert [(e["type"], e["message"]) for e in warnings] == [
            ("Warning", "Job has reached the specified backoff limit")
        ]


async def test_pod_failure_policy_ignores_disruptions_and_fails_the_job_on_an_exit_code(apiserver):  # noqa: F811
    spec = {"backoffLimit": 0, "podFailurePolicy": POLICY}
    body = job(**spec)
    body["spec"]["template"]["spec"]["containers"][0]["name"] = "main"
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, body)
        (first,) = await wait_live(cluster, 1)
        # An evicted pod: ignored, so backoffLimit 0 is not exceeded and the replacement comes at once.
        disrupted = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
        await finish(cluster, first, phase="Failed", at=time.now(), exit_code=137, conditions=[disrupted])
        (second,) = await wait_live(cluster, 1)
        assert second["metadata"]["name"] != first["metadata"]["name"]
        status = await job_status(cluster)
        assert status.get("failed", 0) == 0 and "FailureTarget" not in conditions(status)

        # The finalizer goes after the replacement is made (upstream's syncJob order too).
        async def released() -> bool:
            pod = await cluster.client.get(PODS, first["metadata"]["name"], namespace=NS)
            return TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])

        await cluster.wait_for(released, what="the disrupted pod's tracking finalizer to go")
        # Exit code 42 of container "main": the job fails at once, naming the rule.
        await finish(cluster, second, phase="Failed", at=time.now(), exit_code=42)
        status = await cluster.wait_for(has_condition(cluster, "Failed"), what="the job to fail")
        message = (
            f"Container main for pod {NS}/{second['metadata']['name']} failed with exit code 42 "
            "matching FailJob rule at index 0"
        )
        found = conditions(status)
        for kind in ("FailureTarget", "Failed"):
            assert (found[kind]["reason"], found[kind]["message"]) == ("PodFailurePolicy", message)
        assert status["failed"] == 1
        warnings = await reasons(cluster, "PodFailurePolicy")
        assert [(e["type"], e["message"]) for e in warnings] == [("Warning", message)]


async def test_the_active_deadline_fails_the_job_once_its_pods_are_gone(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.create_node("node-1")
        await cluster.client.create(JOBS, job(activeDeadlineSeconds=30))
        (pod,) = await wait_live(cluster, 1)
        name = pod["metadata"]["name"]
        await cluster.client.create(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": NS},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
            },
            subresource="binding",
        )
        await cluster.client.patch(
            PODS, name, {"status": {"phase": "Running"}}, namespace=NS, subresource="status"
        )
        await cluster.wait_for(status_with(cluster, active=1), what="the job started")
        await time.advance(29)
        await asyncio.sleep(0.05)
        assert "FailureTarget" not in conditions(await job_status(cluster))
        # Wall time moves with the clock, so any sync from now on finds the deadline passed.
        await time.advance(1)
        status = await cluster.wait_for(has_condition(cluster, "FailureTarget"), what="the deadline to pass")
        assert conditions(status)["FailureTarget"]["reason"] == "DeadlineExceeded"
        # The bound pod terminates gracefully: the job is Failed only once it is gone.
        status = await cluster.wait_for(
            status_with(cluster, terminating=1, failed=1), what="the pod terminating"
        )
        assert "Failed" not in conditions(status)
        await cluster.finish_pod_deletion(name)
        status = await cluster.wait_for(has_condition(cluster, "Failed"), what="the job to fail")
        assert conditions(status)["Failed"]["message"] == "Job was active longer than specified deadline"
        assert (status["failed"], status["active"], status["terminating"]) == (1, 0, 0)


async def test_indexed_jobs_give_each_pod_its_index(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job("idx", completions=3, parallelism=2, completionMode="Indexed"))
        pods = await wait_live(cluster, 2, "idx")
        by_index = {p["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION]: p for p in pods}
        assert sorted(by_index) == ["0", "1"]
        zero = by_index["0"]
        assert zero["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "0"
        assert zero["metadata"]["generateName"] == "idx-0-"
        assert zero["spec"]["hostname"] == "idx-0"
        assert {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                }
            },
        } in zero["spec"]["containers"][0]["env"]
        await finish(cluster, by_index["1"], phase="Succeeded", at=time.now())
        await cluster.wait_for(
            status_with(cluster, "idx", completedIndexes="1", succeeded=1), what="index 1 done"
        )
        pods = await wait_live(cluster, 2, "idx")
        assert sorted(p["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION] for p in pods) == ["0", "2"]
        # Index 0 fails: it is retried, with the same index, after the back-off.
        await finish(cluster, by_index["0"], phase="Failed", at=time.now())
        await cluster.wait_for(status_with(cluster, "idx", failed=1), what="the failure counted")
        await time.advance(10)

        async def zero_again() -> dict | None:
            for pod in await job_pods(cluster, "idx"):
                index = pod["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION]
                if index == "0" and pod["metadata"]["name"] != zero["metadata"]["name"]:
                    return pod
            return None

        await cluster.wait_for(zero_again, what="index 0 retried")
        for pod in await job_pods(cluster, "idx"):
            await finish(cluster, pod, phase="Succeeded", at=time.now())
        status = await cluster.wait_for(has_condition(cluster, "Complete", "idx"), what="the job to complete")
        assert (status["completedIndexes"], status["succeeded"], status["failed"]) == ("0-2", 3, 1)


def by_index(pods: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION]: p for p in pods}


async def test_backoff_limit_per_index_retries_each_index_on_its_own(apiserver):  # noqa: F811
    spec = {"completions": 3, "parallelism": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 1}
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job("per", **spec))
        first = by_index(await wait_live(cluster, 3, "per"))
        assert first["1"]["metadata"]["annotations"][INDEX_FAILURE_COUNT_ANNOTATION] == "0"
        await finish(cluster, first["1"], phase="Failed", at=time.now())
        await cluster.wait_for(status_with(cluster, "per", failed=1, failedIndexes=""), what="one failure")
        await asyncio.sleep(0.05)
        assert sorted(by_index(await job_pods(cluster, "per"))) == [
            "0",
            "2",
        ]  # index 1 waits out its back-off
        await time.advance(10)
        second = by_index(await wait_live(cluster, 3, "per"))
        retry = second["1"]
        assert retry["metadata"]["name"] != first["1"]["metadata"]["name"]
        assert retry["metadata"]["annotations"][INDEX_FAILURE_COUNT_ANNOTATION] == "1"
        # The retry fails too: index 1 has used its one retry and fails for good; the others go on.
        await finish(cluster, retry, phase="Failed", at=time.now())
        await cluster.wait_for(
            status_with(cluster, "per", failed=2, failedIndexes="1"), what="index 1 failed"
        )
        await time.advance(60)
        await asyncio.sleep(0.05)
        assert sorted(by_index(await job_pods(cluster, "per"))) == ["0", "2"]
        for index in ("0", "2"):
            await finish(cluster, second[index], phase="Succeeded", at=time.now())
        status = await cluster.wait_for(has_condition(cluster, "Failed", "per"), what="the job to fail")
        assert (conditions(status)["Failed"]["reason"], conditions(status)["Failed"]["message"]) == (
            "FailedIndexes",
            "Job has failed indexes",
        )
        assert (status["completedIndexes"], status["failedIndexes"], status["succeeded"]) == ("0,2", "1", 2)


async def test_a_fail_index_rule_and_max_failed_indexes_end_the_job(apiserver):  # noqa: F811
    spec = {
        "completions": 4,
        "parallelism": 2,
        "completionMode": "Indexed",
        "backoffLimitPerIndex": 3,
        "maxFailedIndexes": 0,
        "podFailurePolicy": {
            "rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}]
        },
    }
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job("cap", **spec))
        pods = by_index(await wait_live(cluster, 2, "cap"))
        await finish(cluster, pods["0"], phase="Failed", at=time.now(), exit_code=3)
        status = await cluster.wait_for(has_condition(cluster, "Failed", "cap"), what="the job to fail")
        found = conditions(status)
        assert (found["FailureTarget"]["reason"], found["Failed"]["reason"]) == (
            "MaxFailedIndexesExceeded",
            "MaxFailedIndexesExceeded",
        )
        assert found["Failed"]["message"] == "Job has exceeded the specified maximal number of failed indexes"
        assert status["failedIndexes"] == "0" and status["active"] == 0
        assert await job_pods(cluster, "cap") == []  # index 1's pod was stopped


async def test_a_success_policy_ends_the_job_early(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(
            JOBS,
            job(
                "leader",
                completions=3,
                parallelism=3,
                completionMode="Indexed",
                successPolicy={"rules": [{"succeededIndexes": "0"}]},
            ),
        )
        pods = await wait_live(cluster, 3, "leader")
        leader = next(p for p in pods if p["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION] == "0")
        await finish(cluster, leader, phase="Succeeded", at=time.now())
        status = await cluster.wait_for(
            has_condition(cluster, "Complete", "leader"), what="the job to complete"
        )
        found = conditions(status)
        assert (found["SuccessCriteriaMet"]["reason"], found["SuccessCriteriaMet"]["message"]) == (
            "SuccessPolicy",
            "Matched rules at index 0",
        )
        assert found["Complete"]["reason"] == "SuccessPolicy"
        assert (status["succeeded"], status["completedIndexes"], status["active"]) == (1, "0", 0)
        assert await job_pods(cluster, "leader") == []  # the other indexes were stopped


async def test_suspend_and_resume(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job(suspend=True))
        status = await cluster.wait_for(has_condition(cluster, "Suspended"), what="the job suspended")
        assert conditions(status)["Suspended"]["reason"] == "JobSuspended"
        assert "startTime" not in status and await job_pods(cluster) == []
        await time.advance(60)
        while True:
            current = await cluster.client.get(JOBS, "pi", namespace=NS)
            current["spec"]["suspend"] = False
            try:
                await cluster.client.replace(JOBS, current)
                break
            except errors.ConflictError:
                continue
        await wait_live(cluster, 1)

        async def resumed() -> dict | None:
            status = await job_status(cluster)
            suspended = conditions(status).get("Suspended")
            return status if suspended is not None and suspended["status"] == "False" else None

        status = await cluster.wait_for(resumed, what="the job resumed")
        assert conditions(status)["Suspended"]["reason"] == "JobResumed"
        assert status["startTime"] == format_time(time.now())
        assert [e["message"] for e in await reasons(cluster, "Suspended")] == ["Job suspended"]
        assert [e["message"] for e in await reasons(cluster, "Resumed")] == ["Job resumed"]


async def test_without_completions_the_first_success_ends_the_job(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, time):
        await cluster.client.create(JOBS, job(parallelism=2, ttlSecondsAfterFinished=5))
        first, second = await wait_live(cluster, 2)
        await finish(cluster, first, phase="Succeeded", at=time.now())
        await cluster.wait_for(status_with(cluster, succeeded=1, active=1), what="one success")
        assert len(await job_pods(cluster)) == 1  # no new pod after a success
        await finish(cluster, second, phase="Succeeded", at=time.now())
        await cluster.wait_for(has_condition(cluster, "Complete"), what="the job to complete")
        # ttlSecondsAfterFinished: deleted (foreground) five seconds after finishing.
        await time.advance(4)
        await asyncio.sleep(0.05)
        pi = await cluster.client.get(JOBS, "pi", namespace=NS)
        assert not pi["metadata"].get("deletionTimestamp")
        await time.advance(1)

        async def deleting() -> bool:
            try:
                pi = await cluster.client.get(JOBS, "pi", namespace=NS)
            except errors.NotFoundError:
                return True
            return bool(pi["metadata"].get("deletionTimestamp")) and "foregroundDeletion" in pi[
                "metadata"
            ].get("finalizers", [])

        await cluster.wait_for(deleting, what="the job deleted in the foreground")


async def test_pods_of_a_deleted_job_lose_the_tracking_finalizer(apiserver):  # noqa: F811
    async with job_cluster(apiserver) as (cluster, _):
        await cluster.client.create(JOBS, job(parallelism=2, completions=2))
        pods = await wait_live(cluster, 2)
        await cluster.client.delete(JOBS, "pi", namespace=NS, propagation_policy="Background")

        async def released() -> bool:
            for pod in pods:
                try:
                    fresh = await cluster.client.get(PODS, pod["metadata"]["name"], namespace=NS)
                except errors.NotFoundError:
                    continue
                if TRACKING_FINALIZER in (fresh["metadata"].get("finalizers") or []):
                    return False
            return True

        await cluster.wait_for(released, what="the finalizers removed")


@pytest.mark.parametrize("mode", ["Sideways"])
async def test_an_unknown_completion_mode_is_reported_not_synced(apiserver, mode):  # noqa: F811
    """The API server refuses unknown modes, so this reaches the controller only from a newer
    server; the controller must then leave the job alone."""
    async with job_cluster(apiserver) as (cluster, _):
        controller = cluster.controllers[0]
        shared = job("odd", completionMode=mode)
        shared["metadata"].update(uid="u-odd", resourceVersion="1")
        cache = cluster.ctx.informers.informer(JOBS).cache
        cache.add(shared)
        try:
            await controller.reconcile(f"{NS}/odd")
        finally:
            cache.delete(shared)
        events = await reasons(cluster, "UnknownCompletionMode")
        assert events[0]["message"] == "Skipped Job sync because completion mode is unknown"
        assert await job_pods(cluster, "odd", live_only=False) == []
