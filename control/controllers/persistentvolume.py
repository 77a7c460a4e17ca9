"""The PersistentVolume controller, binder half (upstream's
``pkg/controller/volume/persistentvolume/pv_controller.go``): it binds claims to volumes, keeps
the phases of both true, hands claims to provisioners and releases volumes whose claim is gone.

Work is keyed by ``("claim", "<ns>/<name>")`` or ``("volume", "<name>")`` on one queue, and each
sync re-reads the caches, as upstream's syncClaim/syncVolume:

- **An unbound claim** (no ``pv.kubernetes.io/bind-completed``) with no ``spec.volumeName`` is bound
  to the smallest Available volume that fits — same class, every requested access mode, enough
  capacity, the claim's selector and volumeMode — or to a volume already pre-bound to it
  (``claimRef`` with its uid, as a provisioner or the scheduler leaves it). A claim of a
  ``WaitForFirstConsumer`` class is left to the scheduler for static volumes; until the scheduler
  picks a node (``volume.kubernetes.io/selected-node``) it waits with upstream's
  ``WaitForFirstConsumer`` event. Otherwise a claim with a class is handed to the class's
  provisioner: the ``volume.kubernetes.io/storage-provisioner`` annotations (and the beta one) are
  set and an ``ExternalProvisioning`` event says so. A claim with no class and no volume gets
  ``FailedBinding``. A claim naming its volume (``spec.volumeName``) binds to exactly that one, if
  it is free and fits.
- **Binding** writes the volume first (``claimRef``, ``pv.kubernetes.io/bound-by-controller``,
  phase Bound), then the claim (``volumeName``, ``bind-completed``, ``bound-by-controller`` when
  the controller chose the volume, phase Bound with the volume's capacity and access modes), so a
  crash in between is finished by the next sync — as upstream's bind().
- **A bound claim** whose volume vanished or was taken by another claim is marked Lost
  (``ClaimLost`` / ``ClaimMisbound``).
- **A volume** without a claim is Available; one whose claim is bound to it is Bound; one whose
  claim is gone (deleted, or recreated with another uid) is Released and reclaimed by its
  ``persistentVolumeReclaimPolicy``: Retain keeps it Released; Delete is done by the provisioner
  that made the volume (``pv.kubernetes.io/provisioned-by``) — kubelab's local-path provisioner —
  and fails the volume (``VolumeFailedDelete``) when no provisioner made it; Recycle, deprecated
  upstream, has no recycler here and fails the volume (``VolumeFailedRecycle``).

Upstream resyncs every claim and volume every 15 s to find late matches; here a volume or class
that appears or changes queues the claims still waiting, and a waiting claim is also retried every
15 s.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown, deletion_handling_key
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, STORAGE_CLASSES
from control.controllers.manager import ControllerContext
from control.resources.selectors import SelectorError, label_selector_from_spec
from control.resources.validation import InvalidQuantityError, Quantity

log = logging.getLogger("kubelab.controllers.persistentvolume")

COMPONENT = "persistentvolume-controller"
RESYNC_SECONDS = 15.0  # upstream's --pvclaimbinder-sync-period

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"

PROVISIONER_NAME = "kubelab.dev/local-path"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

Obj = Mapping[str, Any]
Key = tuple[str, str]  # ("claim", "<ns>/<name>") or ("volume", "<name>")


# --- helpers shared with the provisioner and the protection controllers ---------------------------


def annotations_of(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def claim_class(claim: Obj) -> str:
    """helper.GetPersistentVolumeClaimClass: the beta annotation, else spec.storageClassName."""
    annotations = annotations_of(claim)
    if ANN_BETA_STORAGE_CLASS in annotations:
        return annotations[ANN_BETA_STORAGE_CLASS]
    return (claim.get("spec") or {}).get("storageClassName") or ""


def volume_class(volume: Obj) -> str:
    """helper.GetPersistentVolumeClass."""
    annotations = annotations_of(volume)
    if ANN_BETA_STORAGE_CLASS in annotations:
        return annotations[ANN_BETA_STORAGE_CLASS]
    return (volume.get("spec") or {}).get("storageClassName") or ""


def storage_quantity(resources: Any) -> Quantity | None:
    """The ``storage`` entry of a capacity or requests map, or None when absent or malformed."""
    if not isinstance(resources, Mapping) or resources.get("storage") is None:
        return None
    try:
        return Quantity.parse(resources["storage"])
    except InvalidQuantityError:
        return None


def claim_request(claim: Obj) -> Quantity | None:
    return storage_quantity(((claim.get("spec") or {}).get("resources") or {}).get("requests"))


def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """storagehelpers.IsVolumeBoundToClaim: claimRef names the claim (and its uid, if set)."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not isinstance(ref, Mapping):
        return False
    metadata = claim.get("metadata") or {}
    if ref.get("name") != metadata.get("name") or ref.get("namespace") != metadata.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == metadata.get("uid")


