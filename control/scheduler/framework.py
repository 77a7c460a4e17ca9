"""The scheduling framework: filter every node, score the feasible ones, pick the best.

Upstream's framework runs plugins at extension points; kubelab keeps the ones a scheduling
cycle needs and the same contract for each:

- **PreFilter** (:meth:`FilterPlugin.pre_filter`) computes per-cycle data once (affinity and
  spread counts over the whole cluster) into the :class:`CycleState` and says whether the
  plugin has anything to check for this pod (upstream's ``Skip``) — or returns a
  :class:`Status` that rules the pod out on every node at once (VolumeBinding's missing claim):
  then no filter runs and the message carries that status's reasons instead of a per-node count.
- **Filter** (:meth:`FilterPlugin.filter`) decides one node: ``None`` if the pod fits, else a
  :class:`Status` saying why. Plugins run in their configured order and a node's first failure
  is its verdict, so each node contributes one plugin's reasons to the failure message.
- **PreScore / Score / NormalizeScore** (:class:`ScorePlugin`) rate each feasible node 0..100;
  the framework multiplies by the plugin's weight and sums. With one feasible node there is
  nothing to rate and scoring is skipped, as upstream does.
- **Select**: the highest total wins; ties are broken at random, so equal nodes share load.
- **Reserve / PreBind / Unreserve** (:class:`BindingPlugin`): once the node is chosen, a plugin
  notes what the binding needs (in the cycle, synchronously); PreBind then does it — API writes,
  waiting for other controllers — in the binding task, before ``pods/binding``; Unreserve undoes
  the reservation when the binding fails. VolumeBinding is the one user.

When no node fits, :class:`FitError` builds upstream's message — ``0/3 nodes are available:
1 Insufficient cpu, 2 node(s) had untolerated taint(s).`` (reason counts sorted as strings), or
after a PreFilter rejection ``0/3 nodes are available: persistentvolumeclaim "data" not found.`` —
followed by what the DefaultPreemption post-filter would say (see :mod:`.preemption`).

A cycle is synchronous: plugins read the cache's NodeInfos directly and nothing else runs on
the event loop until the decision is made, so no snapshot copy is needed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from control.scheduler.cache import NodeInfo
from control.scheduler.podinfo import PodInfo
from control.scheduler.preemption import post_filter_message
from control.scheduler.status import Status

MAX_NODE_SCORE = 100


class CycleState:
    """One scheduling cycle: the pod, every node, and the plugins' scratch data (keyed by plugin name).

    Thrown away when the cycle ends. ``nodes`` are all the nodes, also for score plugins, which
    count pods on nodes that did not pass the filters.
    """

    __slots__ = ("data", "nodes", "pod")

    def __init__(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        self.pod = pod
        self.nodes = nodes
        self.data: dict[str, Any] = {}


class Listers(Protocol):
    """The cluster objects plugins look up besides nodes and pods (informer caches in production)."""

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def services(self, namespace: str) -> Iterable[Mapping[str, Any]]: ...

    def replication_controller(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def replica_set(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def stateful_set(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def volume(self, name: str) -> Mapping[str, Any] | None: ...

    def persistent_volumes(self) -> Iterable[Mapping[str, Any]]: ...

    def storage_class(self, name: str) -> Mapping[str, Any] | None: ...


class FilterPlugin:
    """A plugin that rules nodes out. Subclasses set ``name`` and implement :meth:`filter`."""

    name = ""

    def pre_filter(self, state: CycleState) -> bool | Status:
        """Prepare ``state.data`` for :meth:`filter`; False when there is nothing to check for this pod,
        a :class:`Status` when the pod fits no node whatever the node (UnschedulableAndUnresolvable)."""
        return True

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        raise NotImplementedError


class BindingPlugin:
    """A plugin with work between choosing the node and binding the pod (upstream's Reserve,
    PreBind and Unreserve). Subclasses set ``name``; all three default to doing nothing."""

    name = ""

    def reserve(self, state: CycleState, node: str) -> None:
        """Note in ``state.data`` what binding to ``node`` needs; runs inside the scheduling cycle."""

    async def pre_bind(self, state: CycleState, node: str) -> None:
        """Do it before ``pods/binding``; raise :class:`PreBindError` to fail the binding."""

    def unreserve(self, state: CycleState, node: str) -> None:
        """Undo :meth:`reserve` after a failed binding."""


class PreBindError(Exception):
    """A PreBind plugin could not prepare the binding; the pod is retried after a backoff."""


class ScorePlugin:
    """A plugin that rates feasible nodes 0..100. Subclasses set ``name`` and implement :meth:`score`."""

    name = ""

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        """Prepare ``state.data`` for :meth:`score` (``nodes``: the feasible ones); False to skip."""
        return True

    def score(self, state: CycleState, node: NodeInfo) -> int:
        raise NotImplementedError

    def normalize(self, state: CycleState, scores: list[int]) -> None:
        """Rescale ``scores`` (aligned with the nodes given to :meth:`pre_score`) in place."""


def default_normalize(scores: list[int], *, reverse: bool = False) -> None:
    """Upstream's ``DefaultNormalizeScore``: scale so the largest becomes 100 (or, reversed, 0)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for index, score in enumerate(scores):
        scaled = MAX_NODE_SCORE * score // highest
        scores[index] = MAX_NODE_SCORE - scaled if reverse else scaled


