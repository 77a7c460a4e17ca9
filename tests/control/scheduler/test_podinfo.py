"""A pod parsed for the plugins: affinity terms and their namespaces, label keys, spread constraints, errors."""

from __future__ import annotations

import pytest

from control.scheduler.podinfo import InvalidPodError, PodInfo
from tests.control.scheduler.support import affinity, pod


def test_basic_fields():
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": True}
    raw = pod("web", cpu="250m", labels={"app": "web"}, priority=10, preemptionPolicy="Never")
    raw["metadata"]["ownerReferences"] = [{"kind": "Other", "name": "x"}, owner]
    raw["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
        {"containerPort": 9090},
    ]
    info = PodInfo(raw)
    assert (info.key, info.priority, info.preemption_policy) == ("default/web", 10, "Never")
    assert info.controller == owner
    assert info.requests.milli_cpu == 250
    assert info.host_ports == (("0.0.0.0", "TCP", 8080), ("127.0.0.1", "UDP", 53))
    assert not info.has_pod_affinity and not info.terminating


def test_affinity_term_namespaces():
    raw = pod(
        "p",
        namespace="team",
        affinity={
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "zone"},
                    {"labelSelector": {}, "topologyKey": "zone", "namespaces": ["x", "y"]},
                    {
                        "labelSelector": {},
                        "topologyKey": "zone",
                        "namespaceSelector": {"matchLabels": {"env": "prod"}},
                    },
                    {"labelSelector": {}, "topologyKey": "zone", "namespaceSelector": {}},
                ]
            }
        },
    )
    own, listed, selected, everywhere = PodInfo(raw).required_affinity
    other = PodInfo(pod("o", namespace="x", labels={"a": "b"}))
    assert own.namespaces == {"team"} and not own.matches(other, {})
    assert listed.matches(other, {})
    assert not selected.matches(other, {}) and selected.matches(other, {"env": "prod"})
    assert everywhere.matches(other, {}) and everywhere.needs_namespace_labels
    assert not own.needs_namespace_labels


def test_match_label_keys_are_folded_into_the_selector():
    term = {
        "labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname",
        "matchLabelKeys": ["pod-template-hash", "absent"],
        "mismatchLabelKeys": ["tenant"],
    }
    info = PodInfo(
        pod(
            "p",
            labels={"app": "web", "pod-template-hash": "abc", "tenant": "t1"},
            affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
        )
    )
    (parsed,) = info.required_anti_affinity
    assert parsed.selector.matches({"app": "web", "pod-template-hash": "abc", "tenant": "t2"})
    assert not parsed.selector.matches({"app": "web", "pod-template-hash": "old"})
    assert not parsed.selector.matches({"app": "web", "pod-template-hash": "abc", "tenant": "t1"})


def test_weighted_terms_skip_zero_weights():
    raw = pod(
        "p",
        affinity={
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "podAffinityTerm": {"labelSelector": {}, "topologyKey": "k"}},
                    {"weight": 5, "podAffinityTerm": {"labelSelector": {}, "topologyKey": "k"}},
                ]
            },
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 3, "preference": {}},
                    {"weight": 4, "preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}},
                ]
            },
        },
    )
    info = PodInfo(raw)
    assert [t.weight for t in info.preferred_affinity] == [5]
    assert [w for w, _ in info.preferred_node_affinity] == [4]
    assert info.has_pod_affinity


def test_spread_constraints_defaults_and_label_keys():
    raw = pod(
        "p",
        labels={"app": "web", "hash": "1"},
        topologySpreadConstraints=[
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
                "matchLabelKeys": ["hash"],
            },
            {
                "maxSkew": 2,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {},
                "minDomains": 3,
                "nodeAffinityPolicy": "Ignore",
                "nodeTaintsPolicy": "Honor",
            },
        ],
    )
    hard, soft = PodInfo(raw).spread_constraints
    assert (hard.max_skew, hard.min_domains, hard.honor_node_affinity, hard.honor_node_taints) == (
        1,
        1,
        True,
        False,
    )
    assert hard.selector.matches({"app": "web", "hash": "1"}) and not hard.selector.matches(
        {"app": "web", "hash": "2"}
    )
    assert (soft.min_domains, soft.honor_node_affinity, soft.honor_node_taints) == (3, False, True)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"containers": [{"name": "c", "resources": {"requests": {"cpu": "x"}}}]},
            r"spec.containers\[0\].resources",
        ),
        ({"containers": [], "nodeSelector": ["a"]}, "spec.nodeSelector"),
        ({"containers": [], "affinity": affinity({"a": "b"}, topology_key="")}, "topologyKey"),
        (
            {
                "containers": [],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Near"}]}]
                        }
                    }
                },
            },
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        ),
        (
            {
                "containers": [],
                "topologySpreadConstraints": [
                    {"maxSkew": 0, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}
                ],
            },
            "maxSkew",
        ),
        (
            {
                "containers": [],
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "Maybe"}
                ],
            },
            "whenUnsatisfiable",
        ),
        (
            {
                "containers": [],
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "k", "minDomains": -1, "whenUnsatisfiable": "DoNotSchedule"}
                ],
            },
            "minDomains",
        ),
        (
            {
                "containers": [],
                "affinity": {
                    "podAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"podAffinityTerm": {"topologyKey": "k"}}
                        ]
                    }
                },
            },
            "weight",
        ),
        ({"containers": ["not a container"]}, "pod default/bad"),
    ],
)
def test_unreadable_specs_name_the_field(spec, field):
    raw = pod("bad")
    raw["spec"] = spec
    with pytest.raises(InvalidPodError, match=field):
        PodInfo(raw)
