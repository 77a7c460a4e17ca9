"""The scheduler cache: node accounting, assume / confirm / forget, pods before nodes, bad objects."""

from __future__ import annotations

import pytest

from control.scheduler.cache import AssumeError, NodeInfo, SchedulerCache
from control.scheduler.podinfo import PodInfo
from control.scheduler.requests import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST
from tests.control.scheduler.support import anti_affinity, node, pod


def test_node_info_sums_requests_ports_and_affinity():
    info = NodeInfo("node-1")
    info.set_node(
        node("node-1", cpu="2", memory="4Gi", pods="10", taints=[{"key": "k", "effect": "NoSchedule"}])
    )
    assert (info.allocatable.milli_cpu, info.allocatable.memory, info.allowed_pods) == (2000, 4 * 2**30, 10)
    assert info.taints == ({"key": "k", "effect": "NoSchedule"},)
    first = pod("a", cpu="500m", memory="1Gi", affinity=anti_affinity({"app": "a"}))
    first["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80}]
    second = pod("b")
    second["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80}]
    info.add_pod(PodInfo(first))
    info.add_pod(PodInfo(second))
    assert (info.requested.milli_cpu, info.requested.memory) == (500, 2**30)
    assert (info.non_zero_cpu, info.non_zero_memory) == (
        500 + DEFAULT_MILLI_CPU_REQUEST,
        2**30 + DEFAULT_MEMORY_REQUEST,
    )
    assert info.used_ports == {("0.0.0.0", "TCP", 80): 2}
    assert set(info.with_affinity) == set(info.with_required_anti_affinity) == {"default/a"}
    info.remove_pod("default/a")
    assert info.used_ports == {("0.0.0.0", "TCP", 80): 1}
    info.remove_pod("default/b")
    assert info.requested.is_zero() and not info.used_ports and not info.with_affinity
    assert (info.non_zero_cpu, info.non_zero_memory) == (0, 0)
    assert info.remove_pod("default/b") is None


def test_unreadable_allocatable_offers_nothing(caplog):
    info = NodeInfo("n")
    info.set_node(node("n", cpu="plenty"))
    assert info.allocatable.is_zero() and info.allowed_pods == 0
    assert "unreadable allocatable" in caplog.text


def test_assume_then_confirm_then_remove():
    cache = SchedulerCache()
    cache.set_node(node("node-1"))
    web = pod("web", cpu="1")
    cache.assume(PodInfo(web), "node-1")
    assert cache.is_assumed("default/web") and cache.pod_node("default/web") == "node-1"
    assert cache.node_info("node-1").requested.milli_cpu == 1000
    with pytest.raises(AssumeError, match="already assumed on node-1"):
        cache.assume(PodInfo(web), "node-1")
    bound = {**web, "spec": {**web["spec"], "nodeName": "node-1"}}
    cache.set_pod(bound)  # the watch confirms it
    assert not cache.is_assumed("default/web")
    assert cache.node_info("node-1").requested.milli_cpu == 1000  # counted once
    cache.forget("default/web")  # a late failure report changes nothing once confirmed
    assert cache.node_info("node-1").requested.milli_cpu == 1000
    cache.remove_pod("default/web")
    assert cache.pod_node("default/web") is None and cache.node_info("node-1").requested.is_zero()


def test_forget_returns_the_capacity():
    cache = SchedulerCache()
    cache.set_node(node("node-1"))
    cache.assume(PodInfo(pod("web", cpu="1")), "node-1")
    cache.forget("default/web")
    assert cache.node_info("node-1").requested.is_zero() and not cache.is_assumed("default/web")


def test_a_confirmation_on_another_node_moves_the_pod():
    cache = SchedulerCache()
    cache.set_node(node("node-1"))
    cache.set_node(node("node-2"))
    cache.assume(PodInfo(pod("web", cpu="1")), "node-1")
    cache.set_pod(pod("web", cpu="1", node_name="node-2"))
    assert cache.node_info("node-1").requested.is_zero()
    assert cache.node_info("node-2").requested.milli_cpu == 1000


def test_assume_on_an_unknown_node_fails():
    cache = SchedulerCache()
    with pytest.raises(AssumeError, match="node-9 is not in the cache"):
        cache.assume(PodInfo(pod("web")), "node-9")


def test_pods_before_their_node_and_node_removal():
    cache = SchedulerCache()
    cache.set_pod(pod("early", cpu="1", node_name="node-1"))
    assert cache.node_infos() == [] and cache.node_info("node-1") is None
    cache.set_node(node("node-1"))
    assert [n.name for n in cache.node_infos()] == ["node-1"]
    assert cache.node_info("node-1").requested.milli_cpu == 1000
    cache.remove_node("node-1")
    assert cache.node_infos() == []
    cache.set_node(node("node-1"))  # back: its pod is still accounted
    assert cache.node_info("node-1").requested.milli_cpu == 1000
    cache.remove_node("node-1")
    cache.remove_pod("default/early")
    cache.set_node(node("node-1"))
    assert cache.node_info("node-1").requested.is_zero()
    cache.remove_node("node-1")
    cache.remove_node("node-1")
    assert cache.node_infos() == []


def test_node_list_is_sorted_and_refreshed():
    cache = SchedulerCache()
    for name in ("node-b", "node-a", "node-c"):
        cache.set_node(node(name))
    assert [n.name for n in cache.node_infos()] == ["node-a", "node-b", "node-c"]
    cache.set_node(node("node-a", cpu="1"))  # an update keeps the list
    assert cache.node_infos()[0].allocatable.milli_cpu == 1000
    cache.remove_node("node-b")
    assert [n.name for n in cache.node_infos()] == ["node-a", "node-c"]


def test_an_unreadable_assigned_pod_still_counts(caplog):
    cache = SchedulerCache()
    cache.set_node(node("node-1"))
    cache.set_pod(pod("odd", cpu="lots", node_name="node-1", labels={"app": "odd"}))
    info = cache.node_info("node-1")
    assert list(info.pods) == ["default/odd"] and info.requested.is_zero()
    assert info.pods["default/odd"].labels == {"app": "odd"}
    assert "counting pod without its requests" in caplog.text
