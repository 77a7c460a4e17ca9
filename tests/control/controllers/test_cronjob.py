"""The CronJob controller against the real API server, on a fake clock: Jobs at the scheduled
times with upstream's names, concurrency policies, completion tracking, history limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from control.client.testing import FakeClock
from control.controllers.cronjob import SCHEDULED_TIMESTAMP_ANNOTATION, CronJobController
from control.controllers.kinds import CRON_JOBS, EVENTS, JOBS
from control.controllers.ownership import format_time, parse_time
from control.resources import cron
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"
START = 1000.0


class Clocked:
    """A fake monotonic clock for the queue, and wall time moving with it from the real now
    (CronJobs count from their creation, which the API server stamps with the real time)."""

    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.wall = datetime.now(UTC)

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.clock.now() - START)

    async def advance_to(self, moment: datetime) -> None:
        self.clock.advance(max((moment - self.now()).total_seconds(), 0.0))
        await asyncio.sleep(0)


@asynccontextmanager
async def cron_cluster(server: Any) -> AsyncIterator[tuple[Cluster, Clocked]]:
    time = Clocked()
    async with running(
        server, lambda ctx: CronJobController(ctx, clock=time.clock, now=time.now, local_zone=UTC, workers=2)
    ) as cluster:
        yield cluster, time


def cron_job(name: str = "tick", schedule: str = "* * * * *", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"team": "ops"}},
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
                    }
                },
            },
            **spec,
        },
    }


async def jobs(cluster: Cluster) -> list[dict[str, Any]]:
    listing = (await cluster.client.list(JOBS, namespace=NS))["items"]
    return sorted(
        (j for j in listing if not j["metadata"].get("deletionTimestamp")),
        key=lambda j: j["metadata"]["name"],
    )


async def job_count(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    async def check() -> list | None:
        found = await jobs(cluster)
        return found if len(found) == count else None

    return await cluster.wait_for(check, what=f"{count} jobs")


async def complete(cluster: Cluster, job: dict[str, Any], at: datetime) -> None:
    stamp = format_time(at)
    status = {
        "startTime": stamp,
        "completionTime": stamp,
        "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": stamp},
            {"type": "Complete", "status": "True", "lastTransitionTime": stamp},
        ],
    }
    await cluster.client.patch(
        JOBS, job["metadata"]["name"], {"status": status}, namespace=NS, subresource="status"
    )


async def first_activation(cluster: Cluster, name: str, schedule: str) -> datetime:
    created = parse_time(
        (await cluster.client.get(CRON_JOBS, name, namespace=NS))["metadata"]["creationTimestamp"]
    )
    activation = cron.parse(schedule).next(created, zone=UTC)
    assert activation is not None
    return activation


async def cron_status(cluster: Cluster, name: str, **expected: Any) -> dict[str, Any]:
    async def check() -> dict | None:
        found = (await cluster.client.get(CRON_JOBS, name, namespace=NS)).get("status") or {}
        return found if all(found.get(k) == v for k, v in expected.items()) else None

    return await cluster.wait_for(check, what=f"CronJob {name} status {expected}")


async def reasons(cluster: Cluster, reason: str) -> list[str]:
    async def found() -> list[str] | None:
        events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        messages = [e["message"] for e in events if e["reason"] == reason]
        return messages or None

    return await cluster.wait_for(found, what=f"a {reason} event")


async def test_jobs_run_at_scheduled_times_one_at_a_time_with_forbid(apiserver):  # noqa: F811
    async with cron_cluster(apiserver) as (cluster, time):
        await cluster.client.create(CRON_JOBS, cron_job(concurrencyPolicy="Forbid"), namespace=NS)
        first = await first_activation(cluster, "tick", "* * * * *")
        assert await jobs(cluster) == []  # nothing before the first activation
        await time.advance_to(first + timedelta(seconds=1))
        (job,) = await job_count(cluster, 1)
        assert job["metadata"]["name"] == f"tick-{int(first.timestamp() // 60)}"
        assert job["metadata"]["labels"]["team"] == "ops"
        assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == first.isoformat()
        assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

        status_now = await cron_status(cluster, "tick", lastScheduleTime=format_time(first))
        assert [ref["name"] for ref in status_now["active"]] == [job["metadata"]["name"]]
        # the next minute comes while the first job still runs: Forbid skips it
        await time.advance_to(first + timedelta(minutes=1, seconds=1))
        assert await reasons(cluster, "JobAlreadyActive") == [
            "Not starting job because prior execution is running and concurrency policy is Forbid"
        ]
        assert len(await jobs(cluster)) == 1
        # once it completes, the skipped activation runs (as upstream: it is still the latest unmet one)
        await complete(cluster, job, at=time.now())
        second = first + timedelta(minutes=1)
        done = await cron_status(
            cluster, "tick", lastSuccessfulTime=format_time(time.now()), lastScheduleTime=format_time(second)
        )
        assert [ref["name"] for ref in done["active"]] == [f"tick-{int(second.timestamp() // 60)}"]
        assert (await reasons(cluster, "SawCompletedJob"))[0] == (
            f"Saw completed job: {job['metadata']['name']}, condition: Complete"
        )
        await job_count(cluster, 2)


async def test_replace_deletes_the_running_job_and_history_is_trimmed(apiserver):  # noqa: F811
    async with cron_cluster(apiserver) as (cluster, time):
        body = cron_job("swap", concurrencyPolicy="Replace", successfulJobsHistoryLimit=1)
        await cluster.client.create(CRON_JOBS, body, namespace=NS)
        first = await first_activation(cluster, "swap", "* * * * *")
        await time.advance_to(first + timedelta(seconds=1))
        (old,) = await job_count(cluster, 1)
        await time.advance_to(first + timedelta(minutes=1, seconds=1))
        replacement = f"swap-{int((first + timedelta(minutes=1)).timestamp() // 60)}"

        async def replaced() -> list | None:
            found = await jobs(cluster)
            return found if [j["metadata"]["name"] for j in found] == [replacement] else None

        (new,) = await cluster.wait_for(replaced, what="the running job to be replaced")
        assert f"Deleted job {old['metadata']['name']}" in await reasons(cluster, "SuccessfulDelete")
        # two completed jobs with a history limit of one: the older goes
        await complete(cluster, new, at=time.now())
        await cron_status(cluster, "swap", lastSuccessfulTime=format_time(time.now()))  # seen done
        await time.advance_to(first + timedelta(minutes=2, seconds=1))
        (_, third) = await job_count(cluster, 2)
        await complete(cluster, third, at=time.now())
        (kept,) = await job_count(cluster, 1)  # two completed, a history of one
        assert kept["metadata"]["name"] == third["metadata"]["name"]


async def test_suspended_and_unparseable_cron_jobs_run_nothing(apiserver):  # noqa: F811
    async with cron_cluster(apiserver) as (cluster, time):
        await cluster.client.create(CRON_JOBS, cron_job("paused", suspend=True), namespace=NS)
        first = await first_activation(cluster, "paused", "* * * * *")
        await time.advance_to(first + timedelta(minutes=3))
        await asyncio.sleep(0.2)
        assert await jobs(cluster) == []
        await cluster.client.patch(CRON_JOBS, "paused", {"spec": {"suspend": False}}, namespace=NS)
        await job_count(cluster, 1)  # only the latest missed activation runs
