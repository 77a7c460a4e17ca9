"""The ReplicationController controller: the ReplicaSet controller run over core/v1
ReplicationControllers, against the real API server (in this loop, over HTTPS) with no kubelet;
the tests play the kubelet by writing pod status through ``pods/status``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from control.client import workqueue
from control.client.config import load_kubeconfig
from control.client.rest import RESTClient
from control.controllers import garbagecollector, replicationcontroller
from control.controllers.kinds import PODS, REPLICA_SETS, REPLICATION_CONTROLLERS
from control.controllers.manager import ControllerContext
from control.controllers.metrics import WorkqueueMetricsProvider
from control.controllers.replicaset import ReplicaSetController
from control.controllers.replicationcontroller import label_map_selector
from control.resources.selectors import SelectorError
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.test_metrics import sample
from tests.control.controllers.test_replicaset import (
    NS,
    controllers,
    list_pods,
    names,
    orphan_pod,
    patch,
    rs_body,
    rs_controller,
    scale,
    set_ready,
    wait_for,
    wait_for_events,
)


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


def rc_controller(ctx: ControllerContext) -> ReplicaSetController:
    return replicationcontroller.new_controller(ctx)


def rc_body(name: str, *, replicas: int, selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A ReplicationController whose template is labelled ``app: <name>``; without ``selector``
    the API server defaults it (and the object's labels) from the template."""
    spec: dict[str, Any] = {
        "replicas": replicas,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        },
    }
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name}, "spec": spec}


def count_of(
    client: RESTClient, selector: str, *, count: int
) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    """A check for :func:`wait_for`: the pods matching ``selector`` once there are ``count``."""

    async def check() -> list[dict[str, Any]]:
        found = await list_pods(client, selector)
        return found if len(found) == count else []

    return check


# --------------------------------------------------------------------------- the selector


def test_the_label_map_reads_as_its_match_labels_selector():
    selector = label_map_selector({"spec": {"selector": {"tier": "front", "app": "web"}}})
    assert str(selector) == "app=web,tier=front"
    assert selector.matches({"app": "web", "tier": "front", "extra": "x"})
    assert not selector.matches({"app": "web"})


def test_a_missing_selector_selects_nothing_and_a_malformed_one_is_an_error():
    assert not label_map_selector({"spec": {}}).matches({})
    assert label_map_selector({"spec": {"selector": {}}}).empty
    with pytest.raises(SelectorError):
        label_map_selector({"spec": {"selector": {"app": 3}}})


# --------------------------------------------------------------------------- against the API server


@pytest.fixture
def queue_metrics() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    workqueue.set_metrics_provider(WorkqueueMetricsProvider(registry))
    yield registry
    workqueue.set_metrics_provider(None)


