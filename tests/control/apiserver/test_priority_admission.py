"""The Priority admission plugin and the system PriorityClasses, through the real API server:
a pod's priority comes from its PriorityClass (or the default one, or 0), an unknown class or a
contradicting priority is refused, and only one class may be the default."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from control.apiserver.priority_admission import PriorityClasses, default_priority_class
from control.store.sqlite import SqliteStore
from tests.control.apiserver.conftest import RunningServer

PODS = "/api/v1/namespaces/default/pods"
CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


def pod(name: str, **spec: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec},
    }


def priority_class(name: str, value: int, **fields: Any) -> dict:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        **fields,
    }


def test_the_default_class_is_the_global_default_of_lowest_value() -> None:
    high = {"metadata": {"name": "high"}, "value": 100, "globalDefault": True}
    low = {"metadata": {"name": "low"}, "value": 5, "globalDefault": True}
    plain = {"metadata": {"name": "plain"}, "value": 1}
    assert default_priority_class([high, low, plain]) is low
    assert default_priority_class([plain]) is None
    assert default_priority_class([]) is None


async def test_the_system_classes_exist_from_the_start(apiserver: RunningServer) -> None:
    for name, value in (("system-node-critical", 2_000_001_000), ("system-cluster-critical", 2_000_000_000)):
        status, found = await apiserver.request("GET", f"{CLASSES}/{name}")
        assert status == 200
        assert (found["value"], found["preemptionPolicy"], found.get("globalDefault", False)) == (
            value,
            "PreemptLowerPriority",
            False,
        )


async def test_a_pod_gets_the_priority_of_its_class(apiserver: RunningServer) -> None:
    status, plain = await apiserver.request("POST", PODS, body=pod("plain"))
    assert status == 201
    assert (plain["spec"]["priority"], plain["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert "priorityClassName" not in plain["spec"]
    status, critical = await apiserver.request(
        "POST", PODS, body=pod("critical", priorityClassName="system-cluster-critical")
    )
    assert status == 201 and critical["spec"]["priority"] == 2_000_000_000
    await apiserver.request("POST", CLASSES, body=priority_class("polite", 50, preemptionPolicy="Never"))
    status, polite = await apiserver.request("POST", PODS, body=pod("polite", priorityClassName="polite"))
    assert status == 201
    assert (polite["spec"]["priority"], polite["spec"]["preemptionPolicy"]) == (50, "Never")


async def test_unknown_classes_and_contradicting_values_are_refused(apiserver: RunningServer) -> None:
    status, refused = await apiserver.request("POST", PODS, body=pod("lost", priorityClassName="nosuch"))
    assert (status, refused["reason"]) == (403, "Forbidden")
    assert refused["message"] == 'pods "lost" is forbidden: no PriorityClass with name nosuch was found'
    status, refused = await apiserver.request("POST", PODS, body=pod("liar", priority=7))
    assert status == 403
    assert refused["message"] == (
        'pods "liar" is forbidden: the integer value of priority (7) must not be provided in pod spec; '
        "priority admission controller computed 0 from the given PriorityClass name"
    )
    status, refused = await apiserver.request("POST", PODS, body=pod("timid", preemptionPolicy="Never"))
    assert status == 403 and "the string value of PreemptionPolicy (Never)" in refused["message"]
    status, agreeing = await apiserver.request("POST", PODS, body=pod("honest", priority=0))
    assert status == 201 and agreeing["spec"]["priority"] == 0
    for name in ("lost", "liar", "timid"):
        status, _ = await apiserver.request("GET", f"{PODS}/{name}")
        assert status == 404


async def test_the_global_default_class_is_unique_and_applies_to_pods_naming_none(
    apiserver: RunningServer,
) -> None:
    status, _ = await apiserver.request("POST", CLASSES, body=priority_class("usual", 10, globalDefault=True))
    assert status == 201
    status, second = await apiserver.request(
        "POST", CLASSES, body=priority_class("other", 20, globalDefault=True)
    )
    assert (status, second["message"]) == (
        403,
        'priorityclasses.scheduling.k8s.io "other" is forbidden: '
        "PriorityClass usual is already marked as default. Only one default can exist",
    )
    status, _ = await apiserver.request(
        "PATCH",
        f"{CLASSES}/usual",
        body={"metadata": {"labels": {"tier": "base"}}},
        content_type="application/merge-patch+json",
    )
    assert status == 200  # the default itself may be updated
    status, defaulted = await apiserver.request("POST", PODS, body=pod("defaulted"))
    assert status == 201
    assert (defaulted["spec"]["priorityClassName"], defaulted["spec"]["priority"]) == ("usual", 10)


async def test_an_update_that_leaves_the_priority_out_keeps_it(apiserver: RunningServer) -> None:
    """`kubectl replace -f pod.yaml` with the manifest the pod was made from."""
    _, created = await apiserver.request(
        "POST", PODS, body=pod("kept", priorityClassName="system-node-critical")
    )
    body = pod("kept", priorityClassName="system-node-critical")
    body["metadata"] = {**created["metadata"], "labels": {"edited": "yes"}}
    body["spec"] = {**created["spec"]}
    del body["spec"]["priority"], body["spec"]["preemptionPolicy"]
    status, replaced = await apiserver.request("PUT", f"{PODS}/kept", body=body)
    assert status == 200, replaced
    assert replaced["metadata"]["labels"] == {"edited": "yes"}
    assert (replaced["spec"]["priority"], replaced["spec"]["preemptionPolicy"]) == (
        2_000_001_000,
        "PreemptLowerPriority",
    )


async def test_the_classes_are_followed_in_memory_and_a_new_one_is_found_before_its_event(
    store: SqliteStore,
) -> None:
    prefix = "/registry/scheduling.k8s.io/priorityclasses/"
    await store.create(prefix + "gold", orjson.dumps(priority_class("gold", 10)))
    classes = PriorityClasses(store=store, prefix=prefix)
    classes.start()
    try:
        await asyncio.wait_for(classes.synced.wait(), timeout=10)
        assert [pc["metadata"]["name"] for pc in await classes.all()] == ["gold"]
        await store.create(prefix + "silver", orjson.dumps(priority_class("silver", 5)))
        found = await classes.get("silver")  # read from the store if the watch has not delivered it
        assert found is not None and found["value"] == 5
        gold = await store.get(prefix + "gold")
        assert gold is not None
        await store.delete(prefix + "gold", expected_revision=gold.mod_revision)
        deadline = time.monotonic() + 10
        while "gold" in {pc["metadata"]["name"] for pc in await classes.all()}:
            assert time.monotonic() < deadline, "the deleted class stayed"
            await asyncio.sleep(0.01)
        assert await classes.get("gold") is None
        assert [pc["metadata"]["name"] for pc in await classes.all(fresh=True)] == ["silver"]
    finally:
        await classes.stop()
