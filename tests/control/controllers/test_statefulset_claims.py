"""The StatefulSet controller's claims: made from ``volumeClaimTemplates`` before each pod, reused
by replacement pods, and owned as ``persistentVolumeClaimRetentionPolicy`` says. First the
ownership rules on their own (upstream's table), then the controller against the real API server.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from control.client import errors
from control.controllers import garbagecollector
from control.controllers.kinds import EVENTS, PERSISTENT_VOLUME_CLAIMS, PODS
from control.controllers.kinds import STATEFUL_SETS as SETS
from control.controllers.statefulset import (
    claim_is_stale,
    claim_owner_up_to_date,
    claim_owners_for_policy,
    new_claims,
    new_stateful_pod,
    storage_matches,
)
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running
from tests.control.controllers.test_statefulset import (
    NS,
    bring_up,
    controller,
    names,
    run_pod,
    statefulset,
    update_set,
    wait_names,
)

WWW = {
    "metadata": {"name": "www", "labels": {"tier": "data"}, "annotations": {"note": "kept"}},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
}


def claimed_set(*, replicas: int = 2, when_deleted: str = "Retain", when_scaled: str = "Retain") -> dict:
    sts = statefulset(
        replicas=replicas,
        volumeClaimTemplates=[copy.deepcopy(WWW)],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": when_deleted, "whenScaled": when_scaled},
    )
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "www", "mountPath": "/usr/share/www"}
    ]
    return sts


# --- the rules ---------------------------------------------------------------------------------------


def test_claims_are_named_per_replica_and_carry_the_selector_labels():
    sts = claimed_set()
    sts["spec"]["volumeClaimTemplates"].append({"metadata": {"name": "logs"}, "spec": {}})
    claims = new_claims(sts, 3)
    assert list(claims) == ["www", "logs"]
    www = claims["www"]
    assert www["metadata"] == {
        "name": "www-web-3",
        "namespace": NS,
        "labels": {"tier": "data", "app": "web"},
        "annotations": {"note": "kept"},
    }
    assert www["spec"] == WWW["spec"] and "status" not in www
    assert claims["logs"]["metadata"]["labels"] == {"app": "web"}
    pod = new_stateful_pod(sts, 3, revision="r")
    assert pod["spec"]["volumes"][:2] == [
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-3"}},
        {"name": "logs", "persistentVolumeClaim": {"claimName": "logs-web-3"}},
    ]
    assert storage_matches(sts, pod)
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "www-web-0"
    assert not storage_matches(sts, pod)
    assert not storage_matches(sts, {"metadata": {"name": "other"}, "spec": {}})


def _named(obj: dict[str, Any], *, uid: str) -> dict[str, Any]:
    obj["metadata"]["uid"] = uid
    return obj


def _ref(kind: str, name: str, uid: str, *, controller: bool = True) -> dict[str, Any]:
    api_version = "apps/v1" if kind == "StatefulSet" else "v1"
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def _claim(*refs: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "www-web-1", "ownerReferences": list(refs)}}


SET_REF = _ref("StatefulSet", "web", "u-1")
POD_REF = _ref("Pod", "web-1", "pod-uid")


@pytest.mark.parametrize(
    ("when_deleted", "when_scaled", "replicas", "wanted"),
    [
        ("Retain", "Retain", 2, []),
        ("Retain", "Retain", 1, []),
        ("Delete", "Retain", 2, [SET_REF]),
        ("Delete", "Retain", 1, [SET_REF]),
        ("Retain", "Delete", 2, []),
        ("Retain", "Delete", 1, [POD_REF]),
        ("Delete", "Delete", 2, [SET_REF]),
        ("Delete", "Delete", 1, [POD_REF]),
    ],
)
def test_the_retention_policy_decides_the_claims_controller(when_deleted, when_scaled, replicas, wanted):
    sts = claimed_set(replicas=replicas, when_deleted=when_deleted, when_scaled=when_scaled)
    pod = _named(new_stateful_pod(sts, 1, revision="r"), uid="pod-uid")  # condemned when replicas=1
    for refs in ([], [SET_REF], [POD_REF], [_ref("StatefulSet", "web", "u-1", controller=False)]):
        claim = _claim(*refs)
        fixed = claim_owners_for_policy(claim, sts, pod)
        assert fixed == wanted, refs
        assert claim_owner_up_to_date(_claim(*fixed), sts, pod)
        assert claim_owner_up_to_date(claim, sts, pod) == (refs == wanted)


def test_claims_of_others_and_of_earlier_owners_are_left_alone():
    sts = claimed_set(replicas=1, when_scaled="Delete")
    pod = _named(new_stateful_pod(sts, 1, revision="r"), uid="pod-uid")
    foreign = _ref("ReplicaSet", "other", "rs-uid")
    claim = _claim(foreign)
    assert claim_owner_up_to_date(claim, sts, pod)  # another controller: not ours to change
    assert claim_owners_for_policy(_claim(foreign, POD_REF), sts, pod) == [foreign]
    earlier = _ref("Pod", "web-1", "earlier-pod-uid")
    assert claim_owner_up_to_date(_claim(earlier), sts, pod)
    assert claim_is_stale(_claim(earlier), pod)
    assert claim_is_stale(_claim(earlier), new_stateful_pod(sts, 1, revision="r"))  # not created: no uid
    assert not claim_is_stale(_claim(POD_REF), pod)
    assert not claim_is_stale(_claim(), pod)


# --- the controller --------------------------------------------------------------------------------


async def claims(cluster: Cluster) -> dict[str, dict[str, Any]]:
    listed = await cluster.client.list(PERSISTENT_VOLUME_CLAIMS, namespace=NS)
    return {c["metadata"]["name"]: c for c in listed["items"]}


async def messages(cluster: Cluster, reason: str) -> list[str]:
    events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
    return sorted(e["message"] for e in events if e["reason"] == reason)


async def remove_claim(cluster: Cluster, name: str) -> None:
    """Delete a claim for good: no pvc-protection controller runs here to drop its finalizer."""
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, name, namespace=NS)
    with contextlib.suppress(errors.NotFoundError):
        await cluster.client.patch(
            PERSISTENT_VOLUME_CLAIMS, name, {"metadata": {"finalizers": None}}, namespace=NS
        )


def owners(claim: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ref["kind"], ref["name"]) for ref in claim["metadata"].get("ownerReferences") or ()]


async def test_claims_come_before_their_pods_and_outlive_them(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(SETS, claimed_set())
        await wait_names(cluster, ["web-0"])
        made = await claims(cluster)
        assert list(made) == ["www-web-0"]
        claim = made["www-web-0"]
        assert claim["metadata"]["labels"] == {"tier": "data", "app": "web"}
        assert claim["spec"]["resources"] == {"requests": {"storage": "1Mi"}}
        assert owners(claim) == []  # Retain/Retain: nobody owns it
        pod = await cluster.client.get(PODS, "web-0", namespace=NS)
        assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in pod["spec"]["volumes"]
        await bring_up(cluster, 2)
        assert sorted(await claims(cluster)) == ["www-web-0", "www-web-1"]
        assert await messages(cluster, "SuccessfulCreate") == [
            "create Claim www-web-0 Pod web-0 in StatefulSet web success",
            "create Claim www-web-1 Pod web-1 in StatefulSet web success",
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
        ]
        # A replacement web-0 mounts the very same claim.
        old_uid = (await cluster.client.get(PODS, "web-0", namespace=NS))["metadata"]["uid"]
        await cluster.client.delete(PODS, "web-0", namespace=NS, grace_period_seconds=0)

        async def replaced() -> dict | None:
            try:
                pod = await cluster.client.get(PODS, "web-0", namespace=NS)
            except errors.NotFoundError:
                return None
            return pod if pod["metadata"]["uid"] != old_uid else None

        await cluster.wait_for(replaced, what="a new web-0")
        again = await claims(cluster)
        assert again["www-web-0"]["metadata"]["uid"] == claim["metadata"]["uid"]

        async def create_counts() -> dict[str, int] | None:
            # The event about the second creation is written after the pod: wait for it.
            events = (await cluster.client.list(EVENTS, namespace=NS))["items"]
            counts = {e["message"]: e.get("count", 1) for e in events if e["reason"] == "SuccessfulCreate"}
            return counts if counts.get("create Pod web-0 in StatefulSet web successful") == 2 else None

        counts = await cluster.wait_for(create_counts, what="the second SuccessfulCreate of web-0")
        assert counts["create Claim www-web-0 Pod web-0 in StatefulSet web success"] == 1
        # Scaling down keeps the claims (whenScaled: Retain).
        await run_pod(cluster, "web-0")
        await update_set(cluster, lambda sts: sts["spec"].update(replicas=1))
        await wait_names(cluster, ["web-0"], live_only=True)
        await cluster.finish_pod_deletion("web-1")
        await wait_names(cluster, ["web-0"])
        kept = await claims(cluster)
        assert sorted(kept) == ["www-web-0", "www-web-1"] and owners(kept["www-web-1"]) == []


async def test_when_deleted_delete_makes_the_set_the_claims_controller(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        created = await cluster.client.create(SETS, claimed_set(when_deleted="Delete"))
        await bring_up(cluster, 2)

        async def owned() -> dict | None:
            made = await claims(cluster)
            return made if all(owners(c) == [("StatefulSet", "web")] for c in made.values()) else None

        made = await cluster.wait_for(owned, what="claims owned by the set")
        assert sorted(made) == ["www-web-0", "www-web-1"]
        ref = made["www-web-0"]["metadata"]["ownerReferences"][0]
        assert ref["uid"] == created["metadata"]["uid"] and ref["controller"] is True
        # Changing the policy back to Retain takes the references off again.
        await update_set(
            cluster,
            lambda sts: sts["spec"]["persistentVolumeClaimRetentionPolicy"].update(whenDeleted="Retain"),
        )

        async def released() -> bool:
            return all(owners(c) == [] for c in (await claims(cluster)).values())

        await cluster.wait_for(released, what="claims released by the set")
        assert "update Pod web-0 in StatefulSet web successful" in await messages(cluster, "SuccessfulUpdate")


async def test_deleting_a_set_with_when_deleted_delete_collects_its_claims(apiserver):  # noqa: F811
    async with running(apiserver, controller, garbagecollector.new_controller) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(SETS, claimed_set(replicas=1, when_deleted="Delete"))
        await bring_up(cluster, 1)

        async def owned() -> bool:
            return owners((await claims(cluster))["www-web-0"]) == [("StatefulSet", "web")]

        await cluster.wait_for(owned, what="the claim owned by the set")
        await cluster.client.delete(SETS, "web", namespace=NS)

        async def collected() -> bool:
            left = await claims(cluster)  # gone, or held only by the pvc-protection finalizer
            return not left or bool(left["www-web-0"]["metadata"].get("deletionTimestamp"))

        await cluster.wait_for(collected, what="the claim deleted by the garbage collector")


async def test_when_scaled_delete_hands_a_condemned_pods_claims_to_the_pod(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        await cluster.client.create(SETS, claimed_set(replicas=3, when_scaled="Delete"))
        await bring_up(cluster, 3)
        web_2 = await cluster.client.get(PODS, "web-2", namespace=NS)
        assert all(owners(c) == [] for c in (await claims(cluster)).values())
        await update_set(cluster, lambda sts: sts["spec"].update(replicas=2))
        await wait_names(cluster, ["web-0", "web-1"], live_only=True)
        made = await claims(cluster)
        assert owners(made["www-web-2"]) == [("Pod", "web-2")]
        ref = made["www-web-2"]["metadata"]["ownerReferences"][0]
        assert ref["uid"] == web_2["metadata"]["uid"] and ref["controller"] is True
        assert owners(made["www-web-0"]) == owners(made["www-web-1"]) == []


async def test_a_claim_of_an_earlier_pod_holds_the_new_pod_back(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        stale = new_claims(claimed_set(), 0)["www"]
        stale["metadata"]["ownerReferences"] = [_ref("Pod", "web-0", "gone-pod-uid")]
        await cluster.client.create(PERSISTENT_VOLUME_CLAIMS, stale, namespace=NS)
        await cluster.client.create(SETS, claimed_set(replicas=1, when_scaled="Delete"))

        async def synced() -> bool:
            status = (await cluster.client.get(SETS, "web", namespace=NS)).get("status") or {}
            return status.get("observedGeneration") == 1

        await cluster.wait_for(synced, what="the set synced")
        assert await names(cluster) == []  # waiting for the garbage collector to remove the claim
        await remove_claim(cluster, "www-web-0")
        await wait_names(cluster, ["web-0"])
        assert owners((await claims(cluster))["www-web-0"]) == []


async def test_a_claim_that_cannot_be_made_stops_the_pod(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        sts = claimed_set(replicas=1)
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "WWW"  # not a valid claim name
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] = "WWW"
        await cluster.client.create(SETS, sts)

        async def failed() -> list[str]:
            return await messages(cluster, "FailedCreate")

        seen = await cluster.wait_for(failed, what="FailedCreate events")
        claim_failure = next(m for m in seen if m.startswith("create Claim"))
        assert claim_failure.startswith(
            "create Claim WWW-web-0 for Pod web-0 in StatefulSet web failed error: "
        )
        assert "WWW-web-0" in claim_failure.split("failed error: ", 1)[1]

        async def pod_failed() -> str | None:
            found = [m for m in await messages(cluster, "FailedCreate") if m.startswith("create Pod")]
            return found[0] if found else None

        pod_failure = await cluster.wait_for(pod_failed, what="the pod's FailedCreate")
        assert pod_failure.startswith(
            "create Pod web-0 in StatefulSet web failed error: failed to create PVC WWW-web-0: "
        )
        assert await names(cluster) == [] and await claims(cluster) == {}


async def test_a_claim_being_deleted_is_waited_for(apiserver):  # noqa: F811
    async with running(apiserver, controller) as cluster:
        await cluster.create_node("node-1")
        held = new_claims(claimed_set(), 0)["www"]
        held["metadata"]["finalizers"] = ["kubelab.dev/test-hold"]
        await cluster.client.create(PERSISTENT_VOLUME_CLAIMS, held, namespace=NS)
        await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "www-web-0", namespace=NS)
        await cluster.client.create(SETS, claimed_set(replicas=1))

        async def refused() -> list[str]:
            return [m for m in await messages(cluster, "FailedCreate") if m.startswith("create Pod")]

        (message,) = await cluster.wait_for(refused, what="the pod refused")
        assert message == "create Pod web-0 in StatefulSet web failed error: pvc www-web-0 is being deleted"
        assert await names(cluster) == []
        await cluster.client.patch(
            PERSISTENT_VOLUME_CLAIMS, "www-web-0", {"metadata": {"finalizers": None}}, namespace=NS
        )
        await wait_names(cluster, ["web-0"])
        assert list(await claims(cluster)) == ["www-web-0"]
