"""NodeAffinity: nodeSelector and required terms filter, preferred terms score."""

from __future__ import annotations

import pytest

from control.scheduler.plugins.node_affinity import NodeAffinity
from tests.control.scheduler.support import node, node_info, pod, run_filter, run_score

MISMATCH = ("node(s) didn't match Pod's node affinity/selector",)
NODES = [
    node_info(node("ssd-1", labels={"disk": "ssd", "zone": "a", "cores": "8"})),
    node_info(node("hdd-1", labels={"disk": "hdd", "zone": "b", "cores": "2"})),
]


def required(*terms: dict) -> dict:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


def expr(key: str, operator: str, *values: str) -> dict:
    return (
        {"key": key, "operator": operator, "values": list(values)}
        if values
        else {"key": key, "operator": operator}
    )


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        ({}, {"ssd-1", "hdd-1"}),
        ({"nodeSelector": {"disk": "ssd"}}, {"ssd-1"}),
        ({"nodeSelector": {"disk": "ssd", "zone": "b"}}, set()),
        ({"affinity": required({"matchExpressions": [expr("disk", "In", "ssd", "nvme")]})}, {"ssd-1"}),
        ({"affinity": required({"matchExpressions": [expr("disk", "NotIn", "ssd")]})}, {"hdd-1"}),
        ({"affinity": required({"matchExpressions": [expr("gpu", "DoesNotExist")]})}, {"ssd-1", "hdd-1"}),
        ({"affinity": required({"matchExpressions": [expr("gpu", "Exists")]})}, set()),
        ({"affinity": required({"matchExpressions": [expr("cores", "Gt", "4")]})}, {"ssd-1"}),
        ({"affinity": required({"matchExpressions": [expr("cores", "Lt", "4")]})}, {"hdd-1"}),
        # terms are ORed, expressions within a term ANDed
        (
            {
                "affinity": required(
                    {"matchExpressions": [expr("disk", "In", "ssd"), expr("zone", "In", "b")]},
                    {"matchExpressions": [expr("zone", "In", "b")]},
                )
            },
            {"hdd-1"},
        ),
        # DaemonSet pods pin their node by name
        ({"affinity": required({"matchFields": [expr("metadata.name", "In", "hdd-1")]})}, {"hdd-1"}),
        # both the selector and the affinity must hold
        (
            {
                "nodeSelector": {"zone": "a"},
                "affinity": required({"matchFields": [expr("metadata.name", "In", "hdd-1")]}),
            },
            set(),
        ),
    ],
)
def test_filter(spec, fits):
    verdicts = run_filter(NodeAffinity(), pod("p", **spec), nodes=NODES)
    assert {name for name, verdict in verdicts.items() if verdict is None} == fits
    assert all(verdict in (None, MISMATCH) for verdict in verdicts.values())


def preferred(*weighted: tuple[int, dict]) -> dict:
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": weight, "preference": {"matchExpressions": [expression]}}
                for weight, expression in weighted
            ]
        }
    }


def test_score_sums_matching_weights():
    spec = preferred(
        (10, expr("disk", "In", "ssd")), (30, expr("zone", "In", "b")), (5, expr("cores", "Exists"))
    )
    assert run_score(NodeAffinity(), pod("p", affinity=spec), nodes=NODES) == [42, 100]
    assert run_score(
        NodeAffinity(), pod("p", affinity=preferred((7, expr("gpu", "Exists")))), nodes=NODES
    ) == [
        0,
        0,
    ]
    assert run_score(NodeAffinity(), pod("p"), nodes=NODES) is None
