"""The local-path provisioner: dynamic PersistentVolumes as directories on the host, for the
StorageClasses whose provisioner is ``kubelab.dev/local-path`` (what rancher's
local-path-provisioner does for kind, run here inside the controller manager).

It acts as an external provisioner does (sig-storage-lib-external-provisioner), on what the
PV controller hands it:

- **Provisioning.** A claim with no volume, not being deleted, whose class names this
  provisioner and which the PV controller annotated ``volume.kubernetes.io/storage-provisioner:
  kubelab.dev/local-path`` gets a volume — for a ``WaitForFirstConsumer`` class only once the
  scheduler has chosen a node (``volume.kubernetes.io/selected-node``). The volume is named
  ``pvc-<claim uid>``, is a ``hostPath`` directory ``<storage dir>/pvc-<uid>_<namespace>_<claim>``
  (``DirectoryOrCreate``; the directory is also made here, mode 0777 as rancher's helper does),
  has the claim's requested capacity, access modes and volumeMode, the class's reclaim policy and
  mount options, ``pv.kubernetes.io/provisioned-by``, a ``claimRef`` to the claim (the PV
  controller then binds the two) and, for a selected node, node affinity
  ``kubernetes.io/hostname In [node]``. Events on the claim: ``Provisioning``, then
  ``ProvisioningSucceeded`` or ``ProvisioningFailed``.
- **Deleting.** A volume it provisioned that is Released with reclaim policy ``Delete`` has its
  directory removed and is then deleted (the pv-protection finalizer lets go once it is no
  longer Bound). A volume whose path is not inside the storage directory is never touched
  (``VolumeFailedDelete``).

Lab limits (docs/storage.md): every "node" of a kubelab lab is the same host, so node affinity
is bookkeeping — all nodes see the same directory; capacity is recorded, not enforced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control.client import errors
from control.client.controller import Controller, PermanentError, TemporaryError
from control.client.indexer import object_key
from control.client.rest import Preconditions
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, STORAGE_CLASSES
from control.controllers.manager import ControllerContext
from control.controllers.persistentvolume import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_DYNAMICALLY_PROVISIONED,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    PROVISIONER_NAME,
    WAIT_FOR_FIRST_CONSUMER,
    annotations_of,
    claim_class,
    claim_reference,
)

log = logging.getLogger("kubelab.controllers.localpath")

HOSTNAME_LABEL = "kubernetes.io/hostname"

Obj = Mapping[str, Any]
Key = tuple[str, str]  # ("claim", "<ns>/<name>") or ("volume", "<name>")


def volume_name_for(claim: Obj) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def volume_directory(storage_dir: Path, claim: Obj) -> Path:
    metadata = claim["metadata"]
    return storage_dir / f"pvc-{metadata['uid']}_{metadata['namespace']}_{metadata['name']}"


def provisioned_volume(*, claim: Obj, storage_class: Obj, path: Path, node: str) -> dict[str, Any]:
    """The PersistentVolume provisioned for ``claim`` (``node`` "" for an Immediate class)."""
    spec = claim.get("spec") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    volume_spec: dict[str, Any] = {
        "capacity": {"storage": requests.get("storage")},
        "accessModes": list(spec.get("accessModes") or ()),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": storage_class["metadata"]["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        "claimRef": claim_reference(claim),
    }
    if storage_class.get("mountOptions"):
        volume_spec["mountOptions"] = list(storage_class["mountOptions"])
    if node:
        volume_spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}
                ]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name_for(claim),
            "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER_NAME},
        },
        "spec": volume_spec,
    }


class LocalPathProvisioner:
    name = "persistentvolume-local-path-provisioner"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._storage_dir = Path(ctx.options.storage_dir) if ctx.options.storage_dir else None
        self._recorder = ctx.recorder(PROVISIONER_NAME)
        self._volumes = ctx.informers.informer(PERSISTENT_VOLUMES)
        self._claims = ctx.informers.informer(PERSISTENT_VOLUME_CLAIMS)
        self._classes = ctx.informers.informer(STORAGE_CLASSES)
        self._queue: RateLimitingQueue[Key] = RateLimitingQueue(name=self.name)

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
                self._volumes,
                self._volumes.add_event_handler(
                    on_add=self._queue_volume, on_update=lambda old, new: self._queue_volume(new)
                ),
            ),
        ]
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self._volumes, self._claims, self._classes],
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    def _queue_claim(self, claim: Obj) -> None:
        if self._should_provision(claim):
            self._queue.add(("claim", object_key(claim)))

    def _queue_volume(self, volume: Obj) -> None:
        if self._should_delete(volume):
            self._queue.add(("volume", object_key(volume)))

    def _should_provision(self, claim: Obj) -> bool:
        if (claim.get("spec") or {}).get("volumeName") or (claim.get("metadata") or {}).get(
            "deletionTimestamp"
        ):
            return False
        annotations = annotations_of(claim)
        return PROVISIONER_NAME in (
            annotations.get(ANN_STORAGE_PROVISIONER),
            annotations.get(ANN_BETA_STORAGE_PROVISIONER),
        )

    @staticmethod
    def _should_delete(volume: Obj) -> bool:
        return (
            annotations_of(volume).get(ANN_DYNAMICALLY_PROVISIONED) == PROVISIONER_NAME
            and (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete"
            and (volume.get("status") or {}).get("phase") == "Released"
            and not (volume.get("metadata") or {}).get("deletionTimestamp")
        )

    async def reconcile(self, key: Key) -> None:
        kind, name = key
        if kind == "claim":
            claim = self._claims.cache.get_by_key(name)
            if claim is not None and self._should_provision(claim):
                await self.provision(claim)
        else:
            volume = self._volumes.cache.get_by_key(name)
            if volume is not None and self._should_delete(volume):
                await self.delete(volume)

    async def provision(self, claim: Obj) -> None:
        if self._volumes.cache.get_by_key(volume_name_for(claim)) is not None:
            return  # done already; the PV controller binds the two
        class_name = claim_class(claim)
        storage_class = self._classes.cache.get_by_key(class_name)
        if storage_class is None:
            # Not in the cache (yet): the claim names the class, so try again later, as
            # upstream's external provisioner retries a claim whose class it cannot get.
            raise TemporaryError(f'storageclass.storage.k8s.io "{class_name}" not found')
        if storage_class.get("provisioner") != PROVISIONER_NAME:
            return  # not (or no longer) ours
        node = annotations_of(claim).get(ANN_SELECTED_NODE, "")
        if storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER and not node:
            return  # the scheduler has not chosen a node yet
        claim_name = f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
        if self._storage_dir is None:
            await self._claim_event(
                claim,
                type="Warning",
                reason="ProvisioningFailed",
                message=f'failed to provision volume with StorageClass "{class_name}": '
                f"no storage directory is configured for {PROVISIONER_NAME}",
            )
            raise PermanentError(f"cannot provision {claim_name}: no storage directory")
        await self._claim_event(
            claim,
            reason="Provisioning",
            message=f'External provisioner is provisioning volume for claim "{claim_name}"',
        )
        path = volume_directory(self._storage_dir, claim)
        try:
            await asyncio.to_thread(_make_directory, path)
        except OSError as exc:
            await self._claim_event(
                claim,
                type="Warning",
                reason="ProvisioningFailed",
                message=f'failed to provision volume with StorageClass "{class_name}": {exc}',
            )
            raise
        body = provisioned_volume(claim=claim, storage_class=storage_class, path=path, node=node)
        try:
            await self._client.create(PERSISTENT_VOLUMES, body)
        except errors.AlreadyExistsError:
            return
        log.info("provisioned %s for claim %s at %s", body["metadata"]["name"], claim_name, path)
        await self._claim_event(
            claim,
            reason="ProvisioningSucceeded",
            message=f"Successfully provisioned volume {body['metadata']['name']}",
        )

    async def delete(self, volume: Obj) -> None:
        name = volume["metadata"]["name"]
        raw_path = ((volume.get("spec") or {}).get("hostPath") or {}).get("path") or ""
        path = Path(raw_path)
        if self._storage_dir is None or not _inside(path, self._storage_dir):
            await self._recorder.event(
                _volume_reference(volume),
                type="Warning",
                reason="VolumeFailedDelete",
                message=f"{PROVISIONER_NAME} deletes only directories under its storage directory, "
                f"not {raw_path!r}",
            )
            raise PermanentError(f"refusing to delete volume {name} at {raw_path!r}")
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
        try:
            await self._client.delete(
                PERSISTENT_VOLUMES, name, preconditions=Preconditions(uid=volume["metadata"].get("uid"))
            )
        except (errors.NotFoundError, errors.ConflictError):
            return  # gone, or replaced by a volume of the same name
        log.info("deleted volume %s and its directory %s", name, path)

    async def _claim_event(self, claim: Obj, *, reason: str, message: str, type: str = "Normal") -> None:
        reference = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "metadata": dict(claim.get("metadata") or {}),
        }
        await self._recorder.event(reference, type=type, reason=reason, message=message)


def _make_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)  # any container user may write, as rancher's helper pod leaves it


def _inside(path: Path, directory: Path) -> bool:
    """``path`` is strictly below ``directory`` (after resolving ``..`` and symlinks)."""
    resolved, root = path.resolve(), directory.resolve()
    return resolved != root and resolved.is_relative_to(root)


def _volume_reference(volume: Obj) -> dict[str, Any]:
    return {"kind": "PersistentVolume", "apiVersion": "v1", "metadata": dict(volume.get("metadata") or {})}


def new_controller(ctx: ControllerContext) -> LocalPathProvisioner:
    return LocalPathProvisioner(ctx)
