"""The PVC protection controller (upstream's ``pkg/controller/volume/pvcprotection``): a
PersistentVolumeClaim a pod uses is not deleted from under the pod.

New claims get the ``kubernetes.io/pvc-protection`` finalizer at admission
(StorageObjectInUseProtection); this controller adds it to any claim that lacks it and, once
a claim is being deleted, removes it when no pod uses the claim any more — so ``kubectl delete
pvc`` of a claim in use leaves it Terminating until its pods are gone.

"Uses" is upstream's podUsesPVC: a pod that is scheduled (``spec.nodeName`` set; the kubelet
refuses to start a pod whose claim is being deleted, so unscheduled pods never will) and has a
``persistentVolumeClaim`` volume naming the claim. Pods in a terminal phase still count, as
upstream: their volumes may not be torn down yet. The pod cache is checked first; when it shows
no user, the API server is asked too (a pod created moments ago may not be cached yet), as
upstream's askAPIServer. Work is keyed by ``<namespace>/<claim>``; pod events queue the claims
the pod names.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import PERSISTENT_VOLUME_CLAIMS, PODS
from control.controllers.manager import ControllerContext

log = logging.getLogger("kubelab.controllers.pvcprotection")

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
POD_CLAIM_INDEX = "kubelab.dev/pvc-protection-claims"

Obj = Mapping[str, Any]


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's ``persistentVolumeClaim`` volumes name."""
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        source = volume.get("persistentVolumeClaim") if isinstance(volume, Mapping) else None
        if isinstance(source, Mapping) and source.get("claimName"):
            names.append(source["claimName"])
    return names


def pod_uses_claim(pod: Obj, claim_name: str) -> bool:
    """podUsesPVC: scheduled, and one of its volumes names the claim."""
    return bool((pod.get("spec") or {}).get("nodeName")) and claim_name in claim_names(pod)


def _claim_keys(pod: Obj) -> list[str]:
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    return [f"{namespace}/{name}" for name in claim_names(pod)]


class PVCProtectionController:
    name = "persistentvolumeclaim-protection"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._claims = ctx.informers.informer(PERSISTENT_VOLUME_CLAIMS)
        self._pods = ctx.informers.informer(PODS)
        self._pods.add_indexers({POD_CLAIM_INDEX: _claim_keys})
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=self.name)
        registrations = [
            (
                self._claims,
                self._claims.add_event_handler(
                    on_add=self._queue_claim, on_update=lambda old, new: self._queue_claim(new)
                ),
            ),
            (
                self._pods,
                self._pods.add_event_handler(
                    on_add=self._queue_pod_claims,
                    on_update=self._on_pod_update,
                    on_delete=self._queue_pod_claims,
                ),
            ),
        ]
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._claims, self._pods]
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    def _queue_claim(self, claim: Obj) -> None:
        self._queue.add(object_key(claim))

    def _queue_pod_claims(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for key in _claim_keys(pod):
            self._queue.add(key)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        # Both versions: an update may hide a delete and re-create naming other claims.
        self._queue_pod_claims(old)
        self._queue_pod_claims(new)

    async def reconcile(self, key: str) -> None:
        claim = self._claims.cache.get_by_key(key)
        if claim is None:
            return
        metadata = claim.get("metadata") or {}
        finalizers = list(metadata.get("finalizers") or ())
        protected = PVC_PROTECTION_FINALIZER in finalizers
        if metadata.get("deletionTimestamp"):
            if protected and not await self._in_use(claim):
                await self._write_finalizers(claim, [f for f in finalizers if f != PVC_PROTECTION_FINALIZER])
                log.info("removed the protection finalizer of claim %s", key)
        elif not protected:
            await self._write_finalizers(claim, [*finalizers, PVC_PROTECTION_FINALIZER])

    async def _in_use(self, claim: Obj) -> bool:
        namespace, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
        cached = self._pods.cache.by_index(POD_CLAIM_INDEX, f"{namespace}/{name}")
        if any(pod_uses_claim(pod, name) for pod in cached):
            return True
        live = await self._client.list(PODS, namespace=namespace)
        return any(pod_uses_claim(pod, name) for pod in live.get("items") or ())

    async def _write_finalizers(self, claim: Obj, finalizers: list[str]) -> None:
        updated = copy.deepcopy(dict(claim))
        updated["metadata"]["finalizers"] = finalizers
        try:
            await self._client.replace(PERSISTENT_VOLUME_CLAIMS, updated)
        except errors.NotFoundError:
            return


def new_controller(ctx: ControllerContext) -> PVCProtectionController:
    return PVCProtectionController(ctx)
