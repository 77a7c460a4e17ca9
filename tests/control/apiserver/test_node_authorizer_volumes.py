"""The Node authorizer's pvc -> pv edge: a kubelet may get the PersistentVolume bound to a claim
one of its pods mounts — followed from the volumes' ``claimRef`` in a real store — and no other."""

# ruff: noqa: F811  (the fixtures are imported from test_node_authorizer)
from __future__ import annotations

import orjson

from control.apiserver.authorization import Decision
from control.apiserver.node_authorizer import NodeAuthorizer
from control.store import Store
from tests.control.apiserver.test_node_authorizer import (  # noqa: F401  (fixtures)
    NODE_1,
    NODE_2,
    attributes,
    authorizer,
    decision,
    eventually,
    pod,
    put,
)

VOLUMES_PREFIX = "/registry/core/persistentvolumes/"


def volume(name: str, *, claim: tuple[str, str] | None) -> dict:
    spec: dict = {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/x"},
    }
    if claim is not None:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1], "uid": "u-1"}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


async def put_volume(store: Store, body: dict) -> None:
    key = VOLUMES_PREFIX + body["metadata"]["name"]
    current = await store.get(key)
    if current is None:
        await store.create(key, orjson.dumps(body))
    else:
        await store.update(key, orjson.dumps(body), expected_revision=current.mod_revision)


async def test_a_node_gets_the_volume_bound_to_its_pods_claim(
    authorizer: NodeAuthorizer, store: Store
) -> None:
    await put(
        store,
        pod("db", node="node-1", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
    )
    await put_volume(store, volume("pv-data", claim=("ns", "data")))
    await put_volume(store, volume("pv-other", claim=("ns", "other")))
    get_data = attributes(NODE_1, "get", "persistentvolumes", "pv-data", namespace="")
    await eventually(lambda: decision(authorizer, get_data)[0] is Decision.ALLOW)
    assert decision(authorizer, attributes(NODE_2, "get", "persistentvolumes", "pv-data", namespace="")) == (
        Decision.NO_OPINION,
        "no relationship found between node 'node-2' and this object",
    )
    assert decision(authorizer, attributes(NODE_1, "get", "persistentvolumes", "pv-other", namespace=""))[
        0
    ] is (Decision.NO_OPINION)


async def test_only_get_of_a_named_volume_is_allowed(authorizer: NodeAuthorizer, store: Store) -> None:
    await put(
        store,
        pod("db", node="node-1", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
    )
    await put_volume(store, volume("pv-data", claim=("ns", "data")))
    await eventually(
        lambda: (
            decision(authorizer, attributes(NODE_1, "get", "persistentvolumes", "pv-data", namespace=""))[0]
            is Decision.ALLOW
        )
    )
    for verb, name, reason in (
        ("list", "", "can only get individual resources of this type"),
        ("update", "pv-data", "can only get individual resources of this type"),
        ("delete", "pv-data", "can only get individual resources of this type"),
    ):
        assert decision(authorizer, attributes(NODE_1, verb, "persistentvolumes", name, namespace="")) == (
            Decision.NO_OPINION,
            reason,
        )
    status = attributes(NODE_1, "get", "persistentvolumes", "pv-data", namespace="", subresource="status")
    assert decision(authorizer, status) == (Decision.NO_OPINION, "cannot get subresource")


async def test_the_edge_follows_claim_ref_changes_and_deletion(
    authorizer: NodeAuthorizer, store: Store
) -> None:
    await put(
        store,
        pod("db", node="node-1", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
    )
    get_volume = attributes(NODE_1, "get", "persistentvolumes", "pv-x", namespace="")
    await put_volume(store, volume("pv-x", claim=None))
    await put_volume(store, volume("pv-x", claim=("ns", "data")))
    await eventually(lambda: decision(authorizer, get_volume)[0] is Decision.ALLOW)
    await put_volume(store, volume("pv-x", claim=("ns", "elsewhere")))
    await eventually(lambda: decision(authorizer, get_volume)[0] is Decision.NO_OPINION)
    await put_volume(store, volume("pv-x", claim=("ns", "data")))
    await eventually(lambda: decision(authorizer, get_volume)[0] is Decision.ALLOW)
    await store.delete(VOLUMES_PREFIX + "pv-x")
    await eventually(lambda: decision(authorizer, get_volume)[0] is Decision.NO_OPINION)
