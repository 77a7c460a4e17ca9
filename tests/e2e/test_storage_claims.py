"""PersistentVolumeClaims on the shared 3-node lab with real kubectl: `kubelab up` gives the default
StorageClass ``standard``; a claim naming no class gets it, waits for its first consumer, is
provisioned as a directory on the node the scheduler picks and bound; a pod writes to it, is
deleted, and a new pod reads the data back; deleting the claim (reclaim Delete) removes the volume
and its directory. An Immediate class provisions at once; a pod whose claim does not exist waits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Lab

NS = "claims"


def until(condition: Callable[[], bool], *, timeout: float = 90, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def get_json(lab: Lab, *args: str) -> dict:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


def claim(name: str, *, storage_class: str | None = None) -> str:
    class_line = f"\n  storageClassName: {storage_class}" if storage_class is not None else ""
    return f"""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 16Mi}}}}{class_line}
"""


def pod(name: str, claim_name: str, script: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, {json.dumps(script)}]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim_name}}}
"""


def phase(lab: Lab, *args: str) -> str:
    return get_json(lab, *args).get("status", {}).get("phase", "")


def events(lab: Lab, name: str) -> list[dict]:
    listing = get_json(lab, "events", "-n", NS, "--field-selector", f"involvedObject.name={name}")
    return listing["items"]


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        yield lab


def test_kubelab_up_gives_a_default_local_path_class(cluster: Lab) -> None:
    table = cluster.kubectl("get", "storageclass").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    row = next(line.split() for line in table[1:] if line.startswith("standard"))
    assert row[:6] == [
        "standard",
        "(default)",
        "kubelab.dev/local-path",
        "Delete",
        "WaitForFirstConsumer",
        "false",
    ]


def test_a_claim_keeps_its_data_across_pods_and_goes_with_its_volume(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=claim("data"))
    created = get_json(cluster, "pvc", "data", "-n", NS)
    assert created["spec"]["storageClassName"] == "standard"
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    until(
        lambda: any(e["reason"] == "WaitForFirstConsumer" for e in events(cluster, "data")),
        what="the claim to wait for its first consumer",
    )
    assert phase(cluster, "pvc", "data", "-n", NS) == "Pending"

    cluster.kubectl("apply", "-f", "-", input=pod("writer", "data", "echo kept > /data/file && sleep 3600"))
    cluster.kubectl("wait", "pod/writer", "-n", NS, "--for=condition=Ready", "--timeout=120s")
    bound = get_json(cluster, "pvc", "data", "-n", NS)
    assert bound["status"]["phase"] == "Bound"
    volume_name = bound["spec"]["volumeName"]
    assert volume_name == f"pvc-{created['metadata']['uid']}"
    node = get_json(cluster, "pod", "writer", "-n", NS)["spec"]["nodeName"]
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    volume = get_json(cluster, "pv", volume_name)
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
    ]
    directory = Path(volume["spec"]["hostPath"]["path"])
    assert directory == cluster.data_dir / "storage" / f"{volume_name}_{NS}_data"

    table = cluster.kubectl("get", "pv,pvc", "-n", NS).stdout
    assert f"persistentvolume/{volume_name}" in table
    pvc_row = next(
        line.split() for line in table.splitlines() if line.startswith("persistentvolumeclaim/data")
    )
    assert pvc_row[:6] == ["persistentvolumeclaim/data", "Bound", volume_name, "16Mi", "RWO", "standard"]
    pv_header = table.splitlines()[0].split()
    assert pv_header[:8] == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM"]
    pv_row = next(
        line.split() for line in table.splitlines() if line.startswith(f"persistentvolume/{volume_name}")
    )
    assert pv_row[1:6] == ["16Mi", "RWO", "Delete", "Bound", f"{NS}/data"]
    until(lambda: (directory / "file").exists(), what="the writer's file on the host")

    # Delete the pod: the claim keeps the data for the next one.
    cluster.kubectl("delete", "pod", "writer", "-n", NS, "--wait=true", "--timeout=60s")
    cluster.kubectl("apply", "-f", "-", input=pod("reader", "data", "cat /data/file && sleep 3600"))
    cluster.kubectl("wait", "pod/reader", "-n", NS, "--for=condition=Ready", "--timeout=120s")
    until(
        lambda: cluster.kubectl("logs", "reader", "-n", NS).stdout.strip() == "kept",
        what="the data read back",
    )

    # A claim in use is only marked for deletion; once its pod is gone, claim, volume and directory go.
    cluster.kubectl("delete", "pvc", "data", "-n", NS, "--wait=false")
    until(
        lambda: "Terminating" in cluster.kubectl("get", "pvc", "data", "-n", NS).stdout,
        what="the claim to terminate",
    )
    assert phase(cluster, "pv", volume_name) == "Bound"
    cluster.kubectl("delete", "pod", "reader", "-n", NS, "--wait=true", "--timeout=60s")
    until(
        lambda: cluster.kubectl("get", "pv", volume_name, check=False).returncode != 0,
        what="the provisioned volume to be deleted",
    )
    assert not directory.exists()
    assert cluster.kubectl("get", "pvc", "data", "-n", NS, check=False).returncode != 0


def test_an_immediate_class_provisions_before_any_pod(cluster: Lab) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input="""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: instant}
provisioner: kubelab.dev/local-path
volumeBindingMode: Immediate
reclaimPolicy: Retain
""",
    )
    try:
        cluster.kubectl("apply", "-f", "-", input=claim("quick", storage_class="instant"))
        until(lambda: phase(cluster, "pvc", "quick", "-n", NS) == "Bound", what="the claim to be bound")
        volume_name = get_json(cluster, "pvc", "quick", "-n", NS)["spec"]["volumeName"]
        volume = get_json(cluster, "pv", volume_name)
        assert "nodeAffinity" not in volume["spec"]
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        reasons = {e["reason"] for e in events(cluster, "quick")}
        assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= reasons
        cluster.kubectl("delete", "pvc", "quick", "-n", NS, "--timeout=60s")
        until(
            lambda: phase(cluster, "pv", volume_name) == "Released", what="the retained volume to be released"
        )
        assert Path(volume["spec"]["hostPath"]["path"]).is_dir()
        cluster.kubectl("delete", "pv", volume_name, "--timeout=60s")
    finally:
        cluster.kubectl("delete", "storageclass", "instant", check=False)


def test_a_pod_whose_claim_is_missing_waits(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod("hopeful", "nowhere", "sleep 3600"))
    until(
        lambda: any(e["reason"] == "FailedScheduling" for e in events(cluster, "hopeful")),
        what="the scheduler to report the missing claim",
    )
    scheduling = next(e for e in events(cluster, "hopeful") if e["reason"] == "FailedScheduling")
    assert 'persistentvolumeclaim "nowhere" not found' in scheduling["message"]
    assert phase(cluster, "pod", "hopeful", "-n", NS) == "Pending"
    cluster.kubectl("delete", "pod", "hopeful", "-n", NS, "--wait=false")
