"""The scheduler against a real in-process API server: bindings, events, conditions, retries.

No kubelet exists here, so the tests register Node objects themselves (allocatable and a Ready
condition, as a kubelet would), create pods, and watch what the scheduler does to them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from prometheus_client import CollectorRegistry

from control.client.config import load_kubeconfig
from control.client.rest import PatchType, Resource
from control.scheduler import run, run_scheduler
from control.scheduler.scheduler import NODES, PODS, SERVICES, Scheduler
from tests.control.scheduler.conftest import create_nodes, wait_for_events, wait_for_pods
from tests.control.scheduler.support import affinity, anti_affinity, node, pod

REPLICA_SETS = Resource(group="apps", version="v1", plural="replicasets", kind="ReplicaSet")


def bound(*names: str):
    return lambda pods: all(pods.get(n, {}).get("spec", {}).get("nodeName") for n in names)


def placement(pods: dict) -> Counter:
    return Counter(p["spec"].get("nodeName") for p in pods.values())


def condition(pods: dict, name: str) -> dict | None:
    for c in pods.get(name, {}).get("status", {}).get("conditions") or ():
        if c["type"] == "PodScheduled":
            return c
    return None


def unschedulable_with(name: str, message: str):
    return lambda pods: (condition(pods, name) or {}).get("message") == message


def failed_for(name: str):
    return lambda events: [
        e for e in events if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == name
    ]


async def test_binds_a_pod_and_records_scheduled(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"), node("node-3"))
    await client.create(PODS, pod("web", cpu="100m"))
    pods = await wait_for_pods(client, bound("web"))
    target = pods["web"]["spec"]["nodeName"]
    assert target in {"node-1", "node-2", "node-3"}
    events = await wait_for_events(client, lambda evs: any(e["reason"] == "Scheduled" for e in evs))
    scheduled = next(e for e in events if e["reason"] == "Scheduled")
    assert scheduled["type"] == "Normal"
    assert scheduled["message"] == f"Successfully assigned default/web to {target}"
    assert scheduled["source"]["component"] == "default-scheduler"
    assert scheduled["involvedObject"]["name"] == "web"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for m in scheduler.collect() for s in m.samples
    }
    assert (
        samples[
            ("scheduler_schedule_attempts_total", (("profile", "default-scheduler"), ("result", "scheduled")))
        ]
        == 1
    )
    assert samples[("scheduler_pending_pods", (("queue", "active"),))] == 0


async def test_unschedulable_pod_gets_condition_and_event_then_a_new_node(client, scheduler):
    await create_nodes(client, *(node(f"node-{i}", cpu="1") for i in (1, 2, 3)))
    for i in range(3):
        await client.create(PODS, pod(f"big-{i}", cpu="800m"))
    pods = await wait_for_pods(client, bound("big-0", "big-1", "big-2"))
    assert placement(pods) == Counter({"node-1": 1, "node-2": 1, "node-3": 1})
    await client.create(PODS, pod("late", cpu="500m"))
    message = (
        "0/3 nodes are available: 3 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    )
    pods = await wait_for_pods(client, unschedulable_with("late", message))
    scheduled = condition(pods, "late")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["lastTransitionTime"]
    events = await wait_for_events(client, failed_for("late"))
    (event,) = failed_for("late")(events)
    assert (event["type"], event["message"], event["source"]["component"]) == (
        "Warning",
        message,
        "default-scheduler",
    )
    assert not pods["late"]["spec"].get("nodeName")

    await create_nodes(client, node("node-4", cpu="1"))
    pods = await wait_for_pods(client, bound("late"))
    assert pods["late"]["spec"]["nodeName"] == "node-4"


async def test_a_deleted_pod_frees_room_for_a_waiting_one(client, scheduler):
    await create_nodes(client, node("node-1", cpu="1"))
    await client.create(PODS, pod("first", cpu="600m"))
    await wait_for_pods(client, bound("first"))
    await client.create(PODS, pod("second", cpu="600m"))
    await wait_for_events(client, failed_for("second"))
    # No kubelet finishes a graceful deletion here, so delete at once (a terminating pod still holds its room).
    await client.delete(PODS, "first", namespace="default", grace_period_seconds=0)
    pods = await wait_for_pods(client, bound("second"))
    assert pods["second"]["spec"]["nodeName"] == "node-1"


async def test_a_repeated_failure_bumps_the_event_but_not_the_condition(client, scheduler):
    await create_nodes(client, node("node-1", cpu="1"))
    await client.create(PODS, pod("huge", cpu="2"))
    message = (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    pods = await wait_for_pods(client, unschedulable_with("huge", message))
    written = pods["huge"]["metadata"]["resourceVersion"]
    # The node grows, but not enough: the pod is retried and fails the same way.
    grown = await client.get(NODES, "node-1")
    grown["status"]["allocatable"]["cpu"] = "1500m"
    await client.replace(NODES, grown, subresource="status")
    events = await wait_for_events(
        client, lambda evs: any(e.get("count") == 2 for e in failed_for("huge")(evs))
    )
    # (an earlier "no nodes available" event is possible if the pod beat the node into the
    # scheduler's cache; the bumped one is the Insufficient cpu failure)
    (bumped,) = [e for e in failed_for("huge")(events) if e.get("count") == 2]
    assert bumped["message"] == message
    assert (await client.get(PODS, "huge", namespace="default"))["metadata"]["resourceVersion"] == written


async def test_no_nodes_at_all(client, scheduler):
    await client.create(PODS, pod("alone"))
    pods = await wait_for_pods(client, unschedulable_with("alone", "no nodes available to schedule pods"))
    assert condition(pods, "alone")["reason"] == "Unschedulable"
    await create_nodes(client, node("node-1"))
    await wait_for_pods(client, bound("alone"))


async def test_replicas_of_a_replica_set_spread_over_the_nodes(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"), node("node-3"))
    replica_set = await client.create(
        REPLICA_SETS,
        {
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {
                "replicas": 6,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "kubelab"}]},
                },
            },
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-1",
        "uid": replica_set["metadata"]["uid"],
        "controller": True,
    }
    for i in range(6):
        body = pod(f"web-1-{i}", labels={"app": "web"})
        body["metadata"]["ownerReferences"] = [owner]
        await client.create(PODS, body)
    pods = await wait_for_pods(client, bound(*(f"web-1-{i}" for i in range(6))))
    assert placement(pods) == Counter({"node-1": 2, "node-2": 2, "node-3": 2})


async def test_service_pods_spread_even_against_resource_scores(client, scheduler):
    # node-1 is much bigger, so LeastAllocated alone would stack pods there; default spreading of
    # the Service's pods (weight 2) keeps them apart while the difference stays small.
    await create_nodes(client, node("node-1", cpu="64", memory="256Gi"), node("node-2"), node("node-3"))
    await client.create(
        SERVICES,
        {
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
        },
    )
    for i in range(3):
        await client.create(PODS, pod(f"api-{i}", labels={"app": "api"}, cpu="10m", memory="10Mi"))
        await wait_for_pods(client, bound(f"api-{i}"))
    pods = await wait_for_pods(client, bound("api-0", "api-1", "api-2"))
    assert placement({k: v for k, v in pods.items() if k.startswith("api")}) == Counter(
        {"node-1": 1, "node-2": 1, "node-3": 1}
    )


async def test_pod_anti_affinity_one_per_node_then_the_fourth_waits(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"), node("node-3"))
    for i in range(4):
        await client.create(PODS, pod(f"db-{i}", labels={"app": "db"}, affinity=anti_affinity({"app": "db"})))
    message = (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    )

    def three_placed_one_waiting(pods):
        placed = [p for p in pods.values() if p["spec"].get("nodeName")]
        waiting = [n for n, p in pods.items() if not p["spec"].get("nodeName")]
        return len(placed) == 3 and len(waiting) == 1 and unschedulable_with(waiting[0], message)(pods)

    pods = await wait_for_pods(client, three_placed_one_waiting)
    assert placement(pods) == Counter({"node-1": 1, "node-2": 1, "node-3": 1, None: 1})


async def test_pod_affinity_follows_its_partner(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"), node("node-3"))
    await client.create(PODS, pod("cache", labels={"app": "cache"}))
    pods = await wait_for_pods(client, bound("cache"))
    home = pods["cache"]["spec"]["nodeName"]
    for i in range(3):
        await client.create(PODS, pod(f"app-{i}", affinity=affinity({"app": "cache"})))
    await client.create(PODS, pod("orphan", affinity=affinity({"app": "nothing"})))
    message = (
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    pods = await wait_for_pods(
        client, lambda ps: bound("app-0", "app-1", "app-2")(ps) and unschedulable_with("orphan", message)(ps)
    )
    assert {pods[f"app-{i}"]["spec"]["nodeName"] for i in range(3)} == {home}


async def test_taints_not_ready_and_cordoned_nodes(client, scheduler):
    gpu = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    await create_nodes(
        client,
        node("node-1", taints=[gpu]),
        node("node-2", ready="False"),
        node("node-3", unschedulable=True),
    )
    await client.create(PODS, pod("plain"))
    message = (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had untolerated taint(s). "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    await wait_for_pods(client, unschedulable_with("plain", message))
    await client.create(
        PODS, pod("gpu-job", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    )
    pods = await wait_for_pods(client, bound("gpu-job"))
    assert pods["gpu-job"]["spec"]["nodeName"] == "node-1"
    # node-2 becomes Ready: the waiting pod goes there
    ready = await client.get(NODES, "node-2")
    ready["status"]["conditions"][0]["status"] = "True"
    await client.replace(NODES, ready, subresource="status")
    pods = await wait_for_pods(client, bound("plain"))
    assert pods["plain"]["spec"]["nodeName"] == "node-2"


async def test_node_selector_and_a_relabelled_node(client, scheduler):
    await create_nodes(client, node("node-1"), node("node-2"))
    await client.create(PODS, pod("picky", nodeSelector={"disk": "ssd"}))
    message = (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    await wait_for_pods(client, unschedulable_with("picky", message))
    await client.patch(NODES, "node-2", {"metadata": {"labels": {"disk": "ssd"}}}, patch_type=PatchType.MERGE)
    pods = await wait_for_pods(client, bound("picky"))
    assert pods["picky"]["spec"]["nodeName"] == "node-2"


async def test_pods_for_other_schedulers_and_gated_pods_are_left_alone(client, scheduler):
    await create_nodes(client, node("node-1"))
    await client.create(PODS, pod("foreign", schedulerName="someone-else"))
    await client.create(PODS, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
    await client.create(PODS, pod("ours"))
    pods = await wait_for_pods(client, bound("ours"))
    assert not pods["foreign"]["spec"].get("nodeName") and not pods["gated"]["spec"].get("nodeName")
    await client.patch(
        PODS, "gated", {"spec": {"schedulingGates": None}}, namespace="default", patch_type=PatchType.MERGE
    )
    await wait_for_pods(client, bound("gated"))
    assert not (await client.get(PODS, "foreign", namespace="default"))["spec"].get("nodeName")


async def test_pods_already_running_are_counted(apiserver, client):
    # A pod bound before the scheduler starts (a restart) takes its room on the node.
    await create_nodes(client, node("node-1", cpu="1"), node("node-2", cpu="1"))
    await client.create(PODS, pod("resident", cpu="900m", node_name="node-1"))
    await client.create(PODS, pod("newcomer", cpu="500m"))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_scheduler(config=load_kubeconfig(apiserver.data_dir / "kubeconfig"), stop=stop)
    )
    try:
        pods = await wait_for_pods(client, bound("newcomer"))
    finally:
        stop.set()
        await task
    assert pods["newcomer"]["spec"]["nodeName"] == "node-2"


async def test_a_crashed_loop_is_restarted(apiserver, client, monkeypatch):
    crashes = []
    original = Scheduler.schedule_one

    def crash_once(self, queued):
        if not crashes:
            crashes.append(queued.key)
            raise RuntimeError("boom")
        original(self, queued)

    monkeypatch.setattr(Scheduler, "schedule_one", crash_once)
    monkeypatch.setattr(run, "RESTART_DELAY", 0.01)
    await create_nodes(client, node("node-1"))
    await client.create(PODS, pod("survivor"))
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_scheduler(config=load_kubeconfig(apiserver.data_dir / "kubeconfig"), stop=stop, registry=registry)
    )
    try:
        await wait_for_pods(client, bound("survivor"))
    finally:
        stop.set()
        await task
    assert crashes == ["default/survivor"]
    assert list(registry.collect()) == []  # the metrics of both runs were unregistered on the way out


async def test_bench_scheduling_100_pods(apiserver, client):
    """Not a timing assertion: prints how long placing 100 pods on 3 nodes takes, for bench/ later."""
    await create_nodes(client, *(node(f"node-{i}", cpu="64", memory="256Gi") for i in (1, 2, 3)))
    names = [f"bench-{i}" for i in range(100)]
    for name in names:
        await client.create(PODS, pod(name, cpu="100m", memory="64Mi"))
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(
        run_scheduler(config=load_kubeconfig(apiserver.data_dir / "kubeconfig"), stop=stop)
    )
    try:
        pods = await wait_for_pods(client, bound(*names), within=60)
    finally:
        stop.set()
        await task
    elapsed = time.perf_counter() - start
    print(
        f"\nscheduler: 100 pods bound on 3 nodes in {elapsed:.3f} s ({100 / elapsed:.0f} pods/s, startup included)"
    )
    assert sum(placement(pods).values()) == 100
    assert set(placement(pods)) == {"node-1", "node-2", "node-3"}
