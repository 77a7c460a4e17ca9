"""The node lifecycle controller against a real API server, on a fake clock.

The tests play the kubelet: they register Nodes, renew Leases and post conditions; time moves
only when a test advances the clock, and health passes run when the test calls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.client.config import load_kubeconfig
from control.client.errors import ConflictError, NotFoundError
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.client.testing import FakeClock
from control.controllers.kinds import EVENTS, LEASES, NODES, PODS
from control.controllers.manager import ControllerContext, ControllerOptions
from control.controllers.nodelifecycle import (
    NodeLifecycleController,
    matching_tolerations,
    min_toleration_seconds,
    tolerates,
    untolerated_taint,
    with_default_tolerations,
)
from control.controllers.ownership import format_time
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

GRACE = 40.0
START = 1000.0
WALL_START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


@dataclasses.dataclass
class Harness:
    client: RESTClient
    clock: FakeClock
    controller: NodeLifecycleController
    informers: InformerFactory

    def wall(self) -> datetime:
        return WALL_START + timedelta(seconds=self.clock.now() - START)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def monitor(self) -> None:
        await self.controller.monitor_node_health()

    async def cached(self, resource, key: str, check: Callable[[dict[str, Any]], bool]) -> None:
        """Wait until the controller's cache holds a version of ``key`` passing ``check``."""
        namespace = "kube-node-lease" if resource is LEASES else None
        cache = self.informers.informer(resource, namespace=namespace).cache
        await eventually(lambda: _ready(cache.get_by_key(key), check))

    async def register(self, name: str, *, ready: str = "True", **spec: Any) -> dict[str, Any]:
        heartbeat = format_time(self.wall())
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": spec,
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": ready,
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": heartbeat,
                        "lastTransitionTime": heartbeat,
                    },
                    {
                        "type": "MemoryPressure",
                        "status": "False",
                        "lastHeartbeatTime": heartbeat,
                        "lastTransitionTime": heartbeat,
                    },
                ]
            },
        }
        created = await self.client.create(NODES, body)
        await self.renew(name)
        await self.cached(NODES, name, lambda n: True)
        return created

    async def renew(self, name: str) -> None:
        renew = self.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            lease = await self.client.get(LEASES, name, namespace="kube-node-lease")
        except NotFoundError:
            await self.client.create(
                LEASES,
                {
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
                },
            )
        else:
            lease["spec"]["renewTime"] = renew
            await self.client.replace(LEASES, lease)
        await self.cached(
            LEASES, f"kube-node-lease/{name}", lambda lease: lease["spec"]["renewTime"] == renew
        )

    async def post_condition(self, name: str, condition_type: str, status: str) -> None:
        node = await self.client.get(NODES, name)
        heartbeat = format_time(self.wall())
        for condition in node["status"]["conditions"]:
            if condition["type"] == condition_type:
                if condition["status"] != status:
                    condition["lastTransitionTime"] = heartbeat
                condition.update(status=status, lastHeartbeatTime=heartbeat, reason="Posted", message="")
        await self.client.replace(NODES, node, subresource="status")
        # This status or a later version (the controller may already have tainted the node).
        await self.cached(
            NODES,
            name,
            lambda n: any(
                c["type"] == condition_type and c["status"] == status and c["lastHeartbeatTime"] == heartbeat
                for c in n["status"]["conditions"]
            ),
        )

    async def pod(self, name: str, node_name: str, *, tolerations: list | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"nodeName": node_name, "containers": [{"name": "c", "image": "kubelab"}]}
        if tolerations is not None:
            spec["tolerations"] = tolerations
        created = await self.client.create(
            PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
        )
        now = format_time(self.wall())
        created["status"].update(
            phase="Running", conditions=[{"type": "Ready", "status": "True", "lastTransitionTime": now}]
        )
        await self.client.replace(PODS, created, subresource="status")
        await self.cached(
            PODS, f"default/{name}", lambda p: (p.get("status") or {}).get("phase") == "Running"
        )
        return created


def _ready(obj: dict[str, Any] | None, check: Callable[[dict[str, Any]], bool]) -> bool:
    return obj is not None and check(obj)


