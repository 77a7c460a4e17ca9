"""The storage admission plugins: the default StorageClass of a claim, the protection finalizers
of claims and volumes, and the resize check of claims (upstream's
plugin/pkg/admission/storage/storageclass/setdefault, .../storageobjectinuseprotection and
.../persistentvolume/resize).

The first two act on CREATE only, as upstream's handlers do, and all three only on the object
itself (never a subresource):

- ``DefaultStorageClass``: a PersistentVolumeClaim that names no class — no
  ``spec.storageClassName`` at all (an empty string is a choice: "no class") and no beta
  ``volume.beta.kubernetes.io/storage-class`` annotation — gets the default class: the
  StorageClass annotated ``storageclass.kubernetes.io/is-default-class: "true"`` (or the beta
  annotation). With several defaults the newest wins (ties: the smaller name), as upstream
  since 1.26; with none the claim is left alone.
- ``StorageObjectInUseProtection``: every new PersistentVolumeClaim gets the
  ``kubernetes.io/pvc-protection`` finalizer and every new PersistentVolume
  ``kubernetes.io/pv-protection``, so deleting one that is in use only marks it; the
  pvc-protection and pv-protection controllers remove the finalizers once nothing uses it.

- ``PersistentVolumeClaimResize``: growing a bound claim's ``spec.resources.requests.storage``
  is a 403 unless its StorageClass (the same before and after, not "") has
  ``allowVolumeExpansion: true`` (upstream's plugin/pkg/admission/storage/persistentvolume/resize,
  on UPDATE; shrinking is left to validation). kubelab expands no volume, so with the lab's
  classes a resize is refused up front, as upstream refuses it for classes that cannot expand.

The classes are read from the store directly (the API server has no informers): one prefix
list per claim created, which is small next to the write itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.resource_store import ResourceStore
from control.resources.validation import InvalidQuantityError, Quantity

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def _created(request: AdmissionRequest, plural: str) -> dict[str, Any] | None:
    """The core/v1 ``plural`` object being created, or None for any other request."""
    rt = request.rt
    if rt.group or rt.plural != plural or request.subresource or request.operation != CREATE:
        return None
    return request.obj


def is_default_class(storage_class: dict[str, Any]) -> bool:
    """Upstream's IsDefaultAnnotation: either annotation set to exactly "true"."""
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
        or annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"
    )


def default_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Upstream's GetDefaultClass: the newest default class (ties: the smaller name)."""
    defaults = [storage_class for storage_class in classes if is_default_class(storage_class)]
    if not defaults:
        return None
    # RFC 3339 UTC timestamps of one format sort as strings.
    defaults.sort(key=lambda sc: sc["metadata"].get("name", ""))
    defaults.sort(key=lambda sc: sc["metadata"].get("creationTimestamp", ""), reverse=True)
    return defaults[0]


class DefaultStorageClass:
    """Sets ``spec.storageClassName`` of a new claim that names no class to the default class."""

    resources = frozenset({("", "persistentvolumeclaims")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        classes = objects.registry.lookup(group="storage.k8s.io", version="v1", plural="storageclasses")
        if classes is None:
            raise ValueError("the registry has no storage.k8s.io/v1 storageclasses")
        self._classes = classes

    async def mutate(self, request: AdmissionRequest) -> None:
        claim = _created(request, "persistentvolumeclaims")
        if claim is None:
            return
        spec = claim.setdefault("spec", {})
        annotations = (claim.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is not None or BETA_STORAGE_CLASS_ANNOTATION in annotations:
            return
        listing = await self.objects.store.list(self._classes.storage_prefix)
        chosen = default_class([orjson.loads(kv.value) for kv in listing.items])
        if chosen is not None:
            spec["storageClassName"] = chosen["metadata"]["name"]


class StorageObjectInUseProtection:
    """Adds the protection finalizer to every new PersistentVolumeClaim and PersistentVolume."""

    resources = frozenset({("", "persistentvolumeclaims"), ("", "persistentvolumes")})

    async def mutate(self, request: AdmissionRequest) -> None:
        for plural, finalizer in (
            ("persistentvolumeclaims", PVC_PROTECTION_FINALIZER),
            ("persistentvolumes", PV_PROTECTION_FINALIZER),
        ):
            obj = _created(request, plural)
            if obj is None:
                continue
            metadata = obj.setdefault("metadata", {})
            finalizers = metadata.get("finalizers")
            if not isinstance(finalizers, list):
                finalizers = []
            if finalizer not in finalizers:
                metadata["finalizers"] = [*finalizers, finalizer]


def claim_class(claim: dict[str, Any]) -> str:
    """Upstream's GetPersistentVolumeClaimClass: the beta annotation, else ``spec.storageClassName``."""
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    if BETA_STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_STORAGE_CLASS_ANNOTATION])
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def _requested_storage(claim: dict[str, Any]) -> Quantity | None:
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    try:
        return Quantity.parse(requests["storage"]) if "storage" in requests else None
    except InvalidQuantityError:
        return None  # validation already refused it


class PersistentVolumeClaimResize:
    """Refuses growing a claim unless its class allows volume expansion."""

    resources = frozenset({("", "persistentvolumeclaims")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        classes = objects.registry.lookup(group="storage.k8s.io", version="v1", plural="storageclasses")
        if classes is None:
            raise ValueError("the registry has no storage.k8s.io/v1 storageclasses")
        self._classes = classes

    async def validate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        claim, old = request.obj, request.old
        if rt.group or rt.plural != "persistentvolumeclaims" or request.subresource:
            return
        if request.operation != UPDATE or claim is None or old is None:
            return
        new_size, old_size = _requested_storage(claim), _requested_storage(old)
        if new_size is None or old_size is None or new_size.value <= old_size.value:
            return
        # (an unbound claim's spec is immutable: validation has refused its resize already)
        if not await self._allows_resize(claim, old):
            raise forbidden(
                request,
                "only dynamically provisioned pvc can be resized and "
                "the storageclass that provisions the pvc must support resize",
            )

    async def _allows_resize(self, claim: dict[str, Any], old: dict[str, Any]) -> bool:
        name = claim_class(claim)
        if not name or name != claim_class(old):
            return False
        kv = await self.objects.store.get(self.objects.key(self._classes, namespace="", name=name))
        return kv is not None and orjson.loads(kv.value).get("allowVolumeExpansion") is True
