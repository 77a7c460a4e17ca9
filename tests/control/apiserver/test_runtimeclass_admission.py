"""The RuntimeClass admission plugin, constructed over a real store (no HTTP): a new pod naming a
class must find it, takes its overhead and scheduling constraints, and is refused with upstream's
messages when it contradicts them; the toleration merge on its own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from control.apiserver.admission import CREATE, UPDATE, AdmissionChain, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.errors import StatusError
from control.apiserver.resource_store import ResourceStore
from control.apiserver.runtimeclass_admission import RuntimeClassAdmission, merge_tolerations, same_resources
from control.resources.registry import ResourceType

ADMIN = UserInfo(name="admin", groups=("system:masters", "system:authenticated"))


def kind(objects: ResourceStore, plural: str, group: str = "") -> ResourceType:
    rt = objects.registry.lookup(group=group, version="v1", plural=plural)
    assert rt is not None
    return rt


def pod(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


async def runtime_class(objects: ResourceStore, name: str, **fields: Any) -> None:
    body = {"metadata": {"name": name}, "handler": "runc", **fields}
    await objects.create(kind(objects, "runtimeclasses", "node.k8s.io"), body, namespace="")


def request(
    objects: ResourceStore, obj: dict[str, Any], *, operation: str = CREATE, subresource: str = ""
) -> AdmissionRequest:
    return AdmissionRequest(
        operation=operation,
        rt=kind(objects, "pods"),
        namespace="default",
        name=obj["metadata"]["name"],
        subresource=subresource,
        user=ADMIN,
        obj=obj,
        old=copy.deepcopy(obj) if operation == UPDATE else None,
    )


async def admit(objects: ResourceStore, obj: dict[str, Any]) -> dict[str, Any]:
    """Run the plugin's mutate then validate step, as the chain does; returns the admitted pod."""
    plugin = RuntimeClassAdmission(objects=objects)
    admitted = request(objects, obj)
    await plugin.mutate(admitted)
    await plugin.validate(admitted)
    assert admitted.obj is not None
    return admitted.obj


async def refused(objects: ResourceStore, obj: dict[str, Any]) -> StatusError:
    with pytest.raises(StatusError) as caught:
        await admit(objects, obj)
    assert caught.value.code == 403 and caught.value.reason == "Forbidden"
    return caught.value


async def test_a_pod_naming_a_missing_class_is_refused_with_upstreams_message(objects: ResourceStore) -> None:
    error = await refused(objects, pod(runtimeClassName="gvisor"))
    assert error.message == 'pods "web" is forbidden: pod rejected: RuntimeClass "gvisor" not found'


async def test_a_pod_naming_no_class_is_left_alone(objects: ResourceStore) -> None:
    plain = pod(nodeSelector={"disk": "ssd"})
    assert await admit(objects, copy.deepcopy(plain)) == plain


async def test_a_pod_with_an_overhead_but_no_class_is_refused(objects: ResourceStore) -> None:
    error = await refused(objects, pod(overhead={"cpu": "100m"}))
    assert error.message.endswith(
        "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
    )


async def test_the_class_overhead_becomes_the_pods(objects: ResourceStore) -> None:
    await runtime_class(objects, "kata", overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}})
    admitted = await admit(objects, pod(runtimeClassName="kata"))
    assert admitted["spec"]["overhead"] == {"cpu": "250m", "memory": "120Mi"}
    # the same overhead written another way is the same overhead
    same = await admit(objects, pod(runtimeClassName="kata", overhead={"cpu": "0.25", "memory": "120Mi"}))
    assert same["spec"]["overhead"] == {"cpu": "250m", "memory": "120Mi"}


async def test_a_pod_overhead_that_differs_from_its_class_is_refused(objects: ResourceStore) -> None:
    await runtime_class(objects, "kata", overhead={"podFixed": {"cpu": "250m"}})
    error = await refused(objects, pod(runtimeClassName="kata", overhead={"cpu": "1"}))
    assert error.message == (
        "pods \"web\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
    )
    await refused(objects, pod(runtimeClassName="kata", overhead={"cpu": "250m", "memory": "1Mi"}))


async def test_validate_refuses_an_overhead_changed_after_mutation(objects: ResourceStore) -> None:
    await runtime_class(objects, "kata", overhead={"podFixed": {"cpu": "250m"}})
    await runtime_class(objects, "plain")
    plugin = RuntimeClassAdmission(objects=objects)
    changed = request(objects, pod(runtimeClassName="kata"))
    await plugin.mutate(changed)
    assert changed.obj is not None
    changed.obj["spec"]["overhead"] = {"cpu": "2"}  # as a later mutating webhook might
    with pytest.raises(StatusError, match="doesn't match RuntimeClass's defined Overhead"):
        await plugin.validate(changed)
    no_overhead = request(objects, pod(runtimeClassName="plain", overhead={"cpu": "1"}))
    with pytest.raises(StatusError, match="set without corresponding RuntimeClass defined Overhead"):
        await plugin.validate(no_overhead)