class Unschedulable(Exception):
    """No node can take the pod. ``plugins`` are the filters that said no (empty: any change may help)."""

    def __init__(self, message: str, *, plugins: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.message = message
        self.plugins = plugins


class NoNodesAvailable(Unschedulable):
    def __init__(self) -> None:
        super().__init__("no nodes available to schedule pods")


class FitError(Unschedulable):
    """Every node was filtered out; ``statuses`` says why, node by node."""

    def __init__(
        self,
        *,
        pod: PodInfo,
        num_nodes: int,
        statuses: Mapping[str, Status],
        pre_filter: Status | None = None,
    ) -> None:
        self.pod = pod
        self.num_nodes = num_nodes
        self.statuses = statuses
        message = f"0/{num_nodes} nodes are available:"
        if pre_filter is not None:
            message += " " + ", ".join(pre_filter.reasons) + "."
        else:
            histogram = Counter(reason for status in statuses.values() for reason in status.reasons)
            if histogram:
                message += (
                    " " + ", ".join(sorted(f"{count} {reason}" for reason, count in histogram.items())) + "."
                )
        message += " " + post_filter_message(pod=pod, statuses=statuses, num_nodes=num_nodes)
        super().__init__(message, plugins=frozenset(status.plugin for status in statuses.values()))


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """The chosen node, how many nodes were looked at and fit, and the cycle (for Reserve/PreBind)."""

    node: str
    evaluated: int
    feasible: int
    state: CycleState = field(compare=False, repr=False)


class Framework:
    """Filter and score plugins in order, with their weights."""

    def __init__(
        self,
        *,
        filters: Sequence[FilterPlugin],
        scorers: Sequence[tuple[ScorePlugin, int]],
        binders: Sequence[BindingPlugin] = (),
        rng: random.Random | None = None,
    ) -> None:
        for plugin, weight in scorers:
            if weight <= 0:
                raise ValueError(f"score plugin {plugin.name}: weight must be positive, got {weight}")
        self.filters = tuple(filters)
        self.scorers = tuple(scorers)
        self.binders = tuple(binders)
        self._rng = rng or random.Random()

    def schedule(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> ScheduleResult:
        """The node for ``pod``, or :class:`Unschedulable`."""
        if not nodes:
            raise NoNodesAvailable()
        state = CycleState(pod, nodes)
        active: list[FilterPlugin] = []
        for plugin in self.filters:
            verdict = plugin.pre_filter(state)
            if isinstance(verdict, Status):
                statuses = {node.name: verdict for node in nodes}
                raise FitError(pod=pod, num_nodes=len(nodes), statuses=statuses, pre_filter=verdict)
            if verdict:
                active.append(plugin)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        for node in nodes:
            for plugin in active:
                status = plugin.filter(state, node)
                if status is not None:
                    statuses[node.name] = status
                    break
            else:
                feasible.append(node)
        if not feasible:
            raise FitError(pod=pod, num_nodes=len(nodes), statuses=statuses)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, len(nodes), 1, state)
        totals = self.prioritize(state, feasible)
        best = max(totals)
        winners = [node for node, total in zip(feasible, totals, strict=True) if total == best]
        chosen = winners[0] if len(winners) == 1 else self._rng.choice(winners)
        return ScheduleResult(chosen.name, len(nodes), len(feasible), state)

    def reserve(self, result: ScheduleResult) -> None:
        for plugin in self.binders:
            plugin.reserve(result.state, result.node)

    async def pre_bind(self, result: ScheduleResult) -> None:
        """Run every PreBind in order; :class:`PreBindError` says ``running PreBind plugin "X": ...``."""
        for plugin in self.binders:
            try:
                await plugin.pre_bind(result.state, result.node)
            except PreBindError as exc:
                raise PreBindError(f'running PreBind plugin "{plugin.name}": {exc}') from exc

    def unreserve(self, result: ScheduleResult) -> None:
        for plugin in reversed(self.binders):
            plugin.unreserve(result.state, result.node)

    def prioritize(self, state: CycleState, nodes: Sequence[NodeInfo]) -> list[int]:
        """Weighted total score of each of ``nodes`` (all of which passed the filters)."""
        totals = [0] * len(nodes)
        for plugin, weight in self.scorers:
            if not plugin.pre_score(state, nodes):
                continue
            scores = [plugin.score(state, node) for node in nodes]
            plugin.normalize(state, scores)
            for index, score in enumerate(scores):
                totals[index] += score * weight
        return totals
