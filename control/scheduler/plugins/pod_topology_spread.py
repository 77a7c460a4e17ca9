"""PodTopologySpread: keep matching pods evenly spread over topology domains (nodes, zones, ...).

Filter, for the pod's ``whenUnsatisfiable: DoNotSchedule`` constraints: counting the pods that
match the constraint's selector (same namespace, not terminating) in each domain — the value of
the node label ``topologyKey`` — over the nodes the constraint considers (by default those the
pod's node affinity/selector allows; with ``nodeTaintsPolicy: Honor`` also only the nodes whose
taints the pod tolerates), placing the pod on a node must keep
``count(domain) + 1 - min(count) <= maxSkew``. The minimum counts as 0 while fewer domains than
``minDomains`` exist. A node without the label is UnschedulableAndUnresolvable.

Score, for ``ScheduleAnyway`` constraints — or, when the pod has no constraints at all, the
cluster defaults (``kubernetes.io/hostname`` with maxSkew 3 and ``topology.kubernetes.io/zone``
with maxSkew 5, ScheduleAnyway) applied to the pods of the same Services, ReplicationController,
ReplicaSet or StatefulSet: a node scores ``Σ count(domain) * log(domains + 2) + (maxSkew - 1)``
and fewer is better (``100 * (max + min - score) / max``). This default is what spreads a
Deployment's replicas over the nodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    Listers,
    ScorePlugin,
)
from control.scheduler.plugins.node_affinity import matches_required
from control.scheduler.podinfo import HOSTNAME_LABEL, ZONE_LABEL, PodInfo, SpreadConstraint
from control.scheduler.selectors import InvalidSelectorError, LabelSelector
from control.scheduler.status import Code, Status
from control.scheduler.taints import NO_EXECUTE, NO_SCHEDULE, first_untolerated

NAME = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"

_NOT_MATCH = Status(Code.UNSCHEDULABLE, (ERR_REASON_CONSTRAINTS_NOT_MATCH,), NAME)
_LABEL_MISSING = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_NODE_LABEL_NOT_MATCH,), NAME)
_TAINT_EFFECTS = frozenset({NO_SCHEDULE, NO_EXECUTE})
_FILTER_STATE = NAME + "/filter"
_SCORE_STATE = NAME + "/score"


def count_matching(node: NodeInfo, selector: LabelSelector, *, namespace: str) -> int:
    """Pods on ``node`` in ``namespace``, not terminating, matching ``selector``."""
    return sum(
        1
        for other in node.pods.values()
        if other.namespace == namespace and not other.terminating and selector.matches(other.labels)
    )


def _has_keys(node: NodeInfo, constraints: Sequence[SpreadConstraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


def _counts_node(constraint: SpreadConstraint, *, pod: PodInfo, node: NodeInfo) -> bool:
    """The node inclusion policies: whether ``node`` takes part in ``constraint``'s counting."""
    if constraint.honor_node_affinity and not matches_required(pod, node):
        return False
    return not (
        constraint.honor_node_taints
        and first_untolerated(node.taints, pod.tolerations, effects=_TAINT_EFFECTS)
    )


def default_selector(pod: PodInfo, listers: Listers) -> LabelSelector:
    """The pods counted as "the same workload" as ``pod``: its Services' and controller's selectors,
    ANDed (upstream's ``helper.DefaultSelector``; a ReplicationController's label map is merged into
    the Services' labels, an apps/v1 owner's LabelSelector added as requirements)."""
    merged: dict[str, str] = {}
    for service in listers.services(pod.namespace):
        selector = (service.get("spec") or {}).get("selector")
        if selector and all(pod.labels.get(key) == value for key, value in selector.items()):
            merged.update(selector)
    owner = pod.controller
    if owner is not None and owner.get("apiVersion") == "v1" and owner.get("kind") == "ReplicationController":
        rc = listers.replication_controller(pod.namespace, owner.get("name") or "")
        rc_selector = (rc.get("spec") or {}).get("selector") if rc is not None else None
        if isinstance(rc_selector, Mapping):
            merged.update(rc_selector)
    selector = LabelSelector.from_labels(merged)
    if owner is None or not str(owner.get("apiVersion", "")).startswith("apps/"):
        return selector
    kind, name = owner.get("kind"), owner.get("name") or ""
    workload: Mapping[str, Any] | None = None
    if kind == "ReplicaSet":
        workload = listers.replica_set(pod.namespace, name)
    elif kind == "StatefulSet":
        workload = listers.stateful_set(pod.namespace, name)
    if workload is None:
        return selector
    try:
        owner_selector = LabelSelector.parse(
            (workload.get("spec") or {}).get("selector"), path="spec.selector"
        )
    except InvalidSelectorError:
        return selector
    if owner_selector.matches_nothing:
        return selector
    return selector.with_requirements(owner_selector.requirements)


class _ScoreState:
    __slots__ = ("constraints", "counts", "ignored", "nodes", "weights")

    def __init__(self, constraints: Sequence[SpreadConstraint], nodes: Sequence[NodeInfo]) -> None:
        self.constraints = constraints
        self.nodes = nodes
        self.ignored: set[str] = set()
        self.counts: list[dict[str, int]] = [{} for _ in constraints]
        self.weights: list[float] = []


