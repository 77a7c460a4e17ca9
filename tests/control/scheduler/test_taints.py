"""Toleration matching and the taints a NotReady node implies."""

from __future__ import annotations

import pytest

from control.resources.tolerations import tolerates
from control.scheduler.taints import NO_EXECUTE, NO_SCHEDULE, effective_taints, first_untolerated
from tests.control.scheduler.support import node

TAINT = {"key": "dedicated", "value": "gpu", "effect": NO_SCHEDULE}


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": NO_SCHEDULE}, True),
        ({"key": "dedicated", "value": "gpu"}, True),  # Equal by default, any effect
        ({"key": "dedicated", "value": "cpu"}, False),
        ({"key": "dedicated", "operator": "Exists"}, True),
        ({"key": "dedicated", "operator": "Exists", "effect": NO_EXECUTE}, False),
        ({"operator": "Exists"}, True),  # empty key + Exists tolerates everything
        ({"key": "other", "operator": "Exists"}, False),
        ({"key": "dedicated", "operator": "Gt", "value": "gpu"}, False),
        ({}, False),  # Equal with an empty key and value: only an empty-valued taint of an empty key
    ],
)
def test_tolerates(toleration, tolerated):
    assert tolerates(toleration, TAINT) is tolerated


def test_first_untolerated_respects_effects():
    taints = [{"key": "soft", "effect": "PreferNoSchedule"}, TAINT]
    effects = frozenset({NO_SCHEDULE, NO_EXECUTE})
    assert first_untolerated(taints, [], effects=effects) == TAINT
    assert first_untolerated(taints, [{"key": "dedicated", "operator": "Exists"}], effects=effects) is None


@pytest.mark.parametrize(
    ("ready", "implied"),
    [
        ("True", None),
        ("False", "node.kubernetes.io/not-ready"),
        ("Unknown", "node.kubernetes.io/unreachable"),
        (None, "node.kubernetes.io/not-ready"),
    ],
)
def test_effective_taints_follow_the_ready_condition(ready, implied):
    taints = effective_taints(node("n", ready=ready, taints=[TAINT]))
    assert taints[0] == TAINT
    if implied is None:
        assert len(taints) == 1
    else:
        assert taints[1:] == ({"key": implied, "effect": NO_SCHEDULE},)


def test_an_existing_condition_taint_is_not_doubled():
    tainted = node(
        "n", ready="False", taints=[{"key": "node.kubernetes.io/not-ready", "effect": NO_SCHEDULE}]
    )
    assert len(effective_taints(tainted)) == 1
