"""Ephemeral containers (``kubectl debug``): added through ``pods/ephemeralcontainers``, started
once beside the running containers, never restarted, reported in ``ephemeralContainerStatuses``.

The agent runs as ``node-9`` (``127.100.0.9``), clear of the nodes a lab would use."""

from __future__ import annotations

import pytest

from control.client import errors
from control.client.rest import PatchType
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import Cluster, container_status, pod, shell

NODE = {"node_name": "node-9", "node_ip": "127.100.0.9"}


def ephemeral_status(p: dict, name: str) -> dict:
    for status in (p.get("status") or {}).get("ephemeralContainerStatuses") or ():
        if status["name"] == name:
            return status
    return {}


async def add_debugger(cluster: Cluster, name: str, script: str) -> dict:
    """What ``kubectl debug`` sends: a strategic merge patch of the ephemeralcontainers subresource."""
    patch = {
        "spec": {
            "ephemeralContainers": [
                {
                    "name": name,
                    "image": "busybox",
                    "command": ["sh", "-c", script],
                    "targetContainerName": "main",
                }
            ]
        }
    }
    return await cluster.client.patch(
        PODS,
        "web",
        patch,
        namespace="default",
        patch_type=PatchType.STRATEGIC,
        subresource="ephemeralcontainers",
    )


async def test_an_ephemeral_container_runs_once_beside_the_pod(cluster: Cluster) -> None:
    await cluster.start_agent(**NODE)
    await cluster.create_pod(
        pod(
            "web",
            shell("main", "while true; do sleep 1; done"),
            node="node-9",
            automountServiceAccountToken=False,
        )
    )
    await cluster.wait_pod("web", lambda p: "running" in container_status(p, "main").get("state", {}))
    patched = await add_debugger(cluster, "debugger", "echo looking around; exit 7")
    added = patched["spec"]["ephemeralContainers"][0]
    assert added["terminationMessagePolicy"] == "File" and added["imagePullPolicy"] == "Always"  # defaulted

    done = await cluster.wait_pod(
        "web", lambda p: "terminated" in ephemeral_status(p, "debugger").get("state", {})
    )
    status = ephemeral_status(done, "debugger")
    assert status["state"]["terminated"]["exitCode"] == 7
    assert status["ready"] is False and status["restartCount"] == 0
    main = container_status(done, "main")
    assert "running" in main["state"] and main["restartCount"] == 0
    assert done["status"]["phase"] == "Running"
    events = {(e["reason"], e["message"]) for e in await cluster.events("web")}
    assert ("Started", "Started container debugger") in events

    # existing ephemeral containers may be neither changed nor removed
    with pytest.raises(errors.InvalidError) as changed:
        await add_debugger(cluster, "debugger", "echo something else")
    assert 'existing ephemeral containers "debugger" may not be changed' in str(changed.value)
    current = await cluster.client.get(PODS, "web", namespace="default")
    current["spec"]["ephemeralContainers"] = []
    with pytest.raises(errors.InvalidError) as removed:
        await cluster.client.replace(PODS, current, subresource="ephemeralcontainers")
    assert 'existing ephemeral containers "debugger" may not be removed' in str(removed.value)