class PodTopologySpread(FilterPlugin, ScorePlugin):
    name = NAME

    def __init__(self, listers: Listers) -> None:
        self._listers = listers

    # --- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState) -> bool:
        pod, nodes = state.pod, state.nodes
        constraints = [c for c in pod.spread_constraints if c.when_unsatisfiable == DO_NOT_SCHEDULE]
        if not constraints:
            return False
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for node in nodes:
            if not _has_keys(node, constraints):
                continue
            for index, constraint in enumerate(constraints):
                if not _counts_node(constraint, pod=pod, node=node):
                    continue
                value = node.labels[constraint.topology_key]
                counts[index][value] = counts[index].get(value, 0) + count_matching(
                    node, constraint.selector, namespace=pod.namespace
                )
        minimums = [
            0 if len(domain_counts) < constraint.min_domains else min(domain_counts.values())
            for constraint, domain_counts in zip(constraints, counts, strict=True)
        ]
        state.data[_FILTER_STATE] = (constraints, counts, minimums)
        return True

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        pod = state.pod
        constraints, counts, minimums = state.data[_FILTER_STATE]
        for constraint, domain_counts, minimum in zip(constraints, counts, minimums, strict=True):
            value = node.labels.get(constraint.topology_key)
            if value is None:
                return _LABEL_MISSING
            self_match = 1 if constraint.selector.matches(pod.labels) else 0
            if domain_counts.get(value, 0) + self_match - minimum > constraint.max_skew:
                return _NOT_MATCH
        return None

    # --- score ----------------------------------------------------------------------------------

    def _soft_constraints(self, pod: PodInfo) -> list[SpreadConstraint]:
        if pod.spread_constraints:
            return [c for c in pod.spread_constraints if c.when_unsatisfiable == SCHEDULE_ANYWAY]
        selector = default_selector(pod, self._listers)
        if selector.is_empty:
            return []
        return [
            SpreadConstraint(
                max_skew=3, topology_key=HOSTNAME_LABEL, when_unsatisfiable=SCHEDULE_ANYWAY, selector=selector
            ),
            SpreadConstraint(
                max_skew=5, topology_key=ZONE_LABEL, when_unsatisfiable=SCHEDULE_ANYWAY, selector=selector
            ),
        ]

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        pod = state.pod
        constraints = self._soft_constraints(pod)
        if not constraints:
            return False
        # Only the pod's own constraints need every key on a node; the defaults let nodes
        # without a zone label still spread by hostname.
        require_all = bool(pod.spread_constraints)
        scoring = _ScoreState(constraints, nodes)
        for node in nodes:
            if require_all and not _has_keys(node, constraints):
                scoring.ignored.add(node.name)
                continue
            for index, constraint in enumerate(constraints):
                if constraint.topology_key != HOSTNAME_LABEL:
                    scoring.counts[index].setdefault(node.labels.get(constraint.topology_key, ""), 0)
        for index, constraint in enumerate(constraints):
            size = (
                len(nodes) - len(scoring.ignored)
                if constraint.topology_key == HOSTNAME_LABEL
                else len(scoring.counts[index])
            )
            scoring.weights.append(math.log(size + 2))
        for node in state.nodes:
            if require_all and not _has_keys(node, constraints):
                continue
            for index, constraint in enumerate(constraints):
                if constraint.topology_key == HOSTNAME_LABEL or not _counts_node(
                    constraint, pod=pod, node=node
                ):
                    continue
                domain_counts = scoring.counts[index]
                value = node.labels.get(constraint.topology_key, "")
                if value in domain_counts:
                    domain_counts[value] += count_matching(node, constraint.selector, namespace=pod.namespace)
        state.data[_SCORE_STATE] = scoring
        return True

    def score(self, state: CycleState, node: NodeInfo) -> int:
        pod = state.pod
        scoring: _ScoreState = state.data[_SCORE_STATE]
        if node.name in scoring.ignored:
            return 0
        total = 0.0
        for index, constraint in enumerate(scoring.constraints):
            value = node.labels.get(constraint.topology_key)
            if value is None:
                continue
            if constraint.topology_key == HOSTNAME_LABEL:
                count = count_matching(node, constraint.selector, namespace=pod.namespace)
            else:
                count = scoring.counts[index][value]
            total += count * scoring.weights[index] + (constraint.max_skew - 1)
        return math.floor(total + 0.5)

    def normalize(self, state: CycleState, scores: list[int]) -> None:
        scoring: _ScoreState = state.data[_SCORE_STATE]
        nodes = scoring.nodes
        counted = [
            score for node, score in zip(nodes, scores, strict=True) if node.name not in scoring.ignored
        ]
        lowest, highest = min(counted, default=0), max(counted, default=0)
        for index, node in enumerate(nodes):
            if node.name in scoring.ignored:
                scores[index] = 0
            elif highest == 0:
                scores[index] = MAX_NODE_SCORE
            else:
                scores[index] = MAX_NODE_SCORE * (highest + lowest - scores[index]) // highest
