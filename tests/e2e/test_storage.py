"""Storage on the shared 3-node lab with real kubectl: a StatefulSet's claims are provisioned by
the default StorageClass (``standard``, WaitForFirstConsumer) on the node the scheduler picks, the
data a pod writes is still there for the pod that replaces it, scaling down keeps the claims
(Retain, the default) and ``whenScaled: Delete`` takes them away with their pods.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import Lab

NS = "storage"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def statefulset(name: str, *, replicas: int, when_scaled: str = "Retain") -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: {NS}}}
spec:
  serviceName: {name}
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  persistentVolumeClaimRetentionPolicy: {{whenDeleted: Retain, whenScaled: {when_scaled}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "while true; do sleep 5; done"]
        volumeMounts: [{{name: www, mountPath: /usr/share/www}}]
  volumeClaimTemplates:
  - metadata: {{name: www}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Mi}}}}
"""


def until(condition: Callable[[], bool], *, timeout: float = 90, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def get_json(lab: Lab, *args: str) -> dict:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


def claims(lab: Lab, app: str) -> dict[str, dict]:
    return {c["metadata"]["name"]: c for c in get_json(lab, "pvc", "-n", NS, "-l", f"app={app}")["items"]}


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        yield lab


def test_claims_are_provisioned_bound_and_outlive_their_pods(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=statefulset("web", replicas=2))
    cluster.kubectl("rollout", "status", "statefulset/web", "-n", NS, "--timeout=120s")
    made = claims(cluster, "web")
    assert sorted(made) == ["www-web-0", "www-web-1"]
    assert {c["status"]["phase"] for c in made.values()} == {"Bound"}
    assert {c["spec"]["storageClassName"] for c in made.values()} == {"standard"}
    table = cluster.kubectl("get", "pvc", "-n", NS).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "STATUS", "VOLUME"]
    assert sorted((row.split()[0], row.split()[1]) for row in table[1:]) == [
        ("www-web-0", "Bound"),
        ("www-web-1", "Bound"),
    ]
    first = get_json(cluster, "pod", "web-0", "-n", NS)
    # The volume was provisioned on the node the scheduler chose, and the pod runs there.
    assert made["www-web-0"]["metadata"]["annotations"][SELECTED_NODE] == first["spec"]["nodeName"]
    volume = get_json(cluster, "pv", made["www-web-0"]["spec"]["volumeName"])
    assert volume["spec"]["claimRef"]["name"] == "www-web-0"

    cluster.kubectl(
        "exec", "web-0", "-n", NS, "--", "sh", "-c", "echo written-by-web-0 > /usr/share/www/data"
    )
    cluster.kubectl("delete", "pod", "web-0", "-n", NS, "--timeout=60s")

    def replaced() -> bool:
        pods = get_json(cluster, "pods", "-n", NS, "-l", "app=web")["items"]
        return any(
            p["metadata"]["name"] == "web-0"
            and p["metadata"]["uid"] != first["metadata"]["uid"]
            and p.get("status", {}).get("phase") == "Running"
            for p in pods
        )

    until(replaced, what="a new web-0 running")
    cluster.kubectl("rollout", "status", "statefulset/web", "-n", NS, "--timeout=120s")
    again = get_json(cluster, "pod", "web-0", "-n", NS)
    assert again["spec"]["nodeName"] == first["spec"]["nodeName"]  # the volume's node affinity
    read = cluster.kubectl("exec", "web-0", "-n", NS, "--", "cat", "/usr/share/www/data")
    assert read.stdout.strip() == "written-by-web-0"
    assert claims(cluster, "web")["www-web-0"]["metadata"]["uid"] == made["www-web-0"]["metadata"]["uid"]

    # Scaling down keeps the claims (whenScaled: Retain).
    cluster.kubectl("scale", "statefulset/web", "-n", NS, "--replicas=1")
    until(
        lambda: (
            [p["metadata"]["name"] for p in get_json(cluster, "pods", "-n", NS, "-l", "app=web")["items"]]
            == ["web-0"]
        ),
        what="web-1 gone",
    )
    kept = claims(cluster, "web")
    assert sorted(kept) == ["www-web-0", "www-web-1"] and kept["www-web-1"]["status"]["phase"] == "Bound"


def test_when_scaled_delete_takes_the_claims_with_the_pods(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=statefulset("cache", replicas=2, when_scaled="Delete"))
    cluster.kubectl("rollout", "status", "statefulset/cache", "-n", NS, "--timeout=120s")
    made = claims(cluster, "cache")
    assert sorted(made) == ["www-cache-0", "www-cache-1"]
    cluster.kubectl("scale", "statefulset/cache", "-n", NS, "--replicas=1")
    until(lambda: sorted(claims(cluster, "cache")) == ["www-cache-0"], what="www-cache-1 deleted")
    gone = made["www-cache-1"]["spec"]["volumeName"]
    until(
        lambda: gone not in {v["metadata"]["name"] for v in get_json(cluster, "pv")["items"]},
        what=f"its volume {gone} reclaimed (Delete)",
    )
    assert claims(cluster, "cache")["www-cache-0"]["status"]["phase"] == "Bound"
