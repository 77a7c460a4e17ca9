"""The ReplicaSet controller: the deletion order and status arithmetic on their own, then the
controller against the real API server (in this loop, over HTTPS) with no kubelet: the tests
play the kubelet by writing pod status through ``pods/status``.

The helpers at the top (``client``, :func:`controllers`, :func:`wait_for`, :func:`set_ready`)
are shared with the Deployment and ownership tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers import replicaset
from control.controllers.kinds import EVENTS, PODS, REPLICA_SETS
from control.controllers.manager import ControllerContext, RunnableController
from control.controllers.ownership import format_time
from control.controllers.replicaset import (
    ReplicaSetController,
    calculate_status,
    pods_to_delete,
    rank_pods_for_deletion,
    slow_start_batch,
)
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

T = TypeVar("T")
NS = "default"
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- shared helpers


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


Builder = Callable[[ControllerContext], RunnableController]


@asynccontextmanager
async def controllers(client: RESTClient, *builders: Builder) -> AsyncIterator[list[Any]]:
    """Run controllers over a fresh informer factory (one controller-manager "process"); on exit
    stop them and their informers, and fail if one crashed or mutated its cache."""
    factory = InformerFactory(client, detect_mutations=True)
    ctx = ControllerContext(client=client, informers=factory)
    built = [build(ctx) for build in builders]
    factory.start()
    tasks = [asyncio.create_task(controller.run(), name=controller.name) for controller in built]
    try:
        yield built
        for task in tasks:
            if task.done():
                task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for informer in factory.informers():
            informer.cache.verify_unmutated()
        await factory.shutdown()


async def wait_for(check: Callable[[], Awaitable[T]], *, what: str, seconds: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}; last saw {result!r}")
        await asyncio.sleep(0.02)


async def list_pods(client: RESTClient, selector: str, *, namespace: str = NS) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=namespace, label_selector=selector))["items"]


async def set_ready(
    client: RESTClient, pod: dict[str, Any], *, ready: bool = True, since: datetime | None = None
) -> dict[str, Any]:
    """What a kubelet reports for a running pod whose readiness probe passes (or fails)."""
    moment = format_time(since or datetime.now(UTC))
    status = {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": moment},
            {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": moment},
        ],
    }
    return await patch(
        client, PODS, name=pod["metadata"]["name"], body={"status": status}, subresource="status"
    )


async def patch(client: RESTClient, resource: Any, *, name: str, body: Any, **options: Any) -> dict[str, Any]:
    """A patch in the test namespace without a resourceVersion, as kubectl sends it."""
    return await client.patch(resource, name, body, namespace=NS, **options)


async def scale(client: RESTClient, resource: Any, *, name: str, replicas: int) -> None:
    """``kubectl scale``: a merge patch of the scale subresource."""
    await patch(client, resource, name=name, body={"spec": {"replicas": replicas}}, subresource="scale")


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


async def events_of(client: RESTClient, name: str, *, namespace: str = NS) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, namespace=namespace))["items"]
    return [
        (event["type"], event["reason"], event["message"])
        for event in items
        if event["involvedObject"].get("name") == name
    ]


async def wait_for_events(
    client: RESTClient, name: str, expected: Iterable[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """Wait until every ``(type, reason, message)`` of ``expected`` was recorded about ``name``
    (controllers record Events right after acting, so they may trail what the test sees)."""
    wanted = set(expected)

    async def recorded() -> list[tuple[str, str, str]]:
        events = await events_of(client, name)
        return events if wanted <= set(events) else []

    return await wait_for(recorded, what=f"the events {sorted(wanted)}")


def rs_body(name: str, *, replicas: int, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"note": "from the template"}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            },
            **spec,
        },
    }


def orphan_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


# --------------------------------------------------------------------------- which pods go first


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready: bool = False,
    ready_age: float | None = None,
    age: float | None = 3600.0,
    restarts: int = 0,
    cost: str | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    conditions = []
    if ready:
        since = NOW - timedelta(seconds=ready_age if ready_age is not None else 60)
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": format_time(since)})
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "uid": uid or f"uid-{name}"}
    if age is not None:
        metadata["creationTimestamp"] = format_time(NOW - timedelta(seconds=age))
    if cost is not None:
        metadata["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": cost}
    return {
        "metadata": metadata,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"name": "app", "restartCount": restarts}],
        },
    }


def names(pods: list[Any]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_unscheduled_then_pending_then_not_ready_then_ready():
    pods = [
        pod("ready", node="n1", ready=True),
        pod("not-ready", node="n1"),
        pod("pending", node="n1", phase="Pending"),
        pod("unknown", node="n1", phase="Unknown"),
        pod("unscheduled", phase="Pending"),
    ]
    ranked = rank_pods_for_deletion(pods, related_pods=pods, now=NOW)
    assert names(ranked) == ["unscheduled", "pending", "unknown", "not-ready", "ready"]


def test_deletion_cost_then_doubled_up_pods_go_first():
    cheap = pod("cheap", node="n1", ready=True, cost="-10")
    doubled = [pod("doubled-a", node="n2", ready=True), pod("doubled-b", node="n2", ready=True)]
    alone = pod("alone", node="n3", ready=True)
    ranked = rank_pods_for_deletion([alone, *doubled, cheap], related_pods=[alone, *doubled, cheap], now=NOW)
    assert names(ranked)[0] == "cheap"
    assert set(names(ranked)[1:3]) == {"doubled-a", "doubled-b"}
    assert names(ranked)[3] == "alone"


def test_malformed_deletion_costs_count_as_zero():
    pods = [
        pod(name, node="n1", ready=True, cost=cost)
        for name, cost in (("plus", "+5"), ("zeros", "007"), ("big", "9" * 12))
    ]
    pods.append(pod("negative", node="n1", ready=True, cost="-1"))
    assert names(rank_pods_for_deletion(pods, related_pods=[], now=NOW))[0] == "negative"


def test_newer_ready_then_more_restarts_then_newer_pods_first():
    # Ready for 10 s vs 1000 s: different power-of-two age buckets, so the younger goes first.
    ranked = rank_pods_for_deletion(
        [
            pod("old-ready", node="n", ready=True, ready_age=1000),
            pod("new-ready", node="n", ready=True, ready_age=10),
        ],
        related_pods=[],
        now=NOW,
    )
    assert names(ranked) == ["new-ready", "old-ready"]
    ranked = rank_pods_for_deletion(
        [pod("calm", node="n"), pod("crashy", node="n", restarts=7)], related_pods=[], now=NOW
    )
    assert names(ranked) == ["crashy", "calm"]
    ranked = rank_pods_for_deletion(
        [
            pod("older", node="n", age=5000),
            pod("newer", node="n", age=5),
            pod("no-timestamp", node="n", age=None),
        ],
        related_pods=[],
        now=NOW,
    )
    assert names(ranked) == ["no-timestamp", "newer", "older"]


def test_pods_of_similar_age_are_ordered_by_uid():
    # 100 s and 110 s old share a log2 bucket: upstream breaks the tie by uid (random victims).
    ranked = rank_pods_for_deletion(
        [pod("b", node="n", age=100, uid="2"), pod("a", node="n", age=110, uid="1")], related_pods=[], now=NOW
    )
    assert names(ranked) == ["a", "b"]


def test_pods_to_delete_takes_the_first_ranked_or_everything():
    pods = [pod("ready", node="n", ready=True), pod("waiting", node="n", phase="Pending")]
    assert names(pods_to_delete(pods, related_pods=pods, count=1, now=NOW)) == ["waiting"]
    assert sorted(names(pods_to_delete(pods, related_pods=pods, count=5, now=NOW))) == ["ready", "waiting"]


# --------------------------------------------------------------------------- status


def test_status_counts_labeled_ready_and_available_pods():
    rs = rs_body("web", replicas=3, minReadySeconds=30)
    rs["status"] = {"observedGeneration": 1}
    pods = [
        pod("a", node="n", ready=True, ready_age=60),  # available: ready for longer than 30 s
        pod("b", node="n", ready=True, ready_age=5),  # ready, not yet available
        pod("c", node="n"),
    ]
    for p in pods:
        p["metadata"]["labels"] = {"app": "web"}
    pods[2]["metadata"]["labels"] = {"app": "web", "extra": "x"}
    status = calculate_status(rs, pods, manage_error=None, now=NOW)
    assert status == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 1,
    }
    partly_labeled = [{**pods[0], "metadata": {**pods[0]["metadata"], "labels": {"other": "1"}}}]
    assert "fullyLabeledReplicas" not in calculate_status(rs, partly_labeled, manage_error=None, now=NOW)


def test_replica_failure_condition_comes_and_goes():
    rs = rs_body("web", replicas=3)
    failure = errors.api_error_from_status(
        {
            "kind": "Status",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": "exceeded quota",
        }
    )
    status = calculate_status(rs, [], manage_error=failure, now=NOW)
    assert status["conditions"] == [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": "2026-01-01T12:00:00Z",
            "reason": "FailedCreate",
            "message": "exceeded quota",
        }
    ]
    rs["status"] = status
    assert "conditions" not in calculate_status(rs, [], manage_error=None, now=NOW)


async def test_slow_start_batches_double_and_stop_at_the_first_failing_batch():
    calls = 0
    in_flight: list[int] = []
    current = 0

    async def create() -> None:
        nonlocal calls, current
        calls += 1
        number = calls
        current += 1
        in_flight.append(current)
        await asyncio.sleep(0)
        current -= 1
        if number == 5:
            raise RuntimeError("quota")

    successes, failure = await slow_start_batch(20, initial_batch_size=1, create=create)
    # Batches of 1, 2, 4: the fifth call fails inside the third batch, so nothing after it runs.
    assert calls == 7 and successes == 6
    assert isinstance(failure, RuntimeError)
    assert max(in_flight) == 4
    assert await slow_start_batch(0, initial_batch_size=1, create=create) == (0, None)


# --------------------------------------------------------------------------- against the API server


def rs_controller(ctx: ControllerContext) -> ReplicaSetController:
    return replicaset.new_controller(ctx)


async def test_creates_pods_from_the_template_with_a_controller_reference(client):
    async with controllers(client, rs_controller):
        rs = await client.create(REPLICA_SETS, rs_body("web", replicas=3))

        async def three() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=web")
            return found if len(found) == 3 else []

        pods = await wait_for(three, what="3 pods")
        for p in pods:
            meta = p["metadata"]
            assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
            assert meta["generateName"] == "web-"
            assert meta["annotations"] == {"note": "from the template"}
            assert meta["ownerReferences"] == [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web",
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]

        async def status() -> dict[str, Any]:
            current = (await client.get(REPLICA_SETS, "web", namespace=NS))["status"]
            return current if current.get("fullyLabeledReplicas") == 3 else {}

        assert await wait_for(status, what="status") == {
            "replicas": 3,
            "fullyLabeledReplicas": 3,
            "observedGeneration": 1,
        }
        expected = {("Normal", "SuccessfulCreate", f"Created pod: {n}") for n in names(pods)}
        events = await wait_for_events(client, "web", expected)
        assert {e for e in events if e[1] == "SuccessfulCreate"} == expected

        for p in pods:
            await set_ready(client, p)

        async def all_ready() -> dict[str, Any]:
            current = (await client.get(REPLICA_SETS, "web", namespace=NS))["status"]
            return current if current.get("availableReplicas") == 3 else {}

        assert (await wait_for(all_ready, what="3 available"))["readyReplicas"] == 3


async def test_scale_down_deletes_not_ready_pods_first_and_scale_up_replaces(client):
    async with controllers(client, rs_controller):
        await client.create(REPLICA_SETS, rs_body("web", replicas=4))

        async def four() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=web")
            return found if len(found) == 4 else []

        pods = await wait_for(four, what="4 pods")
        keep = pods[:2]
        for p in keep:
            await set_ready(client, p)
        await scale(client, REPLICA_SETS, name="web", replicas=2)

        async def two() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=web")
            return found if len(found) == 2 else []

        assert sorted(names(await wait_for(two, what="2 pods"))) == sorted(names(keep))
        expected = {("Normal", "SuccessfulDelete", f"Deleted pod: {n}") for n in names(pods[2:])}
        events = await wait_for_events(client, "web", expected)
        assert {e for e in events if e[1] == "SuccessfulDelete"} == expected

        # A pod that fails (terminal phase) no longer counts: the ReplicaSet replaces it.
        failed = {"status": {"phase": "Failed"}}
        await patch(client, PODS, name=keep[0]["metadata"]["name"], body=failed, subresource="status")

        async def replaced() -> list[dict[str, Any]]:
            found = [p for p in await list_pods(client, "app=web") if p["status"].get("phase") != "Failed"]
            return found if len(found) == 2 else []

        assert keep[0]["metadata"]["name"] not in names(await wait_for(replaced, what="a replacement pod"))


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(client):
    first = await client.create(PODS, orphan_pod("orphan-1", {"app": "web"}))
    await client.create(PODS, orphan_pod("orphan-2", {"app": "web"}))
    await client.create(PODS, orphan_pod("stranger", {"app": "other"}))
    async with controllers(client, rs_controller):
        rs = await client.create(REPLICA_SETS, rs_body("web", replicas=2))

        async def adopted() -> bool:
            pods = {p["metadata"]["name"]: p for p in await list_pods(client, "app")}
            refs = {
                name: [r["uid"] for r in p["metadata"].get("ownerReferences") or ()]
                for name, p in pods.items()
            }
            return refs == {
                "orphan-1": [rs["metadata"]["uid"]],
                "orphan-2": [rs["metadata"]["uid"]],
                "stranger": [],
            }

        await wait_for(adopted, what="both orphans adopted, the stranger left alone")
        assert len(await list_pods(client, "app=web")) == 2  # adopted pods count: nothing created

        # Relabel one: the ReplicaSet releases it and creates a replacement.
        await patch(client, PODS, name="orphan-1", body={"metadata": {"labels": {"app": "retired"}}})

        async def released() -> bool:
            retired = await client.get(PODS, "orphan-1", namespace=NS)
            return (
                not retired["metadata"].get("ownerReferences")
                and len(await list_pods(client, "app=web")) == 2
            )

        await wait_for(released, what="orphan-1 released and replaced")
        assert (
            first["metadata"]["uid"] == (await client.get(PODS, "orphan-1", namespace=NS))["metadata"]["uid"]
        )


async def test_a_burst_of_events_never_creates_twice_and_a_restart_does_not_duplicate(client):
    created_names: list[str] = []

    async with controllers(client, rs_controller):
        await client.create(REPLICA_SETS, rs_body("web", replicas=30))

        async def some() -> bool:
            return len(await list_pods(client, "app=web")) >= 5

        await wait_for(some, what="the first pods")
        # Storm the controller with events while it creates; expectations must hold it back.
        for index in range(20):
            await patch(
                client, REPLICA_SETS, name="web", body={"metadata": {"annotations": {"poke": str(index)}}}
            )
    # The controller is stopped mid-way; a new one (fresh caches, fresh expectations) takes over.
    async with controllers(client, rs_controller):

        async def thirty() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=web")
            return found if len(found) >= 30 else []

        pods = await wait_for(thirty, what="30 pods")
        created_names = names(pods)
        status = await wait_for(lambda: _status_with(client, "web", replicas=30), what="status.replicas 30")
        assert status["replicas"] == 30
    assert len(created_names) == 30 == len(set(created_names))
    assert len(await list_pods(client, "app=web")) == 30


async def _status_with(client: RESTClient, name: str, **expected: int) -> dict[str, Any]:
    status = (await client.get(REPLICA_SETS, name, namespace=NS)).get("status") or {}
    return status if all(status.get(k) == v for k, v in expected.items()) else {}


async def test_available_only_after_min_ready_seconds(client):
    shift = timedelta()
    built: list[ReplicaSetController] = []

    def controller(ctx: ControllerContext) -> ReplicaSetController:
        built.append(
            ReplicaSetController(
                client=ctx.client,
                informers=ctx.informers,
                recorder=ctx.recorder("replicaset-controller"),
                now=lambda: datetime.now(UTC) + shift,
            )
        )
        return built[0]

    async with controllers(client, controller):
        await client.create(REPLICA_SETS, rs_body("web", replicas=1, minReadySeconds=60))
        (only,) = await wait_for(lambda: list_pods(client, "app=web"), what="a pod")
        await set_ready(client, only)
        ready = await wait_for(lambda: _status_with(client, "web", readyReplicas=1), what="ready")
        assert "availableReplicas" not in ready  # ready for less than a minute
        shift = timedelta(seconds=61)
        await patch(client, REPLICA_SETS, name="web", body={"metadata": {"annotations": {"poke": "1"}}})
        await wait_for(lambda: _status_with(client, "web", availableReplicas=1), what="available")


async def test_a_ready_pod_becomes_available_without_further_events(client):
    async with controllers(client, rs_controller):
        await client.create(REPLICA_SETS, rs_body("web", replicas=1, minReadySeconds=1))
        (only,) = await wait_for(lambda: list_pods(client, "app=web"), what="a pod")
        await set_ready(client, only)
        # Nothing changes after the pod turns ready: the controller must come back by itself.
        await wait_for(lambda: _status_with(client, "web", availableReplicas=1), what="available", seconds=5)


class FailingPodCreates(RESTClient):
    """A FAKE fault: the real client, except that pod creates are refused (as a quota would) while
    ``failing`` is set. kubelab's API server has no quota to make it do that on cue."""

    failing = True
    attempts = 0

    async def create(self, resource: Any, body: Any, **kwargs: Any) -> dict[str, Any]:
        if resource == PODS and self.failing:
            self.attempts += 1
            raise errors.api_error_from_status(
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Forbidden",
                    "code": 403,
                    "message": 'pods "web-" is forbidden: exceeded quota: pods',
                }
            )
        return await super().create(resource, body, **kwargs)


