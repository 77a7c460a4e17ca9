"""PodTopologySpread: hard constraints filter; soft and default (Service/ReplicaSet/StatefulSet) spreading score."""

from __future__ import annotations

import pytest

from control.scheduler.plugins.pod_topology_spread import PodTopologySpread, default_selector
from control.scheduler.podinfo import PodInfo
from tests.control.scheduler.support import StaticListers, node, node_info, pod, run_filter, run_score

NOT_MATCH = ("node(s) didn't match pod topology spread constraints",)
MISSING = ("node(s) didn't match pod topology spread constraints (missing required label)",)


def web(name: str, **extra) -> dict:
    return pod(name, labels={"app": "web"}, **extra)


def constraint(key: str, *, skew: int = 1, when: str = "DoNotSchedule", **extra) -> dict:
    return {
        "maxSkew": skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}},
        **extra,
    }


def zoned(name: str, zone: str | None, *pods: dict, **node_args) -> object:
    labels = {"zone": zone} if zone else {}
    return node_info(node(name, labels=labels, **node_args), *pods)


@pytest.mark.parametrize(
    ("nodes", "constraints", "fits"),
    [
        # a: 2 web pods, b: 1, c: 0 — maxSkew 1 allows only the emptiest zone
        (
            [zoned("n-a", "a", web("w1"), web("w2")), zoned("n-b", "b", web("w3")), zoned("n-c", "c")],
            [constraint("zone")],
            {"n-c"},
        ),
        (
            [zoned("n-a", "a", web("w1"), web("w2")), zoned("n-b", "b", web("w3")), zoned("n-c", "c")],
            [constraint("zone", skew=2)],
            {"n-b", "n-c"},
        ),
        # pods of other apps or namespaces, and terminating pods, do not count
        (
            [
                zoned("n-a", "a", pod("db", labels={"app": "db"}), web("w", namespace="other")),
                zoned("n-b", "b"),
            ],
            [constraint("zone")],
            {"n-a", "n-b"},
        ),
        # minDomains 3 with only 2 domains: the global minimum counts as 0
        (
            [zoned("n-a", "a", web("w1")), zoned("n-b", "b", web("w2"))],
            [constraint("zone", minDomains=3)],
            set(),
        ),
        (
            [zoned("n-a", "a", web("w1")), zoned("n-b", "b", web("w2"))],
            [constraint("zone")],
            {"n-a", "n-b"},
        ),
        # ScheduleAnyway constraints never filter
        (
            [zoned("n-a", "a", web("w1"), web("w2")), zoned("n-b", "b")],
            [constraint("zone", when="ScheduleAnyway")],
            {"n-a", "n-b"},
        ),
    ],
)
def test_filter(nodes, constraints, fits):
    verdicts = run_filter(
        PodTopologySpread(StaticListers()), web("new", topologySpreadConstraints=constraints), nodes=nodes
    )
    assert {name for name, verdict in verdicts.items() if verdict is None} == fits
    assert all(v in (None, NOT_MATCH) for v in verdicts.values())


def test_terminating_pods_do_not_count():
    leaving = web("w1")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    nodes = [zoned("n-a", "a", leaving), zoned("n-b", "b")]
    verdicts = run_filter(
        PodTopologySpread(StaticListers()),
        web("new", topologySpreadConstraints=[constraint("zone")]),
        nodes=nodes,
    )
    assert verdicts == {"n-a": None, "n-b": None}


def test_a_node_without_the_key_is_unresolvable():
    nodes = [zoned("n-a", "a"), zoned("n-none", None)]
    verdicts = run_filter(
        PodTopologySpread(StaticListers()),
        web("new", topologySpreadConstraints=[constraint("zone")]),
        nodes=nodes,
    )
    assert verdicts == {"n-a": None, "n-none": MISSING}


def test_a_pod_not_matching_its_own_selector_adds_nothing():
    nodes = [zoned("n-a", "a", web("w1")), zoned("n-b", "b")]
    other = pod("new", labels={"app": "other"}, topologySpreadConstraints=[constraint("zone")])
    assert run_filter(PodTopologySpread(StaticListers()), other, nodes=nodes) == {"n-a": None, "n-b": None}


