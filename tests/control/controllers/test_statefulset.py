"""The StatefulSet controller: pod identity on its own, then the controller against the real API
server. No scheduler or kubelet runs: the tests bind pods to a Node, write their status through
``pods/status`` and finish graceful deletions, as the kubelet would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.controllers.controllerrevision import CONTROLLER_REVISION_HASH_LABEL, HISTORY_HASH_LABEL
from control.controllers.kinds import CONTROLLER_REVISIONS, EVENTS, PODS, STATEFUL_SETS
from control.controllers.ownership import format_time
from control.controllers.statefulset import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    StatefulSetController,
    identity_matches,
    new_stateful_pod,
    parent_and_ordinal,
)
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

NS = "default"


def statefulset(
    name: str = "web", *, replicas: int = 3, image: str = "kubelab", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS, "uid": "u-1"},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            **spec,
        },
    }


def controller(ctx):
    return StatefulSetController(ctx, workers=2)


# --- identity --------------------------------------------------------------------------------------


def test_names_and_ordinals():
    assert parent_and_ordinal({"metadata": {"name": "web-0"}}) == ("web", 0)
    assert parent_and_ordinal({"metadata": {"name": "my-web-12"}}) == ("my-web", 12)
    assert parent_and_ordinal({"metadata": {"name": "web"}}) == ("", -1)
    assert parent_and_ordinal({"metadata": {"name": "web-x"}}) == ("", -1)
    assert parent_and_ordinal({"metadata": {"name": "web-99999999999"}}) == ("", -1)  # not an int32


def test_a_new_pod_has_its_stable_identity():
    sts = statefulset(
        volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
    )
    sts["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "hostPath": {"path": "/x"}},
        {"name": "cfg", "emptyDir": {}},
    ]
    pod = new_stateful_pod(sts, 2, revision="web-abc")
    assert pod["metadata"]["name"] == "web-2" and pod["metadata"]["generateName"] == "web-"
    assert pod["metadata"]["labels"] == {
        "app": "web",
        POD_NAME_LABEL: "web-2",
        POD_INDEX_LABEL: "2",
        CONTROLLER_REVISION_HASH_LABEL: "web-abc",
    }
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-2", "web")
    assert pod["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
        {"name": "cfg", "emptyDir": {}},
    ]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert identity_matches(sts, pod)
    pod["metadata"]["labels"][POD_NAME_LABEL] = "web-1"
    assert not identity_matches(sts, pod)
    assert not identity_matches(statefulset("db"), new_stateful_pod(sts, 0, revision="r"))


# --- the controller --------------------------------------------------------------------------------


async def names(cluster: Cluster, *, live_only: bool = False) -> list[str]:
    pods = (await cluster.client.list(PODS, namespace=NS, label_selector="app=web"))["items"]
    return sorted(
        p["metadata"]["name"] for p in pods if not (live_only and p["metadata"].get("deletionTimestamp"))
    )


async def run_pod(cluster: Cluster, name: str, *, bind: bool = True) -> None:
    """Play scheduler and kubelet: bind to node-1, then Running and Ready."""
    pod = await cluster.client.get(PODS, name, namespace=NS)
    if bind and not pod["spec"].get("nodeName"):
        await cluster.client.create(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": NS},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
            },
            subresource="binding",
        )
    now = format_time(datetime.now(UTC))
    await cluster.client.patch(
        PODS,
        name,
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            }
        },
        namespace=NS,
        subresource="status",
    )


async def wait_names(cluster: Cluster, expected: list[str], *, live_only: bool = False) -> None:
    async def check() -> bool:
        return await names(cluster, live_only=live_only) == expected

    await cluster.wait_for(check, what=f"pods {expected}")


async def status_of(cluster: Cluster) -> dict[str, Any]:
    return (await cluster.client.get(STATEFUL_SETS, "web", namespace=NS)).get("status") or {}


async def bring_up(cluster: Cluster, count: int) -> None:
    """Walk an OrderedReady set up: each pod appears only once its predecessor runs."""
    for ordinal in range(count):
        await wait_names(cluster, [f"web-{i}" for i in range(ordinal + 1)])
        await run_pod(cluster, f"web-{ordinal}")


async def update_set(cluster: Cluster, change) -> None:
    while True:
        sts = await cluster.client.get(STATEFUL_SETS, "web", namespace=NS)
        change(sts)
        try:
            await cluster.client.replace(STATEFUL_SETS, sts)
        except errors.ConflictError:
            continue
        return


def set_image(image: str):
    def change(sts: dict[str, Any]) -> None:
        sts["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return change


async def revision_of(cluster: Cluster, pod: str) -> str:
    return (await cluster.client.get(PODS, pod, namespace=NS))["metadata"]["labels"][
        CONTROLLER_REVISION_HASH_LABEL
    ]


async def test_ordered_creation_with_stable_identities(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        created = await cluster.client.create(STATEFUL_SETS, statefulset())
        await wait_names(cluster, ["web-0"])
        # web-1 waits for web-0 to be Running and Ready.
        status = await cluster.wait_for(_status_with(cluster, replicas=1), what="one replica counted")
        assert status.get("readyReplicas", 0) == 0
        assert await names(cluster) == ["web-0"]
        await run_pod(cluster, "web-0")
        await wait_names(cluster, ["web-0", "web-1"])
        await run_pod(cluster, "web-1")
        await wait_names(cluster, ["web-0", "web-1", "web-2"])
        await run_pod(cluster, "web-2")
        status = await cluster.wait_for(_status_with(cluster, readyReplicas=3), what="three ready replicas")
        revisions = (await cluster.client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]
        assert len(revisions) == 1
        revision = revisions[0]
        assert revision["metadata"]["name"] == f"web-{revision['metadata']['labels'][HISTORY_HASH_LABEL]}"
        assert revision["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert status["currentRevision"] == status["updateRevision"] == revision["metadata"]["name"]
        assert (
            status["replicas"],
            status["currentReplicas"],
            status["updatedReplicas"],
            status["availableReplicas"],
        ) == (
            3,
            3,
            3,
            3,
        )
        assert status["observedGeneration"] == 1 and status["collisionCount"] == 0
        pod = await cluster.client.get(PODS, "web-1", namespace=NS)
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-1", "web")
        assert pod["metadata"]["labels"] == {
            "app": "web",
            POD_NAME_LABEL: "web-1",
            POD_INDEX_LABEL: "1",
            CONTROLLER_REVISION_HASH_LABEL: revision["metadata"]["name"],
        }
        events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        assert sorted(e["message"] for e in events if e["reason"] == "SuccessfulCreate") == [
            f"create Pod web-{i} in StatefulSet web successful" for i in range(3)
        ]
        # A drifted identity label is put back.
        await cluster.client.patch(
            PODS, "web-1", {"metadata": {"labels": {POD_NAME_LABEL: "wrong"}}}, namespace=NS
        )

        async def restored() -> bool:
            pod = await cluster.client.get(PODS, "web-1", namespace=NS)
            return pod["metadata"]["labels"][POD_NAME_LABEL] == "web-1"

        await cluster.wait_for(restored, what="the pod-name label to be restored")


def _status_with(cluster: Cluster, **expected: int):
    async def check() -> dict | None:
        status = await status_of(cluster)
        return status if all(status.get(k, 0) == v for k, v in expected.items()) else None

    return check


async def test_scale_down_goes_from_the_highest_ordinal_one_at_a_time(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(STATEFUL_SETS, statefulset())
        await bring_up(cluster, 3)
        await cluster.wait_for(_status_with(cluster, readyReplicas=3), what="three ready replicas")
        await update_set(cluster, lambda sts: sts["spec"].update(replicas=1))
        await wait_names(cluster, ["web-0", "web-1"], live_only=True)  # web-2 is terminating
        assert await names(cluster) == ["web-0", "web-1", "web-2"]
        # web-1 goes only once web-2 is gone.
        status = await cluster.wait_for(_status_with(cluster, observedGeneration=2), what="the scale seen")
        assert status["replicas"] == 3
        assert await names(cluster, live_only=True) == ["web-0", "web-1"]
        await cluster.finish_pod_deletion("web-2")
        await wait_names(cluster, ["web-0"], live_only=True)
        await cluster.finish_pod_deletion("web-1")
        await wait_names(cluster, ["web-0"])
        await cluster.wait_for(_status_with(cluster, replicas=1, readyReplicas=1), what="one replica left")
        events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        assert sorted(e["message"] for e in events if e["reason"] == "SuccessfulDelete") == [
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-2 in StatefulSet web successful",
        ]


async def test_parallel_pods_start_together_from_the_start_ordinal(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(
            STATEFUL_SETS, statefulset(podManagementPolicy="Parallel", ordinals={"start": 5})
        )
        await wait_names(cluster, ["web-5", "web-6", "web-7"])
        await update_set(cluster, lambda sts: sts["spec"].update(replicas=1))
        await wait_names(cluster, ["web-5"])  # unbound pods go at once, all together


async def test_rolling_update_respects_the_partition(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(
            STATEFUL_SETS,
            statefulset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
        )
        await bring_up(cluster, 3)
        first = (await cluster.wait_for(_status_with(cluster, readyReplicas=3), what="three ready"))[
            "currentRevision"
        ]
        await update_set(cluster, set_image("kubelab:v2"))

        async def update_revision() -> str | None:
            status = await status_of(cluster)
            return status.get("updateRevision") if status.get("updateRevision") not in (None, first) else None

        second = await cluster.wait_for(update_revision, what="an update revision")
        # Highest ordinal first; the next only when the updated one runs.
        for target in ("web-2", "web-1"):
            await wait_names(cluster, sorted({"web-0", "web-1", "web-2"} - {target}), live_only=True)
            await cluster.finish_pod_deletion(target)

            async def recreated(target: str = target) -> bool:
                try:
                    return await revision_of(cluster, target) == second
                except errors.NotFoundError:
                    return False

            await cluster.wait_for(recreated, what=f"{target} at the update revision")
            await run_pod(cluster, target)
        status = await cluster.wait_for(
            _status_with(cluster, updatedReplicas=2, readyReplicas=3), what="two updated"
        )
        assert (status["currentRevision"], status["updateRevision"], status["currentReplicas"]) == (
            first,
            second,
            1,
        )
        assert await revision_of(cluster, "web-0") == first  # below the partition
        # Lowering the partition finishes the update, and the update revision becomes current.
        await update_set(
            cluster, lambda sts: sts["spec"]["updateStrategy"]["rollingUpdate"].update(partition=0)
        )
        await wait_names(cluster, ["web-1", "web-2"], live_only=True)
        await cluster.finish_pod_deletion("web-0")
        await cluster.wait_for(lambda: _revision_is(cluster, "web-0", second), what="web-0 updated")
        await run_pod(cluster, "web-0")
        status = await cluster.wait_for(
            _status_with(cluster, updatedReplicas=3, readyReplicas=3), what="all updated"
        )
        assert status["currentRevision"] == status["updateRevision"] == second
        assert status["currentReplicas"] == 3


async def _revision_is(cluster: Cluster, pod: str, revision: str) -> bool:
    try:
        return await revision_of(cluster, pod) == revision
    except errors.NotFoundError:
        return False


async def test_on_delete_updates_only_deleted_pods_and_rollback_reuses_history(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(
            STATEFUL_SETS,
            statefulset(replicas=2, updateStrategy={"type": "OnDelete"}, revisionHistoryLimit=1),
        )
        for ordinal in range(2):
            await wait_names(cluster, [f"web-{i}" for i in range(ordinal + 1)])
            await run_pod(cluster, f"web-{ordinal}", bind=False)
        first = (await cluster.wait_for(_status_with(cluster, readyReplicas=2), what="two ready"))[
            "currentRevision"
        ]
        await update_set(cluster, set_image("kubelab:v2"))
        status = await cluster.wait_for(_status_with(cluster, observedGeneration=2), what="the update seen")
        second = status["updateRevision"]
        assert second != first and status["currentRevision"] == first
        assert await revision_of(cluster, "web-1") == first
        await cluster.client.delete(PODS, "web-1", namespace=NS)
        await cluster.wait_for(lambda: _revision_is(cluster, "web-1", second), what="web-1 recreated at v2")
        # Back to the first template: its revision is reused with a new number, not copied.
        await update_set(cluster, set_image("kubelab"))
        status = await cluster.wait_for(_status_with(cluster, observedGeneration=3), what="the rollback seen")
        assert status["updateRevision"] == first
        revisions = {
            r["metadata"]["name"]: r["revision"]
            for r in (await cluster.client.list(CONTROLLER_REVISIONS, namespace=NS))["items"]
        }
        assert revisions == {first: 3, second: 2}  # second is still used by web-1


async def test_failed_pods_are_recreated(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(STATEFUL_SETS, statefulset(replicas=1))
        await wait_names(cluster, ["web-0"])
        old_uid = (await cluster.client.get(PODS, "web-0", namespace=NS))["metadata"]["uid"]
        await cluster.client.patch(
            PODS, "web-0", {"status": {"phase": "Failed"}}, namespace=NS, subresource="status"
        )

        async def recreated() -> bool:
            try:
                pod = await cluster.client.get(PODS, "web-0", namespace=NS)
            except errors.NotFoundError:
                return False
            return pod["metadata"]["uid"] != old_uid

        await cluster.wait_for(recreated, what="web-0 recreated")
        # As upstream since 1.30: the failed pod is deleted and made anew, with no
        # RecreatingFailedPod / RecreatingTerminatedPod event.
        events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
        reasons = [e["reason"] for e in events]
        assert "SuccessfulDelete" in reasons
        assert not any(reason.startswith("Recreating") for reason in reasons)


async def test_a_terminal_pod_still_terminating_is_waited_for_not_replaced(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(STATEFUL_SETS, statefulset(replicas=1))
        await wait_names(cluster, ["web-0"])
        await cluster.client.patch(
            PODS, "web-0", {"metadata": {"finalizers": ["example.com/hold"]}}, namespace=NS
        )
        await cluster.client.delete(PODS, "web-0", namespace=NS)  # held by the finalizer
        held = await cluster.client.patch(
            PODS, "web-0", {"status": {"phase": "Failed"}}, namespace=NS, subresource="status"
        )
        assert held["metadata"]["deletionTimestamp"]
        await cluster.client.patch(PODS, "web-0", {"metadata": {"finalizers": None}}, namespace=NS)

        async def replaced() -> bool:
            try:
                fresh = await cluster.client.get(PODS, "web-0", namespace=NS)
            except errors.NotFoundError:
                return False
            return fresh["metadata"]["uid"] != held["metadata"]["uid"]

        await cluster.wait_for(replaced, what="web-0 made anew once the old one is gone")
        # While the old pod was held, the controller neither created over it (FailedCreate,
        # AlreadyExists) nor announced a recreation.
        reasons = {e["reason"] for e in (await cluster.client.list(EVENTS, namespace=NS))["items"]}
        assert reasons == {"SuccessfulCreate"}


async def test_orphans_with_the_right_name_are_adopted_and_others_ignored(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        for name in ("web-0", "stranger"):
            await cluster.client.create(
                PODS,
                {
                    "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "kubelab"}]},
                },
            )
        created = await cluster.client.create(STATEFUL_SETS, statefulset(replicas=1))

        async def adopted() -> bool:
            pod = await cluster.client.get(PODS, "web-0", namespace=NS)
            refs = pod["metadata"].get("ownerReferences") or []
            return bool(refs) and refs[0]["uid"] == created["metadata"]["uid"]

        await cluster.wait_for(adopted, what="web-0 adopted")
        stranger = await cluster.client.get(PODS, "stranger", namespace=NS)
        assert not stranger["metadata"].get("ownerReferences")
        assert await names(cluster) == ["stranger", "web-0"]


async def test_zero_replicas_create_nothing(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.client.create(STATEFUL_SETS, statefulset(replicas=0))
        status = await cluster.wait_for(_status_with(cluster, observedGeneration=1), what="the set observed")
        assert status["replicas"] == 0 and status["availableReplicas"] == 0
        assert await names(cluster) == []
