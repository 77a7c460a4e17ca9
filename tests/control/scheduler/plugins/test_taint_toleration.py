"""TaintToleration: NoSchedule/NoExecute filter (with NotReady nodes), PreferNoSchedule score."""

from __future__ import annotations

import pytest

from control.scheduler.plugins.taint_toleration import TaintToleration
from tests.control.scheduler.support import node, node_info, pod, run_filter, run_score

UNTOLERATED = ("node(s) had untolerated taint(s)",)
GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("node_obj", "tolerations", "verdict"),
    [
        (node("n1"), [], None),
        (node("n1", taints=[GPU]), [], UNTOLERATED),
        (node("n1", taints=[GPU]), [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}], None),
        (node("n1", taints=[{**GPU, "effect": "NoExecute"}]), [], UNTOLERATED),
        (node("n1", taints=[{**GPU, "effect": "PreferNoSchedule"}]), [], None),
        (node("n1", ready="False"), [], UNTOLERATED),
        (node("n1", ready="Unknown"), [], UNTOLERATED),
        (node("n1", ready=None), [], UNTOLERATED),
        (node("n1", ready="False"), [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}], None),
        # a DaemonSet-style NoExecute toleration does not tolerate the NoSchedule not-ready taint
        (
            node("n1", ready="False"),
            [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
            UNTOLERATED,
        ),
        (
            node("n1", ready="Unknown"),
            [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}],
            None,
        ),
    ],
)
def test_filter(node_obj, tolerations, verdict):
    assert run_filter(TaintToleration(), pod("p", tolerations=tolerations), nodes=[node_info(node_obj)]) == {
        "n1": verdict
    }


def soft(key: str) -> dict:
    return {"key": key, "effect": "PreferNoSchedule"}


def test_score_prefers_fewer_untolerated_soft_taints():
    nodes = [
        node_info(node("clean")),
        node_info(node("one", taints=[soft("a")])),
        node_info(node("two", taints=[soft("a"), soft("b"), GPU])),
    ]
    assert run_score(TaintToleration(), pod("p"), nodes=nodes) == [100, 50, 0]
    tolerant = pod("p", tolerations=[{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert run_score(TaintToleration(), tolerant, nodes=nodes) == [100, 100, 0]
    # a NoSchedule-only toleration does not count for scoring
    no_schedule_only = pod("p", tolerations=[{"key": "b", "operator": "Exists", "effect": "NoSchedule"}])
    assert run_score(TaintToleration(), no_schedule_only, nodes=nodes) == [100, 50, 0]
    assert run_score(TaintToleration(), pod("p"), nodes=[node_info(node("a")), node_info(node("b"))]) == [
        100,
        100,
    ]
