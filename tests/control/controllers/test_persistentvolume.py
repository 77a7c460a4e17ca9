"""The PV controller (binder), the local-path provisioner and the protection controllers,
against the real API server (admission included: default class, protection finalizers).

No scheduler runs here: tests play it by setting ``volume.kubernetes.io/selected-node`` on a
claim of a WaitForFirstConsumer class, and play the kubelet by binding pods to a node name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from control.client import errors
from control.controllers import persistentvolume, persistentvolume_localpath, pvcprotection, pvprotection
from control.controllers.kinds import (
    EVENTS,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    PODS,
    STORAGE_CLASSES,
)
from control.controllers.manager import ControllerContext
from control.controllers.persistentvolume import find_best_match
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

LOCAL_PATH = "kubelab.dev/local-path"


def with_storage_dir(build: Any, storage_dir: Path) -> Any:
    def builder(ctx: ControllerContext) -> Any:
        options = dataclasses.replace(ctx.options, storage_dir=str(storage_dir))
        return build(dataclasses.replace(ctx, options=options))

    return builder


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
async def cluster(apiserver, storage_dir):  # noqa: F811
    async with running(
        apiserver,
        persistentvolume.new_controller,
        with_storage_dir(persistentvolume_localpath.new_controller, storage_dir),
        pvcprotection.new_controller,
        pvprotection.new_controller,
    ) as cluster:
        yield cluster


# --- objects ----------------------------------------------------------------------------------------


async def create_class(
    cluster: Cluster, name: str, *, mode: str = "Immediate", reclaim: str = "Delete", default: bool = False
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if default:
        metadata["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    body = {
        "metadata": metadata,
        "provisioner": LOCAL_PATH,
        "volumeBindingMode": mode,
        "reclaimPolicy": reclaim,
    }
    return await cluster.client.create(STORAGE_CLASSES, body)


async def create_volume(
    cluster: Cluster,
    name: str,
    *,
    size: str = "1Gi",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    storage_class: str = "",
    labels: dict[str, str] | None = None,
    reclaim: str | None = None,
    claim_ref: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "hostPath": {"path": f"/srv/{name}"},
        "storageClassName": storage_class,
    }
    if reclaim:
        spec["persistentVolumeReclaimPolicy"] = reclaim
    if claim_ref:
        spec["claimRef"] = claim_ref
    return await cluster.client.create(
        PERSISTENT_VOLUMES, {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    )


async def create_claim(
    cluster: Cluster,
    name: str,
    *,
    size: str = "1Gi",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    storage_class: str | None = "",
    volume_name: str = "",
    selector: dict[str, Any] | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name:
        spec["volumeName"] = volume_name
    if selector:
        spec["selector"] = selector
    return await cluster.client.create(
        PERSISTENT_VOLUME_CLAIMS, {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
    )


async def claim(cluster: Cluster, name: str, namespace: str = "default") -> dict[str, Any]:
    return await cluster.client.get(PERSISTENT_VOLUME_CLAIMS, name, namespace=namespace)


async def volume(cluster: Cluster, name: str) -> dict[str, Any]:
    return await cluster.client.get(PERSISTENT_VOLUMES, name)


async def wait_claim_phase(cluster: Cluster, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await claim(cluster, name)
        return found if found.get("status", {}).get("phase") == phase else None

    return await cluster.wait_for(check, what=f"claim {name} to be {phase}")


async def wait_volume_phase(cluster: Cluster, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await volume(cluster, name)
        return found if found.get("status", {}).get("phase") == phase else None

    return await cluster.wait_for(check, what=f"volume {name} to be {phase}")


async def wait_event(
    cluster: Cluster, name: str, reason: str, namespace: str = "default", *, message: str | None = None
) -> dict[str, Any]:
    """The first event about ``name`` with ``reason`` (and ``message``, when given: a reason can
    come first with another message, e.g. a class the binder's cache has not seen yet)."""

    async def check() -> dict[str, Any] | None:
        listing = await cluster.client.list(EVENTS, namespace=namespace)
        for event in listing["items"]:
            if (
                event["involvedObject"].get("name") == name
                and event["reason"] == reason
                and (message is None or event["message"] == message)
            ):
                return event
        return None

    return await cluster.wait_for(check, what=f"a {reason} event about {name}")


async def set_selected_node(cluster: Cluster, name: str, node: str) -> None:
    await cluster.client.patch(
        PERSISTENT_VOLUME_CLAIMS,
        name,
        {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": node}}},
        namespace="default",
    )


async def create_pod_using(cluster: Cluster, name: str, claim_name: str, *, node: str = "node-1") -> None:
    body = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "busybox"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
        },
    }
    await cluster.client.create(PODS, body)