def test_node_inclusion_policies():
    tainted = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    nodes = [zoned("n-a", "a", web("w1")), zoned("n-b", "b", web("w2"), web("w3"), taints=[tainted])]
    # honouring taints, n-b (untolerated) is not counted: zone b looks empty, so both fit
    honour = web("new", topologySpreadConstraints=[constraint("zone", nodeTaintsPolicy="Honor")])
    assert run_filter(PodTopologySpread(StaticListers()), honour, nodes=nodes) == {"n-a": None, "n-b": None}
    # ignoring taints (the default), zone a at 1 vs b at 2: a fits, b would be 3 - 1 = 2 > 1
    plain = web("new", topologySpreadConstraints=[constraint("zone")])
    assert run_filter(PodTopologySpread(StaticListers()), plain, nodes=nodes) == {
        "n-a": None,
        "n-b": NOT_MATCH,
    }
    # honouring node affinity (the default): nodes the pod may not use are not counted
    pinned = web("new", nodeSelector={"zone": "b"}, topologySpreadConstraints=[constraint("zone")])
    assert run_filter(PodTopologySpread(StaticListers()), pinned, nodes=nodes)["n-b"] is None
    ignoring = web(
        "new",
        nodeSelector={"zone": "b"},
        topologySpreadConstraints=[constraint("zone", nodeAffinityPolicy="Ignore")],
    )
    assert run_filter(PodTopologySpread(StaticListers()), ignoring, nodes=nodes)["n-b"] == NOT_MATCH


def replica_set_pod(name: str, **extra) -> dict:
    body = pod(name, labels={"app": "web", "pod-template-hash": "h1"}, **extra)
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-h1", "uid": "rs-uid", "controller": True}
    ]
    return body


REPLICA_SET = {"spec": {"selector": {"matchLabels": {"app": "web", "pod-template-hash": "h1"}}}}


def test_default_spreading_of_a_replica_set():
    listers = StaticListers(replica_sets={"default/web-h1": REPLICA_SET})
    nodes = [
        node_info(node("n1"), replica_set_pod("r1"), replica_set_pod("r2")),
        node_info(node("n2"), replica_set_pod("r3")),
        node_info(node("n3"), pod("unrelated", labels={"app": "db"})),
    ]
    scores = run_score(PodTopologySpread(listers), replica_set_pod("new"), nodes=nodes)
    # hostname: count * ln(3 + 2) + 2, zone: no node has it → scores 5, 4, 2 → 100*(5+2-s)/5
    assert scores == [40, 60, 100]


def test_default_spreading_by_service_and_stateful_set():
    service = {"spec": {"selector": {"app": "web"}}}
    headless_other = {"spec": {"selector": {"app": "db"}}}
    no_selector = {"spec": {}}
    listers = StaticListers(
        services_by_namespace={"default": [service, headless_other, no_selector]},
        stateful_sets={"default/web": {"spec": {"selector": {"matchLabels": {"app": "web"}}}}},
    )
    member = pod("web-0", labels={"app": "web"})
    member["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "ss", "controller": True}
    ]
    selector = default_selector(PodInfo(member), listers)
    assert selector.matches({"app": "web"}) and not selector.matches({"app": "db"})
    nodes = [node_info(node("n1"), pod("web-1", labels={"app": "web"})), node_info(node("n2"))]
    # ln(2 + 2) + 2 ≈ 3.4 → 3 against 2: 100 * (3 + 2 - 3) / 3
    assert run_score(PodTopologySpread(listers), member, nodes=nodes) == [66, 100]


def rc_pod(name: str, *, labels: dict[str, str]) -> dict:
    body = pod(name, labels=labels)
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "web", "uid": "rc", "controller": True}
    ]
    return body