async def test_the_class_node_selector_is_merged_into_the_pods(objects: ResourceStore) -> None:
    await runtime_class(objects, "sandboxed", scheduling={"nodeSelector": {"runtime": "kata"}})
    admitted = await admit(objects, pod(runtimeClassName="sandboxed", nodeSelector={"disk": "ssd"}))
    assert admitted["spec"]["nodeSelector"] == {"disk": "ssd", "runtime": "kata"}
    alone = await admit(objects, pod(runtimeClassName="sandboxed"))
    assert alone["spec"]["nodeSelector"] == {"runtime": "kata"}
    agreeing = await admit(objects, pod(runtimeClassName="sandboxed", nodeSelector={"runtime": "kata"}))
    assert agreeing["spec"]["nodeSelector"] == {"runtime": "kata"}


async def test_a_conflicting_node_selector_is_refused_with_upstreams_message(objects: ResourceStore) -> None:
    await runtime_class(objects, "sandboxed", scheduling={"nodeSelector": {"runtime": "kata"}})
    error = await refused(objects, pod(runtimeClassName="sandboxed", nodeSelector={"runtime": "runc"}))
    assert error.message == (
        'pods "web" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[runtime] = kata; '
        "pod.spec.nodeSelector[runtime] = runc"
    )


async def test_the_class_tolerations_are_merged_into_the_pods(objects: ResourceStore) -> None:
    sandbox = {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}
    await runtime_class(objects, "sandboxed", scheduling={"tolerations": [sandbox]})
    own = {"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}
    admitted = await admit(objects, pod(runtimeClassName="sandboxed", tolerations=[own]))
    assert admitted["spec"]["tolerations"] == [own, sandbox]
    # the pod's narrower toleration gives way to the class's broader one
    narrower = {"key": "sandbox", "operator": "Equal", "value": "x", "effect": "NoSchedule"}
    covered = await admit(objects, pod(runtimeClassName="sandboxed", tolerations=[narrower]))
    assert covered["spec"]["tolerations"] == [sandbox]


async def test_updates_and_subresources_are_not_admitted(objects: ResourceStore) -> None:
    plugin = RuntimeClassAdmission(objects=objects)
    missing = pod(runtimeClassName="nowhere")
    for admitted in (
        request(objects, missing, operation=UPDATE),
        request(objects, missing, subresource="status"),
    ):
        await plugin.mutate(admitted)
        await plugin.validate(admitted)
    other = AdmissionRequest(
        operation=CREATE,
        rt=kind(objects, "podtemplates"),
        namespace="default",
        name="t",
        subresource="",
        user=ADMIN,
        obj={"metadata": {"name": "t"}, "template": {"spec": {"runtimeClassName": "nowhere"}}},
        old=None,
    )
    await plugin.mutate(other)
    await plugin.validate(other)


def test_merge_tolerations_keeps_supersets_and_drops_what_they_cover() -> None:
    everything = {"operator": "Exists"}
    gpu = {"key": "gpu", "operator": "Exists"}
    gpu_schedule = {"key": "gpu", "operator": "Equal", "value": "a", "effect": "NoSchedule"}
    assert merge_tolerations([gpu_schedule], [gpu]) == [gpu]
    assert merge_tolerations([gpu], [gpu_schedule]) == [gpu]
    assert merge_tolerations([gpu], [everything]) == [everything]
    assert merge_tolerations([gpu, gpu], []) == [gpu]  # of equal ones, the first
    short = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    long = {"key": "n", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    assert merge_tolerations([short], [long]) == [long]  # the longer limit covers the shorter
    assert merge_tolerations([], []) == []
    # an empty operator is Equal, and covers only an explicit Equal of the same value
    implicit = {"key": "k", "value": "v"}
    explicit = {"key": "k", "operator": "Equal", "value": "v"}
    assert merge_tolerations([explicit], [implicit]) == [implicit]


def test_resource_lists_compare_by_value() -> None:
    assert same_resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1000m", "memory": "1024Mi"})
    assert not same_resources({"cpu": "1"}, {"cpu": "2"})
    assert not same_resources({"cpu": "1"}, {"cpu": "1", "memory": "1Gi"})
    assert same_resources(None, {})
    assert not same_resources({"cpu": "bogus"}, {"cpu": "1"})


async def test_in_the_chain_a_stored_pod_carries_its_class_overhead_and_scheduling(
    objects: ResourceStore,
) -> None:
    await objects.create(kind(objects, "namespaces"), {"metadata": {"name": "default"}}, namespace="")
    await runtime_class(
        objects,
        "kata",
        overhead={"podFixed": {"cpu": "250m"}},
        scheduling={"nodeSelector": {"runtime": "kata"}},
    )
    objects.admission = AdmissionChain([RuntimeClassAdmission(objects=objects)])
    stored = await objects.create(
        kind(objects, "pods"), pod(runtimeClassName="kata"), namespace="default", user=ADMIN
    )
    assert stored["spec"]["overhead"] == {"cpu": "250m"}
    assert stored["spec"]["nodeSelector"] == {"runtime": "kata"}
    with pytest.raises(StatusError) as caught:
        await objects.create(
            kind(objects, "pods"), pod("x", runtimeClassName="nope"), namespace="default", user=ADMIN
        )
    assert caught.value.message == 'pods "x" is forbidden: pod rejected: RuntimeClass "nope" not found'
