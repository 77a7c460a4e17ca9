"""``persistentVolumeClaim`` volumes: claim -> bound PersistentVolume -> host directory, read from
a real API server, and upstream's "error processing PVC" reasons while the claim is not usable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control.kubelet.objectcache import ReferencedObjects
from control.kubelet.volumes import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, VolumeError, VolumeManager
from tests.control.kubelet.conftest import Cluster

POD = {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"}, "spec": {"containers": []}}


@pytest.fixture
async def volumes(cluster: Cluster) -> AsyncIterator[VolumeManager]:
    objects = ReferencedObjects(client=cluster.client, on_change=lambda key, holders: None)
    manager = VolumeManager(client=cluster.client, objects=objects, ca_bundle=b"CA", use_tmpfs=False)
    yield manager
    await objects.close()


async def setup(volumes: VolumeManager, tmp_path: Path, *specs: dict[str, Any]):
    pod = {**POD, "spec": {"containers": [{"name": "app"}], "volumes": list(specs)}}
    return await volumes.setup(
        pod, tmp_path / "sandbox", pod_ips=["127.244.1.2"], host_ips=["127.100.0.1"], node_allocatable={}
    )


def claim_volume(claim: str, **extra: Any) -> dict[str, Any]:
    return {"name": "data", "persistentVolumeClaim": {"claimName": claim, **extra}}


async def create_claim(cluster: Cluster, name: str, *, volume_mode: str = "Filesystem") -> dict[str, Any]:
    body = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
            "volumeMode": volume_mode,
        },
    }
    return await cluster.client.create(PERSISTENT_VOLUME_CLAIMS, body, namespace="default")


async def bind(
    cluster: Cluster,
    claim: dict[str, Any],
    volume: str,
    source: dict[str, Any],
    *,
    claim_uid: str | None = None,
) -> None:
    """What the PV controller would have done: claimRef on the volume, volumeName and Bound on the claim."""
    body = {
        "metadata": {"name": volume},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "claimRef": {
                "namespace": "default",
                "name": claim["metadata"]["name"],
                "uid": claim_uid or claim["metadata"]["uid"],
            },
            **source,
        },
    }
    await cluster.client.create(PERSISTENT_VOLUMES, body)
    claim = dict(claim, spec={**claim["spec"], "volumeName": volume})
    claim = await cluster.client.replace(PERSISTENT_VOLUME_CLAIMS, claim)
    claim["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    await cluster.client.replace(PERSISTENT_VOLUME_CLAIMS, claim, subresource="status")


async def test_a_bound_claim_mounts_its_volumes_host_directory(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path
) -> None:
    claim = await create_claim(cluster, "data")
    directory = tmp_path / "storage" / "pvc-1"
    await bind(cluster, claim, "pv-1", {"hostPath": {"path": str(directory), "type": "DirectoryOrCreate"}})
    result = await setup(volumes, tmp_path, claim_volume("data"))
    assert result.paths["data"] == directory
    assert directory.is_dir()  # DirectoryOrCreate made it
    assert result.read_only == set()


async def test_read_only_on_the_claim_source_marks_the_volume(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path
) -> None:
    claim = await create_claim(cluster, "ro")
    (tmp_path / "local").mkdir()
    await bind(
        cluster, claim, "pv-ro", {"local": {"path": str(tmp_path / "local")}, "nodeAffinity": _affinity()}
    )
    result = await setup(volumes, tmp_path, claim_volume("ro", readOnly=True))
    assert result.paths["data"] == tmp_path / "local"
    assert result.read_only == {"data"}


def _affinity() -> dict[str, Any]:
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}
    return {"required": {"nodeSelectorTerms": [term]}}


async def expect_failure(volumes: VolumeManager, tmp_path: Path, claim: str, reason: str) -> None:
    with pytest.raises(VolumeError) as failure:
        await setup(volumes, tmp_path, claim_volume(claim))
    assert str(failure.value) == (
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], "
        f"failed to process volumes=[data]: error processing PVC default/{claim}: {reason}"
    )


async def test_a_missing_claim_waits(cluster: Cluster, volumes: VolumeManager, tmp_path: Path) -> None:
    await expect_failure(
        volumes,
        tmp_path,
        "absent",
        'failed to fetch PVC from API server: persistentvolumeclaims "absent" not found',
    )


async def test_an_unbound_claim_waits(cluster: Cluster, volumes: VolumeManager, tmp_path: Path) -> None:
    await create_claim(cluster, "pending")
    await expect_failure(volumes, tmp_path, "pending", "PVC is not bound")


async def test_a_claim_being_deleted_is_not_mounted(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path
) -> None:
    claim = await create_claim(cluster, "going")
    claim["metadata"]["finalizers"] = ["example.com/hold"]
    await cluster.client.replace(PERSISTENT_VOLUME_CLAIMS, claim)
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "going", namespace="default")
    await expect_failure(volumes, tmp_path, "going", "PVC is being deleted")
    await cluster.client.patch(
        PERSISTENT_VOLUME_CLAIMS, "going", {"metadata": {"finalizers": None}}, namespace="default"
    )


async def test_a_volume_bound_to_another_claim_is_refused(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path
) -> None:
    claim = await create_claim(cluster, "stolen")
    await bind(
        cluster, claim, "pv-other", {"hostPath": {"path": str(tmp_path / "x")}}, claim_uid="not-this-one"
    )
    await expect_failure(
        volumes,
        tmp_path,
        "stolen",
        "found PV object pv-other but its pv.Spec.ClaimRef.UID not-this-one does not point to claim.UID "
        + claim["metadata"]["uid"],
    )


async def test_a_missing_volume_waits(cluster: Cluster, volumes: VolumeManager, tmp_path: Path) -> None:
    claim = await create_claim(cluster, "ghost")
    claim = await cluster.client.replace(
        PERSISTENT_VOLUME_CLAIMS, dict(claim, spec={**claim["spec"], "volumeName": "pv-ghost"})
    )
    claim["status"] = {"phase": "Bound"}
    await cluster.client.replace(PERSISTENT_VOLUME_CLAIMS, claim, subresource="status")
    await expect_failure(
        volumes,
        tmp_path,
        "ghost",
        'failed to fetch PV "pv-ghost" from API server: persistentvolumes "pv-ghost" not found',
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"nfs": {"server": "nas", "path": "/export"}},
            "volume type nfs is not supported by kubelab's kubelet",
        ),
        (
            {"hostPath": {"path": "/nonexistent-kubelab", "type": "Directory"}, "volumeMode": "Block"},
            "volumeMode Block",
        ),
    ],
)
async def test_volumes_the_kubelet_cannot_mount_fail_as_failed_mount(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path, source: dict[str, Any], message: str
) -> None:
    claim = await create_claim(cluster, "odd", volume_mode=source.get("volumeMode", "Filesystem"))
    await bind(cluster, claim, "pv-odd", source)
    with pytest.raises(VolumeError) as failure:
        await setup(volumes, tmp_path, claim_volume("odd"))
    assert str(failure.value).startswith(
        'MountVolume.SetUp failed for volume "data" : PersistentVolume pv-odd: '
    )
    assert message in str(failure.value)
