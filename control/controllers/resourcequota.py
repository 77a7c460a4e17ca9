"""The resource quota controller (upstream's ``pkg/controller/resourcequota``): keeps every
ResourceQuota's ``status.hard`` equal to its ``spec.hard`` and ``status.used`` equal to what the
namespace really uses, as ``control.resources.quota`` counts it.

Admission charges a write before it is stored and never gives anything back, so this
controller is what frees usage: a quota is recounted

- when it is created, or its ``spec.hard`` changes (its own status writes are ignored, as
  upstream's ``UpdateFunc``: status is driven from here and by admission);
- when an object it may count is updated or deleted (upstream's replenishment: a pod that
  finished or went away, a claim resized, a service changed type) — creations are already
  charged by admission and do not trigger a recount, so a lagging cache cannot undo a charge;
- on a full resync every ``resync_period`` (kube-controller-manager's
  ``--resource-quota-sync-period``, 5 minutes).

A recount lists the namespace's objects from shared informers. Kinds a quota names are watched
on demand: core pods, services, claims, config maps, secrets and quotas directly, any other
``count/<resource>.<group>`` through discovery (a kind the server does not serve is not
counted — admission then reports the quota's status unknown, as upstream — and is looked up
again at the next full resync, so a CustomResourceDefinition installed later gets counted). The status is
written with the quota's resourceVersion, so a conflict with an admission charge retries
against the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.discovery import Discovery, GroupDiscoveryFailedError
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown, HandlerRegistration, SharedInformer
from control.client.rest import Resource
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import (
    CONFIG_MAPS,
    PERSISTENT_VOLUME_CLAIMS,
    PODS,
    RESOURCE_QUOTAS,
    SECRETS,
    SERVICES,
)
from control.controllers.manager import ControllerContext
from control.resources import quota
from control.resources.quota import Evaluator

log = logging.getLogger("kubelab.controllers.resourcequota")

Obj = Mapping[str, Any]
Clock = Callable[[], datetime]

DEFAULT_RESYNC_PERIOD = 300.0  # --resource-quota-sync-period
SYNC_TIMEOUT = 30.0  # for the cache of a kind a quota starts to count; the sync is retried after


class KindNotSyncedError(Exception):
    """A counted kind's cache is not synced yet (transient: the quota is retried with backoff)."""


_KNOWN_KINDS = {
    (resource.group, resource.plural): resource
    for resource in (PODS, SERVICES, PERSISTENT_VOLUME_CLAIMS, CONFIG_MAPS, SECRETS, RESOURCE_QUOTAS)
}


