"""The scheduler against a real in-process API server: bindings, events, conditions, retries.

No kubelet exists here, so the tests register Node objects themselves (allocatable and a Ready
condition, as a kubelet would), create pods, and watch what the scheduler does to them.
"""

from __future__ import annotations

from control.scheduler.scheduler import PODS
from tests.control.scheduler.conftest import create_nodes, wait_for_events, wait_for_pods
from tests.control.scheduler.support import node, pod


def bound(*names: str):
    return lambda pods: all(pods.get(n, {}).get("spec", {}).get("nodeName") for n in names)


async def test_binds_a_pod_and_records_scheduled(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"), node("node-3"))
    await client.create(PODS, pod("web", cpu="100m"))
    pods = await wait_for_pods(client, bound("web"))
    target = pods["web"]["spec"]["nodeName"]
    assert target in {"node-1", "node-2", "node-3"}
    events = await wait_for_events(client, lambda evs: any(e["reason"] == "Scheduled" for e in evs))
    scheduled = next(e for e in events if e["reason"] == "Scheduled")
    assert scheduled["message"] == f"Successfully assigned default/web to {target}"
    assert scheduled["source"]["component"] == "default-scheduler"
    assert scheduled["involvedObject"]["name"] == "web"
