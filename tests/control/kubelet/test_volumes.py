"""Volume contents on disk: the atomic writer's layout, modes, optional sources, hostPath
checks — with real ConfigMaps and Secrets from a real API server."""

from __future__ import annotations

import base64
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.kubelet.objectcache import CONFIG_MAPS, SECRETS, ReferencedObjects
from control.kubelet.volumes import VolumeError, VolumeManager, write_atomically
from tests.control.kubelet.conftest import Cluster


def listing(directory: Path) -> dict[str, str]:
    return {
        entry.name: os.readlink(entry.path) if entry.is_symlink() else "" for entry in os.scandir(directory)
    }


def test_atomic_writer_layout_and_updates(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomically(target, {"a.conf": (b"one", 0o644), "dir/b": (b"two", 0o600)})
    links = listing(target)
    assert links["a.conf"] == "..data/a.conf" and links["dir"] == "..data/dir"
    first = os.readlink(target / "..data")
    assert first.startswith("..") and (target / first).is_dir()
    assert (target / "dir" / "b").read_bytes() == b"two"
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o600

    assert not write_atomically(target, {"a.conf": (b"one", 0o644), "dir/b": (b"two", 0o600)}), (
        "no change, no write"
    )
    assert write_atomically(target, {"a.conf": (b"uno", 0o644)})
    second = os.readlink(target / "..data")
    assert second != first and not (target / first).exists(), "the old generation is removed"
    assert (target / "a.conf").read_bytes() == b"uno"
    assert not (target / "dir").is_symlink() and not (target / "dir").exists(), "keys that went away vanish"
    for bad in ("../escape", "/abs", "a/../../b", ""):
        with pytest.raises(VolumeError, match="invalid path"):
            write_atomically(target, {bad: (b"x", 0o644)})


def test_atomic_writer_into_a_directory_left_without_data(tmp_path: Path) -> None:
    """A first write into an existing directory (say, one a crash left half written) clears
    what is not in the payload and replaces a ``..data`` that is not a link."""
    target = tmp_path / "vol"
    target.mkdir()
    (target / "stale").write_text("old")
    (target / "..data").write_text("not a link")
    assert write_atomically(target, {"a.conf": (b"one", 0o640)})
    assert sorted(listing(target)) == sorted(["..data", os.readlink(target / "..data"), "a.conf"])
    assert (target / "a.conf").read_bytes() == b"one"
    assert stat.S_IMODE((target / "a.conf").stat().st_mode) == 0o640


def test_atomic_writer_creates_missing_parents(tmp_path: Path) -> None:
    target = tmp_path / "volumes" / "kubernetes.io~projected" / "token"
    assert write_atomically(target, {"token": (b"t", 0o600)})
    assert listing(target)["token"] == "..data/token"
    assert stat.S_IMODE((target / "token").stat().st_mode) == 0o600
    assert not write_atomically(target, {"token": (b"t", 0o600)})


@pytest.fixture
async def volumes(cluster: Cluster) -> AsyncIterator[VolumeManager]:
    objects = ReferencedObjects(client=cluster.client, on_change=lambda key, holders: None)
    manager = VolumeManager(client=cluster.client, objects=objects, ca_bundle=b"CA", use_tmpfs=False)
    yield manager
    await objects.close()


POD = {
    "metadata": {"name": "p", "namespace": "default", "uid": "uid-1", "labels": {"a": "1"}},
    "spec": {"containers": []},
}


async def setup(volumes: VolumeManager, tmp_path: Path, *specs: dict) -> dict[str, Path]:
    pod = {
        **POD,
        "spec": {
            "containers": [{"name": "app", "resources": {"limits": {"memory": "1Gi"}}}],
            "volumes": list(specs),
        },
    }
    result = await volumes.setup(
        pod, tmp_path / "sandbox", pod_ips=["127.244.1.2"], host_ips=["127.100.0.1"], node_allocatable={}
    )
    return result.paths


async def test_config_map_and_secret_contents_and_modes(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path
) -> None:
    await cluster.client.create(
        CONFIG_MAPS,
        {
            "metadata": {"name": "cm"},
            "data": {"plain": "text"},
            "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()},
        },
        namespace="default",
    )
    await cluster.client.create(
        SECRETS,
        {"metadata": {"name": "sec"}, "stringData": {"k": "v", "run.sh": "echo"}},
        namespace="default",
    )
    paths = await setup(
        volumes,
        tmp_path,
        {"name": "cm", "configMap": {"name": "cm", "defaultMode": 0o640}},
        {
            "name": "sec",
            "secret": {
                "secretName": "sec",
                "items": [{"key": "run.sh", "path": "bin/run.sh", "mode": 0o755}, {"key": "k", "path": "k"}],
            },
        },
        {"name": "maybe", "configMap": {"name": "absent", "optional": True}},
    )
    assert paths["cm"] == tmp_path / "sandbox" / "volumes" / "kubernetes.io~configmap" / "cm"
    assert (paths["cm"] / "plain").read_text() == "text" and (
        paths["cm"] / "blob"
    ).read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((paths["cm"] / "plain").stat().st_mode) == 0o640
    assert stat.S_IMODE((paths["sec"] / "bin" / "run.sh").stat().st_mode) == 0o700, "secret files: owner only"
    assert stat.S_IMODE((paths["sec"] / "k").stat().st_mode) == 0o600
    visible = [name for name in os.listdir(paths["maybe"]) if not name.startswith("..")]
    assert visible == [], "an absent optional source is an empty volume"


def mounts_at(path: Path) -> int:
    return sum(
        1 for line in Path("/proc/self/mountinfo").read_text().splitlines() if line.split()[4] == str(path)
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
async def test_secret_and_projected_volumes_are_memory_backed_as_root(
    cluster: Cluster, tmp_path: Path
) -> None:
    objects = ReferencedObjects(client=cluster.client, on_change=lambda key, holders: None)
    manager = VolumeManager(client=cluster.client, objects=objects, ca_bundle=b"CA", use_tmpfs=True)
    await cluster.client.create(
        SECRETS, {"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}}, namespace="default"
    )
    specs = (
        {"name": "sec", "secret": {"secretName": "creds"}},
        {"name": "ca", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}},
        {"name": "cm", "configMap": {"name": "kube-root-ca.crt"}},
    )
    try:
        paths = await setup(manager, tmp_path, *specs)
        assert [mounts_at(paths[name]) for name in ("sec", "ca", "cm")] == [1, 1, 0]
        assert (paths["sec"] / "password").read_text() == "hunter2"
        assert (paths["ca"] / "ca.crt").read_text() == "CA"
        assert stat.S_IMODE(paths["sec"].stat().st_mode) == 0o755
        paths = await setup(manager, tmp_path, *specs)
        assert [mounts_at(paths[name]) for name in ("sec", "ca")] == [1, 1], "set up again: no second mount"
        manager.unmount(tmp_path / "sandbox")
        assert [mounts_at(paths[name]) for name in ("sec", "ca")] == [0, 0]
        assert not (paths["sec"] / "password").exists(), "the content went with the tmpfs"
    finally:
        manager.unmount(tmp_path / "sandbox")
        await objects.close()


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"configMap": {"name": "absent"}}, 'configmap "absent" not found'),
        ({"secret": {"secretName": "absent"}}, 'secret "absent" not found'),
        (
            {"configMap": {"name": "cm2", "items": [{"key": "nope", "path": "x"}]}},
            "configmap references non-existent config key: nope",
        ),
        (
            {"gcePersistentDisk": {"pdName": "d"}},
            "volume type gcePersistentDisk is not supported by kubelab's kubelet",
        ),
        (
            {"projected": {"sources": [{"clusterTrustBundle": {"name": "b"}}]}},
            "projected volume source clusterTrustBundle is not supported",
        ),
    ],
)
async def test_failures_are_worded_as_failed_mount(
    cluster: Cluster, volumes: VolumeManager, tmp_path: Path, volume: dict, message: str
) -> None:
    await cluster.client.create(
        CONFIG_MAPS, {"metadata": {"name": "cm2"}, "data": {"k": "v"}}, namespace="default"
    )
    with pytest.raises(VolumeError) as failure:
        await setup(volumes, tmp_path, {"name": "vol", **volume})
    assert str(failure.value).startswith('MountVolume.SetUp failed for volume "vol" : ')
    assert message in str(failure.value)


