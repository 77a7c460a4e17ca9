"""The scheduler's parsed view of a pod: everything the plugins ask, computed once per version.

A pod object is a JSON dict; reading its requests, affinity terms and selectors from scratch on
every filter call (for every node, for every pod being placed) would dominate the cycle. As
upstream's ``framework.PodInfo`` does, :class:`PodInfo` parses a pod once — when the scheduler
picks it up, or when the cache learns of an assigned pod — into resources in integer units,
compiled selectors and affinity terms, host ports and tolerations.

Affinity terms follow ``framework.AffinityTerm``: a term applies to pods in its ``namespaces``,
or in namespaces matching its ``namespaceSelector``; with neither, to the pod's own namespace.
``matchLabelKeys``/``mismatchLabelKeys`` are folded into the selector using the pod's own labels
(``key in (value)`` / ``key notin (value)``), as kube-apiserver does on creation since 1.33;
doing it again here is harmless and covers servers that do not.

A pod whose spec cannot be read (a quantity or selector the API server would have refused)
raises :class:`InvalidPodError` with the field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control.scheduler.requests import InvalidResourcesError, Resources, pod_non_zero_requests, pod_requests
from control.scheduler.selectors import InvalidSelectorError, LabelSelector, NodeSelector, NodeSelectorTerm

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"


class InvalidPodError(ValueError):
    """The pod's spec cannot be interpreted; the message names the field."""


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A required pod (anti-)affinity term, or the term of a weighted preference."""

    namespaces: frozenset[str]
    namespace_selector: LabelSelector
    selector: LabelSelector
    topology_key: str
    weight: int = 1

    def matches(self, pod: PodInfo, namespace_labels: Mapping[str, str]) -> bool:
        """Whether ``pod`` (in a namespace labelled ``namespace_labels``) is one this term points at."""
        if pod.namespace not in self.namespaces and not self.namespace_selector.matches(namespace_labels):
            return False
        return self.selector.matches(pod.labels)

    @property
    def needs_namespace_labels(self) -> bool:
        return not self.namespace_selector.matches_nothing


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A ``topologySpreadConstraint`` with its selector compiled (``matchLabelKeys`` folded in)."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False


def _label_key_requirements(
    keys: Any, labels: Mapping[str, str], *, operator: str, path: str
) -> list[tuple[str, str, Any]]:
    if not keys:
        return []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidSelectorError(f"{path}: must be a list of label keys")
    return [(key, operator, frozenset((labels[key],))) for key in keys if key in labels]


def _affinity_term(
    raw: Any, *, pod_namespace: str, labels: Mapping[str, str], weight: int, path: str
) -> AffinityTerm:
    if not isinstance(raw, Mapping):
        raise InvalidSelectorError(f"{path}: must be an object")
    topology_key = raw.get("topologyKey")
    if not isinstance(topology_key, str) or not topology_key:
        raise InvalidSelectorError(f"{path}.topologyKey: Required value: can not be empty")
    selector = LabelSelector.parse(raw.get("labelSelector"), path=f"{path}.labelSelector")
    selector = selector.with_requirements(
        _label_key_requirements(
            raw.get("matchLabelKeys"), labels, operator="In", path=f"{path}.matchLabelKeys"
        )
        + _label_key_requirements(
            raw.get("mismatchLabelKeys"), labels, operator="NotIn", path=f"{path}.mismatchLabelKeys"
        )
    )
    namespaces = raw.get("namespaces") or []
    if not isinstance(namespaces, list):
        raise InvalidSelectorError(f"{path}.namespaces: must be a list")
    namespace_selector = LabelSelector.parse(raw.get("namespaceSelector"), path=f"{path}.namespaceSelector")
    if not namespaces and raw.get("namespaceSelector") is None:
        namespaces = [pod_namespace]
    return AffinityTerm(frozenset(namespaces), namespace_selector, selector, topology_key, weight)


def _terms(raw: Any, *, pod_namespace: str, labels: Mapping[str, str], path: str) -> tuple[AffinityTerm, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise InvalidSelectorError(f"{path}: must be a list")
    return tuple(
        _affinity_term(term, pod_namespace=pod_namespace, labels=labels, weight=1, path=f"{path}[{i}]")
        for i, term in enumerate(raw)
    )


def _weighted_terms(
    raw: Any, *, pod_namespace: str, labels: Mapping[str, str], path: str
) -> tuple[AffinityTerm, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise InvalidSelectorError(f"{path}: must be a list")
    terms = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("weight"), int):
            raise InvalidSelectorError(f"{path}[{i}].weight: Required value")
        if item["weight"] == 0:
            continue
        terms.append(
            _affinity_term(
                item.get("podAffinityTerm"),
                pod_namespace=pod_namespace,
                labels=labels,
                weight=item["weight"],
                path=f"{path}[{i}].podAffinityTerm",
            )
        )
    return tuple(terms)


def _preferred_node_terms(raw: Any, *, path: str) -> tuple[tuple[int, NodeSelectorTerm], ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise InvalidSelectorError(f"{path}: must be a list")
    terms = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("weight"), int):
            raise InvalidSelectorError(f"{path}[{i}].weight: Required value")
        term = NodeSelectorTerm(item.get("preference") or {}, path=f"{path}[{i}].preference")
        if item["weight"] and not term.is_empty:
            terms.append((item["weight"], term))
    return tuple(terms)


def _spread_constraints(raw: Any, labels: Mapping[str, str]) -> tuple[SpreadConstraint, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise InvalidSelectorError("spec.topologySpreadConstraints: must be a list")
    constraints = []
    for i, item in enumerate(raw):
        path = f"spec.topologySpreadConstraints[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSelectorError(f"{path}: must be an object")
        max_skew, key = item.get("maxSkew"), item.get("topologyKey")
        if not isinstance(max_skew, int) or max_skew < 1:
            raise InvalidSelectorError(
                f"{path}.maxSkew: Invalid value: {max_skew!r}: must be greater than zero"
            )
        if not isinstance(key, str) or not key:
            raise InvalidSelectorError(f"{path}.topologyKey: Required value: can not be empty")
        when = item.get("whenUnsatisfiable")
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise InvalidSelectorError(
                f'{path}.whenUnsatisfiable: Unsupported value: {when!r}: supported values: "DoNotSchedule", "ScheduleAnyway"'
            )
        min_domains = item.get("minDomains") or 1
        if not isinstance(min_domains, int) or min_domains < 1:
            raise InvalidSelectorError(
                f"{path}.minDomains: Invalid value: {min_domains!r}: must be greater than zero"
            )
        selector = LabelSelector.parse(item.get("labelSelector"), path=f"{path}.labelSelector")
        selector = selector.with_requirements(
            _label_key_requirements(
                item.get("matchLabelKeys"), labels, operator="In", path=f"{path}.matchLabelKeys"
            )
        )
        constraints.append(
            SpreadConstraint(
                max_skew=max_skew,
                topology_key=key,
                when_unsatisfiable=when,
                selector=selector,
                min_domains=min_domains,
                honor_node_affinity=(item.get("nodeAffinityPolicy") or "Honor") == "Honor",
                honor_node_taints=(item.get("nodeTaintsPolicy") or "Ignore") == "Honor",
            )
        )
    return tuple(constraints)


def _host_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    ports = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            host_port = port.get("hostPort") or 0
            if host_port > 0:
                ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", host_port))
    return tuple(ports)


class PodInfo:
    """A parsed pod. ``pod`` is the informer's object: shared, never to be mutated."""

    __slots__ = (
        "controller",
        "host_ports",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "node_selector",
        "non_zero_cpu",
        "non_zero_memory",
        "pod",
        "preemption_policy",
        "preferred_affinity",
        "preferred_anti_affinity",
        "preferred_node_affinity",
        "priority",
        "requests",
        "required_affinity",
        "required_anti_affinity",
        "required_node_affinity",
        "spread_constraints",
        "terminating",
        "tolerations",
        "uid",
    )

    def __init__(self, pod: Mapping[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace: str = metadata.get("namespace") or ""
        self.name: str = metadata.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = metadata.get("uid") or ""
        self.labels: Mapping[str, str] = metadata.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.priority: int = spec.get("priority") or 0
        self.terminating = bool(metadata.get("deletionTimestamp"))
        self.controller: Mapping[str, Any] | None = next(
            (ref for ref in metadata.get("ownerReferences") or () if ref.get("controller")), None
        )
        self.preemption_policy: str = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        try:
            self.tolerations: tuple[Mapping[str, Any], ...] = tuple(spec.get("tolerations") or ())
            self.host_ports = _host_ports(spec)
            self.requests: Resources = pod_requests(spec)
            self.non_zero_cpu, self.non_zero_memory = pod_non_zero_requests(spec)
            node_selector = spec.get("nodeSelector") or {}
            if not isinstance(node_selector, Mapping):
                raise InvalidSelectorError("spec.nodeSelector: must be a map of strings")
            self.node_selector: Mapping[str, str] = node_selector
            affinity = spec.get("affinity") or {}
            node_affinity = affinity.get("nodeAffinity") or {}
            required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
            path = "spec.affinity.nodeAffinity"
            self.required_node_affinity = (
                None
                if required is None
                else NodeSelector(required, path=f"{path}.requiredDuringSchedulingIgnoredDuringExecution")
            )
            self.preferred_node_affinity = _preferred_node_terms(
                node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"),
                path=f"{path}.preferredDuringSchedulingIgnoredDuringExecution",
            )
            pod_affinity = affinity.get("podAffinity") or {}
            anti_affinity = affinity.get("podAntiAffinity") or {}
            ns, labels = self.namespace, self.labels
            self.required_affinity = _terms(
                pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"),
                pod_namespace=ns,
                labels=labels,
                path="spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            )
            self.required_anti_affinity = _terms(
                anti_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"),
                pod_namespace=ns,
                labels=labels,
                path="spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            )
            self.preferred_affinity = _weighted_terms(
                pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"),
                pod_namespace=ns,
                labels=labels,
                path="spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution",
            )
            self.preferred_anti_affinity = _weighted_terms(
                anti_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"),
                pod_namespace=ns,
                labels=labels,
                path="spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution",
            )
            self.spread_constraints = _spread_constraints(spec.get("topologySpreadConstraints"), labels)
        except (InvalidResourcesError, InvalidSelectorError, AttributeError, TypeError) as exc:
            raise InvalidPodError(f"pod {self.key}: {exc}") from exc

    @property
    def has_pod_affinity(self) -> bool:
        """Any pod affinity or anti-affinity, required or preferred (upstream's PodsWithAffinity)."""
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )

    def __repr__(self) -> str:
        return f"PodInfo({self.key}{' on ' + self.node_name if self.node_name else ''})"
