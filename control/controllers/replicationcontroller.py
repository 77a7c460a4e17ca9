"""The ReplicationController controller (kube-controller-manager's ``replicationcontroller``).

Upstream's ``pkg/controller/replication`` is no controller of its own: it runs the ReplicaSet
controller over ReplicationControllers converted to ReplicaSets on the fly. kubelab does the same
without the conversion: :class:`~control.controllers.replicaset.ReplicaSetController` is told which
resource it reconciles and how to read that resource's selector, so a ReplicationController's pods
are created, deleted, adopted, released, ranked for deletion and counted in its status exactly as
a ReplicaSet's — they carry the ReplicationController (``v1``, ``ReplicationController``) as their
controller reference, Events come from ``replication-controller`` and the workqueue is upstream's
``replicationmanager``.

The one difference in shape is the selector: a plain label map (``app: web``), the ``matchLabels``
of the equivalent LabelSelector, as upstream's conversion turns it into one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control.controllers.kinds import REPLICATION_CONTROLLERS
from control.controllers.manager import ControllerContext
from control.controllers.replicaset import ReplicaSetController, ReplicatedKind, build
from control.resources.selectors import LabelSelector, label_selector_from_spec


def label_map_selector(rc: Mapping[str, Any]) -> LabelSelector:
    """``spec.selector`` (a label map) as the selector it converts to: ``{matchLabels: map}``; a
    missing map selects nothing, as a nil LabelSelector. Raises SelectorError for a malformed map."""
    selector = (rc.get("spec") or {}).get("selector")
    return label_selector_from_spec(None if selector is None else {"matchLabels": selector})


REPLICATION_CONTROLLER = ReplicatedKind(
    resource=REPLICATION_CONTROLLERS,
    name="replicationcontroller",
    queue="replicationmanager",
    component="replication-controller",
    selector_of=label_map_selector,
)


def new_controller(ctx: ControllerContext) -> ReplicaSetController:
    return build(ctx, REPLICATION_CONTROLLER)
