"""VolumeBinding in the running scheduler against a real in-process API server.

The first tests run no PV controller: where a claim has to become bound, the test does what the
PV controller and a provisioner do (a PersistentVolume, then the claim's ``volumeName`` and
``pv.kubernetes.io/bind-completed``), as the other scheduler tests play the kubelet, so every
failure path can be driven. The last ones run kubelab's own PV controller and local-path
provisioner beside the scheduler; tests/e2e/test_storage.py adds the kubelet and kubectl.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control.client.config import load_kubeconfig
from control.client.informer import InformerFactory
from control.client.rest import PatchType, RESTClient
from control.controllers.events import EventRecorder
from control.controllers.manager import ControllerContext, ControllerOptions
from control.controllers.persistentvolume import PersistentVolumeController
from control.controllers.persistentvolume_localpath import LocalPathProvisioner
from control.scheduler.scheduler import CLAIMS, PODS, STORAGE_CLASSES, VOLUMES, Scheduler
from control.scheduler.volumes import BIND_COMPLETED_ANNOTATION, SELECTED_NODE_ANNOTATION
from tests.control.apiserver.conftest import RunningServer
from tests.control.scheduler.conftest import create_nodes, wait_for_events, wait_for_pods
from tests.control.scheduler.support import node, pod

NS = "default"


@pytest.fixture
async def volume_scheduler(apiserver: RunningServer) -> AsyncIterator[Scheduler]:
    """A scheduler giving up on unbound claims after 2 s (upstream waits 600 s)."""
    client = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    informers = InformerFactory(client)
    scheduler = Scheduler(
        client=client,
        informers=informers,
        recorder=EventRecorder(client=client, component="default-scheduler"),
        volume_bind_timeout=2.0,
    )
    informers.start()
    task = asyncio.create_task(scheduler.run())
    yield scheduler
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await informers.shutdown()
    await client.close()


async def storage_classes(client: RESTClient) -> None:
    for name, mode in (("standard", "WaitForFirstConsumer"), ("fast", "Immediate")):
        await client.create(
            STORAGE_CLASSES,
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": "kubelab.dev/local-path",
                "volumeBindingMode": mode,
            },
        )


def claim(name: str, *, class_name: str = "standard") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class_name,
            "resources": {"requests": {"storage": "1Mi"}},
        },
    }


def claiming(name: str, *claims: str) -> dict[str, Any]:
    return pod(name, volumes=[{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims])


async def bind_claim(
    client: RESTClient, name: str, *, node_name: str | None, class_name: str = "standard"
) -> None:
    """What the PV controller does once a volume exists for the claim (pinned to ``node_name``)."""
    spec: dict[str, Any] = {
        "capacity": {"storage": "1Mi"},
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": class_name,
        "hostPath": {"path": f"/tmp/kubelab-test-{name}"},
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": NS, "name": name},
    }
    if node_name:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}
                        ]
                    }
                ]
            }
        }
    await client.create(
        VOLUMES,
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{name}"}, "spec": spec},
    )
    await client.patch(
        CLAIMS,
        name,
        {
            "metadata": {"annotations": {BIND_COMPLETED_ANNOTATION: "yes"}},
            "spec": {"volumeName": f"pv-{name}"},
        },
        namespace=NS,
        patch_type=PatchType.MERGE,
    )


async def selected_node(client: RESTClient, name: str, *, within: float = 10.0) -> str:
    """Wait for the scheduler to write the claim's selected node."""

    def chosen(obj: dict[str, Any]) -> str | None:
        return (obj["metadata"].get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)

    listed = await client.list(CLAIMS, namespace=NS)
    for item in listed["items"]:
        if item["metadata"]["name"] == name and chosen(item):
            return chosen(item)
    async with asyncio.timeout(within):
        async with await client.watch(
            CLAIMS, namespace=NS, resource_version=listed["metadata"]["resourceVersion"]
        ) as events:
            async for event in events:
                if event.object["metadata"]["name"] == name and chosen(event.object):
                    return chosen(event.object)
    raise AssertionError(f"claim {name} never got a selected node")


def failed_with(name: str, text: str):
    return lambda events: [
        e
        for e in events
        if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == name and text in e["message"]
    ]


