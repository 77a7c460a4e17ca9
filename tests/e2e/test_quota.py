"""Quotas and limit ranges on the shared lab with real kubectl: ``kubectl create quota``, a
LimitRange that gives pods their cpu request, a Deployment scaled past the quota (the ReplicaSet
reports FailedCreate with upstream's "exceeded quota" message), and ``kubectl get``/``describe``
showing the usage the resource quota controller keeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import Lab

NS = "quota"

LIMIT_RANGE = f"""\
apiVersion: v1
kind: LimitRange
metadata: {{name: cpu-defaults, namespace: {NS}}}
spec:
  limits:
  - type: Container
    defaultRequest: {{cpu: 100m}}
    default: {{cpu: 200m}}
"""


def until(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def get_json(lab: Lab, *args: str) -> dict:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        yield lab


def test_a_deployment_scaled_past_its_quota(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=LIMIT_RANGE)
    cluster.kubectl(
        "create", "quota", "web", "--hard=pods=2,requests.cpu=1,count/deployments.apps=5", "-n", NS
    )
    until(
        lambda: (
            get_json(cluster, "quota", "web", "-n", NS).get("status", {}).get("used")
            == {"count/deployments.apps": "0", "pods": "0", "requests.cpu": "0"}
        ),
        what="the quota controller to count the namespace",
    )
    cluster.kubectl(
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=3",
        "-n",
        NS,
        "--",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 3600 & wait",
    )

    def failed_create() -> list[str]:
        events = get_json(cluster, "events", "-n", NS, "--field-selector", "reason=FailedCreate")["items"]
        return [event["message"] for event in events]

    until(lambda: bool(failed_create()), what="a FailedCreate event")
    message = failed_create()[0]
    assert message.startswith('Error creating: pods "web-')
    assert message.endswith(
        "is forbidden: exceeded quota: web, requested: pods=1, used: pods=2, limited: pods=2"
    )

    pods = get_json(cluster, "pods", "-n", NS, "-l", "app=web")["items"]
    assert len(pods) == 2
    container = pods[0]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "200m"}, "requests": {"cpu": "100m"}}
    assert pods[0]["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container busybox; cpu limit for container busybox"
    )

    until(
        lambda: (
            get_json(cluster, "quota", "web", "-n", NS)["status"]["used"]
            == {"count/deployments.apps": "1", "pods": "2", "requests.cpu": "200m"}
        ),
        what="the quota's usage",
    )
    table = cluster.kubectl("get", "quota", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert table[1].split()[0] == "web"
    assert "count/deployments.apps: 1/5, pods: 2/2, requests.cpu: 200m/1" in table[1]
    described = cluster.kubectl("describe", "quota", "web", "-n", NS).stdout
    rows = {tuple(line.split()) for line in described.splitlines()}
    assert ("pods", "2", "2") in rows
    assert ("requests.cpu", "200m", "1") in rows
    limits = cluster.kubectl("get", "limits", "-n", NS).stdout.splitlines()
    assert limits[0].split() == ["NAME", "CREATED", "AT"]
    assert limits[1].split()[0] == "cpu-defaults"

    # Scaling down frees the usage; the ReplicaSet's next pod then fits.
    cluster.kubectl("scale", "deployment/web", "-n", NS, "--replicas=1")
    until(
        lambda: get_json(cluster, "quota", "web", "-n", NS)["status"]["used"].get("pods") == "1",
        timeout=90,
        what="usage freed by the deleted pods",
    )
