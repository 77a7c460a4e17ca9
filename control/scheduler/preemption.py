"""What the scheduler says about preemption, which kubelab does not do.

Upstream's DefaultPreemption post-filter runs when no node fits: it looks for lower-priority
pods whose eviction would make room, and its verdict is appended to the FailedScheduling
message. kubelab has no preemption. It reports what DefaultPreemption reports when it finds no
victims — the situation of any cluster whose pods share one priority, which is the lab's:

- a pod with ``preemptionPolicy: Never``: ``preemption: not eligible due to preemptionPolicy=Never.``
- otherwise, node by node: ``Preemption is not helpful for scheduling`` where the filter's
  verdict was UnschedulableAndUnresolvable (evicting pods cannot change labels, taints or a
  too-small node), ``No preemption victims found for incoming pod.`` where it was Unschedulable
  (resources, host ports, anti-affinity of pods already there); counted and sorted like the
  filter reasons: ``preemption: 0/3 nodes are available: 3 No preemption victims found for
  incoming pod..`` — the doubled full stop is upstream's (the reason ends with one, and the
  message format adds another).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code, Status

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod."


def post_filter_message(*, pod: PodInfo, statuses: Mapping[str, Status], num_nodes: int) -> str:
    """The ``preemption: ...`` sentence for a pod that fits nowhere (``statuses``: every node's verdict)."""
    if pod.preemption_policy == "Never":
        return "preemption: not eligible due to preemptionPolicy=Never."
    histogram = Counter(
        NOT_HELPFUL if status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE else NO_VICTIMS
        for status in statuses.values()
    )
    reasons = ", ".join(sorted(f"{count} {reason}" for reason, count in histogram.items()))
    return f"preemption: 0/{num_nodes} nodes are available: {reasons}."
