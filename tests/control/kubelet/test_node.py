"""Node registration, status and Lease heartbeats against a real API server."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from control.client import errors
from control.kubelet.agent import NodeAgentOptions
from control.kubelet.node import LEASES, NODES, NodeOptions, NodeStatus, micro_time
from control.kubelet.runtime import procfs
from tests.control.kubelet.conftest import FAST, Cluster


async def wait_lease(cluster: Cluster, name: str) -> dict:
    for _ in range(100):
        try:
            return await cluster.client.get(LEASES, name, namespace="kube-node-lease")
        except errors.NotFoundError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"no lease for {name}")


def conditions(node: dict) -> dict[str, dict]:
    return {entry["type"]: entry for entry in node["status"]["conditions"]}


async def test_agent_registers_its_node_and_renews_its_lease(cluster: Cluster) -> None:
    options = NodeAgentOptions(
        kubelet=FAST, node=NodeOptions(lease_renew_interval=0.2, labels={"zone": "lab-a"})
    )
    await cluster.start_agent(node_name="node-2", node_ip="127.100.0.2", options=options)
    node = await cluster.client.get(NODES, "node-2")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "node-2"
    assert labels["kubernetes.io/os"] == "linux" and labels["zone"] == "lab-a"
    assert labels["kubernetes.io/arch"] in ("amd64", "arm64")
    status = node["status"]
    assert status["capacity"]["cpu"] == str(os.cpu_count())
    assert status["capacity"]["pods"] == "110" and status["allocatable"]["pods"] == "110"
    assert re.fullmatch(r"\d+Ki", status["capacity"]["memory"])
    capacity_ki = int(status["capacity"]["memory"][:-2])
    allocatable_ki = int(status["allocatable"]["memory"][:-2])
    assert capacity_ki - allocatable_ki == 100 * 1024, "allocatable keeps the 100Mi eviction threshold back"
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "127.100.0.2"},
        {"type": "Hostname", "address": "node-2"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.33.0-kubelab"
    assert info["containerRuntimeVersion"] == "kubelab-process://0.1"
    assert info["operatingSystem"] == "linux" and info["kernelVersion"] == os.uname().release
    found = conditions(node)
    assert found["Ready"]["status"] == "True" and found["Ready"]["reason"] == "KubeletReady"
    assert found["MemoryPressure"]["status"] == "False"
    assert found["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
    assert found["PIDPressure"]["reason"] == "KubeletHasSufficientPID"

    lease = await wait_lease(cluster, "node-2")
    assert lease["spec"]["holderIdentity"] == "node-2"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    first_renewal = lease["spec"]["renewTime"]
    for _ in range(100):
        lease = await cluster.client.get(LEASES, "node-2", namespace="kube-node-lease")
        if lease["spec"]["renewTime"] != first_renewal:
            break
        await asyncio.sleep(0.05)
    assert lease["spec"]["renewTime"] > first_renewal


async def test_deleted_node_is_registered_again(cluster: Cluster) -> None:
    status = NodeStatus(
        client=cluster.client, node_name="node-3", node_ip="127.100.0.3", data_dir=cluster.root.parent
    )
    await status.register()
    created = await cluster.client.get(NODES, "node-3")
    await cluster.client.delete(NODES, "node-3")
    await status.update_status(force=True)
    again = await cluster.client.get(NODES, "node-3")
    assert again["metadata"]["uid"] != created["metadata"]["uid"]
    assert conditions(again)["Ready"]["status"] == "True"


async def test_registration_updates_an_existing_node(cluster: Cluster) -> None:
    await cluster.client.create(NODES, {"metadata": {"name": "node-4", "labels": {"kept": "yes"}}})
    status = NodeStatus(
        client=cluster.client, node_name="node-4", node_ip="127.100.0.4", data_dir=cluster.root.parent
    )
    await status.register()
    node = await cluster.client.get(NODES, "node-4")
    assert node["metadata"]["labels"]["kept"] == "yes"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-4"
    assert conditions(node)["Ready"]["status"] == "True"


def test_micro_time_has_six_fraction_digits() -> None:
    assert micro_time(0.5) == "1970-01-01T00:00:00.500000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", micro_time(1_700_000_000.123))


async def test_machine_memory_is_read_once_for_capacity_and_allocatable(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []
    original = procfs.machine_memory

    def counting() -> procfs.MachineMemory:
        reads.append(1)
        return original()

    monkeypatch.setattr(procfs, "machine_memory", counting)
    node = NodeStatus(client=cluster.client, node_name="node-1", node_ip="127.100.0.1", data_dir=tmp_path)
    total_ki = original().total_bytes // 1024
    for _ in range(3):
        assert node.capacity()["memory"] == f"{total_ki}Ki"
        assert node.allocatable()["memory"] == f"{total_ki - 100 * 1024}Ki"
    assert len(reads) == 1, "MemTotal does not change: every pod start must not read /proc/meminfo"
