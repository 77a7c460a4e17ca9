"""VolumeBinding on its own: PreFilter's verdicts on the pod's claims, Filter's per-node reasons,
the whole FailedScheduling message through the framework, and Reserve/PreBind/Unreserve against a
binder that records what it is asked to do (the informer-backed binder is exercised by the
scheduler's API server tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from control.scheduler.framework import FitError, Framework, PreBindError
from control.scheduler.plugins import default_framework
from control.scheduler.plugins.volume_binding import (
    ERR_REASON_BIND_CONFLICT,
    ERR_REASON_NODE_CONFLICT,
    ERR_REASON_PV_NOT_EXIST,
    ERR_REASON_UNBOUND_IMMEDIATE,
    VolumeBinding,
)
from control.scheduler.podinfo import PodInfo
from control.scheduler.volumes import BIND_COMPLETED_ANNOTATION, SELECTED_NODE_ANNOTATION
from tests.control.scheduler.support import StaticListers, node, node_info, pod, run_filter

NODES = [node_info(node("n1")), node_info(node("n2", labels={"zone": "b"}))]


def storage_class(
    name: str, *, mode: str = "WaitForFirstConsumer", provisioner: str = "kubelab.dev/local-path"
):
    return {
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": mode,
        "reclaimPolicy": "Delete",
    }


def claim(
    name: str,
    *,
    class_name: str | None = "standard",
    volume: str | None = None,
    annotations: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}
    if class_name is not None:
        spec["storageClassName"] = class_name
    notes = dict(annotations or {})
    if volume:
        spec["volumeName"] = volume
        notes[BIND_COMPLETED_ANNOTATION] = "yes"
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": "1",
            "annotations": notes,
            **extra,
        },
        "spec": spec,
        "status": {"phase": "Bound" if volume else "Pending"},
    }


def volume(name: str, *, hosts: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "1Mi"}, "hostPath": {"path": f"/tmp/{name}"}}
    if hosts is not None:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": hosts}
                        ]
                    }
                ]
            }
        }
    return {"metadata": {"name": name}, "spec": spec}


def listers(*objects: dict[str, Any], classes: tuple[dict[str, Any], ...] = ()) -> StaticListers:
    found = StaticListers(
        storage_classes={c["metadata"]["name"]: c for c in (storage_class("standard"), *classes)}
    )
    for obj in objects:
        if "namespace" in obj["metadata"]:
            found.claims[f"default/{obj['metadata']['name']}"] = obj
        else:
            found.volumes[obj["metadata"]["name"]] = obj
    return found


def using(*claims: str, ephemeral: str | None = None, **extra: Any) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    volumes += [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if ephemeral:
        volumes.append({"name": ephemeral, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}})
    return pod("web-0", volumes=volumes, **extra)


def verdicts(found: StaticListers, pod_obj: dict[str, Any]) -> dict[str, tuple[str, ...] | None]:
    return run_filter(VolumeBinding(found), pod_obj, nodes=NODES)


def test_a_pod_without_claims_is_not_looked_at():
    assert verdicts(listers(), pod("plain", volumes=[{"name": "x", "emptyDir": {}}])) == {
        "n1": None,
        "n2": None,
    }


@pytest.mark.parametrize(
    ("objects", "pod_obj", "reason"),
    [
        ((), using("www-web-0"), 'persistentvolumeclaim "www-web-0" not found'),
        (
            (),
            using(ephemeral="scratchpad"),
            'waiting for ephemeral volume controller to create the persistentvolumeclaim "web-0-scratchpad"',
        ),
        (
            (claim("web-0-scratchpad"),),
            using(ephemeral="scratchpad"),
            "PVC default/web-0-scratchpad was not created for pod default/web-0 (pod is not owner)",
        ),
        (
            (claim("www-web-0", deletionTimestamp="2026-01-01T00:00:00Z"),),
            using("www-web-0"),
            'persistentvolumeclaim "www-web-0" is being deleted',
        ),
        (
            ({**claim("www-web-0", volume="pv-gone"), "status": {"phase": "Lost"}},),
            using("www-web-0"),
            'persistentvolumeclaim "www-web-0" bound to non-existent persistentvolume "pv-gone"',
        ),
        ((claim("www-web-0", class_name="fast"),), using("www-web-0"), ERR_REASON_UNBOUND_IMMEDIATE),
        ((claim("www-web-0", class_name=None),), using("www-web-0"), ERR_REASON_UNBOUND_IMMEDIATE),
        ((claim("www-web-0", class_name="missing"),), using("www-web-0"), ERR_REASON_UNBOUND_IMMEDIATE),
    ],
)
def test_pre_filter_rules_the_pod_out_everywhere(objects, pod_obj, reason):
    found = listers(*objects, classes=(storage_class("fast", mode="Immediate"),))
    assert verdicts(found, pod_obj) == {"n1": (reason,), "n2": (reason,)}


def test_a_prebound_claim_of_a_waiting_class_counts_as_immediate():
    prebound = claim("www-web-0")
    prebound["spec"]["volumeName"] = "pv-1"  # a volume named, no bind-completed yet
    assert verdicts(listers(prebound), using("www-web-0"))["n1"] == (ERR_REASON_UNBOUND_IMMEDIATE,)


def test_an_owned_ephemeral_claim_is_used():
    pod_obj = using(ephemeral="scratchpad")
    owned = claim(
        "web-0-scratchpad",
        ownerReferences=[
            {"kind": "Pod", "name": "web-0", "uid": pod_obj["metadata"]["uid"], "controller": True}
        ],
    )
    assert verdicts(listers(owned), pod_obj) == {"n1": None, "n2": None}


def test_a_bound_volume_keeps_the_pod_on_its_nodes():
    found = listers(claim("www-web-0", volume="pv-1"), volume("pv-1", hosts=["n2"]))
    assert verdicts(found, using("www-web-0")) == {"n1": (ERR_REASON_NODE_CONFLICT,), "n2": None}
    anywhere = listers(claim("www-web-0", volume="pv-1"), volume("pv-1"))
    assert verdicts(anywhere, using("www-web-0")) == {"n1": None, "n2": None}
    broken = volume("pv-1", hosts=["n2"])
    broken["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["operator"] = (
        "Near"
    )
    assert verdicts(listers(claim("www-web-0", volume="pv-1"), broken), using("www-web-0")) == {
        "n1": (ERR_REASON_NODE_CONFLICT,),
        "n2": (ERR_REASON_NODE_CONFLICT,),
    }


def test_a_claim_bound_to_a_missing_volume():
    found = listers(claim("a", volume="pv-gone"), claim("b", volume="pv-1"), volume("pv-1", hosts=["n2"]))
    assert verdicts(found, using("a", "b")) == {
        "n1": (ERR_REASON_NODE_CONFLICT, ERR_REASON_PV_NOT_EXIST),
        "n2": (ERR_REASON_PV_NOT_EXIST,),
    }


def test_waiting_claims_need_a_provisioner_allowed_on_the_node():
    assert verdicts(listers(claim("www-web-0")), using("www-web-0")) == {"n1": None, "n2": None}
    static = storage_class("local", provisioner="kubernetes.io/no-provisioner")
    found = listers(claim("www-web-0", class_name="local"), classes=(static,))
    assert verdicts(found, using("www-web-0")) == {
        "n1": (ERR_REASON_BIND_CONFLICT,),
        "n2": (ERR_REASON_BIND_CONFLICT,),
    }
    zoned = storage_class("zoned")
    zoned["allowedTopologies"] = [{"matchLabelExpressions": [{"key": "zone", "values": ["b"]}]}]
    found = listers(claim("www-web-0", class_name="zoned"), classes=(zoned,))
    assert verdicts(found, using("www-web-0")) == {"n1": (ERR_REASON_BIND_CONFLICT,), "n2": None}


def test_a_claim_with_a_selected_node_goes_only_there():
    chosen = claim("www-web-0", annotations={SELECTED_NODE_ANNOTATION: "n2"})
    assert verdicts(listers(chosen), using("www-web-0")) == {"n1": (ERR_REASON_BIND_CONFLICT,), "n2": None}


def test_failed_scheduling_messages_are_upstreams():
    missing = default_framework(listers())
    with pytest.raises(FitError) as caught:
        missing.schedule(PodInfo(using("www-web-0")), NODES)
    assert caught.value.message == (
        '0/2 nodes are available: persistentvolumeclaim "www-web-0" not found. '
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    assert caught.value.plugins == {"VolumeBinding"}
    immediate = default_framework(
        listers(claim("www-web-0", class_name="fast"), classes=(storage_class("fast", mode="Immediate"),))
    )
    with pytest.raises(FitError) as caught:
        immediate.schedule(PodInfo(using("www-web-0")), NODES)
    assert caught.value.message.startswith(
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
    )
    pinned = default_framework(
        listers(claim("www-web-0", volume="pv-1"), volume("pv-1", hosts=["elsewhere"]))
    )
    with pytest.raises(FitError) as caught:
        pinned.schedule(PodInfo(using("www-web-0")), NODES)
    assert caught.value.message.startswith(
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    )


def local_volume(name: str, *, host: str, size: str = "1Mi") -> dict[str, Any]:
    """A pre-made volume of the ``local`` class (no provisioner) on one node."""
    found = volume(name, hosts=[host])
    found["metadata"]["resourceVersion"] = "1"
    found["spec"].update(storageClassName="local", accessModes=["ReadWriteOnce"], capacity={"storage": size})
    found["status"] = {"phase": "Available"}
    return found


LOCAL = storage_class("local", provisioner="kubernetes.io/no-provisioner")


def test_an_available_volume_is_matched_on_its_node_before_provisioning():
    found = listers(
        claim("www-web-0", class_name="local"), local_volume("pv-n2", host="n2"), classes=(LOCAL,)
    )
    assert verdicts(found, using("www-web-0")) == {"n1": (ERR_REASON_BIND_CONFLICT,), "n2": None}
    both = listers(
        claim("a", class_name="local"),
        claim("b", class_name="local"),
        local_volume("pv-n2", host="n2"),
        classes=(LOCAL,),
    )
    assert verdicts(both, using("a", "b"))["n2"] == (ERR_REASON_BIND_CONFLICT,)  # one volume, two claims
    provisioned = listers(claim("www-web-0"), local_volume("pv-n2", host="n2"))
    assert verdicts(provisioned, using("www-web-0")) == {"n1": None, "n2": None}  # other class: provision


class RecordingBinder:
    """Records the selected nodes it is asked to write and applies them to the listers' claims; its
    ``wait`` re-checks once per ``settle`` call, as claim events would make it."""

    def __init__(self, found: StaticListers, *, lagging: bool = False) -> None:
        self.found = found
        self.lagging = lagging  # the write is not in the listers yet, as an informer may lag
        self.selected: list[tuple[str, str]] = []
        self.volumes: list[dict[str, Any]] = []
        self._wake = asyncio.Event()

    async def update_volume(self, volume: dict[str, Any]) -> None:
        self.volumes.append(volume)

    async def select_node(self, *, namespace: str, name: str, node: str) -> str:
        self.selected.append((name, node))
        metadata = self.found.claims[f"{namespace}/{name}"]["metadata"]
        version = str(int(metadata.get("resourceVersion") or 0) + 1)
        if not self.lagging:
            metadata["annotations"][SELECTED_NODE_ANNOTATION] = node
            metadata["resourceVersion"] = version
        return version

    def settle(self, change: Callable[[], None]) -> None:
        change()
        self._wake.set()

    async def wait(self, ready: Callable[[], bool], *, timeout: float) -> bool:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                while not ready():
                    self._wake.clear()
                    await self._wake.wait()
        except TimeoutError:
            return False
        return True


def _cycle(found: StaticListers, binder: RecordingBinder, *, bind_timeout: float = 5.0):
    plugin = VolumeBinding(found, binder=binder, bind_timeout=bind_timeout)
    framework = Framework(filters=[plugin], scorers=[], binders=[plugin])
    return framework, framework.schedule(PodInfo(using("www-web-0")), NODES[:1])


async def test_pre_bind_selects_the_node_and_waits_for_the_claim_to_bind():
    found = listers(claim("www-web-0"))
    binder = RecordingBinder(found)
    framework, result = _cycle(found, binder)
    framework.reserve(result)
    task = asyncio.create_task(framework.pre_bind(result))
    for _ in range(5):
        await asyncio.sleep(0)
    assert binder.selected == [("www-web-0", "n1")] and not task.done()

    def bind() -> None:
        bound = found.claims["default/www-web-0"]
        bound["spec"]["volumeName"] = "pvc-1"
        bound["metadata"]["annotations"][BIND_COMPLETED_ANNOTATION] = "yes"

    binder.settle(bind)
    await asyncio.wait_for(task, 5)


async def test_pre_bind_waits_for_the_cache_to_show_its_own_write():
    found = listers(claim("www-web-0"))
    binder = RecordingBinder(found, lagging=True)
    framework, result = _cycle(found, binder)
    framework.reserve(result)
    task = asyncio.create_task(framework.pre_bind(result))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # no annotation in the cache yet, but the cache is older than the write

    def catch_up() -> None:
        metadata = found.claims["default/www-web-0"]["metadata"]
        metadata["annotations"].update({SELECTED_NODE_ANNOTATION: "n1", BIND_COMPLETED_ANNOTATION: "yes"})
        metadata["resourceVersion"] = "2"
        found.claims["default/www-web-0"]["spec"]["volumeName"] = "pvc-1"

    binder.settle(catch_up)
    await asyncio.wait_for(task, 5)


async def test_pre_bind_fails_when_provisioning_gives_the_claim_back():
    found = listers(claim("www-web-0"))
    binder = RecordingBinder(found)
    framework, result = _cycle(found, binder)
    framework.reserve(result)
    task = asyncio.create_task(framework.pre_bind(result))
    for _ in range(5):
        await asyncio.sleep(0)
    binder.settle(lambda: found.claims["default/www-web-0"]["metadata"]["annotations"].clear())
    with pytest.raises(PreBindError) as caught:
        await asyncio.wait_for(task, 5)
    assert str(caught.value) == (
        'running PreBind plugin "VolumeBinding": binding volumes: provisioning failed for PVC "www-web-0"'
    )


async def test_pre_bind_gives_up_after_the_timeout_and_unreserve_forgets():
    found = listers(claim("www-web-0"))
    framework, result = _cycle(found, RecordingBinder(found), bind_timeout=0.05)
    framework.reserve(result)
    with pytest.raises(PreBindError, match="binding volumes: timed out waiting for the condition"):
        await framework.pre_bind(result)
    framework.unreserve(result)
    await framework.pre_bind(result)  # nothing reserved any more: nothing to do


async def test_pre_bind_has_nothing_to_do_for_bound_claims():
    found = listers(claim("www-web-0", volume="pv-1"), volume("pv-1"))
    binder = RecordingBinder(found)
    framework, result = _cycle(found, binder)
    framework.reserve(result)
    await framework.pre_bind(result)
    assert binder.selected == []


async def test_a_chosen_volume_is_pre_bound_and_held_from_other_pods():
    found = listers(
        claim("www-web-0", class_name="local"),
        claim("www-web-1", class_name="local"),
        local_volume("pv-n1", host="n1"),
        classes=(LOCAL,),
    )
    binder = RecordingBinder(found)
    plugin = VolumeBinding(found, binder=binder, bind_timeout=5)
    framework = Framework(filters=[plugin], scorers=[], binders=[plugin])
    first = framework.schedule(PodInfo(using("www-web-0")), NODES[:1])
    framework.reserve(first)
    # Until the cache shows the volume taken, the reservation keeps it from the next pod.
    second_pod = pod("web-1", volumes=[{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}])
    with pytest.raises(FitError) as caught:
        framework.schedule(PodInfo(second_pod), NODES[:1])
    assert ERR_REASON_BIND_CONFLICT in caught.value.message
    task = asyncio.create_task(framework.pre_bind(first))
    for _ in range(5):
        await asyncio.sleep(0)
    (written,) = binder.volumes
    assert written["spec"]["claimRef"]["name"] == "www-web-0"
    assert written["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    assert binder.selected == [] and not task.done()

    def pv_controller_binds() -> None:
        found.volumes["pv-n1"] = {**written, "metadata": {**written["metadata"], "resourceVersion": "2"}}
        bound = found.claims["default/www-web-0"]
        bound["spec"]["volumeName"] = "pv-n1"
        bound["metadata"]["annotations"][BIND_COMPLETED_ANNOTATION] = "yes"

    binder.settle(pv_controller_binds)
    await asyncio.wait_for(task, 5)
    # The cache now shows the volume bound to web-0's claim: still not web-1's.
    with pytest.raises(FitError):
        framework.schedule(PodInfo(second_pod), NODES[:1])


def test_unreserve_gives_an_assumed_volume_back():
    found = listers(
        claim("www-web-0", class_name="local"),
        claim("www-web-1", class_name="local"),
        local_volume("pv-n1", host="n1"),
        classes=(LOCAL,),
    )
    plugin = VolumeBinding(found, binder=RecordingBinder(found))
    framework = Framework(filters=[plugin], scorers=[], binders=[plugin])
    first = framework.schedule(PodInfo(using("www-web-0")), NODES[:1])
    framework.reserve(first)
    framework.unreserve(first)
    second_pod = pod("web-1", volumes=[{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}])
    assert framework.schedule(PodInfo(second_pod), NODES[:1]).node == "n1"


def test_a_bind_timeout_must_be_positive():
    with pytest.raises(ValueError, match="bind_timeout must be positive"):
        VolumeBinding(listers(), bind_timeout=0)
