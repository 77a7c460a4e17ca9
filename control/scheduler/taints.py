"""Taints, tolerations, and the taints a node implies by not being Ready.

Matching is ``control.resources.tolerations`` (upstream's ``v1.Toleration.ToleratesTaint``),
which the node lifecycle controller shares.

A node that is not Ready must not get new pods. Upstream that is the node lifecycle
controller's job (TaintNodesByCondition): it taints the node ``node.kubernetes.io/not-ready``
(Ready is False) or ``node.kubernetes.io/unreachable`` (Ready is Unknown) with effect
NoSchedule, and the TaintToleration filter does the rest. The scheduler applies those same
taints itself when the node does not carry them yet (a node with no Ready condition counts as
not ready), so a NotReady node is filtered at once, with the same message and the same escape
hatch — a pod tolerating the taint may still land there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from control.resources.tolerations import Taint, Toleration, tolerated

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


def first_untolerated(
    taints: Iterable[Taint], tolerations: Sequence[Toleration], *, effects: frozenset[str]
) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None


def _ready_status(node: Mapping[str, Any]) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status")
    return None


def effective_taints(node: Mapping[str, Any]) -> tuple[Taint, ...]:
    """``spec.taints`` plus the NoSchedule taint its Ready condition implies, if not already there."""
    taints = tuple(t for t in (node.get("spec") or {}).get("taints") or () if isinstance(t, Mapping))
    ready = _ready_status(node)
    if ready == "True":
        return taints
    key = UNREACHABLE if ready == "Unknown" else NOT_READY
    if any(taint.get("key") == key and taint.get("effect") == NO_SCHEDULE for taint in taints):
        return taints
    return (*taints, {"key": key, "effect": NO_SCHEDULE})