class ResourceQuotaController:
    name = "resourcequota"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        resync_period: float = DEFAULT_RESYNC_PERIOD,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._client = ctx.client
        self._factory = ctx.informers
        self._workers = workers or ctx.options.concurrent_syncs
        self._resync_period = resync_period
        self._clock = clock
        self._quotas = ctx.informers.informer(RESOURCE_QUOTAS)
        self._watched: dict[tuple[str, str], SharedInformer] = {}
        self._unserved: set[tuple[str, str]] = set()
        self._handles: list[tuple[SharedInformer, HandlerRegistration]] = []
        self._watch_lock = asyncio.Lock()
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=self.name)
        registration = self._quotas.add_event_handler(
            on_add=self._queue_quota, on_update=self._quota_updated, on_delete=None
        )
        resync = asyncio.create_task(self._resync_loop(), name=f"{self.name} resync")
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._quotas]
            ).run()
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync
            self._quotas.remove_event_handler(registration)
            for informer, handle in self._handles:
                informer.remove_event_handler(handle)
            self._handles.clear()

    def _queue_quota(self, resource_quota: Obj) -> None:
        self._queue.add(object_key(resource_quota))

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        if quota.equal(
            quota.parse_list((old.get("spec") or {}).get("hard")),
            quota.parse_list((new.get("spec") or {}).get("hard")),
        ):
            return
        self._queue_quota(new)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._resync_period)
            self._unserved.clear()  # a kind served since (a new CRD) is discovered again
            for resource_quota in self._quotas.cache.list():
                self._queue_quota(resource_quota)

    def _replenish(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """Queue every quota of the object's namespace (upstream's replenishQuota)."""
        if isinstance(obj, DeletedFinalStateUnknown):
            namespace = obj.key.partition("/")[0]
        else:
            namespace = (obj.get("metadata") or {}).get("namespace") or ""
        for resource_quota in self._quotas.cache.list():
            if (resource_quota.get("metadata") or {}).get("namespace") == namespace:
                self._queue_quota(resource_quota)

    async def _informer_for(self, group: str, plural: str) -> SharedInformer | None:
        """The synced shared informer of a kind, watched from now on (None: not served)."""
        async with self._watch_lock:
            informer = self._watched.get((group, plural))
            if informer is None:
                if (group, plural) in self._unserved:
                    return None
                resource = _KNOWN_KINDS.get((group, plural)) or await self._discover(group, plural)
                if resource is None:
                    self._unserved.add((group, plural))
                    return None
                informer = self._factory.informer(resource)
                handle = informer.add_event_handler(
                    on_update=lambda old, new: self._replenish(new), on_delete=self._replenish
                )
                self._handles.append((informer, handle))
                informer.start()
                self._watched[(group, plural)] = informer
        if not await informer.wait_for_sync(SYNC_TIMEOUT):
            raise KindNotSyncedError(
                f"the cache of {plural}.{group or 'core'} did not sync in {SYNC_TIMEOUT}s"
            )
        return informer

    async def _discover(self, group: str, plural: str) -> Resource | None:
        try:
            lists = await Discovery(self._client).server_resources()
        except GroupDiscoveryFailedError as exc:
            lists = exc.resources
        for resource_list in lists:
            group_version = str(resource_list.get("groupVersion") or "")
            listed_group, _, version = group_version.rpartition("/")
            if listed_group != group:
                continue
            for item in resource_list.get("resources") or ():
                if item.get("name") == plural and "list" in (item.get("verbs") or ()):
                    return Resource(
                        group=group,
                        version=version,
                        plural=plural,
                        kind=str(item.get("kind") or ""),
                        namespaced=bool(item.get("namespaced")),
                    )
        return None

    async def reconcile(self, key: str) -> None:
        resource_quota = self._quotas.cache.get_by_key(key)
        if resource_quota is None:
            return
        namespace = resource_quota["metadata"].get("namespace") or ""
        spec_hard = quota.parse_list((resource_quota.get("spec") or {}).get("hard"))
        status = resource_quota.get("status") or {}
        old_used = quota.parse_list(status.get("used"))
        used = dict(old_used)
        now = self._clock()
        for group, plural in quota.counted_kinds(spec_hard):
            evaluator = Evaluator(group=group, plural=plural)
            resources = evaluator.matching_resources(spec_hard)
            if not resources:
                continue
            informer = await self._informer_for(group, plural)
            if informer is None:
                continue
            objects = [
                obj
                for obj in informer.cache.list()
                if (obj.get("metadata") or {}).get("namespace") == namespace
            ]
            used.update(
                quota.usage_stats(
                    evaluator, quota=resource_quota, resources=resources, objects=objects, now=now
                )
            )
        used = quota.mask(used, spec_hard)
        dirty = (
            status.get("hard") is None
            or status.get("used") is None
            or not quota.equal(spec_hard, quota.parse_list(status.get("hard")))
            or not quota.equal(used, old_used)
        )
        if not dirty:
            return
        updated = copy.deepcopy(dict(resource_quota))
        updated["status"] = {"hard": quota.render_list(spec_hard), "used": quota.render_list(used)}
        try:  # a Conflict (admission charged meanwhile) is retried with backoff by the worker loop
            await self._client.replace(RESOURCE_QUOTAS, updated, subresource="status")
        except errors.NotFoundError:
            return


def new_controller(ctx: ControllerContext) -> ResourceQuotaController:
    return ResourceQuotaController(ctx)
