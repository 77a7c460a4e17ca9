"""core/v1 PersistentVolume and PersistentVolumeClaim: defaults, validation (upstream's messages
from pkg/apis/core/validation, create and update) and the ``kubectl get pv,pvc`` columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.printers import column_definitions, row_cells
from control.resources.registry import ResourceType
from control.resources.validation import validate

REGISTRY = builtin_registry()
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def kind(plural: str) -> ResourceType:
    found = REGISTRY.lookup(group="", version="v1", plural=plural)
    assert found is not None
    return found


PV = kind("persistentvolumes")
PVC = kind("persistentvolumeclaims")


def pv(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/srv/pv"},
    }
    base.update(spec)
    return {"metadata": {"name": "pv-1"}, "spec": {k: v for k, v in base.items() if v is not None}}


def pvc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    return {
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def messages(rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None = None) -> list[str]:
    obj = copy.deepcopy(obj)
    apply_defaults(rt, obj, old=old)
    return [error.message() for error in validate(rt, obj, old=old)]


def stored(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(rt, obj)
    obj["metadata"].update(resourceVersion="7", uid="uid-1", creationTimestamp="2024-06-01T11:00:00Z")
    return obj


# --- defaults ----------------------------------------------------------------------------------------


def test_a_static_volume_defaults_to_retain_filesystem_and_pending() -> None:
    obj = pv()
    obj["status"] = {}
    apply_defaults(PV, obj)
    assert obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"] == {"phase": "Pending"}


def test_explicit_volume_fields_are_kept() -> None:
    obj = pv(persistentVolumeReclaimPolicy="Delete", volumeMode="Block")
    apply_defaults(PV, obj)
    assert (obj["spec"]["persistentVolumeReclaimPolicy"], obj["spec"]["volumeMode"]) == ("Delete", "Block")


def test_a_claim_defaults_to_filesystem_and_pending() -> None:
    obj = pvc()
    obj["status"] = {}
    apply_defaults(PVC, obj)
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"] == {"phase": "Pending"}
    assert "storageClassName" not in obj["spec"]  # admission chooses the default class, not defaulting


# --- PersistentVolume validation ----------------------------------------------------------------------


def test_a_valid_volume_passes() -> None:
    assert messages(PV, pv()) == []
    assert messages(PV, pv(hostPath=None, nfs={"server": "nas", "path": "/export"})) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"accessModes": None},
            ["spec.accessModes: Required value"],
        ),
        (
            {"accessModes": ["ReadWriteSometimes"]},
            [
                'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
                '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'
            ],
        ),
        (
            {"accessModes": ["ReadWriteOncePod", "ReadWriteOnce"]},
            ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"],
        ),
        (
            {"capacity": None},
            [
                "spec.capacity: Required value",
                'spec.capacity: Unsupported value: core.ResourceList(nil): supported values: "storage"',
            ],
        ),
        (
            {"capacity": {"storage": "0"}},
            ['spec.capacity[storage]: Invalid value: "0": must be greater than zero'],
        ),
        (
            {"hostPath": None},
            ["spec: Required value: must specify a volume type"],
        ),
        (
            {"nfs": {"server": "nas", "path": "/x"}},
            ["spec.nfs: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            {"hostPath": {"path": "/srv/../etc"}},
            ["spec.hostPath.path: Invalid value: \"/srv/../etc\": must not contain '..'"],
        ),
        (
            {"persistentVolumeReclaimPolicy": "Shred"},
            [
                'spec.persistentVolumeReclaimPolicy: Unsupported value: "Shred": supported values: '
                '"Delete", "Recycle", "Retain"'
            ],
        ),
        (
            {"volumeMode": "Raw"},
            ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
        ),
        (
            {"storageClassName": "Fast_Disks"},
            [
                'spec.storageClassName: Invalid value: "Fast_Disks": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
        (
            {"hostPath": None, "local": {"path": "/mnt/disk"}},
            ["spec.nodeAffinity: Required value: Local volume requires node affinity"],
        ),
        (
            {"nodeAffinity": {}},
            ["spec.nodeAffinity.required: Required value: must specify required node constraints"],
        ),
        (
            {"nodeAffinity": {"required": {"nodeSelectorTerms": []}}},
            [
                "spec.nodeAffinity.required.nodeSelectorTerms: Required value: "
                "must have at least one node selector term"
            ],
        ),
        (
            {"persistentVolumeReclaimPolicy": "Recycle", "hostPath": {"path": "/"}},
            [
                "spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"
            ],
        ),
    ],
    ids=lambda value: str(value)[:60],
)
def test_volume_errors_use_upstream_messages(spec: dict[str, Any], expected: list[str]) -> None:
    assert messages(PV, pv(**spec)) == expected


def test_volume_source_and_mode_are_immutable_but_claim_ref_is_not() -> None:
    old = stored(PV, pv())
    rebound = copy.deepcopy(old)
    rebound["spec"]["claimRef"] = {"namespace": "default", "name": "data", "uid": "u"}
    assert messages(PV, rebound, old=old) == []
    moved = copy.deepcopy(old)
    moved["spec"]["hostPath"] = {"path": "/elsewhere"}
    assert messages(PV, moved, old=old) == [
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"
        "spec.hostPath.path"
    ]
    block = copy.deepcopy(old)
    block["spec"]["volumeMode"] = "Block"
    assert messages(PV, block, old=old) == ['volumeMode: Invalid value: "Block": field is immutable']


def test_node_affinity_may_be_set_once_but_not_changed() -> None:
    old = stored(PV, pv())
    affinity = {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}
            ]
        }
    }
    added = copy.deepcopy(old)
    added["spec"]["nodeAffinity"] = affinity
    assert messages(PV, added, old=old) == []
    old_with = stored(PV, pv(nodeAffinity=affinity))
    changed = copy.deepcopy(old_with)
    changed["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [
        "b"
    ]
    assert [m.split(":")[0] for m in messages(PV, changed, old=old_with)] == ["nodeAffinity"]


# --- PersistentVolumeClaim validation -------------------------------------------------------------------


def test_a_valid_claim_passes() -> None:
    assert messages(PVC, pvc()) == []
    assert messages(PVC, pvc(storageClassName="", selector={"matchLabels": {"tier": "gold"}})) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"accessModes": None}, ["spec.accessModes: Required value: at least 1 access mode is required"]),
        ({"accessModes": []}, ["spec.accessModes: Required value: at least 1 access mode is required"]),
        (
            {"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"]},
            ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"],
        ),
        ({"resources": None}, ["spec.resources[storage]: Required value"]),
        ({"resources": {"requests": {"cpu": "1"}}}, ["spec.resources[storage]: Required value"]),
        (
            {"resources": {"requests": {"storage": "-1Gi"}}},
            ['spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero'],
        ),
        (
            {"resources": {"requests": {"storage": "lots"}}},
            [
                'spec.resources[storage]: Invalid value: "lots": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            ],
        ),
        (
            {"volumeMode": "Raw"},
            ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
        ),
        (
            {"selector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}},
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` "
                "is 'In' or 'NotIn'"
            ],
        ),
    ],
    ids=lambda value: str(value)[:60],
)
def test_claim_errors_use_upstream_messages(spec: dict[str, Any], expected: list[str]) -> None:
    assert messages(PVC, pvc(**spec)) == expected


def test_a_claim_without_namespace_or_name_is_refused() -> None:
    obj = pvc()
    obj["metadata"] = {"name": "", "namespace": ""}
    assert messages(PVC, obj) == [
        "metadata.name: Required value: name or generateName is required",
        "metadata.namespace: Required value",
    ]


def test_claim_spec_is_immutable_except_volume_name_once_and_a_class_once() -> None:
    old = stored(PVC, pvc())
    bound = copy.deepcopy(old)
    bound["spec"]["volumeName"] = "pv-1"
    assert messages(PVC, bound, old=old) == []  # the PV controller sets it once
    old_bound = stored(PVC, pvc(volumeName="pv-1"))
    rebound = copy.deepcopy(old_bound)
    rebound["spec"]["volumeName"] = "pv-2"
    assert messages(PVC, rebound, old=old_bound) == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims\nspec.volumeName"
    ]
    classed = copy.deepcopy(old)
    classed["spec"]["storageClassName"] = "standard"
    assert messages(PVC, classed, old=old) == []  # a nil class may be set (retroactive default class)
    old_classed = stored(PVC, pvc(storageClassName="standard"))
    reclassed = copy.deepcopy(old_classed)
    reclassed["spec"]["storageClassName"] = "fast"
    assert [m.split("\n")[1] for m in messages(PVC, reclassed, old=old_classed)] == ["spec.storageClassName"]
    remoded = copy.deepcopy(old)
    remoded["spec"]["accessModes"] = ["ReadWriteMany"]
    assert messages(PVC, remoded, old=old)[0].endswith("\nspec.accessModes[0]")


def test_only_a_bound_claim_may_grow_and_none_may_shrink() -> None:
    old = stored(PVC, pvc(volumeName="pv-1"))
    old["status"] = {"phase": "Bound"}
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert messages(PVC, grown, old=old) == []
    shrunk = copy.deepcopy(old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "500Mi"
    assert messages(PVC, shrunk, old=old) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    ]
    pending = stored(PVC, pvc())
    pending["status"] = {"phase": "Pending"}
    grown_pending = copy.deepcopy(pending)
    grown_pending["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert messages(PVC, grown_pending, old=pending)[0].endswith("\nspec.resources.requests.storage")


# --- printing -----------------------------------------------------------------------------------------


def test_persistent_volume_columns_and_cells() -> None:
    names = [column["name"] for column in column_definitions(PV)]
    assert names == [
        "Name",
        "Capacity",
        "Access Modes",
        "Reclaim Policy",
        "Status",
        "Claim",
        "StorageClass",
        "VolumeAttributesClass",
        "Reason",
        "Age",
        "VolumeMode",
    ]
    assert [column["priority"] for column in column_definitions(PV)][-1] == 1
    obj = stored(
        PV, pv(accessModes=["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"], storageClassName="standard")
    )
    obj["metadata"]["creationTimestamp"] = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj["spec"]["claimRef"] = {"namespace": "default", "name": "data"}
    obj["status"] = {"phase": "Bound"}
    assert row_cells(PV, obj, now=NOW) == [
        "pv-1",
        "1Gi",
        "RWO,RWX",
        "Retain",
        "Bound",
        "default/data",
        "standard",
        "<unset>",
        "",
        "5m",
        "Filesystem",
    ]
    obj["metadata"]["deletionTimestamp"] = "2024-06-01T12:00:00Z"
    obj["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "legacy"}
    del obj["spec"]["claimRef"]
    cells = row_cells(PV, obj, now=NOW)
    assert (cells[4], cells[5], cells[6]) == ("Terminating", "", "legacy")


def test_persistent_volume_claim_columns_and_cells() -> None:
    names = [column["name"] for column in column_definitions(PVC)]
    assert names == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
        "VolumeAttributesClass",
        "Age",
        "VolumeMode",
    ]
    pending = stored(PVC, pvc(storageClassName="standard"))
    pending["status"] = {"phase": "Pending"}
    pending["metadata"]["creationTimestamp"] = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # An unbound claim shows neither what it asked for nor access modes.
    assert row_cells(PVC, pending, now=NOW) == [
        "data",
        "Pending",
        "",
        "",
        "",
        "standard",
        "<unset>",
        "30s",
        "Filesystem",
    ]
    bound = copy.deepcopy(pending)
    bound["spec"]["volumeName"] = "pvc-1"
    bound["status"] = {
        "phase": "Bound",
        "capacity": {"storage": "1024Mi"},
        "accessModes": ["ReadWriteOncePod"],
    }
    assert row_cells(PVC, bound, now=NOW)[:5] == ["data", "Bound", "pvc-1", "1Gi", "RWOP"]