# --- static binding -------------------------------------------------------------------------------


async def test_a_claim_binds_the_smallest_matching_available_volume(cluster):
    await create_volume(cluster, "big", size="10Gi")
    await create_volume(cluster, "small", size="2Gi")
    await create_volume(cluster, "too-small", size="500Mi")
    await create_volume(cluster, "wrong-mode", size="2Gi", modes=("ReadOnlyMany",))
    await create_volume(cluster, "wrong-class", size="2Gi", storage_class="fast")
    for name in ("big", "small", "too-small", "wrong-mode", "wrong-class"):
        await wait_volume_phase(cluster, name, "Available")
    await create_claim(cluster, "data", size="1Gi")
    bound = await wait_claim_phase(cluster, "data", "Bound")
    assert bound["spec"]["volumeName"] == "small"
    annotations = bound["metadata"]["annotations"]
    assert annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert bound["status"]["capacity"] == {"storage": "2Gi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
    small = await wait_volume_phase(cluster, "small", "Bound")
    ref = small["spec"]["claimRef"]
    assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == (
        "PersistentVolumeClaim",
        "default",
        "data",
        bound["metadata"]["uid"],
    )
    assert small["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert small["status"]["lastPhaseTransitionTime"]
    assert (await volume(cluster, "big"))["status"]["phase"] == "Available"


async def test_a_volume_created_after_the_claim_is_found(cluster):
    await create_claim(cluster, "late")
    await wait_event(cluster, "late", "FailedBinding")
    event = await wait_event(cluster, "late", "FailedBinding")
    assert event["message"] == "no persistent volumes available for this claim and no storage class is set"
    assert (await claim(cluster, "late"))["status"]["phase"] == "Pending"
    await create_volume(cluster, "arrives")
    bound = await wait_claim_phase(cluster, "late", "Bound")
    assert bound["spec"]["volumeName"] == "arrives"


async def test_the_selector_limits_the_volumes_a_claim_binds(cluster):
    await create_volume(cluster, "plain", size="1Gi")
    await create_volume(cluster, "labelled", size="5Gi", labels={"tier": "gold"})
    await wait_volume_phase(cluster, "labelled", "Available")
    await wait_volume_phase(cluster, "plain", "Available")
    await create_claim(cluster, "picky", selector={"matchLabels": {"tier": "gold"}})
    bound = await wait_claim_phase(cluster, "picky", "Bound")
    assert bound["spec"]["volumeName"] == "labelled"


async def test_a_claim_naming_its_volume_binds_it_without_bound_by_controller(cluster):
    await create_volume(cluster, "chosen", size="5Gi")
    await create_claim(cluster, "named", volume_name="chosen")
    bound = await wait_claim_phase(cluster, "named", "Bound")
    assert "pv.kubernetes.io/bound-by-controller" not in bound["metadata"]["annotations"]
    assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert (await wait_volume_phase(cluster, "chosen", "Bound"))["spec"]["claimRef"]["name"] == "named"


async def test_a_claim_naming_a_volume_that_does_not_fit_waits_with_volume_mismatch(cluster):
    await create_volume(cluster, "tiny", size="100Mi")
    await wait_volume_phase(cluster, "tiny", "Available")
    await create_claim(cluster, "greedy", size="1Gi", volume_name="tiny")
    event = await wait_event(cluster, "greedy", "VolumeMismatch")
    assert event["type"] == "Warning"
    assert event["message"] == 'Cannot bind to requested volume "tiny": requested PV is too small'
    assert (await claim(cluster, "greedy"))["status"]["phase"] == "Pending"


async def test_a_volume_pre_bound_to_a_claim_goes_only_to_it(cluster):
    await create_volume(cluster, "reserved", claim_ref={"namespace": "default", "name": "owner"})
    await wait_volume_phase(cluster, "reserved", "Available")
    await create_claim(cluster, "stranger")
    await wait_event(cluster, "stranger", "FailedBinding")
    await create_claim(cluster, "owner")
    bound = await wait_claim_phase(cluster, "owner", "Bound")
    assert bound["spec"]["volumeName"] == "reserved"
    assert (await claim(cluster, "stranger"))["status"]["phase"] == "Pending"


# --- reclaiming -------------------------------------------------------------------------------------


async def test_retain_leaves_a_released_volume_that_is_not_reused(cluster):
    await create_volume(cluster, "kept", reclaim="Retain")
    await create_claim(cluster, "first")
    await wait_claim_phase(cluster, "first", "Bound")
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "first", namespace="default")
    await cluster.wait_gone(PERSISTENT_VOLUME_CLAIMS, "first", namespace="default")
    released = await wait_volume_phase(cluster, "kept", "Released")
    assert released["spec"]["claimRef"]["name"] == "first"  # kept, so no other claim gets the data
    await create_claim(cluster, "second")
    await wait_event(cluster, "second", "FailedBinding")
    assert (await volume(cluster, "kept"))["status"]["phase"] == "Released"


async def test_delete_of_a_volume_no_provisioner_made_fails_it(cluster):
    await create_volume(cluster, "static", reclaim="Delete")
    await create_claim(cluster, "user")
    await wait_claim_phase(cluster, "user", "Bound")
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "user", namespace="default")
    failed = await wait_volume_phase(cluster, "static", "Failed")
    assert failed["status"]["message"] == (
        'error getting deleter volume plugin for volume "static": no deletable volume plugin matched'
    )