async def eventually(check: Callable[[], Any], *, seconds: float = 10.0) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy."""
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def harness(client: RESTClient, **options: Any) -> AsyncIterator[Harness]:
    clock = FakeClock(START)
    informers = InformerFactory(client)
    settings = dataclasses.replace(
        ControllerOptions(),
        # The periodic pass runs once at start; the tests run the others themselves.
        **{"node_monitor_period": 1e9, "node_monitor_grace_period": GRACE, **options},
    )
    ctx = ControllerContext(client=client, informers=informers, options=settings)
    box: list[Harness] = []
    controller = NodeLifecycleController(ctx, clock=clock, now=lambda: box[0].wall(), workers=2)
    box.append(Harness(client=client, clock=clock, controller=controller, informers=informers))
    informers.start()
    task = asyncio.create_task(controller.run())
    try:
        # The first pass has run once the loop sleeps on the clock.
        await eventually(lambda: any(when > START for when in clock.pending()))
        yield box[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await informers.shutdown()


async def node_state(client: RESTClient, name: str) -> tuple[dict[str, dict], list[dict]]:
    node = await client.get(NODES, name)
    conditions = {c["type"]: c for c in node["status"]["conditions"]}
    return conditions, node["spec"].get("taints") or []


def taint_keys(taints: list[dict]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in taints}


async def events(client: RESTClient, *, reason: str, name: str) -> list[dict]:
    items = (await client.list(EVENTS, namespace="default"))["items"]
    return [e for e in items if e["reason"] == reason and e["involvedObject"]["name"] == name]


async def update_node(client: RESTClient, name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Read-modify-write, again on conflict: the controller writes taints at the same time."""
    while True:
        node = await client.get(NODES, name)
        mutate(node)
        try:
            await client.replace(NODES, node)
        except ConflictError:
            continue
        return


async def pod_gone(client: RESTClient, name: str) -> bool:
    try:
        pod = await client.get(PODS, name, namespace="default")
    except NotFoundError:
        return True
    return bool(pod["metadata"].get("deletionTimestamp"))


# --- taints and tolerations ----------------------------------------------------------------------


def test_toleration_matching_follows_upstream():
    taint = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
    assert tolerates({"key": "dedicated", "operator": "Equal", "value": "db"}, taint)
    assert tolerates({"key": "dedicated", "value": "db", "effect": "NoExecute"}, taint)  # Equal by default
    assert not tolerates({"key": "dedicated", "value": "web"}, taint)
    assert tolerates({"key": "dedicated", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)  # empty key and effect: everything
    assert not tolerates({"operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)
    assert not tolerates({"key": "dedicated", "operator": "Gt", "value": "db"}, taint)  # unknown operator


def test_untolerated_taints_and_toleration_times():
    taints = [
        {"key": "a", "effect": "NoSchedule"},
        {"key": "b", "effect": "NoExecute"},
    ]
    assert untolerated_taint(taints, [], effects=["NoExecute"]) == taints[1]
    assert untolerated_taint(taints, [{"key": "b", "operator": "Exists"}], effects=["NoExecute"]) is None
    assert (
        untolerated_taint(taints, [{"key": "b", "operator": "Exists"}], effects=["NoSchedule"]) == taints[0]
    )
    tolerated, used = matching_tolerations(
        taints[1:], [{"key": "b", "operator": "Exists", "tolerationSeconds": 30}, {"operator": "Exists"}]
    )
    assert tolerated and used == [{"key": "b", "operator": "Exists", "tolerationSeconds": 30}]
    assert matching_tolerations(taints, [{"key": "b", "operator": "Exists"}]) == (False, [])
    assert min_toleration_seconds([]) == 0
    assert min_toleration_seconds([{"tolerationSeconds": 30}, {"tolerationSeconds": 10}, {}]) == 10
    assert min_toleration_seconds([{"tolerationSeconds": 30}, {"tolerationSeconds": -5}]) == 0
    assert min_toleration_seconds([{"operator": "Exists"}]) is None


def test_default_tolerations_as_the_admission_plugin_adds_them():
    added = with_default_tolerations([], not_ready_seconds=300, unreachable_seconds=200)
    assert added == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 200,
        },
    ]
    own = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]
    assert with_default_tolerations(own, not_ready_seconds=300, unreachable_seconds=300)[0] == own[0]
    assert len(with_default_tolerations(own, not_ready_seconds=300, unreachable_seconds=300)) == 2
    everything = [{"operator": "Exists"}]
    assert with_default_tolerations(everything, not_ready_seconds=1, unreachable_seconds=1) == everything
    no_schedule_only = [{"operator": "Exists", "effect": "NoSchedule"}]
    assert len(with_default_tolerations(no_schedule_only, not_ready_seconds=1, unreachable_seconds=1)) == 3