def claim_reference(claim: Obj) -> dict[str, Any]:
    """ref.GetReference(claim), as a volume's claimRef carries it."""
    metadata = claim.get("metadata") or {}
    return {
        "kind": "PersistentVolumeClaim",
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "uid": metadata.get("uid", ""),
        "apiVersion": "v1",
        "resourceVersion": metadata.get("resourceVersion", ""),
    }


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_event_object(obj: Obj, kind: str) -> dict[str, Any]:
    """Informer objects may lack kind/apiVersion; events need them for involvedObject."""
    return {"kind": kind, "apiVersion": "v1", "metadata": dict(obj.get("metadata") or {})}


def find_best_match(claim: Obj, volumes: list[Obj], *, delay_binding: bool) -> Obj | None:
    """upstream's FindMatchingVolume with no node: a volume pre-bound to the claim wins; else the
    smallest Available, unclaimed volume of the claim's class, access modes, volumeMode and
    selector with at least the requested capacity (none while binding waits for a consumer)."""
    spec = claim.get("spec") or {}
    requested = claim_request(claim)
    wanted_modes = set(spec.get("accessModes") or ())
    wanted_mode = spec.get("volumeMode") or "Filesystem"
    wanted_class = claim_class(claim)
    try:
        selector = label_selector_from_spec(spec["selector"]) if spec.get("selector") is not None else None
    except SelectorError:
        return None
    best: Obj | None = None
    best_size: Quantity | None = None
    for volume in volumes:
        volume_spec = volume.get("spec") or {}
        metadata = volume.get("metadata") or {}
        if (volume_spec.get("volumeMode") or "Filesystem") != wanted_mode or metadata.get(
            "deletionTimestamp"
        ):
            continue
        if is_volume_bound_to_claim(volume, claim):
            return volume
        if delay_binding:
            continue
        if (volume.get("status") or {}).get("phase") != "Available" or volume_spec.get("claimRef"):
            continue
        if selector is not None and not selector.matches(metadata.get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class:
            continue
        size = storage_quantity(volume_spec.get("capacity"))
        if size is None or (requested is not None and size.compare(requested) < 0):
            continue
        if not wanted_modes <= set(volume_spec.get("accessModes") or ()):
            continue
        if best_size is None or best_size.compare(size) > 0:
            best, best_size = volume, size
    return best


class PersistentVolumeController:
    name = "persistentvolume-binder"

    def __init__(self, ctx: ControllerContext, *, workers: int | None = None) -> None:
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._recorder = ctx.recorder(COMPONENT)
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
                    on_add=self._queue_claim,
                    on_update=lambda old, new: self._queue_claim(new),
                    on_delete=self._on_claim_delete,
                ),
            ),
            (
                self._volumes,
                self._volumes.add_event_handler(
                    on_add=self._on_volume,
                    on_update=lambda old, new: self._on_volume(new),
                    on_delete=self._on_volume_delete,
                ),
            ),
            (
                self._classes,
                self._classes.add_event_handler(
                    on_add=lambda sc: self._queue_waiting_claims(),
                    on_update=lambda old, new: self._queue_waiting_claims(),
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

    # --- event handlers (quick: they only queue keys) ---------------------------------------------

    def _queue_claim(self, claim: Obj) -> None:
        self._queue.add(("claim", object_key(claim)))

    def _on_claim_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        claim = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            self._queue.add(("volume", volume_name))

    def _on_volume(self, volume: Obj) -> None:
        self._queue.add(("volume", object_key(volume)))
        self._queue_waiting_claims()

    def _on_volume_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        volume = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            self._queue.add(("claim", f"{ref.get('namespace', '')}/{ref['name']}"))
        self._queue.add(("volume", deletion_handling_key(obj)))

    def _queue_waiting_claims(self) -> None:
        for claim in self._claims.cache.list():
            if ANN_BIND_COMPLETED not in annotations_of(claim):
                self._queue_claim(claim)

    # --- reconciling --------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        kind, name = key
        if kind == "claim":
            claim = self._claims.cache.get_by_key(name)
            if claim is not None and not (claim.get("metadata") or {}).get("deletionTimestamp"):
                await self.sync_claim(claim)
        else:
            volume = self._volumes.cache.get_by_key(name)
            if volume is not None:
                await self.sync_volume(volume)

    async def sync_claim(self, claim: Obj) -> None:
        if ANN_BIND_COMPLETED in annotations_of(claim):
            await self._sync_bound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        volume_name = (claim.get("spec") or {}).get("volumeName") or ""
        if not volume_name:
            storage_class = self._class_of(claim)
            delay = (
                storage_class is not None
                and storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER
            )
            volume = find_best_match(claim, self._volumes.cache.list(), delay_binding=delay)
            if volume is not None:
                await self._bind(volume, claim)
                return
            if delay and ANN_SELECTED_NODE not in annotations_of(claim):
                await self._event(
                    claim,
                    reason="WaitForFirstConsumer",
                    message="waiting for first consumer to be created before binding",
                )
            elif claim_class(claim):
                claim = await self._provision(claim, storage_class)
            else:
                await self._event(
                    claim,
                    reason="FailedBinding",
                    message="no persistent volumes available for this claim and no storage class is set",
                )
            await self._set_claim_phase(claim, "Pending")
            self._queue.add_after(("claim", object_key(claim)), RESYNC_SECONDS)
            return
        volume = self._volumes.cache.get_by_key(volume_name)
        if volume is None:
            # The named volume does not exist (yet): wait for it.
            await self._set_claim_phase(claim, "Pending")
            return
        if not (volume.get("spec") or {}).get("claimRef"):
            problem = self._mismatch(volume, claim)
            if problem:
                await self._event(
                    claim,
                    type="Warning",
                    reason="VolumeMismatch",
                    message=f'Cannot bind to requested volume "{volume_name}": {problem}',
                )
                await self._set_claim_phase(claim, "Pending")
                return
            await self._bind(volume, claim)
        elif is_volume_bound_to_claim(volume, claim):
            await self._bind(volume, claim)
        else:
            if ANN_BOUND_BY_CONTROLLER not in annotations_of(claim):
                await self._event(
                    claim,
                    type="Warning",
                    reason="FailedBinding",
                    message=f'volume "{volume_name}" already bound to a different claim.',
                )
            await self._set_claim_phase(claim, "Pending")

    async def _sync_bound_claim(self, claim: Obj) -> None:
        volume_name = (claim.get("spec") or {}).get("volumeName") or ""
        if not volume_name:
            await self._lose_claim(
                claim,
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            )
            return
        volume = self._volumes.cache.get_by_key(volume_name)
        if volume is None:
            await self._lose_claim(
                claim, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
            )
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or is_volume_bound_to_claim(volume, claim):
            await self._bind(volume, claim)
        else:
            await self._lose_claim(
                claim,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            )

    async def sync_volume(self, volume: Obj) -> None:
        spec = volume.get("spec") or {}
        ref = spec.get("claimRef")
        if not isinstance(ref, Mapping) or not ref.get("uid"):
            # Unclaimed, or pre-bound by a user to a claim that may not exist yet.
            await self._set_volume_phase(volume, "Available")
            return
        claim = self._claims.cache.get_by_key(f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        if claim is None:
            # A volume just provisioned or pre-bound by the scheduler may beat the claim to this
            # informer: ask the API server before releasing anything.
            claim = await self._live_claim(ref)
        if claim is not None and (claim.get("metadata") or {}).get("uid") != ref.get("uid"):
            claim = None  # the claim was deleted and one of the same name created
        if claim is None:
            await self._release(volume)
            return
        claim_volume = (claim.get("spec") or {}).get("volumeName") or ""
        if not claim_volume:
            # Binding in progress (or a user pre-bound the volume): the claim's sync finishes it.
            self._queue_claim(claim)
        elif claim_volume == (volume.get("metadata") or {}).get("name"):
            await self._set_volume_phase(volume, "Bound")
        elif ANN_BOUND_BY_CONTROLLER in annotations_of(volume):
            # The claim went to another volume: give this one back.
            if (
                ANN_DYNAMICALLY_PROVISIONED in annotations_of(volume)
                and spec.get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                await self._release(volume)
            else:
                await self._unbind(volume)

    # --- pieces -------------------------------------------------------------------------------------

    def _class_of(self, claim: Obj) -> Obj | None:
        name = claim_class(claim)
        return self._classes.cache.get_by_key(name) if name else None

    def _mismatch(self, volume: Obj, claim: Obj) -> str:
        """checkVolumeSatisfyClaim: why ``volume`` cannot serve ``claim`` ("" when it can)."""
        spec, claim_spec = volume.get("spec") or {}, claim.get("spec") or {}
        size, requested = storage_quantity(spec.get("capacity")), claim_request(claim)
        if size is None or (requested is not None and size.compare(requested) < 0):
            return "requested PV is too small"
        if volume_class(volume) != claim_class(claim):
            return "storageClassName does not match"
        if (spec.get("volumeMode") or "Filesystem") != (claim_spec.get("volumeMode") or "Filesystem"):
            return "incompatible volumeMode"
        if not set(claim_spec.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
            return "incompatible accessMode"
        return ""

    async def _bind(self, volume: Obj, claim: Obj) -> None:
        """bind(): volume first (claimRef, phase Bound), then the claim (volumeName, phase Bound)."""
        volume = await self._bind_volume_to_claim(volume, claim)
        await self._set_volume_phase(volume, "Bound")
        claim = await self._bind_claim_to_volume(claim, volume)
        await self._set_claim_bound_status(claim, volume)

    async def _bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        ref = (volume.get("spec") or {}).get("claimRef")
        wanted = claim_reference(claim)
        if isinstance(ref, Mapping) and ref.get("uid") == wanted["uid"] and ref.get("name") == wanted["name"]:
            return volume
        updated = copy.deepcopy(dict(volume))
        updated.setdefault("spec", {})["claimRef"] = wanted
        if not isinstance(ref, Mapping) or not ref.get("name"):
            updated["metadata"].setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
        return await self._client.replace(PERSISTENT_VOLUMES, updated)

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        volume_name = volume["metadata"]["name"]
        spec = claim.get("spec") or {}
        annotations = annotations_of(claim)
        if spec.get("volumeName") == volume_name and annotations.get(ANN_BIND_COMPLETED) == "yes":
            return claim
        updated = copy.deepcopy(dict(claim))
        new_annotations = updated["metadata"].setdefault("annotations", {})
        if spec.get("volumeName") != volume_name:
            updated.setdefault("spec", {})["volumeName"] = volume_name
            new_annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
        new_annotations[ANN_BIND_COMPLETED] = "yes"
        return await self._client.replace(PERSISTENT_VOLUME_CLAIMS, updated)

    async def _set_claim_bound_status(self, claim: Obj, volume: Obj) -> None:
        volume_spec = volume.get("spec") or {}
        status = claim.get("status") or {}
        capacity = volume_spec.get("capacity") or {}
        modes = volume_spec.get("accessModes") or []
        if (
            status.get("phase") == "Bound"
            and status.get("capacity") == capacity
            and status.get("accessModes") == modes
        ):
            return
        updated = copy.deepcopy(dict(claim))
        updated["status"] = {
            **(updated.get("status") or {}),
            "phase": "Bound",
            "capacity": capacity,
            "accessModes": modes,
        }
        await self._client.replace(PERSISTENT_VOLUME_CLAIMS, updated, subresource="status")

    async def _set_claim_phase(self, claim: Obj, phase: str) -> None:
        if (claim.get("status") or {}).get("phase") == phase:
            return
        updated = copy.deepcopy(dict(claim))
        status = updated.setdefault("status", {})
        status["phase"] = phase
        if phase in ("Pending", "Lost") and not (updated.get("spec") or {}).get("volumeName"):
            status.pop("capacity", None)
            status.pop("accessModes", None)
        try:
            await self._client.replace(PERSISTENT_VOLUME_CLAIMS, updated, subresource="status")
        except errors.NotFoundError:
            return

    async def _set_volume_phase(self, volume: Obj, phase: str, *, message: str = "") -> Obj:
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        updated = copy.deepcopy(dict(volume))
        new_status = updated.setdefault("status", {})
        if new_status.get("phase") != phase:
            new_status["lastPhaseTransitionTime"] = now_rfc3339()
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        return await self._client.replace(PERSISTENT_VOLUMES, updated, subresource="status")

    async def _lose_claim(self, claim: Obj, reason: str, message: str) -> None:
        if (claim.get("status") or {}).get("phase") == "Lost":
            return
        await self._event(claim, type="Warning", reason=reason, message=message)
        await self._set_claim_phase(claim, "Lost")

    async def _live_claim(self, ref: Mapping[str, Any]) -> Obj | None:
        try:
            return await self._client.get(
                PERSISTENT_VOLUME_CLAIMS, ref.get("name", ""), namespace=ref.get("namespace", "")
            )
        except errors.NotFoundError:
            return None

    async def _provision(self, claim: Obj, storage_class: Obj | None) -> Obj:
        """provisionClaim for an external provisioner: name it on the claim and say so. Returns
        the claim as written."""
        if storage_class is None:
            await self._event(
                claim,
                type="Warning",
                reason="ProvisioningFailed",
                message=f'storageclass.storage.k8s.io "{claim_class(claim)}" not found',
            )
            return claim
        provisioner = storage_class.get("provisioner") or ""
        annotations = annotations_of(claim)
        if (
            annotations.get(ANN_STORAGE_PROVISIONER) != provisioner
            or annotations.get(ANN_BETA_STORAGE_PROVISIONER) != provisioner
        ):
            updated = copy.deepcopy(dict(claim))
            new_annotations = updated["metadata"].setdefault("annotations", {})
            new_annotations[ANN_STORAGE_PROVISIONER] = provisioner
            new_annotations[ANN_BETA_STORAGE_PROVISIONER] = provisioner
            claim = await self._client.replace(PERSISTENT_VOLUME_CLAIMS, updated)
        await self._event(
            claim,
            reason="ExternalProvisioning",
            message=(
                f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                "or manually by the system administrator. If volume creation is delayed, please verify "
                "that the provisioner is running and correctly registered."
            ),
        )
        return claim

    async def _release(self, volume: Obj) -> None:
        """The claim is gone: Released, then reclaimVolume by the volume's policy."""
        phase = (volume.get("status") or {}).get("phase")
        if phase == "Failed":
            return
        if phase != "Released":
            volume = await self._set_volume_phase(volume, "Released")
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain":
            return
        if policy == "Recycle":
            await self._fail_volume(volume, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
            return
        if policy == "Delete" and not annotations_of(volume).get(ANN_DYNAMICALLY_PROVISIONED):
            name = volume["metadata"]["name"]
            await self._fail_volume(
                volume,
                "VolumeFailedDelete",
                f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched',
            )
        # Delete of a provisioned volume: its provisioner removes the volume, then the object.

    async def _fail_volume(self, volume: Obj, reason: str, message: str) -> None:
        await self._event(volume, type="Warning", reason=reason, message=message, kind="PersistentVolume")
        await self._set_volume_phase(volume, "Failed", message=message)

    async def _unbind(self, volume: Obj) -> None:
        """unbindVolume: a volume the controller bound goes back to Available, claimRef cleared."""
        updated = copy.deepcopy(dict(volume))
        updated.setdefault("spec", {}).pop("claimRef", None)
        updated["metadata"].get("annotations", {}).pop(ANN_BOUND_BY_CONTROLLER, None)
        volume = await self._client.replace(PERSISTENT_VOLUMES, updated)
        await self._set_volume_phase(volume, "Available")

    async def _event(
        self,
        obj: Obj,
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        kind: str = "PersistentVolumeClaim",
    ) -> None:
        await self._recorder.event(_as_event_object(obj, kind), type=type, reason=reason, message=message)


def new_controller(ctx: ControllerContext) -> PersistentVolumeController:
    return PersistentVolumeController(ctx)