def bound(*names: str):
    return lambda pods: all(pods.get(n, {}).get("spec", {}).get("nodeName") for n in names)


async def test_a_missing_claim_then_a_waiting_one_provisioned_on_the_chosen_node(client, volume_scheduler):
    await create_nodes(client, node("node-1"), node("node-2"))
    await storage_classes(client)
    await client.create(PODS, claiming("web-0", "www-web-0"))
    (event,) = await wait_for_events(client, failed_with("web-0", "not found"))
    assert event["message"] == (
        '0/2 nodes are available: persistentvolumeclaim "www-web-0" not found. '
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    # The claim appearing brings the pod back; its node is written into the claim, and the pod
    # waits (unbound) for the volume.
    await client.create(CLAIMS, claim("www-web-0"), namespace=NS)
    chosen = await selected_node(client, "www-web-0")
    assert chosen in {"node-1", "node-2"}
    assert not (await client.get(PODS, "web-0", namespace=NS))["spec"].get("nodeName")
    # Others are not held up meanwhile.
    await client.create(PODS, pod("plain"))
    pods = await wait_for_pods(client, bound("plain"))
    assert not pods["web-0"]["spec"].get("nodeName")
    await bind_claim(client, "www-web-0", node_name=chosen)
    pods = await wait_for_pods(client, bound("web-0"))
    assert pods["web-0"]["spec"]["nodeName"] == chosen


async def test_an_unbound_immediate_claim_then_its_volumes_node(client, volume_scheduler):
    await create_nodes(client, node("node-1"), node("node-2"))
    await storage_classes(client)
    await client.create(CLAIMS, claim("data", class_name="fast"), namespace=NS)
    await client.create(PODS, claiming("db", "data"))
    (event,) = await wait_for_events(client, failed_with("db", "immediate"))
    assert event["message"] == (
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    await bind_claim(client, "data", node_name="node-2", class_name="fast")
    pods = await wait_for_pods(client, bound("db"))
    assert pods["db"]["spec"]["nodeName"] == "node-2"
    claimed = await client.get(CLAIMS, "data", namespace=NS)
    assert SELECTED_NODE_ANNOTATION not in (claimed["metadata"].get("annotations") or {})


async def test_a_volume_pinned_to_a_missing_node_leaves_the_pod_waiting(client, volume_scheduler):
    await create_nodes(client, node("node-1"))
    await storage_classes(client)
    await client.create(CLAIMS, claim("data", class_name="fast"), namespace=NS)
    await bind_claim(client, "data", node_name="node-9", class_name="fast")
    await client.create(PODS, claiming("db", "data"))
    (event,) = await wait_for_events(client, failed_with("db", "affinity"))
    assert event["message"].startswith(
        "0/1 nodes are available: 1 node(s) had volume node affinity conflict."
    )
    await create_nodes(client, node("node-9"))
    pods = await wait_for_pods(client, bound("db"))
    assert pods["db"]["spec"]["nodeName"] == "node-9"


async def test_failed_provisioning_and_a_timeout_send_the_pod_back(client, volume_scheduler):
    await create_nodes(client, node("node-1"))
    await storage_classes(client)
    await client.create(CLAIMS, claim("www-web-0"), namespace=NS)
    await client.create(PODS, claiming("web-0", "www-web-0"))
    assert await selected_node(client, "www-web-0") == "node-1"
    # A provisioner that fails takes the annotation away: the binding fails and is retried.
    await client.patch(
        CLAIMS,
        "www-web-0",
        {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: None}}},
        namespace=NS,
        patch_type=PatchType.MERGE,
    )
    (event,) = await wait_for_events(client, failed_with("web-0", "provisioning failed"))
    assert event["message"] == (
        'running PreBind plugin "VolumeBinding": binding volumes: provisioning failed for PVC "www-web-0"'
    )
    assert await selected_node(client, "www-web-0") == "node-1"  # tried again after the backoff
    # Nobody provisions: after the bind timeout the pod is sent back once more.
    await wait_for_events(client, failed_with("web-0", "timed out waiting for the condition"), within=15)
    pods = await wait_for_pods(client, lambda pods: "web-0" in pods)
    condition = next(c for c in pods["web-0"]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["reason"] == "SchedulerError"


async def test_a_pod_deleted_while_its_volumes_bind_stops_the_wait(client, volume_scheduler):
    await create_nodes(client, node("node-1"))
    await storage_classes(client)
    await client.create(CLAIMS, claim("www-web-0"), namespace=NS)
    await client.create(PODS, claiming("web-0", "www-web-0"))
    await selected_node(client, "www-web-0")
    assert volume_scheduler.cache.pod_node("default/web-0") == "node-1"  # assumed while waiting
    await client.delete(PODS, "web-0", namespace=NS, grace_period_seconds=0)
    await wait_for_pods(client, lambda pods: "web-0" not in pods)
    for _ in range(500):  # the scheduler's own informer sees the deletion a moment later
        if volume_scheduler.cache.pod_node("default/web-0") is None:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the deleted pod stayed assumed")


# --- with kubelab's own PV controller and local-path provisioner ----------------------------------


@pytest.fixture
async def pv_controllers(apiserver: RunningServer, tmp_path: Path) -> AsyncIterator[Path]:
    """The PV binder and the local-path provisioner (volumes under the yielded directory), run as
    the controller manager runs them."""
    client = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    informers = InformerFactory(client)
    storage = tmp_path / "storage"
    ctx = ControllerContext(
        client=client, informers=informers, options=ControllerOptions(storage_dir=str(storage))
    )
    controllers = [PersistentVolumeController(ctx), LocalPathProvisioner(ctx)]
    informers.start()
    tasks = [asyncio.create_task(controller.run()) for controller in controllers]
    yield storage
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await informers.shutdown()
    await client.close()


async def wait_for_claim(
    client: RESTClient, name: str, *, phase: str, within: float = 20.0
) -> dict[str, Any]:
    listed = await client.list(CLAIMS, namespace=NS)
    for item in listed["items"]:
        if item["metadata"]["name"] == name and (item.get("status") or {}).get("phase") == phase:
            return item
    async with asyncio.timeout(within):
        async with await client.watch(
            CLAIMS, namespace=NS, resource_version=listed["metadata"]["resourceVersion"]
        ) as events:
            async for event in events:
                found = event.object
                if found["metadata"]["name"] == name and (found.get("status") or {}).get("phase") == phase:
                    return found
    raise AssertionError(f"claim {name} never became {phase}")


async def test_a_claim_is_provisioned_on_the_chosen_node_by_the_pv_controller(
    client, volume_scheduler, pv_controllers
):
    await create_nodes(client, node("node-1"), node("node-2"))
    await storage_classes(client)
    await client.create(CLAIMS, claim("www-web-0"), namespace=NS)
    await client.create(PODS, claiming("web-0", "www-web-0"))
    pods = await wait_for_pods(client, bound("web-0"))
    chosen = pods["web-0"]["spec"]["nodeName"]
    bound_claim = await wait_for_claim(client, "www-web-0", phase="Bound")
    assert bound_claim["metadata"]["annotations"][SELECTED_NODE_ANNOTATION] == chosen
    volume = await client.get(VOLUMES, bound_claim["spec"]["volumeName"])
    assert volume["metadata"]["name"] == f"pvc-{bound_claim['metadata']['uid']}"
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [chosen]
    assert Path(volume["spec"]["hostPath"]["path"]).parent == pv_controllers


async def test_a_pre_made_local_volume_is_bound_by_the_scheduler_and_the_pv_controller(
    client, volume_scheduler, pv_controllers
):
    await create_nodes(client, node("node-1"), node("node-2"))
    await client.create(
        STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "local"},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    local = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "local-on-node-2"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local",
            "hostPath": {"path": "/tmp/kubelab-test-local"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}
                            ]
                        }
                    ]
                }
            },
        },
    }
    await client.create(VOLUMES, local)
    await client.create(CLAIMS, claim("data", class_name="local"), namespace=NS)
    await client.create(PODS, claiming("db", "data"))
    pods = await wait_for_pods(client, bound("db"))
    assert pods["db"]["spec"]["nodeName"] == "node-2"
    bound_claim = await wait_for_claim(client, "data", phase="Bound")
    assert bound_claim["spec"]["volumeName"] == "local-on-node-2"
    volume = await client.get(VOLUMES, "local-on-node-2")
    assert volume["spec"]["claimRef"]["uid"] == bound_claim["metadata"]["uid"]
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
