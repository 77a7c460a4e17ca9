"""The default profile's plugins, one module each, in upstream's order and with its weights.

Filters run in this order, and a node's first failing filter names the reason it reports:
NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
VolumeBinding, PodTopologySpread, InterPodAffinity (VolumeBinding's PreFilter may rule a pod out
before any filter runs). VolumeBinding is also the one Reserve/PreBind plugin. Scores and their weights (kube-scheduler's v1 defaults):
TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2, NodeResourcesFit
(LeastAllocated) 1, NodeResourcesBalancedAllocation 1.

Elsewhere: PrioritySort and SchedulingGates are the queue's ordering and gating, DefaultBinder is
the scheduler's binding, and DefaultPreemption is replaced by the message of
:mod:`control.scheduler.preemption` (no preemption). Not carried over: the other volume plugins
(VolumeRestrictions' ReadWriteOncePod, VolumeZone, NodeVolumeLimits: kubelab's volumes are host
directories with no zones, attach limits or exclusive access modes), ImageLocality (no image store)
and DynamicResources.
"""

from __future__ import annotations

import random

from control.scheduler.framework import Framework, Listers
from control.scheduler.plugins.balanced_allocation import BalancedAllocation
from control.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from control.scheduler.plugins.node_affinity import NodeAffinity
from control.scheduler.plugins.node_name import NodeName
from control.scheduler.plugins.node_ports import NodePorts
from control.scheduler.plugins.node_resources_fit import NodeResourcesFit
from control.scheduler.plugins.node_unschedulable import NodeUnschedulable
from control.scheduler.plugins.pod_topology_spread import PodTopologySpread
from control.scheduler.plugins.taint_toleration import TaintToleration
from control.scheduler.plugins.volume_binding import DEFAULT_BIND_TIMEOUT, ClaimBinder, VolumeBinding


def default_framework(
    listers: Listers,
    *,
    binder: ClaimBinder | None = None,
    bind_timeout: float = DEFAULT_BIND_TIMEOUT,
    rng: random.Random | None = None,
) -> Framework:
    """The default profile; ``listers`` feed pod affinity, spreading and volumes, ``binder`` writes
    and awaits claims for VolumeBinding's PreBind (``bind_timeout`` long at most), ``rng`` breaks ties."""
    taints, node_affinity, fit = TaintToleration(), NodeAffinity(), NodeResourcesFit()
    spread, pod_affinity = PodTopologySpread(listers), InterPodAffinity(listers)
    volumes = VolumeBinding(listers, binder=binder, bind_timeout=bind_timeout)
    return Framework(
        filters=[
            NodeUnschedulable(),
            NodeName(),
            taints,
            node_affinity,
            NodePorts(),
            fit,
            volumes,
            spread,
            pod_affinity,
        ],
        scorers=[
            (taints, 3),
            (node_affinity, 2),
            (fit, 1),
            (spread, 2),
            (pod_affinity, 2),
            (BalancedAllocation(), 1),
        ],
        binders=[volumes],
        rng=rng,
    )