async def test_a_bound_claim_whose_volume_is_deleted_is_lost(cluster):
    await create_volume(cluster, "doomed")
    await create_claim(cluster, "orphan")
    await wait_claim_phase(cluster, "orphan", "Bound")
    await cluster.client.delete(PERSISTENT_VOLUMES, "doomed")
    # pv-protection holds the volume while it is Bound: it only gets a deletionTimestamp ...
    held = await cluster.wait_for(
        lambda: _deleting(volume(cluster, "doomed")), what="the volume to be marked for deletion"
    )
    assert held["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    # ... until a user forces it away; then the claim has lost its volume.
    await cluster.client.patch(PERSISTENT_VOLUMES, "doomed", {"metadata": {"finalizers": None}})
    lost = await wait_claim_phase(cluster, "orphan", "Lost")
    assert lost["spec"]["volumeName"] == "doomed"
    event = await wait_event(cluster, "orphan", "ClaimLost")
    assert event["message"] == "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


async def _deleting(pending: Any) -> dict[str, Any] | None:
    found = await pending
    return found if found["metadata"].get("deletionTimestamp") else None


# --- dynamic provisioning -----------------------------------------------------------------------------


async def test_immediate_class_provisions_a_directory_volume_at_once(cluster, storage_dir):
    await create_class(cluster, "fast", reclaim="Delete")
    created = await create_claim(cluster, "dyn", size="3Gi", storage_class="fast")
    uid = created["metadata"]["uid"]
    bound = await wait_claim_phase(cluster, "dyn", "Bound")
    assert bound["spec"]["volumeName"] == f"pvc-{uid}"
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == LOCAL_PATH
    assert bound["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-provisioner"] == LOCAL_PATH
    provisioned = await wait_volume_phase(cluster, f"pvc-{uid}", "Bound")
    spec = provisioned["spec"]
    path = storage_dir / f"pvc-{uid}_default_dyn"
    assert spec["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert spec["capacity"] == {"storage": "3Gi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["storageClassName"] == "fast"
    assert "nodeAffinity" not in spec
    assert provisioned["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == LOCAL_PATH
    assert provisioned["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert path.is_dir()
    for reason in ("ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"):
        await wait_event(cluster, "dyn", reason)
    succeeded = await wait_event(cluster, "dyn", "ProvisioningSucceeded")
    assert succeeded["message"] == f"Successfully provisioned volume pvc-{uid}"


async def test_wait_for_first_consumer_provisions_on_the_selected_node(cluster, storage_dir):
    await create_class(cluster, "local", mode="WaitForFirstConsumer")
    created = await create_claim(cluster, "wffc", storage_class="local")
    event = await wait_event(cluster, "wffc", "WaitForFirstConsumer")
    assert event["message"] == "waiting for first consumer to be created before binding"
    assert (await claim(cluster, "wffc"))["status"]["phase"] == "Pending"
    assert not storage_dir.exists() or not any(storage_dir.iterdir())
    await set_selected_node(cluster, "wffc", "node-2")
    bound = await wait_claim_phase(cluster, "wffc", "Bound")
    provisioned = await volume(cluster, bound["spec"]["volumeName"])
    assert provisioned["metadata"]["name"] == f"pvc-{created['metadata']['uid']}"
    assert provisioned["spec"]["nodeAffinity"] == {
        "required": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}
                    ]
                }
            ]
        }
    }


