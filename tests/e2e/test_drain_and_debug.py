"""Node maintenance and debugging with real kubectl: ``kubectl drain`` evicts through
``pods/eviction`` and honours a PodDisruptionBudget (the disruption controller keeps its
status); ``kubectl debug`` adds an ephemeral container that the kubelet runs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab
from tests.e2e.test_workloads import get_json, until

NS = "maintenance"
GUARDED = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: guarded, namespace: {NS}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: guarded}}}}
  template:
    metadata: {{labels: {{app: guarded}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: main, image: busybox, command: [sh, -c, "while true; do sleep 1; done"]}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: guarded, namespace: {NS}}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: guarded}}}}
"""


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    lab.kubectl("create", "namespace", NS)
    try:
        yield lab
    finally:
        for node in ("node-1", "node-2", "node-3"):
            lab.kubectl("uncordon", node, check=False)
        lab.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def budget(lab: Lab) -> dict:
    return get_json(lab, "pdb", "guarded", "-n", NS).get("status") or {}


def guarded_nodes(lab: Lab) -> list[str]:
    pods = get_json(lab, "pods", "-n", NS, "-l", "app=guarded")["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods if not p["metadata"].get("deletionTimestamp"))


def test_drain_evicts_within_the_disruption_budget(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=GUARDED)
    cluster.kubectl("rollout", "status", "deployment/guarded", "-n", NS, "--timeout=90s")
    until(lambda: budget(cluster).get("disruptionsAllowed") == 1, what="the PDB to allow one disruption")
    status = budget(cluster)
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (3, 2, 3)

    victim = guarded_nodes(cluster)[0]
    drained = cluster.kubectl(
        "drain",
        victim,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--timeout=120s",
        timeout=150,
    )
    assert f"node/{victim} drained" in drained.stdout
    assert "evicting pod maintenance/guarded-" in drained.stdout + drained.stderr
    assert get_json(cluster, "node", victim)["spec"].get("unschedulable") is True
    # the Deployment replaces the evicted replica elsewhere; the budget recovers
    until(
        lambda: len(guarded_nodes(cluster)) == 3 and victim not in guarded_nodes(cluster),
        what="the replica to be replaced on another node",
    )
    until(lambda: budget(cluster).get("currentHealthy") == 3, what="three healthy pods again")
    cluster.kubectl("uncordon", victim)

    # a budget that allows no disruption stops the drain (kubectl retries the 429 until its timeout)
    cluster.kubectl("patch", "pdb", "guarded", "-n", NS, "--type=merge", "-p", '{"spec":{"minAvailable":3}}')
    until(lambda: budget(cluster).get("disruptionsAllowed") == 0, what="the PDB to allow nothing")
    target = guarded_nodes(cluster)[0]
    refused = cluster.kubectl(
        "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=8s",
        check=False, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
    assert target in guarded_nodes(cluster)
    cluster.kubectl("uncordon", target)


def test_kubectl_debug_runs_an_ephemeral_container(cluster: Lab) -> None:
    cluster.kubectl(
        "run", "patient", "-n", NS, "--image=busybox", "--restart=Never", "--command", "--",
        "sh", "-c", "while true; do sleep 1; done",
    )  # fmt: skip
    cluster.kubectl("wait", "pod/patient", "-n", NS, "--for=condition=Ready", "--timeout=60s")
    cluster.kubectl(
        "debug", "patient", "-n", NS, "--image=busybox", "-c", "doctor", "--target=patient", "--",
        "sh", "-c", "echo checking the patient; sleep 30",
    )  # fmt: skip

    def doctor_running() -> bool:
        pod = get_json(cluster, "pod", "patient", "-n", NS)
        states = {s["name"]: s["state"] for s in pod["status"].get("ephemeralContainerStatuses") or []}
        return "running" in states.get("doctor", {})

    until(doctor_running, what="the ephemeral container to run")
    until(
        lambda: "checking the patient" in cluster.kubectl("logs", "patient", "-n", NS, "-c", "doctor").stdout,
        what="the debug container's output",
    )
    spec = json.loads(cluster.kubectl("get", "pod", "patient", "-n", NS, "-o", "json").stdout)["spec"]
    assert [c["name"] for c in spec["ephemeralContainers"]] == ["doctor"]
    assert spec["ephemeralContainers"][0]["targetContainerName"] == "patient"
