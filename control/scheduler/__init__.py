"""kubelab's scheduler: kube-scheduler's filter/score framework over the client library.

It places every pod that names the default scheduler and no node: it filters the nodes
(cordoned, taints and tolerations, NotReady, node selector and affinity, host ports, resource
requests against allocatable, the pod's PersistentVolumeClaims and their volumes, topology spread,
pod affinity and anti-affinity), scores the rest
(taints, node affinity, least allocated, balanced allocation, spreading of a workload's pods,
pod affinity), has claims waiting for their first consumer provisioned on the chosen node (the
``volume.kubernetes.io/selected-node`` annotation) and waits for them to bind, binds the pod to the
best through ``pods/binding`` and records a ``Scheduled``
event — or, when nothing fits, says why in a ``PodScheduled=False`` condition and a
``FailedScheduling`` event worded as upstream's, and tries again when the cluster changes.

One concern per module, as in upstream's ``pkg/scheduler``:

- ``quantity``, ``requests`` — resource quantities and what pods ask / nodes offer;
- ``selectors``, ``taints``, ``podinfo`` — label and node selectors, tolerations, a pod parsed
  once for the plugins;
- ``cache`` — nodes with their pods, bound and assumed; ``queue`` — active, backoff and
  unschedulable pods;
- ``framework``, ``status``, ``preemption`` — running filters and scores, and the failure
  message; ``plugins/`` — one module per plugin;
- ``scheduler`` — the loop (schedule, assume, bind, report); ``metrics``; ``run`` — the entry
  point.

Only ``control.client`` (and the event recorder shared with the controllers) is imported from
the rest of kubelab, so the scheduler also runs against a real cluster.
"""

from control.scheduler.run import run_scheduler
from control.scheduler.scheduler import Scheduler

__all__ = ["Scheduler", "run_scheduler"]
