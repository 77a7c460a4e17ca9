"""Builders for scheduler tests: nodes, pods, node infos and static listers, as plain API dicts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Status

_uids = itertools.count(1)


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Mapping[str, Any]] = (),
    ready: str | None = "True",
    unschedulable: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Node with allocatable resources and (unless ``ready`` is None) a Ready condition."""
    status: dict[str, Any] = {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": status,
    }


def pod(
    name: str,
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    labels: Mapping[str, str] | None = None,
    node_name: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Pod with one container requesting ``cpu``/``memory``; extra keyword arguments go into spec."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "main", "image": "kubelab"}
    if requests:
        container["resources"] = {"requests": requests}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{next(_uids)}",
            "labels": dict(labels or {}),
        },
        "spec": {"containers": [container], "schedulerName": "default-scheduler", **spec},
    }
    if node_name:
        body["spec"]["nodeName"] = node_name
    return body


def node_info(node_obj: Mapping[str, Any], *pods: Mapping[str, Any]) -> NodeInfo:
    """A NodeInfo for ``node_obj`` holding ``pods`` (their nodeName is not consulted)."""
    info = NodeInfo(node_obj["metadata"]["name"])
    info.set_node(node_obj)
    for p in pods:
        info.add_pod(PodInfo(p))
    return info


def anti_affinity(
    labels: Mapping[str, str], *, topology_key: str = "kubernetes.io/hostname"
) -> dict[str, Any]:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": topology_key}
            ]
        }
    }


def affinity(labels: Mapping[str, str], *, topology_key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": topology_key}
            ]
        }
    }


@dataclass
class StaticListers:
    """Listers over fixed objects (the informer-backed ones are exercised by the integration tests)."""

    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    services_by_namespace: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replication_controllers: dict[str, dict[str, Any]] = field(default_factory=dict)
    replica_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    stateful_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # by namespace/name
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    storage_classes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self.namespaces.get(namespace, {})

    def services(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self.services_by_namespace.get(namespace, [])

    def replication_controller(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.replication_controllers.get(f"{namespace}/{name}")

    def replica_set(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.replica_sets.get(f"{namespace}/{name}")

    def stateful_set(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.stateful_sets.get(f"{namespace}/{name}")

    def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.claims.get(f"{namespace}/{name}")

    def volume(self, name: str) -> Mapping[str, Any] | None:
        return self.volumes.get(name)

    def persistent_volumes(self) -> Iterable[Mapping[str, Any]]:
        return self.volumes.values()

    def storage_class(self, name: str) -> Mapping[str, Any] | None:
        return self.storage_classes.get(name)


def run_filter(
    plugin: Any, pod_obj: Mapping[str, Any], *, nodes: list[NodeInfo]
) -> dict[str, tuple[str, ...] | None]:
    """Each node's verdict from one filter plugin: its reasons, or None if the pod fits."""
    state = CycleState(PodInfo(pod_obj), nodes)
    verdict = plugin.pre_filter(state)
    if isinstance(verdict, Status):  # the pod is ruled out everywhere
        return dict.fromkeys((n.name for n in nodes), verdict.reasons)
    if not verdict:
        return dict.fromkeys((n.name for n in nodes), None)
    verdicts = {}
    for n in nodes:
        status = plugin.filter(state, n)
        verdicts[n.name] = None if status is None else status.reasons
    return verdicts


def run_score(
    plugin: Any, pod_obj: Mapping[str, Any], *, nodes: list[NodeInfo], all_nodes: list[NodeInfo] | None = None
) -> list[int] | None:
    """One score plugin's normalised scores for ``nodes`` (None if it skips this pod)."""
    state = CycleState(PodInfo(pod_obj), all_nodes if all_nodes is not None else nodes)
    if not plugin.pre_score(state, nodes):
        return None
    scores = [plugin.score(state, n) for n in nodes]
    plugin.normalize(state, scores)
    return scores
