"""A CronJob made with real kubectl runs its Job at the next minute (the controller runs as its
own ServiceAccount under RBAC in the lab), and kubectl shows the schedule and the last run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab
from tests.e2e.test_workloads import get_json, until

NS = "cron"


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        yield lab


def test_a_cron_job_runs_at_the_next_minute(cluster: Lab) -> None:
    cluster.kubectl(
        "create", "cronjob", "hello", "-n", NS, "--image=busybox", "--schedule=* * * * *", "--",
        "sh", "-c", "echo hello from cron",
    )  # fmt: skip

    def jobs() -> list[dict]:
        return get_json(cluster, "jobs", "-n", NS)["items"]

    until(lambda: len(jobs()) >= 1, timeout=90, what="the CronJob's first Job")
    (job,) = jobs()[:1]
    assert job["metadata"]["name"].startswith("hello-")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    cluster.kubectl(
        "wait", f"job/{job['metadata']['name']}", "-n", NS, "--for=condition=Complete", "--timeout=60s"
    )
    until(
        lambda: (get_json(cluster, "cronjob", "hello", "-n", NS).get("status") or {}).get(
            "lastSuccessfulTime"
        ),
        what="the CronJob to record the success",
    )
    table = cluster.kubectl("get", "cronjob", "hello", "-n", NS).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "SCHEDULE", "TIMEZONE"]
    assert table[1].split()[0] == "hello" and "* * * * *" in table[1]
    logs = cluster.kubectl("logs", f"job/{job['metadata']['name']}", "-n", NS).stdout
    assert "hello from cron" in logs
