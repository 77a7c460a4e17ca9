"""The Deployment controller: the rollout arithmetic on its own (fenceposts, proportions,
revisions, conditions), then Deployment and ReplicaSet controllers together against the real API
server. No kubelet runs: the tests play it, marking pods Running and Ready through
``pods/status`` — all at once (:func:`kubelet`) or one pod at a time, checking maxSurge and
maxUnavailable after every change the controllers make.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.rest import EventType, PatchType, RESTClient
from control.controllers import deployment as deployment_module
from control.controllers.deployment import (
    ANNOTATIONS_NOT_COPIED,
    POD_TEMPLATE_HASH_LABEL,
    DeploymentController,
    IntOrPercentError,
    calculate_status,
    deployment_timed_out,
    equal_ignore_hash,
    find_active_or_latest,
    find_new_replica_set,
    find_old_replica_sets,
    get_proportion,
    is_saturated,
    last_revision,
    max_revision,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    resolve_fenceposts,
    scaled_value,
    set_new_replica_set_annotations,
    sort_by_revision,
)
from control.controllers.kinds import DEPLOYMENTS, PODS, REPLICA_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import compute_hash, controller_of, format_time
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.test_replicaset import (
    NS,
    controllers,
    is_ready,
    list_pods,
    patch,
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


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def dc_controller(ctx: ControllerContext) -> DeploymentController:
    return deployment_module.new_controller(ctx)


# --------------------------------------------------------------------------- fenceposts


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up, unavailable rounds down
        ("25%", "25%", 1, (1, 0)),
        (0, "1%", 2, (0, 1)),  # both resolve to 0: one pod may be unavailable
        (1, 0, 3, (1, 0)),
        (None, None, 5, (0, 1)),
        ("100%", "0%", 4, (4, 0)),
    ],
)
def test_resolve_fenceposts(surge, unavailable, desired, expected):
    assert resolve_fenceposts(max_surge=surge, max_unavailable=unavailable, desired=desired) == expected


@pytest.mark.parametrize("bad", ["5", "x%", "%", True, 2.5])
def test_int_or_percent_rejects_what_is_neither(bad):
    with pytest.raises(IntOrPercentError):
        scaled_value(bad, total=10, round_up=True)


def deployment(
    *,
    replicas: int = 10,
    strategy: str = "RollingUpdate",
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    annotations: dict[str, str] | None = None,
    image: str = "busybox:1",
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": strategy},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": NS,
            "uid": "d-uid",
            "generation": 1,
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": status,
    }


def replica_set(
    name: str,
    *,
    replicas: int,
    available: int = 0,
    revision: str | None = None,
    created: int = 0,
    image: str = "busybox:1",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_annotations = dict(annotations or {})
    if revision is not None:
        all_annotations["deployment.kubernetes.io/revision"] = revision
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "creationTimestamp": format_time(NOW + timedelta(seconds=created)),
            "annotations": all_annotations,
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
        "status": {"replicas": replicas, "availableReplicas": available},
    }


def test_surge_and_unavailable_of_deployments():
    assert (max_surge(deployment()), max_unavailable(deployment())) == (3, 2)
    assert max_unavailable(deployment(replicas=3, unavailable=10)) == 3  # never more than the replicas
    assert max_unavailable(deployment(replicas=0)) == 0
    recreate = deployment(strategy="Recreate")
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)


def test_new_replica_set_grows_within_max_surge():
    d = deployment(replicas=10)  # surge 3
    old = replica_set("old", replicas=10)
    new = replica_set("new", replicas=0, image="busybox:2")
    assert new_rs_new_replicas(d, all_rss=[old, new], new_rs=new) == 3
    halfway = replica_set("new", replicas=5)
    assert (
        new_rs_new_replicas(d, all_rss=[replica_set("old", replicas=8), halfway], new_rs=halfway) == 5
    )  # 13 already
    grown = replica_set("new", replicas=9)
    assert (
        new_rs_new_replicas(d, all_rss=[replica_set("old", replicas=1), grown], new_rs=grown) == 10
    )  # never past replicas
    assert new_rs_new_replicas(deployment(strategy="Recreate"), all_rss=[old, new], new_rs=new) == 10


def test_proportions_follow_the_max_replicas_annotation():
    d = deployment(replicas=15)  # scaled from 10 to 15: 15 + ceil(3.75) = 19 allowed
    rs = replica_set("a", replicas=5, annotations={"deployment.kubernetes.io/max-replicas": "13"})
    # 5 * 19 / 13 = 7.3 -> 7: two more, and never more than what is left to add.
    assert get_proportion(rs, d, to_add=6, added=0) == 2
    assert get_proportion(rs, d, to_add=6, added=5) == 1
    assert get_proportion(rs, deployment(replicas=0), to_add=-5, added=0) == -5
    assert get_proportion(rs, d, to_add=6, added=6) == 0
    assert get_proportion(None, d, to_add=6, added=0) == 0
    shrinking = deployment(replicas=5)  # 5 + 2 = 7 allowed; 5 * 7 / 13 = 2.7 -> 3: two fewer
    assert get_proportion(rs, shrinking, to_add=-6, added=0) == -2


def test_new_and_old_replica_sets_are_found_by_template():
    d = deployment(image="busybox:2")
    first = replica_set("first", replicas=2, image="busybox:1")
    twin_old = replica_set("twin-old", replicas=0, image="busybox:2", created=5)
    twin_new = replica_set("twin-new", replicas=3, image="busybox:2", created=9)
    assert (
        find_new_replica_set(d, [twin_new, first, twin_old])["metadata"]["name"] == "twin-old"
    )  # the oldest
    active, every = find_old_replica_sets(d, [twin_new, first, twin_old])
    assert [rs["metadata"]["name"] for rs in active] == ["twin-new", "first"]
    assert [rs["metadata"]["name"] for rs in every] == ["twin-new", "first"]
    assert find_new_replica_set(deployment(image="busybox:3"), [first, twin_old]) is None


def test_templates_compare_without_the_hash_label_and_unset_fields():
    template = deployment()["spec"]["template"]
    hashed = orjson.loads(orjson.dumps(template))
    hashed["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = "abc"
    hashed["metadata"]["annotations"] = {}
    hashed["spec"]["containers"][0]["args"] = []
    assert equal_ignore_hash(template, hashed)
    hashed["spec"]["containers"][0]["image"] = "busybox:2"
    assert not equal_ignore_hash(template, hashed)


def test_revisions_and_rollback_history():
    rss = [replica_set("a", replicas=0, revision="1"), replica_set("b", replicas=0, revision="4")]
    rss.append(replica_set("c", replicas=0, revision="2"))
    rss.append(replica_set("bad", replicas=0, revision="x"))
    assert (max_revision(rss), last_revision(rss)) == (4, 2)
    assert [rs["metadata"]["name"] for rs in sort_by_revision(rss)] == ["a", "bad", "c", "b"]

    d = deployment(
        annotations={
            "kubernetes.io/change-cause": "v1",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision": "4",
        }
    )
    brought_back = replica_set("a", replicas=0, revision="1")
    assert set_new_replica_set_annotations(d, brought_back, new_revision=5, exists=True)
    annotations = brought_back["metadata"]["annotations"]
    assert annotations == {
        "deployment.kubernetes.io/revision": "5",
        "deployment.kubernetes.io/revision-history": "1",
        "kubernetes.io/change-cause": "v1",
    }
    assert set_new_replica_set_annotations(d, brought_back, new_revision=7, exists=True)
    assert annotations["deployment.kubernetes.io/revision-history"] == "1,5"
    assert not set_new_replica_set_annotations(d, brought_back, new_revision=7, exists=True)  # nothing new

    fresh = replica_set("fresh", replicas=0)
    assert set_new_replica_set_annotations(deployment(replicas=4), fresh, new_revision=1, exists=False)
    assert fresh["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5",
    }
    assert "kubernetes.io/change-cause" not in ANNOTATIONS_NOT_COPIED


def test_active_or_latest_and_saturation():
    old = replica_set("old", replicas=0, created=0)
    older = replica_set("older", replicas=0, created=-5)
    new = replica_set(
        "new", replicas=3, available=3, annotations={"deployment.kubernetes.io/desired-replicas": "3"}
    )
    assert find_active_or_latest(new, [old, older]) is new
    assert find_active_or_latest(None, [older, old]) is old  # none active: the newest
    assert find_active_or_latest(new, [replica_set("busy", replicas=1)]) is None  # several active
    assert find_active_or_latest(None, []) is None
    assert is_saturated(deployment(replicas=3), new)
    assert not is_saturated(deployment(replicas=4), new)
    assert not is_saturated(
        deployment(replicas=3), replica_set("x", replicas=3, available=3)
    )  # no annotation


def test_status_and_the_available_condition():
    d = deployment(replicas=4, unavailable=1, surge=1)
    new = replica_set("new", replicas=2, available=1)
    old = replica_set("old", replicas=2, available=2)
    status = calculate_status(d, all_rss=[old, new], new_rs=new, now=NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 2,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    (available,) = status["conditions"]
    assert available == {
        "type": "Available",
        "status": "True",
        "lastUpdateTime": "2026-01-01T12:00:00Z",
        "lastTransitionTime": "2026-01-01T12:00:00Z",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
    }
    short = calculate_status(d, all_rss=[replica_set("new", replicas=4, available=2)], new_rs=None, now=NOW)
    assert short["conditions"][0]["reason"] == "MinimumReplicasUnavailable"
    assert short["conditions"][0]["message"] == "Deployment does not have minimum availability."


def test_progress_deadline():
    d = deployment()
    updated = {
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "lastUpdateTime": format_time(NOW),
            }
        ]
    }
    assert not deployment_timed_out(d, updated, now=NOW + timedelta(seconds=600))
    assert deployment_timed_out(d, updated, now=NOW + timedelta(seconds=601))
    done = {"conditions": [{**updated["conditions"][0], "reason": "NewReplicaSetAvailable"}]}
    assert not deployment_timed_out(d, done, now=NOW + timedelta(days=1))
    no_deadline = deployment()
    no_deadline["spec"]["progressDeadlineSeconds"] = 2**31 - 1
    assert not deployment_timed_out(no_deadline, updated, now=NOW + timedelta(days=1))
    assert not deployment_timed_out(d, {}, now=NOW)


# --------------------------------------------------------------------------- against the API server


def web(
    *,
    replicas: int = 3,
    image: str = "busybox:1",
    strategy: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **({"strategy": strategy} if strategy else {}),
            **spec,
        },
    }


async def set_image(client: RESTClient, image: str, *, change_cause: str | None = None) -> None:
    body: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    if change_cause:
        body["metadata"] = {"annotations": {"kubernetes.io/change-cause": change_cause}}
    await patch(client, DEPLOYMENTS, name="web", body=body, patch_type=PatchType.STRATEGIC)


async def replica_sets(client: RESTClient) -> list[dict[str, Any]]:
    items = (await client.list(REPLICA_SETS, namespace=NS))["items"]
    return sorted(
        items,
        key=lambda rs: int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0)),
    )


async def rolled_out(client: RESTClient, generation: int | None = None) -> dict[str, Any] | None:
    """The Deployment once `kubectl rollout status` would call it successfully rolled out."""
    d = await client.get(DEPLOYMENTS, "web", namespace=NS)
    status = d.get("status") or {}
    replicas = d["spec"]["replicas"]
    if generation is not None and d["metadata"]["generation"] != generation:
        return None
    done = (
        d["metadata"]["generation"] <= status.get("observedGeneration", 0)
        and status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    )
    return d if done else None


@asynccontextmanager
async def kubelet(client: RESTClient) -> AsyncIterator[None]:
    """Plays the kubelet for the namespace: every pod that appears becomes Running and Ready."""

    async def make_ready(pod: dict[str, Any]) -> None:
        if is_ready(pod) or pod["metadata"].get("deletionTimestamp"):
            return
        with contextlib.suppress(errors.NotFoundError):
            await set_ready(client, pod)

    async def run() -> None:
        listed = await client.list(PODS, namespace=NS)
        for pod in listed["items"]:
            await make_ready(pod)
        version = listed["metadata"]["resourceVersion"]
        while True:
            async with await client.watch(
                PODS, namespace=NS, resource_version=version, timeout_seconds=60
            ) as events:
                async for event in events:
                    version = event.object["metadata"]["resourceVersion"]
                    if event.type in (EventType.ADDED, EventType.MODIFIED):
                        await make_ready(event.object)

    task = asyncio.create_task(run(), name="kubelet")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_first_rollout_creates_a_hashed_replica_set_and_reports_success(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=3, annotations={"kubernetes.io/change-cause": "v1"}))
        d = await wait_for(lambda: rolled_out(client), what="the first rollout")
        (rs,) = await replica_sets(client)
        template_hash = compute_hash(d["spec"]["template"])
        assert rs["metadata"]["name"] == f"web-{template_hash}"
        assert controller_of(rs)["uid"] == d["metadata"]["uid"]
        assert rs["metadata"]["labels"] == {"app": "web", POD_TEMPLATE_HASH_LABEL: template_hash}
        assert rs["spec"]["selector"] == {
            "matchLabels": {"app": "web", POD_TEMPLATE_HASH_LABEL: template_hash}
        }
        assert rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == template_hash
        assert rs["metadata"]["annotations"] == {
            "deployment.kubernetes.io/revision": "1",
            "deployment.kubernetes.io/desired-replicas": "3",
            "deployment.kubernetes.io/max-replicas": "4",
            "kubernetes.io/change-cause": "v1",
        }
        pods = await list_pods(client, "app=web")
        assert {p["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] for p in pods} == {template_hash}
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        status = d["status"]
        assert (status["readyReplicas"], status.get("unavailableReplicas", 0)) == (3, 0)
        conditions = {c["type"]: c for c in status["conditions"]}
        assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == (
            "True",
            "MinimumReplicasAvailable",
        )

        async def progressed() -> dict[str, Any] | None:
            current = (await client.get(DEPLOYMENTS, "web", namespace=NS))["status"]
            (condition,) = [c for c in current["conditions"] if c["type"] == "Progressing"]
            return condition if condition["reason"] == "NewReplicaSetAvailable" else None

        condition = await wait_for(progressed, what="Progressing: NewReplicaSetAvailable")
        assert condition["status"] == "True"
        assert condition["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
        scaled = (
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {rs['metadata']['name']} from 0 to 3",
        )
        await wait_for_events(client, "web", [scaled])


async def test_scaling_through_the_scale_subresource(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=3))
        await wait_for(lambda: rolled_out(client), what="the first rollout")
        await scale(client, DEPLOYMENTS, name="web", replicas=5)
        await wait_for(lambda: rolled_out(client, generation=2), what="5 replicas")
        (rs,) = await replica_sets(client)
        name = rs["metadata"]["name"]
        assert rs["spec"]["replicas"] == 5
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "7"
        await scale(client, DEPLOYMENTS, name="web", replicas=1)
        await wait_for(lambda: rolled_out(client, generation=3), what="1 replica")
        assert len(await list_pods(client, "app=web")) == 1
        await wait_for_events(
            client,
            "web",
            [
                ("Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 3 to 5"),
                ("Normal", "ScalingReplicaSet", f"Scaled down replica set {name} from 5 to 1"),
            ],
        )


class Invariants:
    """Watches pods and ReplicaSets and checks, at every single change, that the ReplicaSets never
    ask for more than replicas + maxSurge pods and that no fewer than replicas - maxUnavailable pods
    are ready."""

    def __init__(self, client: RESTClient, *, max_pods: int, min_ready: int) -> None:
        self.client = client
        self.max_pods = max_pods
        self.min_ready = min_ready
        self.violations: list[str] = []
        self.changes = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Invariants:
        pods = await self.client.list(PODS, namespace=NS)
        rss = await self.client.list(REPLICA_SETS, namespace=NS)
        ready = {p["metadata"]["name"]: is_ready(p) for p in pods["items"]}
        wanted = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in rss["items"]}

        def check() -> None:
            self.changes += 1
            if sum(wanted.values()) > self.max_pods:
                self.violations.append(f"ReplicaSets want {wanted} > {self.max_pods}")
            if sum(ready.values()) < self.min_ready:
                self.violations.append(f"only {sum(ready.values())} ready pods < {self.min_ready}")

        async def follow(resource: Any, *, version: str, apply: Callable[[Any], None]) -> None:
            async with await self.client.watch(
                resource, namespace=NS, resource_version=version, timeout_seconds=60
            ) as events:
                async for event in events:
                    if event.type is not EventType.BOOKMARK:
                        apply(event)
                        check()

        def on_pod(event: Any) -> None:
            name = event.object["metadata"]["name"]
            if event.type is EventType.DELETED:
                ready.pop(name, None)
            else:
                ready[name] = is_ready(event.object) and not event.object["metadata"].get("deletionTimestamp")

        def on_rs(event: Any) -> None:
            name = event.object["metadata"]["name"]
            if event.type is EventType.DELETED:
                wanted.pop(name, None)
            else:
                wanted[name] = event.object["spec"]["replicas"]

        check()
        self._tasks = [
            asyncio.create_task(follow(PODS, version=pods["metadata"]["resourceVersion"], apply=on_pod)),
            asyncio.create_task(
                follow(REPLICA_SETS, version=rss["metadata"]["resourceVersion"], apply=on_rs)
            ),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def settled(client: RESTClient) -> bool:
    """Every ReplicaSet has as many pods as it asks for, and the Deployment saw its latest spec."""
    d = await client.get(DEPLOYMENTS, "web", namespace=NS)
    if d["metadata"]["generation"] != (d.get("status") or {}).get("observedGeneration"):
        return False
    for rs in await replica_sets(client):
        status = rs.get("status") or {}
        if (
            status.get("replicas", 0) != rs["spec"]["replicas"]
            or status.get("observedGeneration") != rs["metadata"]["generation"]
        ):
            return False
    return True


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "max_pods", "min_ready"),
    [
        (4, 1, 1, 5, 3),
        (5, "40%", "25%", 7, 4),  # surge: ceil(2.0) = 2; unavailable: floor(1.25) = 1
        (3, 1, 0, 4, 3),
    ],
)
async def test_rolling_update_respects_max_surge_and_max_unavailable(
    client, replicas, surge, unavailable, max_pods, min_ready
):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    async with controllers(client, rs_controller, dc_controller):
        await client.create(DEPLOYMENTS, web(replicas=replicas, strategy=strategy))
        async with kubelet(client):
            await wait_for(lambda: rolled_out(client), what="the first rollout")
        async with Invariants(client, max_pods=max_pods, min_ready=min_ready) as invariants:
            await set_image(client, "busybox:2")
            steps = 0
            while not await rolled_out(client, generation=2):
                await wait_for(lambda: settled(client), what="the controllers to settle")
                pods = await list_pods(client, "app=web")
                assert len(pods) <= max_pods, f"{len(pods)} pods > {max_pods}"
                waiting = [p for p in pods if not is_ready(p)]
                if waiting:
                    await set_ready(client, waiting[0])  # one pod at a time
                    steps += 1
                else:
                    await asyncio.sleep(0.02)
            assert steps == replicas  # every new pod was made ready by us, one by one
        assert invariants.violations == []
        assert invariants.changes > 2 * replicas
        old, new = await replica_sets(client)
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, replicas)
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


async def test_recreate_stops_every_old_pod_before_starting_new_ones(client):
    async with controllers(client, rs_controller, dc_controller):
        await client.create(DEPLOYMENTS, web(replicas=3, strategy={"type": "Recreate"}))
        async with kubelet(client):
            await wait_for(lambda: rolled_out(client), what="the first rollout")
        (old_rs,) = await replica_sets(client)
        old_hash = old_rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
        listed = await client.list(PODS, namespace=NS)
        overlap: list[str] = []
        alive: dict[str, str] = {p["metadata"]["name"]: old_hash for p in listed["items"]}

        async def watch_pods() -> None:
            async with await client.watch(
                PODS, namespace=NS, resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=60
            ) as events:
                async for event in events:
                    name = event.object["metadata"]["name"]
                    if event.type is EventType.DELETED:
                        alive.pop(name, None)
                    elif event.type is EventType.ADDED:
                        alive[name] = event.object["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
                    if len(set(alive.values())) > 1:
                        overlap.append(str(alive))

        watcher = asyncio.create_task(watch_pods())
        try:
            await set_image(client, "busybox:2")
            async with kubelet(client):
                await wait_for(lambda: rolled_out(client, generation=2), what="the Recreate rollout")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert overlap == []
        old, new = await replica_sets(client)
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 3)
        await wait_for_events(
            client,
            "web",
            [
                (
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled down replica set {old['metadata']['name']} from 3 to 0",
                ),
                (
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled up replica set {new['metadata']['name']} from 0 to 3",
                ),
            ],
        )


async def rollout_undo(client: RESTClient, *, to_revision: int = 0) -> str:
    """What `kubectl rollout undo deployment/web` does (kubectl's DeploymentRollbacker)."""
    d = await client.get(DEPLOYMENTS, "web", namespace=NS)
    if d["spec"].get("paused"):
        raise AssertionError("you cannot rollback a paused deployment")
    owned = [
        rs
        for rs in await replica_sets(client)
        if (controller_of(rs) or {}).get("uid") == d["metadata"]["uid"]
    ]
    revisions = {int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs for rs in owned}
    if to_revision == 0:
        to_revision = last_revision(owned)
    target = revisions[to_revision]
    template = orjson.loads(orjson.dumps(target["spec"]["template"]))
    del template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
    if equal_ignore_hash(template, d["spec"]["template"]):
        return f"skipped rollback (current template already matches revision {to_revision})"
    annotations = {
        k: v for k, v in d["metadata"].get("annotations", {}).items() if k in ANNOTATIONS_NOT_COPIED
    }
    annotations.update(
        {k: v for k, v in target["metadata"]["annotations"].items() if k not in ANNOTATIONS_NOT_COPIED}
    )
    operations = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    await patch(client, DEPLOYMENTS, name="web", body=operations, patch_type=PatchType.JSON)
    return "rolled back"


async def test_rollback_brings_the_old_replica_set_back_as_a_new_revision(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=2, annotations={"kubernetes.io/change-cause": "v1"}))
        await wait_for(lambda: rolled_out(client), what="revision 1")
        await set_image(client, "busybox:2", change_cause="v2")
        await wait_for(lambda: rolled_out(client, generation=2), what="revision 2")
        first, second = await replica_sets(client)
        assert second["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"

        assert await rollout_undo(client) == "rolled back"
        d = await wait_for(lambda: rolled_out(client, generation=3), what="the rollback")
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
        assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v1"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        current = {rs["metadata"]["name"]: rs for rs in await replica_sets(client)}
        assert len(current) == 2  # the first ReplicaSet came back; nothing new was created
        back = current[first["metadata"]["name"]]
        assert back["spec"]["replicas"] == 2 and current[second["metadata"]["name"]]["spec"]["replicas"] == 0
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        pods = await list_pods(client, "app=web")
        assert {p["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] for p in pods} == {
            back["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
        }
        assert await rollout_undo(client, to_revision=3) == (
            "skipped rollback (current template already matches revision 3)"
        )


async def test_paused_deployments_scale_but_do_not_roll_until_resumed(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=2))
        await wait_for(lambda: rolled_out(client), what="revision 1")
        await patch(client, DEPLOYMENTS, name="web", body={"spec": {"paused": True}})

        async def paused_condition() -> dict[str, Any] | None:
            status = (await client.get(DEPLOYMENTS, "web", namespace=NS))["status"]
            found = [c for c in status["conditions"] if c["type"] == "Progressing"]
            return found[0] if found and found[0]["reason"] == "DeploymentPaused" else None

        condition = await wait_for(paused_condition, what="the paused condition")
        assert (condition["status"], condition["message"]) == ("Unknown", "Deployment is paused")
        await set_image(client, "busybox:2")
        await scale(client, DEPLOYMENTS, name="web", replicas=4)  # scaling still works while paused

        async def scaled_while_paused() -> dict[str, Any] | None:
            d = await client.get(DEPLOYMENTS, "web", namespace=NS)
            status = d.get("status") or {}
            if (status.get("observedGeneration"), status.get("availableReplicas")) != (4, 4):
                return None
            return d

        d = await wait_for(scaled_while_paused, what="4 available replicas of the old template")
        # The template changed, but no pod runs it: not rolled out, nothing updated.
        assert "updatedReplicas" not in d["status"]
        (only,) = await replica_sets(client)  # no new ReplicaSet while paused
        assert only["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
        assert only["spec"]["replicas"] == 4

        await patch(client, DEPLOYMENTS, name="web", body={"spec": {"paused": False}})
        d = await wait_for(lambda: rolled_out(client, generation=5), what="the rollout after resuming")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        old, new = await replica_sets(client)
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)


async def test_revision_history_limit_removes_the_oldest_replica_sets(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=1, revisionHistoryLimit=1))
        await wait_for(lambda: rolled_out(client), what="revision 1")
        for generation, image in ((2, "busybox:2"), (3, "busybox:3")):
            await set_image(client, image)
            await wait_for(
                lambda g=generation: rolled_out(client, generation=g), what=f"generation {generation}"
            )

        async def two_left() -> list[dict[str, Any]]:
            rss = await replica_sets(client)
            return rss if len(rss) == 2 else []

        rss = await wait_for(two_left, what="the oldest ReplicaSet deleted")
        revisions = [rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in rss]
        assert revisions == ["2", "3"]


async def test_a_restarted_controller_finishes_the_rollout_without_duplicates(client):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await client.create(DEPLOYMENTS, web(replicas=3, strategy=strategy))
        await wait_for(lambda: rolled_out(client), what="revision 1")
    async with controllers(client, rs_controller, dc_controller):
        await set_image(client, "busybox:2")

        async def started() -> bool:
            return len(await replica_sets(client)) == 2 and len(await list_pods(client, "app=web")) == 4

        await wait_for(started, what="the second rollout to start")
    # Both controllers stopped mid-rollout; a new controller manager (empty caches) takes over.
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        await wait_for(lambda: rolled_out(client, generation=2), what="the rollout to finish")
        pods = await list_pods(client, "app=web")
        assert len(pods) == 3
        rss = await replica_sets(client)
        assert [rs["spec"]["replicas"] for rs in rss] == [0, 3]
        assert len({rs["metadata"]["name"] for rs in rss}) == 2


async def test_an_orphaned_replica_set_with_the_same_template_is_adopted(client):
    template_hash = "adopted"
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "web-leftover",
            "namespace": NS,
            "labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: template_hash},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", POD_TEMPLATE_HASH_LABEL: template_hash}},
            "template": {
                "metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: template_hash}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1"}]},
            },
        },
    }
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        leftover = await client.create(REPLICA_SETS, rs)
        await wait_for(lambda: _has_pods(client, 2), what="the leftover ReplicaSet's pods")
        before = sorted(p["metadata"]["name"] for p in await list_pods(client, "app=web"))
        d = await client.create(DEPLOYMENTS, web(replicas=2))
        await wait_for(lambda: rolled_out(client), what="the Deployment to take over")
        (adopted,) = await replica_sets(client)
        assert adopted["metadata"]["uid"] == leftover["metadata"]["uid"]
        assert controller_of(adopted)["uid"] == d["metadata"]["uid"]
        assert adopted["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert sorted(p["metadata"]["name"] for p in await list_pods(client, "app=web")) == before


async def _has_pods(client: RESTClient, count: int) -> bool:
    return len(await list_pods(client, "app=web")) == count


async def test_a_stalled_rollout_exceeds_its_progress_deadline(client):
    shift = timedelta()

    def now() -> datetime:
        return datetime.now(UTC) + shift

    built: list[DeploymentController] = []

    def controller(ctx: ControllerContext) -> DeploymentController:
        built.append(
            DeploymentController(
                client=ctx.client,
                informers=ctx.informers,
                recorder=ctx.recorder("deployment-controller"),
                now=now,
            )
        )
        return built[0]

    async with controllers(client, rs_controller, controller):
        await client.create(DEPLOYMENTS, web(replicas=2, progressDeadlineSeconds=60))

        async def progressing() -> dict[str, Any] | None:
            status = (await client.get(DEPLOYMENTS, "web", namespace=NS)).get("status") or {}
            found = [c for c in status.get("conditions") or () if c["type"] == "Progressing"]
            return found[0] if found else None

        first = await wait_for(progressing, what="a Progressing condition")
        assert first["status"] == "True" and first["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
        await wait_for(lambda: _has_pods(client, 2), what="2 pods that never become ready")

        async def timed_out() -> dict[str, Any] | None:
            nonlocal shift
            condition = await progressing()
            if condition and condition["reason"] == "ProgressDeadlineExceeded":
                return condition
            # Another minute passes without progress (a late status change may have counted as
            # progress at the previous "now"), and the controller looks again.
            shift += timedelta(seconds=61)
            built[0].enqueue(f"{NS}/web")
            return None

        condition = await wait_for(timed_out, what="ProgressDeadlineExceeded")
        (rs,) = await replica_sets(client)
        assert condition["status"] == "False"
        assert condition["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
        status = (await client.get(DEPLOYMENTS, "web", namespace=NS))["status"]
        available = next(c for c in status["conditions"] if c["type"] == "Available")
        assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
        assert status["unavailableReplicas"] == 2


async def test_a_hash_collision_bumps_the_collision_count(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        # Paused, the Deployment creates no ReplicaSet: take its (defaulted) template's hash first.
        d = await client.create(DEPLOYMENTS, web(replicas=1, paused=True))
        taken = f"web-{compute_hash(d['spec']['template'])}"
        squatter = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": taken, "namespace": NS, "labels": {"app": "squatter"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "squatter"}},
                "template": {
                    "metadata": {"labels": {"app": "squatter"}},
                    "spec": {"containers": [{"name": "app", "image": "other"}]},
                },
            },
        }
        await client.create(REPLICA_SETS, squatter)
        await patch(client, DEPLOYMENTS, name="web", body={"spec": {"paused": False}})
        d = await wait_for(lambda: rolled_out(client, generation=2), what="the rollout past the collision")
        assert d["status"]["collisionCount"] == 1
        owned = [rs for rs in await replica_sets(client) if controller_of(rs)]
        assert [rs["metadata"]["name"] for rs in owned] == [f"web-{compute_hash(d['spec']['template'], 1)}"]
        assert not controller_of(await client.get(REPLICA_SETS, taken, namespace=NS))


async def test_a_deployment_being_deleted_only_refreshes_its_status(client):
    async with controllers(client, rs_controller, dc_controller), kubelet(client):
        body = web(replicas=2)
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await client.create(DEPLOYMENTS, body)
        await wait_for(lambda: rolled_out(client), what="the first rollout")
        await client.delete(DEPLOYMENTS, "web", namespace=NS)
        await set_image(client, "busybox:2")

        async def observed() -> dict[str, Any] | None:
            d = await client.get(DEPLOYMENTS, "web", namespace=NS)
            return d if d["status"].get("observedGeneration") == d["metadata"]["generation"] else None

        d = await wait_for(observed, what="the status of the deleted Deployment")
        assert d["metadata"].get("deletionTimestamp")
        (only,) = await replica_sets(client)  # no rollout for a Deployment on its way out
        assert only["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
        await patch(client, DEPLOYMENTS, name="web", body={"metadata": {"finalizers": None}})
