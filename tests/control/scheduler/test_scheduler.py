"""The loop's pure helpers: which node changes matter, which pod changes count, listers, truncation."""

from __future__ import annotations

import copy

import pytest

from control.client.informer import SharedInformer
from control.client.testing import FakeListerWatcher
from control.scheduler.scheduler import (
    EVENT_MESSAGE_LIMIT,
    InformerListers,
    _spec_changed,
    node_change,
    truncate,
)
from tests.control.scheduler.support import node, pod


def changed(mutate) -> dict:
    new = copy.deepcopy(node("n1"))
    mutate(new)
    return new


@pytest.mark.parametrize(
    ("mutate", "plugins"),
    [
        (lambda n: n["status"].update(heartbeat="later"), set()),
        (lambda n: n["status"]["allocatable"].update(cpu="8"), {"NodeResourcesFit"}),
        (lambda n: n["status"]["allocatable"].update(cpu="lots"), {"NodeResourcesFit"}),
        (
            lambda n: n["metadata"]["labels"].update(disk="ssd"),
            {"NodeAffinity", "PodTopologySpread", "InterPodAffinity", "VolumeBinding"},
        ),
        (lambda n: n["spec"].update(taints=[{"key": "k", "effect": "NoSchedule"}]), {"TaintToleration"}),
        (lambda n: n["status"]["conditions"][0].update(status="False"), {"TaintToleration"}),
        (lambda n: n["status"]["conditions"][0].update(lastHeartbeatTime="now"), set()),
        (lambda n: n["spec"].update(unschedulable=True), {"NodeUnschedulable"}),
    ],
)
def test_node_change(mutate, plugins):
    assert node_change(node("n1"), changed(mutate)) == plugins


def test_spec_changed_ignores_status_and_bookkeeping():
    old = pod("p")
    status_only = copy.deepcopy(old)
    status_only["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    status_only["metadata"].update(resourceVersion="9", managedFields=[{}], generation=2)
    assert not _spec_changed(old, status_only)
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"]["x"] = "y"
    assert _spec_changed(old, relabelled)
    tolerating = copy.deepcopy(old)
    tolerating["spec"]["tolerations"] = [{"operator": "Exists"}]
    assert _spec_changed(old, tolerating)


def test_truncate():
    assert truncate("short") == "short"
    long = "x" * 2000
    assert len(truncate(long)) == EVENT_MESSAGE_LIMIT and truncate(long).endswith("x ...")


def informer(*objects: dict) -> SharedInformer:
    shared = SharedInformer(FakeListerWatcher())
    for obj in objects:
        shared.cache.add(obj)
    return shared


def test_informer_listers():
    listers = InformerListers(
        namespaces=informer(
            {"metadata": {"name": "blue", "labels": {"team": "blue"}}}, {"metadata": {"name": "bare"}}
        ),
        services=informer(
            {"metadata": {"name": "a", "namespace": "blue"}}, {"metadata": {"name": "b", "namespace": "red"}}
        ),
        replication_controllers=informer({"metadata": {"name": "rc", "namespace": "blue"}}),
        replica_sets=informer({"metadata": {"name": "rs", "namespace": "blue"}}),
        stateful_sets=informer({"metadata": {"name": "ss", "namespace": "blue"}}),
        claims=informer({"metadata": {"name": "www", "namespace": "blue"}}),
        volumes=informer({"metadata": {"name": "pv-1"}}),
        storage_classes=informer({"metadata": {"name": "standard"}}),
    )
    assert listers.namespace_labels("blue") == {"team": "blue"}
    assert listers.namespace_labels("bare") == {} and listers.namespace_labels("absent") == {}
    assert [s["metadata"]["name"] for s in listers.services("blue")] == ["a"]
    assert (
        listers.replica_set("blue", "rs")["metadata"]["name"] == "rs"
        and listers.replica_set("red", "rs") is None
    )
    assert listers.stateful_set("blue", "ss") is not None and listers.stateful_set("blue", "rs") is None
    assert listers.replication_controller("blue", "rc") is not None
    assert listers.replication_controller("red", "rc") is None
    assert listers.claim("blue", "www") is not None and listers.claim("red", "www") is None
    assert listers.volume("pv-1") is not None and listers.volume("pv-2") is None
    assert [v["metadata"]["name"] for v in listers.persistent_volumes()] == ["pv-1"]
    assert listers.storage_class("standard") is not None and listers.storage_class("fast") is None
