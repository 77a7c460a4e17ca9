"""PersistentVolumes and their claims as the scheduler reads them (upstream's
``component-helpers/storage/volume`` and ``pkg/controller/volume/persistentvolume/util``).

Pure functions over API objects, kept apart from the VolumeBinding plugin so its per-node logic
reads as upstream's ``FindPodVolumes``: which class a claim or volume is of, whether a claim is
bound, whether a volume's node affinity admits a node, whether a class's ``allowedTopologies``
does, and :func:`find_matching_volume` — the smallest Available volume that fits a claim on a
node, or the one already pre-bound to it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from fractions import Fraction
from typing import Any

from control.scheduler.quantity import QuantityError, parse_quantity
from control.scheduler.selectors import InvalidSelectorError, LabelSelector, NodeSelector

SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

Obj = Mapping[str, Any]


def metadata(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations(obj: Obj) -> Obj:
    return metadata(obj).get("annotations") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def claim_class(claim: Obj) -> str:
    """``GetPersistentVolumeClaimClass``: the beta annotation wins over ``spec.storageClassName``."""
    notes = annotations(claim)
    if BETA_STORAGE_CLASS_ANNOTATION in notes:
        return notes[BETA_STORAGE_CLASS_ANNOTATION] or ""
    return _spec(claim).get("storageClassName") or ""


def volume_class(volume: Obj) -> str:
    """``GetPersistentVolumeClass``: the same rule for a volume."""
    notes = annotations(volume)
    if BETA_STORAGE_CLASS_ANNOTATION in notes:
        return notes[BETA_STORAGE_CLASS_ANNOTATION] or ""
    return _spec(volume).get("storageClassName") or ""


def is_fully_bound(claim: Obj) -> bool:
    """``isPVCFullyBound``: a volume named and the PV controller's bind-completed annotation."""
    return bool(_spec(claim).get("volumeName")) and BIND_COMPLETED_ANNOTATION in annotations(claim)


def is_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """``IsVolumeBoundToClaim``: the volume's claimRef names the claim (and its uid, if it has one)."""
    ref = _spec(volume).get("claimRef")
    if not ref:
        return False
    claim_meta = metadata(claim)
    if (ref.get("name"), ref.get("namespace")) != (claim_meta.get("name"), claim_meta.get("namespace")):
        return False
    return not ref.get("uid") or ref.get("uid") == claim_meta.get("uid")


def node_affinity_allows(volume: Obj, *, node_name: str, labels: Mapping[str, str]) -> bool:
    """``CheckNodeAffinity``: the volume's ``spec.nodeAffinity.required`` admits the node (no
    affinity admits every node; one that cannot be evaluated admits none)."""
    required = (_spec(volume).get("nodeAffinity") or {}).get("required")
    if required is None:
        return True
    try:
        return NodeSelector(required, path="spec.nodeAffinity.required").matches(node_name, labels)
    except InvalidSelectorError:
        return False


def topology_allows(storage_class: Obj, labels: Mapping[str, str]) -> bool:
    """``MatchTopologySelectorTerms``: no terms admit every node; else any term whose every
    ``matchLabelExpressions`` entry has the node's label among its values."""
    terms = storage_class.get("allowedTopologies") or ()
    if not terms:
        return True
    for term in terms:
        expressions = term.get("matchLabelExpressions") or ()
        if all(labels.get(expr.get("key")) in (expr.get("values") or ()) for expr in expressions):
            return True
    return False


def storage_of(obj: Mapping[str, Any] | None) -> Fraction:
    """The ``storage`` entry of a capacity or requests map (0 when absent or unreadable)."""
    try:
        return parse_quantity((obj or {}).get("storage", "0"))
    except QuantityError:
        return Fraction(0)


def claim_request(claim: Obj) -> Fraction:
    return storage_of((_spec(claim).get("resources") or {}).get("requests"))


def find_matching_volume(
    claim: Obj,
    volumes: Iterable[Obj],
    *,
    node_name: str,
    labels: Mapping[str, str],
    excluded: Collection[str],
) -> Obj | None:
    """``FindMatchingVolume`` on the scheduler's path: the volume pre-bound to ``claim`` if one is
    (None if that one cannot be on this node), else the smallest volume that is Available, not
    being deleted, not in ``excluded`` (chosen for the pod's other claims), of the claim's class and
    volume mode, large enough, matching the claim's selector and access modes, and allowed on the
    node."""
    requested = claim_request(claim)
    wanted_class = claim_class(claim)
    claim_spec = _spec(claim)
    wanted_mode = claim_spec.get("volumeMode") or "Filesystem"
    wanted_access = set(claim_spec.get("accessModes") or ())
    try:
        selector = (
            LabelSelector.parse(claim_spec["selector"], path="spec.selector")
            if claim_spec.get("selector") is not None
            else None
        )
    except InvalidSelectorError:
        return None
    smallest: Obj | None = None
    smallest_size = Fraction(0)
    for volume in volumes:
        name = metadata(volume).get("name") or ""
        spec = _spec(volume)
        if name in excluded:
            continue
        if spec.get("claimRef") and not is_bound_to_claim(volume, claim):
            continue
        size = storage_of(spec.get("capacity"))
        if size < requested or (spec.get("volumeMode") or "Filesystem") != wanted_mode:
            continue
        if metadata(volume).get("deletionTimestamp"):
            continue
        allowed = node_affinity_allows(volume, node_name=node_name, labels=labels)
        if is_bound_to_claim(volume, claim):
            return volume if allowed else None
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches(metadata(volume).get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class or not allowed:
            continue
        if not wanted_access <= set(spec.get("accessModes") or ()):
            continue
        if smallest is None or size < smallest_size:
            smallest, smallest_size = volume, size
    return smallest


def volume_bound_to(volume: Obj, claim: Obj) -> dict[str, Any] | None:
    """``GetBindVolumeToClaim``: a copy of ``volume`` pre-bound to ``claim`` (its ``claimRef``, and
    ``pv.kubernetes.io/bound-by-controller`` when the claim was not already named there); None when
    the volume already says exactly that."""
    claim_meta = metadata(claim)
    ref = _spec(volume).get("claimRef") or {}
    named = is_bound_to_claim(volume, claim)
    fresh_ref = (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
        claim_meta.get("name"),
        claim_meta.get("namespace"),
        claim_meta.get("uid"),
    )
    mark = not named and BOUND_BY_CONTROLLER_ANNOTATION not in annotations(volume)
    if not fresh_ref and not mark:
        return None
    changed: dict[str, Any] = {
        **volume,
        "metadata": {**metadata(volume), "annotations": dict(annotations(volume))},
        "spec": dict(_spec(volume)),
    }
    if fresh_ref:
        changed["spec"]["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "namespace": claim_meta.get("namespace"),
            "name": claim_meta.get("name"),
            "uid": claim_meta.get("uid"),
            "apiVersion": "v1",
            "resourceVersion": claim_meta.get("resourceVersion"),
        }
    if mark:
        changed["metadata"]["annotations"][BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
    return changed
