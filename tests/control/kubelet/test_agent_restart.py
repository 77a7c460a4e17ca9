"""A node agent restarting with pods running: containers are re-adopted, never started
twice or orphaned; pods deleted while it was down are cleaned up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from control.kubelet.agent import NodeAgentOptions
from control.kubelet.logs import LogOptions, read_container_log
from control.kubelet.runtime import procfs
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import FAST, Cluster, condition, container_status, pod, shell, state_of

KEEP_RUNNING = NodeAgentOptions(kubelet=FAST, stop_containers_on_exit=False)


def pid_of(agent_dir: Path, container_id: str) -> tuple[int, int]:
    state = json.loads(next(agent_dir.glob(f"pods/*/containers/{container_id}/state.json")).read_text())
    return state["pid"], state["pid_start"]


async def test_restarted_agent_adopts_running_containers(cluster: Cluster, tmp_path: Path) -> None:
    first = await cluster.start_agent(options=KEEP_RUNNING)
    record = tmp_path / "record"
    record.mkdir()
    counter = shell(
        "app",
        "echo $$$$ >> /record/starts; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done",
        volumeMounts=[{"name": "record", "mountPath": "/record"}],
        readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
    )
    await cluster.create_pod(
        pod("survivor", counter, volumes=[{"name": "record", "hostPath": {"path": str(record)}}])
    )
    await cluster.create_pod(pod("doomed", shell("app", "sleep 60")))
    before = await cluster.wait_pod("survivor", lambda p: condition(p, "Ready").get("status") == "True")
    doomed = await cluster.wait_pod("doomed", lambda p: "running" in state_of(p, "app"))
    container_id = container_status(before, "app")["containerID"].removeprefix("kubelab://")
    doomed_id = container_status(doomed, "app")["containerID"].removeprefix("kubelab://")
    pid, start = pid_of(first.data_dir, container_id)
    doomed_pid, doomed_start = pid_of(first.data_dir, doomed_id)

    await first.stop()
    assert procfs.is_alive(pid, start), "stopping the agent this way leaves containers running"
    # While no agent runs, a pod is force-deleted from the API.
    await cluster.client.delete(PODS, "doomed", namespace="default", grace_period_seconds=0)
    await cluster.wait_gone("doomed")
    log_path = next(first.data_dir.glob("pods/default_survivor_*/app/0.log"))
    size_while_down = log_path.stat().st_size
    await asyncio.sleep(0.3)
    assert log_path.stat().st_size > size_while_down, "the shim keeps logging while the agent is away"

    second = await cluster.start_agent()
    uid = before["metadata"]["uid"]
    for _ in range(200):  # until the new agent has synced the pod once
        if second.agent.pods.status.last(uid) is not None:
            break
        await asyncio.sleep(0.05)
    assert second.agent.pods.status.last(uid) is not None
    after = await cluster.wait_pod("survivor", lambda p: condition(p, "Ready").get("status") == "True")
    app = container_status(after, "app")
    assert app["containerID"] == f"kubelab://{container_id}"
    assert app["restartCount"] == 0
    assert procfs.is_alive(pid, start)
    assert (record / "starts").read_text().split() == [str(pid)], "the container was not started again"
    running = [
        s for s in await second.agent.runtime.list_containers() if s.pod_uid == after["metadata"]["uid"]
    ]
    assert [s.id for s in running] == [container_id]

    for _ in range(100):
        if not procfs.is_alive(doomed_pid, doomed_start):
            break
        await asyncio.sleep(0.05)
    assert not procfs.is_alive(doomed_pid, doomed_start), "the orphaned container is stopped"
    for _ in range(100):
        if not list(second.data_dir.glob("pods/default_doomed_*")):
            break
        await asyncio.sleep(0.05)
    assert not list(second.data_dir.glob("pods/default_doomed_*")), "and its sandbox removed"

    source = second.agent.pods.log_source("default", "survivor", "app")
    text = b"".join(
        [chunk async for chunk in read_container_log(source.path, LogOptions(tail_lines=3))]
    ).decode()
    assert len(text.splitlines()) == 3 and all(line.startswith("tick ") for line in text.splitlines())

    await cluster.client.delete(PODS, "survivor", namespace="default")
    await cluster.wait_gone("survivor")
    assert not procfs.is_alive(pid, start)


async def test_container_exit_while_the_agent_is_down_is_seen_with_its_exit_code(cluster: Cluster) -> None:
    first = await cluster.start_agent(options=KEEP_RUNNING)
    await cluster.create_pod(pod("short", shell("app", "sleep 0.5; exit 4"), restartPolicy="Never"))
    running = await cluster.wait_pod("short", lambda p: "running" in state_of(p, "app"))
    pid, start = pid_of(
        first.data_dir, container_status(running, "app")["containerID"].removeprefix("kubelab://")
    )
    await first.stop()
    for _ in range(200):  # the container ends while no agent is running
        if not procfs.is_alive(pid, start):
            break
        await asyncio.sleep(0.05)
    assert not procfs.is_alive(pid, start)
    await cluster.start_agent()
    failed = await cluster.wait_pod("short", lambda p: p["status"].get("phase") == "Failed")
    terminated = state_of(failed, "app")["terminated"]
    assert terminated["exitCode"] == 4 and terminated["reason"] == "Error"
