"""TaintToleration: NoSchedule/NoExecute taints filter, PreferNoSchedule taints lower the score.

Filter: the first NoSchedule or NoExecute taint the pod does not tolerate rules the node out,
UnschedulableAndUnresolvable. Since 1.34 (backported) upstream no longer names the taint in the
message, which lands in the pod's status for anyone to read; it is logged instead.

Score: the number of PreferNoSchedule taints not tolerated by the pod's tolerations with effect
PreferNoSchedule or no effect, normalised in reverse — fewer is better.

Effective taints include the not-ready/unreachable taints a NotReady node implies (see
:mod:`control.scheduler.taints`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState, FilterPlugin, ScorePlugin, default_normalize
from control.scheduler.status import Code, Status
from control.scheduler.taints import NO_EXECUTE, NO_SCHEDULE, PREFER_NO_SCHEDULE, first_untolerated, tolerated

log = logging.getLogger("kubelab.scheduler")

NAME = "TaintToleration"
ERR_REASON_UNTOLERATED = "node(s) had untolerated taint(s)"

_FILTER_EFFECTS = frozenset({NO_SCHEDULE, NO_EXECUTE})
_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_UNTOLERATED,), NAME)


class TaintToleration(FilterPlugin, ScorePlugin):
    name = NAME

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        pod = state.pod
        taint = first_untolerated(node.taints, pod.tolerations, effects=_FILTER_EFFECTS)
        if taint is None:
            return None
        log.debug("pod %s does not tolerate taint %s on node %s", pod.key, dict(taint), node.name)
        return _STATUS

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        tolerations = state.pod.tolerations
        state.data[NAME] = [
            t for t in tolerations if (t.get("effect") or PREFER_NO_SCHEDULE) == PREFER_NO_SCHEDULE
        ]
        return True

    def score(self, state: CycleState, node: NodeInfo) -> int:
        tolerations = state.data[NAME]
        return sum(
            1
            for taint in node.taints
            if taint.get("effect") == PREFER_NO_SCHEDULE and not tolerated(tolerations, taint)
        )

    def normalize(self, state: CycleState, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
