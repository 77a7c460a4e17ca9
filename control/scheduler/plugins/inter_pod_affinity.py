"""InterPodAffinity: required pod (anti-)affinity filters; preferred terms score.

A term names pods (selector + namespaces) and a ``topologyKey``; a *topology pair* is that key
with a node's value for it (``kubernetes.io/hostname=node-1``, ``zone=a``). Filter, in
upstream's order, counting over every pod on every node:

1. the pod's required **affinity**: the node must have every term's key, and each pair must hold
   at least one pod matching *all* the terms ("node(s) didn't match pod affinity rules",
   UnschedulableAndUnresolvable) — except for the first pod of a group whose terms match itself
   when no pod anywhere matches them yet, so self-affine replicas can start;
2. the pod's required **anti-affinity**: no pair of the node may hold a pod matching a term
   ("node(s) didn't match pod anti-affinity rules", Unschedulable);
3. **existing pods' anti-affinity**: no pod already placed may have a required anti-affinity
   term matching this pod in a pair the node belongs to ("node(s) didn't satisfy existing pods
   anti-affinity rules", Unschedulable).

Score, per topology pair: + weight for each existing pod matching one of the pod's preferred
affinity terms, - weight for its preferred anti-affinity terms, and symmetrically for existing
pods' terms matching this pod (their required affinity counts with weight 1, upstream's
``hardPodAffinityWeight``). A node scores the sum over its pairs, rescaled to 0..100 between the
lowest and the highest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    Listers,
    ScorePlugin,
)
from control.scheduler.podinfo import AffinityTerm, PodInfo
from control.scheduler.status import Code, Status

NAME = "InterPodAffinity"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

_AFFINITY = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_AFFINITY,), NAME)
_ANTI_AFFINITY = Status(Code.UNSCHEDULABLE, (ERR_REASON_ANTI_AFFINITY,), NAME)
_EXISTING_ANTI_AFFINITY = Status(Code.UNSCHEDULABLE, (ERR_REASON_EXISTING_ANTI_AFFINITY,), NAME)
_FILTER_STATE = NAME + "/filter"
_SCORE_STATE = NAME + "/score"

Pair = tuple[str, str]


class _NamespaceLabels:
    """Namespace labels looked up at most once per cycle, and only for terms with a namespaceSelector."""

    def __init__(self, listers: Listers) -> None:
        self._listers = listers
        self._seen: dict[str, Mapping[str, str]] = {}

    def term_matches(self, term: AffinityTerm, pod: PodInfo) -> bool:
        if not term.needs_namespace_labels or pod.namespace in term.namespaces:
            return term.matches(pod, {})
        labels = self._seen.get(pod.namespace)
        if labels is None:
            labels = self._seen[pod.namespace] = self._listers.namespace_labels(pod.namespace)
        return term.matches(pod, labels)


class InterPodAffinity(FilterPlugin, ScorePlugin):
    name = NAME

    def __init__(self, listers: Listers) -> None:
        self._listers = listers

    # --- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState) -> bool:
        pod, nodes = state.pod, state.nodes
        namespaces = _NamespaceLabels(self._listers)
        existing_anti: Counter[Pair] = Counter()
        for node in nodes:
            for other in node.with_required_anti_affinity.values():
                for term in other.required_anti_affinity:
                    if term.topology_key in node.labels and namespaces.term_matches(term, pod):
                        existing_anti[(term.topology_key, node.labels[term.topology_key])] += 1
        affinity: Counter[Pair] = Counter()
        anti: Counter[Pair] = Counter()
        if pod.required_affinity or pod.required_anti_affinity:
            for node in nodes:
                labels = node.labels
                for other in node.pods.values():
                    if pod.required_affinity and all(
                        namespaces.term_matches(t, other) for t in pod.required_affinity
                    ):
                        for term in pod.required_affinity:
                            if term.topology_key in labels:
                                affinity[(term.topology_key, labels[term.topology_key])] += 1
                    for term in pod.required_anti_affinity:
                        if term.topology_key in labels and namespaces.term_matches(term, other):
                            anti[(term.topology_key, labels[term.topology_key])] += 1
        if not (existing_anti or pod.required_affinity or pod.required_anti_affinity):
            return False
        matches_itself = bool(pod.required_affinity) and all(
            namespaces.term_matches(t, pod) for t in pod.required_affinity
        )
        state.data[_FILTER_STATE] = (existing_anti, affinity, anti, matches_itself)
        return True

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        pod = state.pod
        existing_anti, affinity, anti, matches_itself = state.data[_FILTER_STATE]
        labels = node.labels
        if pod.required_affinity:
            if any(term.topology_key not in labels for term in pod.required_affinity):
                return _AFFINITY
            found = all(affinity[(t.topology_key, labels[t.topology_key])] > 0 for t in pod.required_affinity)
            # The first pod of a self-affine group: nothing matches anywhere yet, but it matches itself.
            if not found and not (not affinity and matches_itself):
                return _AFFINITY
        if anti:
            for term in pod.required_anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and anti[(term.topology_key, value)] > 0:
                    return _ANTI_AFFINITY
        if existing_anti and any(existing_anti[pair] > 0 for pair in labels.items()):
            return _EXISTING_ANTI_AFFINITY
        return None

    # --- score ----------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        pod = state.pod
        namespaces = _NamespaceLabels(self._listers)
        own_preferences = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        scores: dict[str, Counter[str]] = {}

        def add(term: AffinityTerm, *, weight: int, target: PodInfo, node: NodeInfo) -> None:
            value = node.labels.get(term.topology_key)
            if value is not None and namespaces.term_matches(term, target):
                scores.setdefault(term.topology_key, Counter())[value] += weight

        for node in state.nodes:
            if not node.labels:
                continue
            # Unless this pod has preferences of its own, only pods with affinity terms can matter.
            others = node.pods if own_preferences else node.with_affinity
            for other in others.values():
                for term in pod.preferred_affinity:
                    add(term, weight=term.weight, target=other, node=node)
                for term in pod.preferred_anti_affinity:
                    add(term, weight=-term.weight, target=other, node=node)
                for term in other.required_affinity:
                    add(term, weight=HARD_POD_AFFINITY_WEIGHT, target=pod, node=node)
                for term in other.preferred_affinity:
                    add(term, weight=term.weight, target=pod, node=node)
                for term in other.preferred_anti_affinity:
                    add(term, weight=-term.weight, target=pod, node=node)
        if not scores:
            return False
        state.data[_SCORE_STATE] = scores
        return True

    def score(self, state: CycleState, node: NodeInfo) -> int:
        scores: dict[str, Counter[str]] = state.data[_SCORE_STATE]
        labels = node.labels
        return sum(by_value[labels[key]] for key, by_value in scores.items() if key in labels)

    def normalize(self, state: CycleState, scores: list[int]) -> None:
        lowest, highest = min(scores), max(scores)
        spread = highest - lowest
        for index, score in enumerate(scores):
            scores[index] = int(MAX_NODE_SCORE * (score - lowest) / spread) if spread > 0 else 0