async def test_downward_api_and_host_paths(volumes: VolumeManager, tmp_path: Path) -> None:
    existing_file = tmp_path / "file"
    existing_file.write_text("")
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        paths = await setup(
            volumes,
            tmp_path,
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {
                            "path": "mem",
                            "resourceFieldRef": {
                                "containerName": "app",
                                "resource": "limits.memory",
                                "divisor": "1Mi",
                            },
                        },
                        {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}, "mode": 0o400},
                    ]
                },
            },
            {
                "name": "made",
                "hostPath": {"path": str(tmp_path / "new" / "dir"), "type": "DirectoryOrCreate"},
            },
            {"name": "touched", "hostPath": {"path": str(tmp_path / "touched"), "type": "FileOrCreate"}},
            {"name": "file", "hostPath": {"path": str(existing_file), "type": "File"}},
            {"name": "sock", "hostPath": {"path": str(sock_path), "type": "Socket"}},
            {"name": "any", "hostPath": {"path": str(tmp_path / "whatever")}},
        )
    finally:
        server.close()
    assert (paths["info"] / "labels").read_text() == 'a="1"'
    assert (paths["info"] / "mem").read_text() == "1024"
    assert stat.S_IMODE((paths["info"] / "ip").stat().st_mode) == 0o400
    assert paths["made"].is_dir() and (tmp_path / "touched").is_file()
    assert paths["any"] == tmp_path / "whatever"
    for kind, path, complaint in (
        ("Directory", existing_file, "is not a directory"),
        ("File", tmp_path, "is not a file"),
        ("Socket", existing_file, "is not a socket file"),
        ("CharDevice", existing_file, "is not a character device"),
        ("BlockDevice", tmp_path / "nothing", "is not a block device"),
    ):
        with pytest.raises(VolumeError, match=f"hostPath type check failed: {path} {complaint}"):
            await setup(volumes, tmp_path, {"name": "h", "hostPath": {"path": str(path), "type": kind}})
    with pytest.raises(VolumeError, match="must be an absolute path"):
        await setup(volumes, tmp_path, {"name": "h", "hostPath": {"path": "relative"}})