async def test_bad_options_are_refused(client):
    options = ControllerOptions(node_monitor_grace_period=0)
    with pytest.raises(ValueError, match="positive"):
        NodeLifecycleController(
            ControllerContext(client=client, informers=InformerFactory(client), options=options)
        )


# --- health, taints, eviction ----------------------------------------------------------------------


async def test_lease_expiry_makes_the_node_unknown_tainted_and_its_pods_evicted(client):
    async with harness(client, default_unreachable_toleration_seconds=300) as h:
        await h.register("node-1")
        await h.pod("plain", "node-1")  # gets the default 300 s toleration
        await h.pod("patient", "node-1", tolerations=[{"operator": "Exists", "effect": "NoExecute"}])
        await h.pod(
            "brief",
            "node-1",
            tolerations=[
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 20,
                }
            ],
        )
        # A renewed lease keeps the node alive past the grace period; time counts from when
        # the controller saw the renewal.
        await h.advance(30)
        await h.renew("node-1")
        await h.monitor()
        await h.advance(30)
        await h.monitor()
        conditions, taints = await node_state(client, "node-1")
        assert conditions["Ready"]["status"] == "True" and not taints

        await h.advance(GRACE - 30 + 1)  # GRACE + 1 since the last renewal
        await h.monitor()
        conditions, taints = await node_state(client, "node-1")
        ready = conditions["Ready"]
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        )
        assert ready["lastTransitionTime"] == format_time(h.wall())
        assert conditions["MemoryPressure"]["status"] == "Unknown"
        for never in ("DiskPressure", "PIDPressure"):
            assert conditions[never]["status"] == "Unknown"
            assert conditions[never]["reason"] == "NodeStatusNeverUpdated"
            assert conditions[never]["message"] == "Kubelet never posted node status."
        assert ("node.kubernetes.io/unreachable", "NoExecute") not in taint_keys(taints)  # one period later
        node_events = await events(client, reason="NodeNotReady", name="node-1")
        assert [e["message"] for e in node_events] == ["Node node-1 status is now: NodeNotReady"]
        plain = await client.get(PODS, "plain", namespace="default")
        assert {c["type"]: c["status"] for c in plain["status"]["conditions"]}["Ready"] == "False"
        pod_events = await events(client, reason="NodeNotReady", name="plain")
        assert [(e["type"], e["message"]) for e in pod_events] == [("Warning", "Node is not ready")]
        # The NoSchedule taint follows the condition at once.
        await eventually(
            lambda: _has(client, "node-1", ("node.kubernetes.io/unreachable", "NoSchedule")),
        )

        await h.advance(5)
        await h.cached(NODES, "node-1", lambda n: n["status"]["conditions"][0]["status"] == "Unknown")
        await h.monitor()
        _, taints = await node_state(client, "node-1")
        assert {
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoSchedule"),
        } <= (taint_keys(taints))
        no_execute = next(t for t in taints if t["effect"] == "NoExecute")
        assert no_execute["timeAdded"] == format_time(h.wall())

        # Evictions follow the tolerations: 20 s, then the default 300 s; never for "patient".
        await h.cached(
            NODES, "node-1", lambda n: any(t["effect"] == "NoExecute" for t in n["spec"].get("taints", []))
        )
        due = await eventually(lambda: h.controller.scheduled_evictions().get("default/brief"))
        assert due == h.clock.now() + 20
        assert not await pod_gone(client, "brief")
        await h.advance(20)
        await eventually(lambda: pod_gone(client, "brief"))
        assert not await pod_gone(client, "plain")
        brief = await client.get(PODS, "brief", namespace="default")
        target = {c["type"]: c for c in brief["status"]["conditions"]}["DisruptionTarget"]
        assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
        eviction_events = await events(client, reason="TaintManagerEviction", name="brief")
        assert [e["message"] for e in eviction_events] == ["Marking for deletion Pod default/brief"]
        await h.advance(280)
        await eventually(lambda: pod_gone(client, "plain"))
        await h.advance(3600)
        await asyncio.sleep(0.1)
        assert not await pod_gone(client, "patient")


