"""The scheduler's reading of claims and volumes: classes, binding state, node affinity, allowed
topologies, the volume matching a claim on a node, and pre-binding a volume to a claim."""

from __future__ import annotations

from typing import Any

from control.scheduler.volumes import (
    BIND_COMPLETED_ANNOTATION,
    BOUND_BY_CONTROLLER_ANNOTATION,
    claim_class,
    find_matching_volume,
    is_bound_to_claim,
    is_fully_bound,
    node_affinity_allows,
    topology_allows,
    volume_bound_to,
    volume_class,
)


def claim(name: str = "www-web-0", *, size: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local",
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }


def volume(
    name: str,
    *,
    size: str = "1Gi",
    hosts: list[str] | None = None,
    phase: str = "Available",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "local",
        **spec,
    }
    if hosts is not None:
        body["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": hosts}
                        ]
                    }
                ]
            }
        }
    return {
        "metadata": {"name": name, "labels": labels or {}, "resourceVersion": "3"},
        "spec": body,
        "status": {"phase": phase},
    }


def match(wanted: dict[str, Any], *volumes: dict[str, Any], node: str = "n1", excluded=()) -> str | None:
    found = find_matching_volume(
        wanted, volumes, node_name=node, labels={"kubernetes.io/hostname": node}, excluded=set(excluded)
    )
    return None if found is None else found["metadata"]["name"]


def test_classes_and_binding_state():
    assert claim_class(claim()) == "local" and volume_class(volume("v")) == "local"
    beta = claim(storageClassName=None)
    beta["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "old"}
    assert claim_class(beta) == "old" and claim_class(claim(storageClassName=None)) == ""
    bound = claim(volumeName="v")
    assert not is_fully_bound(bound)  # named, but the PV controller has not finished
    bound["metadata"]["annotations"] = {BIND_COMPLETED_ANNOTATION: "yes"}
    assert is_fully_bound(bound)
    ref = {"namespace": "default", "name": "www-web-0"}
    assert is_bound_to_claim(volume("v", claimRef=ref), claim())
    assert is_bound_to_claim(volume("v", claimRef={**ref, "uid": "uid-www-web-0"}), claim())
    assert not is_bound_to_claim(volume("v", claimRef={**ref, "uid": "other"}), claim())
    assert not is_bound_to_claim(volume("v"), claim())


def test_node_affinity_and_topology():
    assert node_affinity_allows(volume("v"), node_name="n1", labels={})
    pinned = volume("v", hosts=["n2"])
    assert not node_affinity_allows(pinned, node_name="n1", labels={"kubernetes.io/hostname": "n1"})
    assert node_affinity_allows(pinned, node_name="n2", labels={"kubernetes.io/hostname": "n2"})
    pinned["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["operator"] = (
        "Near"
    )
    assert not node_affinity_allows(pinned, node_name="n2", labels={"kubernetes.io/hostname": "n2"})
    zoned = {"allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b"]}]}]}
    assert topology_allows({}, {}) and topology_allows(zoned, {"zone": "b"})
    assert not topology_allows(zoned, {"zone": "c"}) and not topology_allows(zoned, {})


def test_the_smallest_fitting_volume_on_the_node_is_chosen():
    volumes = [
        volume("big", size="10Gi"),
        volume("small", size="1Gi"),
        volume("tiny", size="100Mi"),
        volume("elsewhere", size="1Gi", hosts=["n2"]),
        volume("here", size="2Gi", hosts=["n1"]),
    ]
    assert match(claim(), *volumes) == "small"
    assert match(claim(), *volumes, excluded={"small"}) == "here"
    assert match(claim(), *volumes, node="n2") == "small"
    assert match(claim(size="20Gi"), *volumes) is None


def test_volumes_that_do_not_fit_are_passed_over():
    assert match(claim(), volume("released", phase="Released")) is None
    assert match(claim(), volume("other-class", storageClassName="fast")) is None
    assert match(claim(), volume("block", volumeMode="Block")) is None
    assert match(claim(), volume("ro", accessModes=["ReadOnlyMany"])) is None
    assert match(claim(), volume("taken", claimRef={"namespace": "default", "name": "other"})) is None
    going = volume("going")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert match(claim(), going) is None
    picky = claim(selector={"matchLabels": {"disk": "ssd"}})
    assert match(picky, volume("hdd", labels={"disk": "hdd"}), volume("ssd", labels={"disk": "ssd"})) == "ssd"
    assert (
        match(claim(selector={"matchExpressions": [{"key": "x", "operator": "Near"}]}), volume("v")) is None
    )


def test_a_volume_pre_bound_to_the_claim_wins_unless_it_cannot_be_on_the_node():
    prebound = volume(
        "mine", size="5Gi", phase="Pending", claimRef={"namespace": "default", "name": "www-web-0"}
    )
    assert match(claim(), volume("small"), prebound) == "mine"
    far = volume("mine", hosts=["n2"], claimRef={"namespace": "default", "name": "www-web-0"})
    assert match(claim(), volume("small"), far) is None


def test_pre_binding_a_volume_to_a_claim():
    changed = volume_bound_to(volume("v"), claim())
    assert changed is not None
    assert changed["spec"]["claimRef"] == {
        "kind": "PersistentVolumeClaim",
        "namespace": "default",
        "name": "www-web-0",
        "uid": "uid-www-web-0",
        "apiVersion": "v1",
        "resourceVersion": "7",
    }
    assert changed["metadata"]["annotations"] == {BOUND_BY_CONTROLLER_ANNOTATION: "yes"}
    assert volume_bound_to(changed, claim()) is None  # already so: nothing to write
    named = volume("v", claimRef={"namespace": "default", "name": "www-web-0"})
    by_user = volume_bound_to(named, claim())
    assert by_user is not None and by_user["spec"]["claimRef"]["uid"] == "uid-www-web-0"
    assert BOUND_BY_CONTROLLER_ANNOTATION not in by_user["metadata"]["annotations"]  # the user bound it
    original = volume("v")
    volume_bound_to(original, claim())
    assert "claimRef" not in original["spec"] and "annotations" not in original["metadata"]  # a copy