async def test_reclaim_delete_removes_the_directory_and_the_volume(cluster, storage_dir):
    await create_class(cluster, "scratch", reclaim="Delete")
    created = await create_claim(cluster, "temp", storage_class="scratch")
    name = f"pvc-{created['metadata']['uid']}"
    await wait_claim_phase(cluster, "temp", "Bound")
    path = storage_dir / f"{name}_default_temp"
    (path / "file.txt").write_text("data")
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "temp", namespace="default")
    await cluster.wait_gone(PERSISTENT_VOLUMES, name)
    assert not path.exists()


async def test_reclaim_retain_of_a_provisioned_volume_keeps_directory_and_volume(cluster, storage_dir):
    await create_class(cluster, "keep", reclaim="Retain")
    created = await create_claim(cluster, "precious", storage_class="keep")
    name = f"pvc-{created['metadata']['uid']}"
    await wait_claim_phase(cluster, "precious", "Bound")
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "precious", namespace="default")
    released = await wait_volume_phase(cluster, name, "Released")
    assert released["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert (storage_dir / f"{name}_default_precious").is_dir()


async def test_a_missing_class_is_reported_and_the_claim_waits(cluster):
    await create_claim(cluster, "classless", storage_class="nowhere")
    event = await wait_event(cluster, "classless", "ProvisioningFailed")
    assert event["message"] == 'storageclass.storage.k8s.io "nowhere" not found'
    await create_class(cluster, "nowhere")
    await wait_claim_phase(cluster, "classless", "Bound")


async def test_a_claim_with_no_class_gets_the_default_class_at_admission(cluster):
    await create_class(cluster, "older", default=True)
    await create_class(cluster, "standard", default=True)  # the newest default wins
    created = await create_claim(cluster, "defaulted", storage_class=None)
    assert created["spec"]["storageClassName"] in ("standard", "older")
    explicit = await create_claim(cluster, "no-class", storage_class="")
    assert explicit["spec"]["storageClassName"] == ""  # "" chooses no class; it is not defaulted
    await wait_claim_phase(cluster, "defaulted", "Bound")


# --- protection --------------------------------------------------------------------------------------


async def test_a_claim_in_use_is_only_deleted_once_its_pod_is_gone(cluster):
    await create_volume(cluster, "shared")
    created = await create_claim(cluster, "used")
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    await wait_claim_phase(cluster, "used", "Bound")
    await create_pod_using(cluster, "consumer", "used")
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "used", namespace="default")
    terminating = await cluster.wait_for(
        lambda: _deleting(claim(cluster, "used")), what="the claim to be marked for deletion"
    )
    assert terminating["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    controller = next(c for c in cluster.controllers if c.name == "persistentvolumeclaim-protection")
    await controller.reconcile("default/used")
    assert (await claim(cluster, "used"))["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    await cluster.client.delete(PODS, "consumer", namespace="default", grace_period_seconds=0)
    await cluster.wait_gone(PERSISTENT_VOLUME_CLAIMS, "used", namespace="default")
    await wait_volume_phase(cluster, "shared", "Released")


async def test_an_unscheduled_pod_does_not_hold_a_claim(cluster):
    await create_claim(cluster, "loose")
    await cluster.client.create(
        PODS,
        {
            "metadata": {"name": "pending", "namespace": "default"},
            "spec": {
                "containers": [{"name": "app", "image": "busybox"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "loose"}}],
            },
        },
    )
    await cluster.client.delete(PERSISTENT_VOLUME_CLAIMS, "loose", namespace="default")
    await cluster.wait_gone(PERSISTENT_VOLUME_CLAIMS, "loose", namespace="default")


async def test_protection_finalizers_are_added_to_objects_that_lack_them(cluster):
    await create_volume(cluster, "bare")
    await create_claim(cluster, "bare")
    for resource, namespace, finalizer in (
        (PERSISTENT_VOLUMES, None, "kubernetes.io/pv-protection"),
        (PERSISTENT_VOLUME_CLAIMS, "default", "kubernetes.io/pvc-protection"),
    ):
        await cluster.client.patch(resource, "bare", {"metadata": {"finalizers": None}}, namespace=namespace)

        async def restored(resource=resource, namespace=namespace, finalizer=finalizer) -> bool:
            found = await cluster.client.get(resource, "bare", namespace=namespace)
            return found["metadata"].get("finalizers") == [finalizer]

        await cluster.wait_for(restored, what=f"{finalizer} to come back")


# --- without a storage directory, and pure matching ----------------------------------------------------


async def test_without_a_storage_directory_provisioning_fails_with_an_event(apiserver):  # noqa: F811
    async with running(
        apiserver, persistentvolume.new_controller, persistentvolume_localpath.new_controller
    ) as cluster:
        await create_class(cluster, "nodir")
        await create_claim(cluster, "stuck", storage_class="nodir")
        expected = (
            'failed to provision volume with StorageClass "nodir": '
            "no storage directory is configured for kubelab.dev/local-path"
        )
        event = await wait_event(cluster, "stuck", "ProvisioningFailed", message=expected)
        assert event["type"] == "Warning"
        with pytest.raises(errors.NotFoundError):
            await volume(cluster, f"pvc-{(await claim(cluster, 'stuck'))['metadata']['uid']}")


def _pv(name: str, size: str, *, phase: str = "Available", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], **spec},
        "status": {"phase": phase},
    }