async def test_failed_creates_are_reported_and_retried(apiserver, client):  # noqa: F811
    failing = FailingPodCreates(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    try:
        async with controllers(failing, rs_controller):
            await client.create(REPLICA_SETS, rs_body("web", replicas=5))

            async def failure_condition() -> list[dict[str, Any]]:
                status = (await client.get(REPLICA_SETS, "web", namespace=NS)).get("status") or {}
                return status.get("conditions") or []

            (condition,) = await wait_for(failure_condition, what="the ReplicaFailure condition")
            assert condition["type"] == "ReplicaFailure" and condition["reason"] == "FailedCreate"
            assert condition["message"] == 'pods "web-" is forbidden: exceeded quota: pods'
            assert failing.attempts >= 1
            message = 'Error creating: pods "web-" is forbidden: exceeded quota: pods'
            await wait_for_events(client, "web", [("Warning", "FailedCreate", message)])
            # Failed creates lowered the expectations (else nothing would happen for 5 minutes).
            failing.failing = False

            async def recovered() -> bool:
                status = (await client.get(REPLICA_SETS, "web", namespace=NS)).get("status") or {}
                return status.get("replicas") == 5 and not status.get("conditions")

            await wait_for(recovered, what="5 pods and the condition cleared")
    finally:
        await failing.close()


async def test_deleting_a_replica_set_drops_its_expectations(client):
    async with controllers(client, rs_controller) as (controller,):
        await client.create(REPLICA_SETS, rs_body("web", replicas=1))
        await wait_for(lambda: list_pods(client, "app=web"), what="a pod")
        controller.expectations.expect_creations(f"{NS}/web", 5)
        assert not controller.expectations.satisfied(f"{NS}/web")
        await client.delete(REPLICA_SETS, "web", namespace=NS)

        async def forgotten() -> bool:
            return controller.expectations.pending(f"{NS}/web") == (0, 0)

        await wait_for(forgotten, what="the expectations of the deleted ReplicaSet dropped")
