"""NodeUnschedulable, NodeName and NodePorts, table-driven."""

from __future__ import annotations

import pytest

from control.scheduler.framework import CycleState
from control.scheduler.plugins.node_name import NodeName
from control.scheduler.plugins.node_ports import NodePorts
from control.scheduler.plugins.node_unschedulable import NodeUnschedulable
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code
from tests.control.scheduler.support import node, node_info, pod, run_filter

CORDONED = "node(s) were unschedulable"


@pytest.mark.parametrize(
    ("tolerations", "unschedulable", "verdict"),
    [
        ([], False, None),
        ([], True, (CORDONED,)),
        (
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
            True,
            None,
        ),
        ([{"operator": "Exists"}], True, None),
        (
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}],
            True,
            (CORDONED,),
        ),
    ],
)
def test_node_unschedulable(tolerations, unschedulable, verdict):
    nodes = [node_info(node("n1", unschedulable=unschedulable))]
    assert run_filter(NodeUnschedulable(), pod("p", tolerations=tolerations), nodes=nodes) == {"n1": verdict}


def test_node_unschedulable_is_unresolvable():
    cordoned = node_info(node("n1", unschedulable=True))
    status = NodeUnschedulable().filter(CycleState(PodInfo(pod("p")), [cordoned]), cordoned)
    assert status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE and status.plugin == "NodeUnschedulable"


def test_node_name():
    nodes = [node_info(node("n1")), node_info(node("n2"))]
    assert run_filter(NodeName(), pod("p", nodeName="n2"), nodes=nodes) == {
        "n1": ("node(s) didn't match the requested node name",),
        "n2": None,
    }
    assert run_filter(NodeName(), pod("p"), nodes=nodes) == {"n1": None, "n2": None}


def with_ports(name: str, *ports: dict, node_name: str | None = None) -> dict:
    body = pod(name, node_name=node_name)
    body["spec"]["containers"][0]["ports"] = list(ports)
    return body


PORTS = "node(s) didn't have free ports for the requested pod ports"


@pytest.mark.parametrize(
    ("used", "wanted", "conflict"),
    [
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8080}, True),
        ({"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}, False),
        (
            {"containerPort": 80, "hostPort": 53},
            {"containerPort": 80, "hostPort": 53, "protocol": "UDP"},
            False,
        ),
        (
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.1"},
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.2"},
            False,
        ),
        (
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.1"},
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.1"},
            True,
        ),
        (
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.1"},
            {"containerPort": 80, "hostPort": 80},
            True,
        ),
        (
            {"containerPort": 80, "hostPort": 80},
            {"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.9"},
            True,
        ),
        ({"containerPort": 80}, {"containerPort": 80}, False),  # no host ports at all
    ],
)
def test_node_ports(used, wanted, conflict):
    nodes = [node_info(node("n1"), with_ports("existing", used))]
    verdict = run_filter(NodePorts(), with_ports("new", wanted), nodes=nodes)["n1"]
    assert verdict == ((PORTS,) if conflict else None)
