"""The ClusterRole aggregation controller: a ClusterRole with an ``aggregationRule`` holds the
rules of every ClusterRole its selectors match (upstream's
``pkg/controller/clusterroleaggregation``).

This is how ``admin``, ``edit`` and ``view`` grow: a ClusterRole labelled
``rbac.authorization.k8s.io/aggregate-to-view: "true"`` adds its rules to ``view`` (and, since
``view`` is itself labelled to aggregate into ``edit``, to ``edit`` and then ``admin``).

Work is keyed by the name of an aggregated ClusterRole. Any change to any ClusterRole queues
every aggregated one (a label change can move a role in or out of any selection). Reconciling
computes :func:`aggregated_rules` — for each selector in order, the matching ClusterRoles
sorted by name, the aggregated role itself excepted, each rule kept once — and replaces the
role's rules only when they differ, so a settled cluster sees no writes. The API server's
bootstrap policy fills ``admin``/``edit``/``view`` with the same function, so both agree.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller, PermanentError
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import Resource
from control.client.workqueue import RateLimitingQueue
from control.controllers.manager import ControllerContext
from control.resources.rbac_aggregation import aggregated_rules, same_rules
from control.resources.selectors import SelectorError

log = logging.getLogger("kubelab.controllers.clusterroleaggregation")

# The workqueue's name, as upstream names it (its workqueue_* metrics' ``name`` label).
QUEUE_NAME = "ClusterRoleAggregator"


CLUSTER_ROLES = Resource(
    group="rbac.authorization.k8s.io",
    version="v1",
    plural="clusterroles",
    kind="ClusterRole",
    namespaced=False,
)

Obj = Mapping[str, Any]


class ClusterRoleAggregationController:
    name = "clusterrole-aggregation"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._roles = ctx.informers.informer(CLUSTER_ROLES)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=QUEUE_NAME)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=QUEUE_NAME)
        registration = self._roles.add_event_handler(
            on_add=self._queue_aggregated,
            on_update=lambda old, new: self._queue_aggregated(new),
            on_delete=self._queue_aggregated,
        )
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._roles]
            ).run()
        finally:
            self._roles.remove_event_handler(registration)

    def _queue_aggregated(self, _changed: Obj | DeletedFinalStateUnknown) -> None:
        """Any ClusterRole may enter or leave any selection: queue every aggregated role."""
        for role in self._roles.cache.list():
            if role.get("aggregationRule") is not None:
                self._queue.add(role["metadata"]["name"])

    async def reconcile(self, name: str) -> None:
        role = self._roles.cache.get_by_key(name)
        if role is None or role.get("aggregationRule") is None:
            return
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ()
        try:
            rules = aggregated_rules(name=name, selectors=selectors, cluster_roles=self._roles.cache.list())
        except SelectorError as exc:
            raise PermanentError(f"ClusterRole {name}: invalid clusterRoleSelectors: {exc}") from exc
        if same_rules(rules, role.get("rules") or ()):
            return
        changed = copy.deepcopy(dict(role))
        changed["rules"] = copy.deepcopy(rules)
        try:
            await self._client.replace(CLUSTER_ROLES, changed)
        except errors.NotFoundError:
            return  # deleted meanwhile: nothing to aggregate into
        log.info("aggregated %d rules into ClusterRole %s", len(rules), name)


def new_controller(ctx: ControllerContext) -> ClusterRoleAggregationController:
    return ClusterRoleAggregationController(ctx)