def _pvc(size: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "c", "namespace": "ns", "uid": "u-1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec},
    }


def test_matching_skips_unavailable_deleting_and_block_volumes():
    volumes = [
        _pv("released", "1Gi", phase="Released"),
        dict(
            _pv("deleting", "1Gi"), metadata={"name": "deleting", "deletionTimestamp": "2025-01-01T00:00:00Z"}
        ),
        _pv("block", "1Gi", volumeMode="Block"),
        _pv("fits", "2Gi"),
    ]
    assert find_best_match(_pvc("1Gi"), volumes, delay_binding=False)["metadata"]["name"] == "fits"
    assert find_best_match(_pvc("1Gi"), volumes, delay_binding=True) is None
    assert find_best_match(_pvc("3Gi"), volumes, delay_binding=False) is None


def test_matching_prefers_a_volume_pre_bound_to_the_claim_even_when_delaying():
    prebound = _pv("mine", "10Gi", claimRef={"namespace": "ns", "name": "c", "uid": "u-1"})
    other = _pv("other-uid", "1Gi", claimRef={"namespace": "ns", "name": "c", "uid": "u-2"})
    assert find_best_match(_pvc("1Gi"), [other, prebound], delay_binding=True)["metadata"]["name"] == "mine"


def test_matching_with_a_bad_selector_finds_nothing():
    claim_spec = _pvc("1Gi", selector={"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    assert find_best_match(claim_spec, [_pv("fits", "2Gi")], delay_binding=False) is None


async def test_the_provisioner_never_deletes_outside_its_storage_directory(cluster, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    body = {
        "metadata": {"name": "foreign", "annotations": {"pv.kubernetes.io/provisioned-by": LOCAL_PATH}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": str(outside)},
            "claimRef": {"namespace": "default", "name": "gone", "uid": "no-such-claim"},
        },
    }
    await cluster.client.create(PERSISTENT_VOLUMES, body)
    await wait_volume_phase(cluster, "foreign", "Released")
    event = await wait_event(cluster, "foreign", "VolumeFailedDelete")
    assert event["message"] == (
        f"kubelab.dev/local-path deletes only directories under its storage directory, not {str(outside)!r}"
    )
    assert (outside / "keep.txt").read_text() == "mine"
    assert (await volume(cluster, "foreign"))["metadata"].get("deletionTimestamp") is None


def test_paths_inside_the_storage_directory(tmp_path):
    root = tmp_path / "storage"
    root.mkdir()
    assert persistentvolume_localpath._inside(root / "pvc-1_ns_c", root)
    assert not persistentvolume_localpath._inside(root, root)
    assert not persistentvolume_localpath._inside(root / ".." / "etc", root)
    assert not persistentvolume_localpath._inside(tmp_path / "storage-other", root)
