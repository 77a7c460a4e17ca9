"""InterPodAffinity: required affinity / anti-affinity / existing anti-affinity filter; preferences score."""

from __future__ import annotations

import pytest

from control.scheduler.framework import CycleState
from control.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code
from tests.control.scheduler.support import (
    StaticListers,
    affinity,
    anti_affinity,
    node,
    node_info,
    pod,
    run_filter,
    run_score,
)

AFFINITY = ("node(s) didn't match pod affinity rules",)
ANTI = ("node(s) didn't match pod anti-affinity rules",)
EXISTING = ("node(s) didn't satisfy existing pods anti-affinity rules",)


def zone_node(name: str, zone: str | None, *pods: dict):
    return node_info(node(name, labels={"zone": zone} if zone else {}), *pods)


def plugin(**namespaces: dict[str, str]) -> InterPodAffinity:
    return InterPodAffinity(StaticListers(namespaces=namespaces))


@pytest.mark.parametrize(
    ("new", "nodes", "verdicts"),
    [
        # affinity to app=cache by hostname: only the node running a cache pod
        (
            pod("app", affinity=affinity({"app": "cache"})),
            [zone_node("n1", "a", pod("c", labels={"app": "cache"})), zone_node("n2", "a")],
            {"n1": None, "n2": AFFINITY},
        ),
        # by zone: any node in the cache pod's zone
        (
            pod("app", affinity=affinity({"app": "cache"}, topology_key="zone")),
            [
                zone_node("n1", "a", pod("c", labels={"app": "cache"})),
                zone_node("n2", "a"),
                zone_node("n3", "b"),
            ],
            {"n1": None, "n2": None, "n3": AFFINITY},
        ),
        # a node without the topology key never satisfies affinity
        (
            pod("app", affinity=affinity({"app": "cache"}, topology_key="zone")),
            [zone_node("n1", "a", pod("c", labels={"app": "cache"})), zone_node("n2", None)],
            {"n1": None, "n2": AFFINITY},
        ),
        # nothing matches anywhere and the pod does not match itself: nowhere
        (
            pod("app", affinity=affinity({"app": "cache"})),
            [zone_node("n1", "a"), zone_node("n2", "a")],
            {"n1": AFFINITY, "n2": AFFINITY},
        ),
        # the first pod of a self-affine group may go anywhere
        (
            pod("c0", labels={"app": "cache"}, affinity=affinity({"app": "cache"})),
            [zone_node("n1", "a"), zone_node("n2", "a")],
            {"n1": None, "n2": None},
        ),
        # pods in other namespaces do not count unless the term names them
        (
            pod("app", affinity=affinity({"app": "cache"})),
            [
                zone_node("n1", "a", pod("c", namespace="other", labels={"app": "cache"})),
                zone_node("n2", "a"),
            ],
            {"n1": AFFINITY, "n2": AFFINITY},
        ),
        # anti-affinity: not next to app=db
        (
            pod("db2", labels={"app": "db"}, affinity=anti_affinity({"app": "db"})),
            [zone_node("n1", "a", pod("db1", labels={"app": "db"})), zone_node("n2", "a")],
            {"n1": ANTI, "n2": None},
        ),
        (
            pod("db2", labels={"app": "db"}, affinity=anti_affinity({"app": "db"}, topology_key="zone")),
            [
                zone_node("n1", "a", pod("db1", labels={"app": "db"})),
                zone_node("n2", "a"),
                zone_node("n3", "b"),
            ],
            {"n1": ANTI, "n2": ANTI, "n3": None},
        ),
        # existing pods' anti-affinity keeps matching newcomers away
        (
            pod("web", labels={"app": "web"}),
            [
                zone_node("n1", "a", pod("loner", affinity=anti_affinity({"app": "web"}))),
                zone_node("n2", "a"),
            ],
            {"n1": EXISTING, "n2": None},
        ),
        (
            pod("web", labels={"app": "web"}),
            [
                zone_node(
                    "n1", "a", pod("loner", affinity=anti_affinity({"app": "web"}, topology_key="zone"))
                ),
                zone_node("n2", "a"),
                zone_node("n3", "b"),
            ],
            {"n1": EXISTING, "n2": EXISTING, "n3": None},
        ),
        (
            pod("other", labels={"app": "other"}),
            [zone_node("n1", "a", pod("loner", affinity=anti_affinity({"app": "web"})))],
            {"n1": None},
        ),
        # affinity is checked first
        (
            pod("app", labels={"app": "web"}, affinity=affinity({"app": "cache"})),
            [zone_node("n1", "a", pod("loner", affinity=anti_affinity({"app": "web"})))],
            {"n1": AFFINITY},
        ),
    ],
)
def test_filter(new, nodes, verdicts):
    assert run_filter(plugin(), new, nodes=nodes) == verdicts