async def _has(client: RESTClient, name: str, taint: tuple[str, str]) -> bool:
    _, taints = await node_state(client, name)
    return taint in taint_keys(taints)


async def test_recovery_removes_taints_and_cancels_evictions(client):
    async with harness(client) as h:
        await h.register("node-2")
        await h.pod("survivor", "node-2")
        await h.monitor()  # the controller sees the node for the first time
        await h.advance(GRACE + 1)
        await h.monitor()
        await h.cached(NODES, "node-2", lambda n: n["status"]["conditions"][0]["status"] == "Unknown")
        await h.advance(5)
        await h.monitor()
        await eventually(lambda: _has(client, "node-2", ("node.kubernetes.io/unreachable", "NoExecute")))
        due = await eventually(lambda: h.controller.scheduled_evictions().get("default/survivor"))
        assert due == h.clock.now() + 300

        # The kubelet comes back: a lease renewal and a Ready heartbeat.
        await h.renew("node-2")
        await h.post_condition("node-2", "Ready", "True")
        await h.monitor()
        conditions, _ = await node_state(client, "node-2")
        assert conditions["Ready"]["status"] == "True"
        await eventually(lambda: _no_taints(client, "node-2"))
        cancelled = await eventually(lambda: events(client, reason="TaintManagerEviction", name="survivor"))
        assert [e["message"] for e in cancelled] == ["Cancelling deletion of Pod default/survivor"]
        await h.advance(600)
        await asyncio.sleep(0.1)
        assert not await pod_gone(client, "survivor")


async def _no_taints(client: RESTClient, name: str) -> bool:
    _, taints = await node_state(client, name)
    return not taints


async def test_a_node_reporting_not_ready_gets_not_ready_taints(client):
    async with harness(client) as h:
        await h.register("node-3")
        await h.post_condition("node-3", "Ready", "False")
        await eventually(lambda: _has(client, "node-3", ("node.kubernetes.io/not-ready", "NoSchedule")))
        await h.monitor()
        await eventually(lambda: _has(client, "node-3", ("node.kubernetes.io/not-ready", "NoExecute")))
        # Then the kubelet goes quiet: not-ready is swapped for unreachable.
        await h.advance(GRACE + 1)
        await h.monitor()
        await h.cached(NODES, "node-3", lambda n: n["status"]["conditions"][0]["status"] == "Unknown")
        await h.monitor()

        async def unreachable_only() -> bool:
            _, taints = await node_state(client, "node-3")
            return taint_keys(taints) == {
                ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/unreachable", "NoSchedule"),
            }

        await eventually(unreachable_only)


async def test_conditions_and_unschedulable_become_noschedule_taints(client):
    async with harness(client) as h:
        await h.register("node-4", unschedulable=True)
        await eventually(lambda: _has(client, "node-4", ("node.kubernetes.io/unschedulable", "NoSchedule")))
        await h.post_condition("node-4", "MemoryPressure", "True")
        await eventually(lambda: _has(client, "node-4", ("node.kubernetes.io/memory-pressure", "NoSchedule")))
        await h.post_condition("node-4", "MemoryPressure", "False")

        def mutate(node: dict[str, Any]) -> None:
            node["spec"]["unschedulable"] = False
            node["spec"]["taints"].append({"key": "dedicated", "value": "db", "effect": "NoSchedule"})

        await update_node(client, "node-4", mutate)

        async def only_dedicated() -> bool:
            _, taints = await node_state(client, "node-4")
            return taint_keys(taints) == {("dedicated", "NoSchedule")}

        await eventually(only_dedicated)


async def test_an_untolerated_noexecute_taint_evicts_at_once(client):
    async with harness(client) as h:
        await h.register("node-5")
        await h.pod("intruder", "node-5")
        await h.pod(
            "welcome", "node-5", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]
        )
        await update_node(
            client,
            "node-5",
            lambda n: n["spec"].update(taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
        )
        await eventually(lambda: pod_gone(client, "intruder"))
        await asyncio.sleep(0.1)
        assert not await pod_gone(client, "welcome")
