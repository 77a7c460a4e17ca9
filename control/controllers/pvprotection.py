"""The PV protection controller (upstream's ``pkg/controller/volume/pvprotection``): a
PersistentVolume that is Bound to a claim is not deleted from under it.

New volumes get the ``kubernetes.io/pv-protection`` finalizer at admission
(StorageObjectInUseProtection); this controller adds it to any volume that lacks it and,
once a volume is being deleted, removes it as soon as the volume is not Bound — so deleting
a bound volume only marks it, and it goes away after its claim lets go. Work is keyed by
volume name.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.indexer import object_key
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import PERSISTENT_VOLUMES
from control.controllers.manager import ControllerContext

log = logging.getLogger("kubelab.controllers.pvprotection")

PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"

Obj = Mapping[str, Any]


class PVProtectionController:
    name = "persistentvolume-protection"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._volumes = ctx.informers.informer(PERSISTENT_VOLUMES)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=self.name)
        registration = self._volumes.add_event_handler(
            on_add=self._queue_volume, on_update=lambda old, new: self._queue_volume(new)
        )
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._volumes]
            ).run()
        finally:
            self._volumes.remove_event_handler(registration)

    def _queue_volume(self, volume: Obj) -> None:
        self._queue.add(object_key(volume))

    async def reconcile(self, name: str) -> None:
        volume = self._volumes.cache.get_by_key(name)
        if volume is None:
            return
        metadata = volume.get("metadata") or {}
        finalizers = list(metadata.get("finalizers") or ())
        protected = PV_PROTECTION_FINALIZER in finalizers
        if metadata.get("deletionTimestamp"):
            if protected and (volume.get("status") or {}).get("phase") != "Bound":
                await self._write_finalizers(volume, [f for f in finalizers if f != PV_PROTECTION_FINALIZER])
                log.info("removed the protection finalizer of volume %s", name)
        elif not protected:
            await self._write_finalizers(volume, [*finalizers, PV_PROTECTION_FINALIZER])

    async def _write_finalizers(self, volume: Obj, finalizers: list[str]) -> None:
        updated = copy.deepcopy(dict(volume))
        updated["metadata"]["finalizers"] = finalizers
        try:
            await self._client.replace(PERSISTENT_VOLUMES, updated)
        except errors.NotFoundError:
            return


def new_controller(ctx: ControllerContext) -> PVProtectionController:
    return PVProtectionController(ctx)
