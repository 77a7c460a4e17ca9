"""The framework: filter order and verdicts, weighted scores, random tie-breaks, the failure message."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from control.scheduler.framework import (
    CycleState,
    FilterPlugin,
    FitError,
    Framework,
    NoNodesAvailable,
    ScorePlugin,
    default_normalize,
)
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code, Status
from tests.control.scheduler.support import node, node_info, pod

UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


class Reject(FilterPlugin):
    """Rejects the named nodes with its reasons; records which nodes it was asked about."""

    def __init__(self, name: str, nodes: set[str], *reasons: str, code: Code = Code.UNSCHEDULABLE) -> None:
        self.name = name
        self._nodes = nodes
        self._status = Status(code, reasons or (f"{name} says no",), name)
        self.seen: list[str] = []

    def filter(self, state, node):
        self.seen.append(node.name)
        return self._status if node.name in self._nodes else None


class Skipped(FilterPlugin):
    name = "Skipped"

    def pre_filter(self, state):
        return False

    def filter(self, state, node):
        raise AssertionError("a skipped plugin's filter must not run")


class Fixed(ScorePlugin):
    def __init__(self, name: str, scores: dict[str, int], *, skip: bool = False) -> None:
        self.name = name
        self._scores = scores
        self._skip = skip

    def pre_score(self, state, nodes):
        return not self._skip

    def score(self, state, node):
        return self._scores[node.name]


def nodes(*names: str):
    return [node_info(node(name)) for name in names]


WEB = PodInfo(pod("web"))


def test_no_nodes():
    with pytest.raises(NoNodesAvailable) as caught:
        Framework(filters=[], scorers=[]).schedule(WEB, [])
    assert caught.value.message == "no nodes available to schedule pods"
    assert caught.value.plugins == frozenset()


def test_a_nodes_first_failing_filter_is_its_verdict():
    first, second = Reject("First", {"n1"}), Reject("Second", {"n1", "n2"})
    with pytest.raises(FitError) as caught:
        Framework(filters=[first, Skipped(), second], scorers=[]).schedule(WEB, nodes("n1", "n2"))
    assert second.seen == ["n2"]  # n1 already failed
    assert {name: s.plugin for name, s in caught.value.statuses.items()} == {"n1": "First", "n2": "Second"}
    assert caught.value.plugins == {"First", "Second"}


def test_fit_error_message_is_upstreams():
    filters = [
        Reject("Taints", {"n1", "n2"}, "node(s) had untolerated taint(s)", code=UNRESOLVABLE),
        Reject("Fit", {"n3", "n4", "n5"}, "Insufficient cpu", "Insufficient memory"),
    ]
    with pytest.raises(FitError) as caught:
        Framework(filters=filters, scorers=[]).schedule(WEB, nodes("n1", "n2", "n3", "n4", "n5"))
    assert caught.value.message == (
        "0/5 nodes are available: 2 node(s) had untolerated taint(s), 3 Insufficient cpu, 3 Insufficient memory. "
        "preemption: 0/5 nodes are available: 2 Preemption is not helpful for scheduling, "
        "3 No preemption victims found for incoming pod.."
    )


def test_a_pre_filter_rejection_rules_out_every_node_at_once():
    class Refuses(FilterPlugin):
        name = "Refuses"

        def pre_filter(self, state):
            return Status(UNRESOLVABLE, ("first thing", "second thing"), self.name)

        def filter(self, state, node):
            raise AssertionError("no filter runs after a PreFilter rejection")

    later = Reject("Later", set())
    with pytest.raises(FitError) as caught:
        Framework(filters=[Refuses(), later], scorers=[]).schedule(WEB, nodes("n1", "n2"))
    assert later.seen == []
    assert caught.value.message == (
        "0/2 nodes are available: first thing, second thing. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    assert caught.value.plugins == {"Refuses"} and set(caught.value.statuses) == {"n1", "n2"}


def test_counts_sort_as_strings_like_upstream():
    filters = [Reject("A", {f"n{i}" for i in range(10)}, "zzz"), Reject("B", {"n10"}, "aaa")]
    with pytest.raises(FitError) as caught:
        Framework(filters=filters, scorers=[]).schedule(WEB, nodes(*(f"n{i}" for i in range(11))))
    assert caught.value.message.startswith("0/11 nodes are available: 1 aaa, 10 zzz.")


def test_preemption_never():
    never = PodInfo(pod("web", preemptionPolicy="Never"))
    with pytest.raises(FitError) as caught:
        Framework(filters=[Reject("Fit", {"n1"}, "Insufficient cpu")], scorers=[]).schedule(
            never, nodes("n1")
        )
    assert caught.value.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


def test_one_feasible_node_skips_scoring():
    class Exploding(ScorePlugin):
        name = "Exploding"

        def pre_score(self, state, nodes):
            raise AssertionError("no scoring with a single candidate")

    result = Framework(filters=[Reject("F", {"n1"})], scorers=[(Exploding(), 1)]).schedule(
        WEB, nodes("n1", "n2")
    )
    assert (result.node, result.evaluated, result.feasible) == ("n2", 2, 1)


def test_weighted_scores_pick_the_best():
    framework = Framework(
        filters=[],
        scorers=[
            (Fixed("Light", {"n1": 100, "n2": 0, "n3": 50}), 1),
            (Fixed("Heavy", {"n1": 0, "n2": 60, "n3": 10}), 2),
            (Fixed("Off", {"n1": 1000, "n2": 0, "n3": 0}, skip=True), 5),
        ],
    )
    candidates = nodes("n1", "n2", "n3")
    assert framework.prioritize(CycleState(WEB, candidates), candidates) == [100, 120, 70]
    assert framework.schedule(WEB, nodes("n1", "n2", "n3")).node == "n2"


def test_ties_are_broken_at_random():
    framework = Framework(
        filters=[], scorers=[(Fixed("Flat", {"n1": 5, "n2": 5, "n3": 1}), 1)], rng=random.Random(7)
    )
    picks = Counter(framework.schedule(WEB, nodes("n1", "n2", "n3")).node for _ in range(200))
    assert set(picks) == {"n1", "n2"} and min(picks.values()) > 50


def test_weights_must_be_positive():
    with pytest.raises(ValueError, match="weight must be positive"):
        Framework(filters=[], scorers=[(Fixed("Zero", {}), 0)])


@pytest.mark.parametrize(
    ("scores", "reverse", "expected"),
    [
        ([0, 5, 10], False, [0, 50, 100]),
        ([0, 5, 10], True, [100, 50, 0]),
        ([0, 0], False, [0, 0]),
        ([0, 0], True, [100, 100]),
        ([3, 7], False, [42, 100]),
    ],
)
def test_default_normalize(scores, reverse, expected):
    default_normalize(scores, reverse=reverse)
    assert scores == expected