def test_codes():
    nodes = [zone_node("n1", "a", pod("db1", labels={"app": "db"}))]
    for new, code in (
        (pod("a", affinity=affinity({"app": "cache"})), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
        (pod("b", affinity=anti_affinity({"app": "db"})), Code.UNSCHEDULABLE),
    ):
        state = CycleState(PodInfo(new), nodes)
        assert plugin().pre_filter(state)
        assert plugin().filter(state, nodes[0]).code is code


def test_namespace_selector_terms_use_namespace_labels():
    term = {
        "labelSelector": {"matchLabels": {"app": "cache"}},
        "topologyKey": "kubernetes.io/hostname",
        "namespaceSelector": {"matchLabels": {"team": "blue"}},
    }
    new = pod("app", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
    nodes = [
        zone_node("n1", "a", pod("c1", namespace="blue-ns", labels={"app": "cache"})),
        zone_node("n2", "a", pod("c2", namespace="red-ns", labels={"app": "cache"})),
    ]
    listers = StaticListers(namespaces={"blue-ns": {"team": "blue"}, "red-ns": {"team": "red"}})
    assert run_filter(InterPodAffinity(listers), new, nodes=nodes) == {"n1": None, "n2": AFFINITY}


def test_nothing_to_check_skips_the_filter():
    assert run_filter(plugin(), pod("plain"), nodes=[zone_node("n1", "a", pod("x"))]) == {"n1": None}


def preferred(kind: str, labels: dict, *, weight: int, key: str = "kubernetes.io/hostname") -> dict:
    return {
        kind: {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": weight,
                    "podAffinityTerm": {"labelSelector": {"matchLabels": labels}, "topologyKey": key},
                }
            ]
        }
    }


def test_score_prefers_and_avoids():
    nodes = [
        zone_node("n1", "a", pod("c", labels={"app": "cache"})),
        zone_node("n2", "a"),
        zone_node("n3", "b", pod("d", labels={"app": "db"})),
    ]
    likes_cache = pod("app", affinity=preferred("podAffinity", {"app": "cache"}, weight=10))
    assert run_score(plugin(), likes_cache, nodes=nodes) == [100, 0, 0]
    avoids_db = pod("app", affinity=preferred("podAntiAffinity", {"app": "db"}, weight=10, key="zone"))
    assert run_score(plugin(), avoids_db, nodes=nodes) == [100, 100, 0]
    assert run_score(plugin(), pod("plain"), nodes=nodes) is None


def test_score_counts_existing_pods_terms_symmetrically():
    fan = pod("fan", affinity=affinity({"app": "web"}))  # required affinity of an existing pod: weight 1
    shy = pod("shy", affinity=preferred("podAntiAffinity", {"app": "web"}, weight=5))
    keen = pod("keen", affinity=preferred("podAffinity", {"app": "web"}, weight=3))
    nodes = [
        zone_node("n1", "a", fan),
        zone_node("n2", "a", shy),
        zone_node("n3", "a", keen),
        zone_node("n4", "a"),
    ]
    # totals: n1 +1, n2 -5, n3 +3, n4 0 → rescaled between -5 and +3
    assert run_score(plugin(), pod("web", labels={"app": "web"}), nodes=nodes) == [75, 0, 100, 62]


def test_score_counts_pods_on_infeasible_nodes_too():
    full = zone_node("full", "a", pod("c", labels={"app": "cache"}))
    same_zone, other_zone = zone_node("n2", "a"), zone_node("n3", "b")
    likes_cache = pod("app", affinity=preferred("podAffinity", {"app": "cache"}, weight=10, key="zone"))
    scores = run_score(
        plugin(), likes_cache, nodes=[same_zone, other_zone], all_nodes=[full, same_zone, other_zone]
    )
    assert scores == [100, 0]