def test_default_spreading_of_a_replication_controller():
    service = {"spec": {"selector": {"app": "web"}}}
    listers = StaticListers(
        services_by_namespace={"default": [service]},
        replication_controllers={"default/web": {"spec": {"selector": {"app": "web", "track": "stable"}}}},
    )
    labels = {"app": "web", "track": "stable"}
    member = rc_pod("new", labels=labels)
    # the label map is merged into the Services' labels (upstream's labels.Merge, then AsSelector)
    selector = default_selector(PodInfo(member), listers)
    assert selector.matches(labels) and not selector.matches({"app": "web", "track": "canary"})
    nodes = [
        node_info(node("n1"), rc_pod("web-1", labels=labels), rc_pod("web-2", labels=labels)),
        node_info(
            node("n2"),
            rc_pod("web-3", labels=labels),
            pod("canary", labels={"app": "web", "track": "canary"}),
        ),
        node_info(node("n3"), pod("unrelated", labels={"app": "db"})),
    ]
    # the canary pod is not counted: n2 scores like a node with one replica, as in the ReplicaSet case
    assert run_score(PodTopologySpread(listers), member, nodes=nodes) == [40, 60, 100]
    # an RC that is not (or no longer) cached, or without a selector, adds nothing beyond the Services
    for missing in (StaticListers(), StaticListers(replication_controllers={"default/web": {"spec": {}}})):
        assert default_selector(PodInfo(member), missing).is_empty


def test_no_workload_no_default_spreading():
    assert run_score(PodTopologySpread(StaticListers()), pod("lonely"), nodes=[node_info(node("n1"))]) is None
    # a controller the spreading does not know, or a missing / selector-less owner, adds nothing
    job_pod = pod("job-1")
    job_pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "controller": True}
    ]
    assert default_selector(PodInfo(job_pod), StaticListers()).is_empty
    assert default_selector(PodInfo(replica_set_pod("r")), StaticListers()).is_empty
    bad = StaticListers(replica_sets={"default/web-h1": {"spec": {"selector": {"matchExpressions": "x"}}}})
    assert default_selector(PodInfo(replica_set_pod("r")), bad).is_empty
    absent = StaticListers(replica_sets={"default/web-h1": {"spec": {}}})
    assert default_selector(PodInfo(replica_set_pod("r")), absent).is_empty


def test_zone_spreading_counts_pods_on_every_node():
    listers = StaticListers(replica_sets={"default/web-h1": REPLICA_SET})
    n1 = node_info(node("n1", labels={"topology.kubernetes.io/zone": "a"}), replica_set_pod("r1"))
    n2 = node_info(node("n2", labels={"topology.kubernetes.io/zone": "a"}))
    n3 = node_info(node("n3", labels={"topology.kubernetes.io/zone": "b"}))
    # n1 is full, so only n2 and n3 are feasible; zone a still counts n1's pod
    scores = run_score(
        PodTopologySpread(listers), replica_set_pod("new"), nodes=[n2, n3], all_nodes=[n1, n2, n3]
    )
    assert scores[1] > scores[0]


def test_soft_constraints_ignore_nodes_without_the_key():
    soft = [constraint("zone", when="ScheduleAnyway")]
    nodes = [zoned("n-a", "a", web("w1")), zoned("n-b", "b"), zoned("n-none", None)]
    # zone a: ln(2 + 2) ≈ 1.4 → 1, zone b: 0 → 100 * (1 + 0 - s) / 1; n-none lacks the key
    scores = run_score(
        PodTopologySpread(StaticListers()), web("new", topologySpreadConstraints=soft), nodes=nodes
    )
    assert scores == [0, 100, 0]
    hard_only = [constraint("zone")]
    assert (
        run_score(
            PodTopologySpread(StaticListers()), web("new", topologySpreadConstraints=hard_only), nodes=nodes
        )
        is None
    )
    empty = [zoned("n-a", "a"), zoned("n-b", "b")]
    assert run_score(
        PodTopologySpread(StaticListers()), web("new", topologySpreadConstraints=soft), nodes=empty
    ) == [100, 100]
