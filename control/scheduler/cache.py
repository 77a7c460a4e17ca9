"""The scheduler's cache: every node with the pods bound to it, and pods assumed but not yet bound.

Modelled on upstream's ``internal/cache``. A :class:`NodeInfo` aggregates what filters and
scores read about a node — its labels, effective taints, allocatable resources, and the sum of
the requests of the pods on it (exact and non-zero), their host ports and which of them carry
pod affinity — so no plugin ever walks a node's pods to add up requests.

Binding is asynchronous, so the scheduler **assumes** a pod onto its chosen node the moment it
decides: the pod counts against that node at once, and the next pod sees the capacity it took.
When the watch reports the pod bound, the assumed entry is replaced by the real one
(*confirmed*); if the binding fails, the scheduler **forgets** it and the capacity is returned.

Pods may be reported before their node (a kubelet's pods after a scheduler restart): they are
kept on a NodeInfo without a node object, which plugins never see, until the node appears. Only
nodes with an object are offered to plugins (:meth:`SchedulerCache.node_infos`, by name).

Everything runs on one event loop, so the cache is plain dicts; plugins read NodeInfos
directly during a (synchronous) scheduling cycle and must not change them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control.scheduler.podinfo import InvalidPodError, PodInfo
from control.scheduler.requests import InvalidResourcesError, Resources, node_allocatable
from control.scheduler.taints import Taint, effective_taints

log = logging.getLogger("kubelab.scheduler")


class AssumeError(Exception):
    """A pod cannot be assumed: its node is gone, or the pod is already placed."""


class NodeInfo:
    """A node and the pods on it (bound and assumed). Read-only outside this module."""

    __slots__ = (
        "allocatable",
        "allowed_pods",
        "labels",
        "name",
        "node",
        "non_zero_cpu",
        "non_zero_memory",
        "pods",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
        "with_affinity",
        "with_required_anti_affinity",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.node: Mapping[str, Any] | None = None
        self.labels: Mapping[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.allocatable = Resources()
        self.allowed_pods = 0
        self.pods: dict[str, PodInfo] = {}
        self.requested = Resources()
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        self.used_ports: Counter[tuple[str, str, int]] = Counter()
        self.with_affinity: dict[str, PodInfo] = {}
        self.with_required_anti_affinity: dict[str, PodInfo] = {}

    def set_node(self, node: Mapping[str, Any]) -> None:
        self.node = node
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        self.taints = effective_taints(node)
        self.unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        try:
            self.allocatable, self.allowed_pods = node_allocatable(node.get("status") or {})
        except InvalidResourcesError as exc:
            # The API server validates nodes, so this is a foreign or corrupt object: offer nothing.
            log.warning(
                "node %s: unreadable allocatable resources, treating them as zero: %s", self.name, exc
            )
            self.allocatable, self.allowed_pods = Resources(), 0

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self.requested.add(pod.requests)
        self.non_zero_cpu += pod.non_zero_cpu
        self.non_zero_memory += pod.non_zero_memory
        self.used_ports.update(pod.host_ports)
        if pod.has_pod_affinity:
            self.with_affinity[pod.key] = pod
        if pod.required_anti_affinity:
            self.with_required_anti_affinity[pod.key] = pod

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.requested.add(pod.requests, -1)
        self.non_zero_cpu -= pod.non_zero_cpu
        self.non_zero_memory -= pod.non_zero_memory
        for port in pod.host_ports:
            self.used_ports[port] -= 1
            if not self.used_ports[port]:
                del self.used_ports[port]
        self.with_affinity.pop(key, None)
        self.with_required_anti_affinity.pop(key, None)
        return pod

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


@dataclass(slots=True)
class _PodState:
    info: PodInfo
    node_name: str
    assumed: bool


def _minimal_pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """An assigned pod the API server let through but we cannot parse: count it, request nothing."""
    metadata = pod.get("metadata") or {}
    return PodInfo(
        {
            "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "labels") if k in metadata},
            "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName")},
        }
    )


class SchedulerCache:
    """Nodes and assigned pods as the scheduler must see them: bound, plus assumed."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._node_list: list[NodeInfo] | None = None

    # --- nodes ----------------------------------------------------------------------------------

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Add or update a node."""
        name = (node.get("metadata") or {}).get("name") or ""
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if info.node is None:
            self._node_list = None
        info.set_node(node)

    def remove_node(self, name: str) -> None:
        info = self._nodes.get(name)
        if info is None:
            return
        self._node_list = None
        if info.pods:
            info.node = None  # keep its pods' accounting until they go too
        else:
            del self._nodes[name]

    def node_infos(self) -> list[NodeInfo]:
        """Every node with an object, sorted by name. The list is shared: do not change it."""
        if self._node_list is None:
            self._node_list = sorted(
                (info for info in self._nodes.values() if info.node is not None), key=lambda info: info.name
            )
        return self._node_list

    def node_info(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    # --- pods -----------------------------------------------------------------------------------

    def set_pod(self, pod: Mapping[str, Any]) -> None:
        """Add or update an assigned pod (confirming it if it was assumed)."""
        try:
            info = PodInfo(pod)
        except InvalidPodError as exc:
            log.warning("counting pod without its requests and affinity: %s", exc)
            info = _minimal_pod_info(pod)
        self._drop(info.key)
        self._place(info, info.node_name, assumed=False)

    def remove_pod(self, key: str) -> None:
        """An assigned pod is gone (deleted or finished); also drops an assumed entry."""
        self._drop(key)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` before the binding is confirmed."""
        state = self._pods.get(pod.key)
        if state is not None:
            placed = "assumed" if state.assumed else "bound"
            raise AssumeError(f"pod {pod.key} is already {placed} on {state.node_name}")
        if self.node_info(node_name) is None:
            raise AssumeError(f"node {node_name} is not in the cache")
        self._place(pod, node_name, assumed=True)

    def forget(self, key: str) -> None:
        """Undo :meth:`assume` after a failed binding (no-op if the pod was confirmed meanwhile)."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            self._drop(key)

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def pod_node(self, key: str) -> str | None:
        """The node a pod is bound or assumed on, if any."""
        state = self._pods.get(key)
        return state.node_name if state is not None else None

    def _place(self, info: PodInfo, node_name: str, *, assumed: bool) -> None:
        node = self._nodes.get(node_name)
        if node is None:
            node = self._nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self._pods[info.key] = _PodState(info, node_name, assumed)

    def _drop(self, key: str) -> None:
        state = self._pods.pop(key, None)
        if state is None:
            return
        node = self._nodes.get(state.node_name)
        if node is None:
            return
        node.remove_pod(key)
        if node.node is None and not node.pods:
            del self._nodes[state.node_name]