async def test_creates_and_deletes_pods_to_match_replicas(client, queue_metrics):
    async with controllers(client, rc_controller) as (controller,):
        assert controller.name == "replicationcontroller"
        rc = await client.create(REPLICATION_CONTROLLERS, rc_body("web", replicas=3), namespace=NS)
        assert rc["spec"]["selector"] == {"app": "web"}  # defaulted from the template

        pods = await wait_for(count_of(client, "app=web", count=3), what="3 pods")
        for p in pods:
            assert p["metadata"]["generateName"] == "web-"
            assert p["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "v1",
                    "kind": "ReplicationController",
                    "name": "web",
                    "uid": rc["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        created = {("Normal", "SuccessfulCreate", f"Created pod: {n}") for n in names(pods)}
        await wait_for_events(client, "web", created)

        for p in pods[:2]:
            await set_ready(client, p)

        async def status() -> dict[str, Any]:
            current = (await client.get(REPLICATION_CONTROLLERS, "web", namespace=NS))["status"]
            return current if current.get("availableReplicas") == 2 else {}

        assert await wait_for(status, what="2 available") == {
            "replicas": 3,
            "fullyLabeledReplicas": 3,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 1,
        }

        # kubectl scale rc web --replicas=2: the pod that is not ready goes.
        await scale(client, REPLICATION_CONTROLLERS, name="web", replicas=2)
        remaining = await wait_for(count_of(client, "app=web", count=2), what="2 pods")
        assert sorted(names(remaining)) == sorted(names(pods[:2]))
        await wait_for_events(
            client, "web", {("Normal", "SuccessfulDelete", f"Deleted pod: {pods[2]['metadata']['name']}")}
        )

        # A deleted pod is replaced.
        await client.delete(PODS, pods[0]["metadata"]["name"], namespace=NS, grace_period_seconds=0)

        async def replaced() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=web")
            return found if len(found) == 2 and pods[0]["metadata"]["name"] not in names(found) else []

        await wait_for(replaced, what="a replacement pod")
    # upstream's queue name, as its workqueue metrics show it
    assert (sample(queue_metrics, "workqueue_adds_total", name="replicationmanager") or 0) >= 1


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(client):
    await client.create(PODS, orphan_pod("orphan-1", {"app": "web", "tier": "front"}), namespace=NS)
    await client.create(PODS, orphan_pod("orphan-2", {"app": "web", "tier": "front"}), namespace=NS)
    await client.create(PODS, orphan_pod("stranger", {"app": "web"}), namespace=NS)
    async with controllers(client, rc_controller):
        body = rc_body("web", replicas=2, selector={"app": "web", "tier": "front"})
        body["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
        rc = await client.create(REPLICATION_CONTROLLERS, body, namespace=NS)

        async def adopted() -> bool:
            pods = {p["metadata"]["name"]: p for p in await list_pods(client, "app")}
            refs = {
                name: [(r["kind"], r["uid"]) for r in p["metadata"].get("ownerReferences") or ()]
                for name, p in pods.items()
            }
            mine = [("ReplicationController", rc["metadata"]["uid"])]
            return refs == {"orphan-1": mine, "orphan-2": mine, "stranger": []}

        await wait_for(adopted, what="both orphans adopted, the pod missing a label left alone")
        assert len(await list_pods(client, "app=web,tier=front")) == 2  # nothing created

        await patch(client, PODS, name="orphan-1", body={"metadata": {"labels": {"tier": "retired"}}})

        async def released() -> bool:
            retired = await client.get(PODS, "orphan-1", namespace=NS)
            return (
                not retired["metadata"].get("ownerReferences")
                and len(await list_pods(client, "app=web,tier=front")) == 2
            )

        await wait_for(released, what="orphan-1 released and replaced")


async def test_replica_sets_and_replication_controllers_leave_each_others_pods_alone(client):
    async with controllers(client, rs_controller, rc_controller):
        await client.create(REPLICA_SETS, rs_body("rs", replicas=2, labels={"app": "shared"}))
        rs_pods = await wait_for(count_of(client, "app=shared", count=2), what="the ReplicaSet's 2 pods")
        # Its selector matches the ReplicaSet's pods, but they have a controller: it makes its own.
        body = rc_body("rc", replicas=1, selector={"app": "shared"})
        body["spec"]["template"]["metadata"]["labels"] = {"app": "shared"}
        rc = await client.create(REPLICATION_CONTROLLERS, body, namespace=NS)

        async def three() -> list[dict[str, Any]]:
            found = await list_pods(client, "app=shared")
            kinds = sorted(p["metadata"]["ownerReferences"][0]["kind"] for p in found)
            return found if kinds == ["ReplicaSet", "ReplicaSet", "ReplicationController"] else []

        found = await wait_for(three, what="two ReplicaSet pods and one ReplicationController pod")
        mine = [p for p in found if p["metadata"]["ownerReferences"][0]["uid"] == rc["metadata"]["uid"]]
        assert len(mine) == 1 and names(mine)[0] not in names(rs_pods)


async def test_the_garbage_collector_deletes_or_orphans_a_deleted_controllers_pods(client):
    async with controllers(client, rc_controller, garbagecollector.new_controller):
        await client.create(REPLICATION_CONTROLLERS, rc_body("gone", replicas=2), namespace=NS)
        await client.create(REPLICATION_CONTROLLERS, rc_body("kept", replicas=1), namespace=NS)
        await wait_for(count_of(client, "app=gone", count=2), what="2 pods of 'gone'")
        kept = await wait_for(count_of(client, "app=kept", count=1), what="1 pod of 'kept'")

        await client.delete(REPLICATION_CONTROLLERS, "gone", namespace=NS, propagation_policy="Background")
        await wait_for(lambda: _none_left(client, "app=gone"), what="the deleted controller's pods collected")

        await client.delete(REPLICATION_CONTROLLERS, "kept", namespace=NS, propagation_policy="Orphan")

        async def orphaned() -> bool:
            pods = await list_pods(client, "app=kept")
            return names(pods) == names(kept) and not pods[0]["metadata"].get("ownerReferences")

        await wait_for(orphaned, what="the orphaned pod kept without its owner reference")


async def _none_left(client: RESTClient, selector: str) -> bool:
    return not await list_pods(client, selector)
