"""lightkube (httpx2, msgspec models from lightkube-models) works unchanged against kubelab.

lightkube decodes every answer straight into strict typed structs: a field of the wrong
type, a required field left out, a list whose ``metadata`` is malformed or an error answer
whose ``Content-Type`` is not exactly ``application/json`` (that is what turns an HTTP error
into an ``ApiError`` carrying the Status) breaks it. So these tests drive the client the way
its users do, from the lab's own kubeconfig: CRUD on ConfigMaps, Deployments, Services and
Namespaces, the four patch types (server-side apply with its field manager and ``force``),
selectors and chunked lists, watches from a resource version and the ``on_error`` policy on a
410, the status and scale subresources, ``deletecollection``, ``wait`` for conditions, a
generic resource built from a CRD, ``log`` (read and followed) and ``exec`` (WebSocket) through
a fake kubelet, and the Status every ``ApiError`` carries. A sweep lists every kind lightkube
has a model for and reads each object (with its status and scale) through the models.

The ``AsyncClient`` runs in the test's loop next to the in-process server. The synchronous
``Client`` is driven from a worker thread (``asyncio.to_thread``) while the loop keeps
serving, so no second server or loop is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import lightkube.resources
import pytest
from lightkube import ApiError, AsyncClient, Client, KubeConfig, codecs, operators
from lightkube.core.exceptions import ConditionError, ObjectDeleted
from lightkube.core.resource import GlobalResource, NamespacedResourceG, api_info
from lightkube.generic_resource import (
    async_load_in_cluster_generic_resources,
    create_namespaced_resource,
    get_generic_resource,
)
from lightkube.models.apiextensions_v1 import (
    CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion,
    CustomResourceSubresources,
    CustomResourceValidation,
    JSONSchemaProps,
)
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.autoscaling_v1 import ScaleSpec
from lightkube.models.core_v1 import (
    Container,
    DaemonEndpoint,
    NodeAddress,
    NodeDaemonEndpoints,
    NodeStatus,
    PodSpec,
    PodTemplateSpec,
    ServicePort,
    ServiceSpec,
)
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Node, Pod, Service
from lightkube.types import OnErrorAction, OnErrorResult, PatchType, on_error_raise, on_error_stop

from control.kubelet.logs import CRILogWriter
from tests.control.apiserver.conftest import RunningServer, running_apiserver
from tests.control.kubelet.fakes import RunningKubelet, make_pod, running_kubelet

LABELS = {"app": "web"}


def kubeconfig(server: RunningServer) -> KubeConfig:
    return KubeConfig.from_file(server.data_dir / "kubeconfig")


@pytest.fixture
async def lk(apiserver: RunningServer) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` from the lab's admin kubeconfig, namespace ``default``."""
    client = AsyncClient(kubeconfig(apiserver), namespace="default")
    try:
        yield client
    finally:
        await client.close()


def deployment(name: str, *, replicas: int = 1) -> Deployment:
    return Deployment(
        metadata=ObjectMeta(name=name, labels=LABELS),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=LABELS),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=LABELS),
                spec=PodSpec(containers=[Container(name="web", image="nginx:1")]),
            ),
        ),
    )


def configmap(name: str, **labels: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels=labels or None), data={"k": "v"})


async def watchers(server: RunningServer, kind: str) -> float:
    """The server's ``apiserver_registered_watchers`` for ``kind``."""
    _, metrics = await server.request("GET", "/metrics")
    for line in metrics.splitlines():
        if line.startswith("apiserver_registered_watchers{") and f'kind="{kind}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def api_error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


async def test_configmap_create_get_list_patch_replace_delete(lk: AsyncClient) -> None:
    created = await lk.create(configmap("cm", app="web"))
    assert (created.metadata.namespace, created.data) == ("default", {"k": "v"})
    assert created.metadata.uid and created.metadata.resourceVersion and created.metadata.creationTimestamp

    got = await lk.get(ConfigMap, "cm")
    assert got.metadata.uid == created.metadata.uid
    assert [c.metadata.name async for c in lk.list(ConfigMap, labels=LABELS)] == ["cm"]

    merged = await lk.patch(ConfigMap, "cm", {"data": {"m": "1"}}, patch_type=PatchType.MERGE)
    assert merged.data == {"k": "v", "m": "1"}
    strategic = await lk.patch(ConfigMap, "cm", {"metadata": {"annotations": {"a": "b"}}})
    assert strategic.metadata.annotations == {"a": "b"}
    jsonpatch = [{"op": "remove", "path": "/data/k"}, {"op": "add", "path": "/data/j", "value": "2"}]
    patched = await lk.patch(ConfigMap, "cm", jsonpatch, patch_type=PatchType.JSON)
    assert patched.data == {"m": "1", "j": "2"}

    patched.data = {"only": "this"}
    replaced = await lk.replace(patched)
    assert replaced.data == {"only": "this"}
    assert int(replaced.metadata.resourceVersion) > int(patched.metadata.resourceVersion)

    dry = await lk.create(configmap("dry"), dry_run=True)
    assert dry.metadata.uid and not dry.metadata.resourceVersion
    assert [c.metadata.name async for c in lk.list(ConfigMap)] == ["cm"]

    await lk.delete(ConfigMap, "cm")
    error = await api_error(lk.get(ConfigMap, "cm"))
    assert (error.status.code, error.status.reason) == (404, "NotFound")


async def test_deployment_patch_types_keep_what_upstream_keeps(lk: AsyncClient) -> None:
    await lk.create(deployment("web"))
    # Strategic merge: containers merge by name, so the image stays.
    env = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}}
        }
    }
    strategic = await lk.patch(Deployment, "web", env)
    (container,) = strategic.spec.template.spec.containers
    assert (container.image, [(e.name, e.value) for e in container.env]) == ("nginx:1", [("A", "1")])
    assert strategic.metadata.generation == 2
    # JSON merge patch: a list is replaced whole.
    sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}
    merged = await lk.patch(Deployment, "web", sidecar, patch_type=PatchType.MERGE)
    assert [c.name for c in merged.spec.template.spec.containers] == ["side"]
    test_failed = [{"op": "test", "path": "/spec/replicas", "value": 7}]
    error = await api_error(lk.patch(Deployment, "web", test_failed, patch_type=PatchType.JSON))
    assert error.status.code == 422


async def test_server_side_apply_creates_conflicts_and_forces(lk: AsyncClient) -> None:
    applied = await lk.apply(deployment("web", replicas=2), field_manager="alice")
    assert applied.spec.replicas == 2
    assert {m.manager for m in applied.metadata.managedFields} == {"alice"}
    assert applied.metadata.managedFields[0].operation == "Apply"

    error = await api_error(lk.apply(deployment("web", replicas=5), field_manager="bob"))
    assert (error.status.code, error.status.reason) == (409, "Conflict")
    assert error.status.details.causes and error.status.details.causes[0].field == ".spec.replicas"

    forced = await lk.apply(deployment("web", replicas=5), field_manager="bob", force=True)
    assert forced.spec.replicas == 5
    assert {m.manager for m in forced.metadata.managedFields} == {"alice", "bob"}

    with pytest.raises(ValueError, match="field_manager"):
        await lk.apply(deployment("web"))

    service = Service(
        metadata=ObjectMeta(name="web"), spec=ServiceSpec(selector=LABELS, ports=[ServicePort(port=80)])
    )
    applied_service = await lk.apply(service, field_manager="alice")
    assert applied_service.spec.clusterIP and applied_service.spec.ports[0].targetPort == 80
    # A strategic merge patch merges service ports by their key, port.
    more = {"spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "name": "http"}]}}
    ports = (await lk.patch(Service, "web", more)).spec.ports
    assert sorted((p.port, p.name, p.targetPort) for p in ports) == [(80, "http", 80), (443, "https", 443)]
    read = await lk.get(Service, "web")
    read.spec.selector = {"app": "other"}
    replaced = await lk.replace(read)
    assert (replaced.spec.selector, replaced.spec.clusterIP) == (
        {"app": "other"},
        applied_service.spec.clusterIP,
    )


async def test_list_with_selectors_and_chunks(lk: AsyncClient) -> None:
    for index in range(5):
        await lk.create(configmap(f"cm-{index}", tier="a" if index < 3 else "b", idx=str(index)))
    names = [c.metadata.name async for c in lk.list(ConfigMap, labels={"tier": "a"})]
    assert names == ["cm-0", "cm-1", "cm-2"]
    names = [c.metadata.name async for c in lk.list(ConfigMap, labels={"idx": operators.in_(["1", "4"])})]
    assert names == ["cm-1", "cm-4"]
    names = [c.metadata.name async for c in lk.list(ConfigMap, labels={"tier": operators.not_equal("a")})]
    assert names == ["cm-3", "cm-4"]
    names = [c.metadata.name async for c in lk.list(ConfigMap, fields={"metadata.name": "cm-2"})]
    assert names == ["cm-2"]
    names = [
        c.metadata.name
        async for c in lk.list(
            ConfigMap,
            labels={"idx": operators.exists()},
            fields={"metadata.name": operators.not_equal("cm-2")},
        )
    ]
    assert names == ["cm-0", "cm-1", "cm-3", "cm-4"]

    chunked = lk.list(ConfigMap, labels={"idx": operators.exists()}, chunk_size=2)
    assert [c.metadata.name async for c in chunked] == [f"cm-{index}" for index in range(5)]
    assert int(chunked.resourceVersion) > 0
    everywhere = [c.metadata.name async for c in lk.list(ConfigMap, namespace="*", labels={"tier": "b"})]
    assert everywhere == ["cm-3", "cm-4"]

    error = await api_error(anext(aiter(lk.list(ConfigMap, labels={"bad key!": "x"}))))
    assert (error.status.code, error.status.reason) == (400, "BadRequest")


async def test_watch_from_a_resource_version_sees_every_change(lk: AsyncClient) -> None:
    listed = lk.list(ConfigMap)
    assert [c async for c in listed] == []
    await lk.create(configmap("w"))
    await lk.patch(ConfigMap, "w", {"data": {"k": "changed"}})
    await lk.delete(ConfigMap, "w")

    seen: list[tuple[str, str, dict[str, str] | None]] = []
    async with asyncio.timeout(10):
        async for kind, obj in lk.watch(ConfigMap, resource_version=listed.resourceVersion):
            assert isinstance(obj, ConfigMap)
            seen.append((kind, obj.metadata.name, obj.data))
            if kind == "DELETED":
                break
    assert seen == [
        ("ADDED", "w", {"k": "v"}),
        ("MODIFIED", "w", {"k": "changed"}),
        ("DELETED", "w", {"k": "changed"}),
    ]


async def test_watch_on_error_policies_after_compaction(tmp_path: Path) -> None:
    async with running_apiserver(
        tmp_path, compaction_interval_seconds=0.05, compaction_keep_revisions=1
    ) as server:
        client = AsyncClient(kubeconfig(server), namespace="default")
        try:
            old_rv = (await client.create(configmap("old"))).metadata.resourceVersion
            async with asyncio.timeout(10):
                while True:  # write until the server's own compaction has passed old_rv
                    await client.patch(ConfigMap, "old", {"data": {"t": str(time.monotonic())}})
                    events = client.watch(ConfigMap, resource_version=old_rv, on_error=on_error_raise)
                    try:
                        async with contextlib.aclosing(events):
                            await anext(events)
                    except ApiError as error:
                        expired = error
                        break
                    await asyncio.sleep(0.05)
            assert (expired.status.code, expired.status.reason) == (410, "Expired")
            assert expired.status.message.startswith(f"too old resource version: {old_rv} (")

            stopped = [
                event
                async for event in client.watch(ConfigMap, resource_version=old_rv, on_error=on_error_stop)
            ]
            assert stopped == []

            errors: list[int] = []

            def retry(error: Exception, count: int) -> OnErrorResult:
                errors.append(error.status.code if isinstance(error, ApiError) else 0)
                return OnErrorResult(OnErrorAction.RETRY)

            events = client.watch(ConfigMap, resource_version=old_rv, on_error=retry)
            async with asyncio.timeout(10), contextlib.aclosing(events):
                kind, obj = await anext(events)
            assert errors == [410]  # retried from scratch: the current state arrives as ADDED
            assert (kind, obj.metadata.name) == ("ADDED", "old")
        finally:
            await client.close()


async def test_status_subresource(lk: AsyncClient) -> None:
    await lk.create(deployment("web", replicas=3))
    status = {"status": {"replicas": 3, "readyReplicas": 2, "observedGeneration": 1}}
    patched = await lk.patch(Deployment.Status, "web", status, patch_type=PatchType.MERGE)
    assert (patched.status.replicas, patched.status.readyReplicas) == (3, 2)

    read = await lk.get(Deployment.Status, "web")
    assert read.status.readyReplicas == 2
    read.status.readyReplicas = 3
    read.spec.replicas = 9  # the status endpoint leaves the spec alone
    replaced = await lk.replace(read)
    assert (replaced.status.readyReplicas, replaced.spec.replicas) == (3, 3)

    main = await lk.get(Deployment, "web")
    main.status.readyReplicas = 0  # and the main endpoint leaves the status alone
    assert (await lk.replace(main)).status.readyReplicas == 3


async def test_scale_subresource(lk: AsyncClient) -> None:
    await lk.create(deployment("web", replicas=2))
    scale = await lk.get(Deployment.Scale, "web")
    assert (scale.kind, scale.apiVersion, scale.spec.replicas) == ("Scale", "autoscaling/v1", 2)
    assert scale.status.selector == "app=web"

    scale.spec = ScaleSpec(replicas=4)
    replaced = await lk.replace(scale, "web")
    assert replaced.spec.replicas == 4
    patched = await lk.patch(Deployment.Scale, "web", {"spec": {"replicas": 6}}, patch_type=PatchType.MERGE)
    assert patched.spec.replicas == 6
    assert (await lk.get(Deployment, "web")).spec.replicas == 6

    error = await api_error(lk.get(Deployment.Scale, "missing"))
    assert (error.status.code, error.status.reason) == (404, "NotFound")


async def test_deletecollection_and_namespace_lifecycle(lk: AsyncClient) -> None:
    namespace = await lk.create(Namespace(metadata=ObjectMeta(name="scratch", labels={"team": "a"})))
    assert namespace.status.phase == "Active"
    assert [n.metadata.name async for n in lk.list(Namespace, labels={"team": "a"})] == ["scratch"]
    namespace.metadata.labels = {"team": "b"}
    relabelled = await lk.replace(namespace)
    assert relabelled.metadata.labels == {"team": "b", "kubernetes.io/metadata.name": "scratch"}
    for index in range(3):
        await lk.create(configmap(f"cm-{index}"), namespace="scratch")
    await lk.create(configmap("keep"))

    await lk.deletecollection(ConfigMap, namespace="scratch")
    assert [c.metadata.name async for c in lk.list(ConfigMap, namespace="scratch")] == []
    assert [c.metadata.name async for c in lk.list(ConfigMap)] == ["keep"]

    await lk.delete(Namespace, "scratch")
    deleting = await lk.get(Namespace, "scratch")
    assert deleting.status.phase == "Terminating" and deleting.metadata.deletionTimestamp
    error = await api_error(lk.create(configmap("late"), namespace="scratch"))
    assert (error.status.code, error.status.reason) == (403, "Forbidden")


async def test_wait_for_conditions(apiserver: RunningServer, lk: AsyncClient) -> None:
    await lk.create(deployment("web"))
    waiting = asyncio.create_task(lk.wait(Deployment, "web", for_conditions=["Available"]))
    try:
        condition = {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "up",
        }
        await lk.patch(
            Deployment.Status, "web", {"status": {"conditions": [condition]}}, patch_type=PatchType.MERGE
        )
        async with asyncio.timeout(10):
            done = await waiting
    finally:
        waiting.cancel()
        await asyncio.wait({waiting})
    assert [(c.type, c.status) for c in done.status.conditions] == [("Available", "True")]

    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}
    await lk.patch(
        Deployment.Status, "web", {"status": {"conditions": [failure]}}, patch_type=PatchType.MERGE
    )
    with pytest.raises(ConditionError, match="quota"):
        async with asyncio.timeout(10):
            await lk.wait(
                Deployment, "web", for_conditions=["Available"], raise_for_conditions=["ReplicaFailure"]
            )

    # The wait's watch must be running before the delete, or it starts after the object is gone
    # (a Service: the waits above may still hold Deployment watches while they close).
    service = Service(metadata=ObjectMeta(name="web"), spec=ServiceSpec(ports=[ServicePort(port=80)]))
    await lk.create(service)
    before = await watchers(apiserver, "Service")
    waiting = asyncio.create_task(lk.wait(Service, "web", for_conditions=["Ready"]))
    try:
        async with asyncio.timeout(10):
            while True:  # until the server has registered the wait's watch
                if await watchers(apiserver, "Service") > before:
                    break
                await asyncio.sleep(0.02)
        await lk.delete(Service, "web")
        with pytest.raises(ObjectDeleted, match="services/web"):
            async with asyncio.timeout(10):
                await waiting
    finally:
        waiting.cancel()
        await asyncio.wait({waiting})


def widget_crd() -> CustomResourceDefinition:
    schema = JSONSchemaProps(
        type="object",
        properties={
            "spec": JSONSchemaProps(
                type="object",
                properties={
                    "size": JSONSchemaProps(type="integer", minimum=0),
                    "replicas": JSONSchemaProps(type="integer"),
                },
            ),
            "status": JSONSchemaProps(
                type="object",
                properties={
                    "phase": JSONSchemaProps(type="string"),
                    "replicas": JSONSchemaProps(type="integer"),
                },
            ),
        },
    )
    return CustomResourceDefinition(
        metadata=ObjectMeta(name="widgets.example.com"),
        spec=CustomResourceDefinitionSpec(
            group="example.com",
            scope="Namespaced",
            names=CustomResourceDefinitionNames(plural="widgets", singular="widget", kind="Widget"),
            versions=[
                CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=CustomResourceValidation(openAPIV3Schema=schema),
                    subresources=CustomResourceSubresources(
                        status={},
                        scale={
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    ),
                )
            ],
        ),
    )


async def test_generic_resource_from_a_crd(lk: AsyncClient) -> None:
    await lk.create(widget_crd())
    async with asyncio.timeout(10):
        crd = await lk.wait(CustomResourceDefinition, "widgets.example.com", for_conditions=["Established"])
    assert crd.status.acceptedNames.kind == "Widget"

    Widget = create_namespaced_resource("example.com", "v1", "Widget", "widgets")
    created = await lk.create(Widget(metadata=ObjectMeta(name="w1"), spec={"size": 1, "replicas": 1}))
    assert (created.kind, created.apiVersion, created.spec) == (
        "Widget",
        "example.com/v1",
        {"size": 1, "replicas": 1},
    )
    assert (await lk.get(Widget, "w1")).metadata.uid == created.metadata.uid
    assert [w.metadata.name async for w in lk.list(Widget)] == ["w1"]

    patched = await lk.patch(Widget, "w1", {"spec": {"size": 2}}, patch_type=PatchType.MERGE)
    assert patched.spec["size"] == 2
    applied = await lk.apply(
        Widget(metadata=ObjectMeta(name="w1"), spec={"size": 3}), field_manager="alice", force=True
    )
    assert applied.spec["size"] == 3
    status = await lk.patch(Widget.Status, "w1", {"status": {"phase": "Ready"}}, patch_type=PatchType.MERGE)
    assert status.status == {"phase": "Ready"}
    scale = await lk.patch(Widget.Scale, "w1", {"spec": {"replicas": 4}}, patch_type=PatchType.MERGE)
    assert scale.spec.replicas == 4

    error = await api_error(lk.patch(Widget, "w1", {"spec": {"size": -1}}, patch_type=PatchType.MERGE))
    assert (error.status.code, error.status.reason) == (422, "Invalid")
    assert error.status.details.causes[0].field == "spec.size"

    # What a controller does to discover every custom kind at start-up.
    await async_load_in_cluster_generic_resources(lk)
    assert get_generic_resource("example.com/v1", "Widget") is Widget
    await lk.delete(Widget, "w1")
    assert [w async for w in lk.list(Widget)] == []


async def test_api_errors_carry_the_status(lk: AsyncClient) -> None:
    missing = await api_error(lk.get(ConfigMap, "missing"))
    assert missing.status.code == 404 and missing.status.message == 'configmaps "missing" not found'
    assert (missing.status.details.name, missing.status.details.kind) == ("missing", "configmaps")

    await lk.create(configmap("cm"))
    exists = await api_error(lk.create(configmap("cm")))
    assert (exists.status.code, exists.status.reason) == (409, "AlreadyExists")

    stale = await lk.get(ConfigMap, "cm")
    await lk.patch(ConfigMap, "cm", {"data": {"k": "new"}})
    conflict = await api_error(lk.replace(stale))
    assert (conflict.status.code, conflict.status.reason) == (409, "Conflict")
    assert "the object has been modified" in conflict.status.message

    invalid = await api_error(lk.create(configmap("Not_Valid")))
    assert (invalid.status.code, invalid.status.reason) == (422, "Invalid")
    assert invalid.status.details.causes[0].field == "metadata.name"

    elsewhere = await api_error(lk.get(Deployment, "missing", namespace="nowhere"))
    assert (elsewhere.status.code, elsewhere.status.details.group) == (404, "apps")


def sync_round_trip(config: KubeConfig) -> list[str]:
    """What a synchronous lightkube user does, in order; answers the watch's event kinds."""
    with Client(config, namespace="default", field_manager="sync") as client:
        client.create(deployment("sync", replicas=1))
        listed = client.list(Deployment, chunk_size=1)
        assert [d.metadata.name for d in listed] == ["sync"]
        client.patch(Deployment, "sync", {"spec": {"replicas": 2}})
        client.apply(deployment("sync", replicas=3), force=True)
        scale = client.get(Deployment.Scale, "sync")
        assert scale.spec.replicas == 3
        client.patch(
            Deployment.Status,
            "sync",
            {"status": {"conditions": [{"type": "Available", "status": "True"}]}},
            patch_type=PatchType.MERGE,
        )
        assert client.wait(Deployment, "sync", for_conditions=["Available"]).metadata.name == "sync"
        client.delete(Deployment, "sync")
        with pytest.raises(ApiError) as caught:
            client.get(Deployment, "sync")
        assert caught.value.status.code == 404
        kinds = []
        for kind, _ in client.watch(Deployment, resource_version=listed.resourceVersion):
            kinds.append(kind)
            if kind == "DELETED":
                return kinds
    raise AssertionError("the watch ended without the DELETED event")


async def test_the_sync_client_from_a_worker_thread(apiserver: RunningServer) -> None:
    kinds = await asyncio.wait_for(asyncio.to_thread(sync_round_trip, kubeconfig(apiserver)), 30)
    assert kinds == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


@pytest.fixture
async def kubelet(apiserver: RunningServer, lk: AsyncClient, tmp_path: Path) -> AsyncIterator[RunningKubelet]:
    """A fake kubelet as node-1, and pod "web" on it: container "main" running, its log
    (``tmp_path / "main.log"``) saying hello and world."""
    async with running_kubelet(apiserver.data_dir / "pki") as running:
        await lk.create(Node(metadata=ObjectMeta(name="node-1")))
        status = NodeStatus(
            addresses=[NodeAddress(type="InternalIP", address="127.0.0.1")],
            daemonEndpoints=NodeDaemonEndpoints(
                kubeletEndpoint=DaemonEndpoint(Port=running.server.config.port)
            ),
        )
        await lk.patch(Node.Status, "node-1", {"status": status.to_dict()}, patch_type=PatchType.MERGE)
        pod = Pod(
            metadata=ObjectMeta(name="web"),
            spec=PodSpec(nodeName="node-1", containers=[Container(name="main", image="x")]),
        )
        await lk.create(pod)
        running.pods.add(make_pod("web", containers=("main",), running={"main": "main-id"}))
        running.runtime.add_container("main-id")
        writer = CRILogWriter(tmp_path / "main.log")
        writer.write("stdout", b"hello\nworld\n")
        writer.close()
        running.pods.add_log("web", "main", tmp_path / "main.log")
        yield running


async def test_pod_log_read_and_followed(kubelet: RunningKubelet, lk: AsyncClient, tmp_path: Path) -> None:
    assert [line async for line in lk.log("web")] == ["hello\n", "world\n"]
    assert [line async for line in lk.log("web", tail_lines=1, newlines=False)] == ["world"]
    stamped = [line async for line in lk.log("web", timestamps=True)]
    assert [line.split(" ", 1)[1] for line in stamped] == ["hello\n", "world\n"]

    source = kubelet.pods.logs[("default", "web", "main", False)]
    assert not isinstance(source, str)
    following = lk.log("web", follow=True)
    async with asyncio.timeout(20), contextlib.aclosing(following):
        lines = [await anext(following), await anext(following)]
        writer = CRILogWriter(tmp_path / "main.log")
        writer.write("stdout", b"more\n")
        lines.append(await anext(following))
        source.running = False  # the container stopped: the kubelet ends the stream at EOF
        writer.write("stdout", b"last\n")
        writer.close()
        lines += [line async for line in following]
    assert lines == ["hello\n", "world\n", "more\n", "last\n"]

    error = await api_error(anext(aiter(lk.log("web", container="nope"))))
    assert (error.status.code, error.status.reason) == (400, "BadRequest")


async def test_exec_over_websocket(kubelet: RunningKubelet, lk: AsyncClient) -> None:
    script = "cat; echo out; echo err >&2; exit 3"
    result = await lk.exec(
        "web", command=["sh", "-c", script], stdin="in\n", stdout=True, stderr=True, timeout=20
    )
    assert (result.stdout, result.stderr, result.exit_code) == ("in\nout\n", "err\n", 3)
    ok = await lk.exec("web", command=["true"], stdout=True, timeout=20, raise_on_error=True)
    assert (ok.stdout, ok.exit_code) == ("", 0)
    assert [call[:2] for call in kubelet.runtime.exec_calls] == [
        ("main-id", ["sh", "-c", script]),
        ("main-id", ["true"]),
    ]


POD_TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
JOB_TEMPLATE = {
    "metadata": {"labels": LABELS},
    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
}
SELECTOR = {"matchLabels": LABELS}
SAMPLES = [
    {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {"serviceName": "s", "selector": SELECTOR, "template": POD_TEMPLATE},
    },
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"selector": SELECTOR, "template": POD_TEMPLATE}},
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"selector": SELECTOR, "template": POD_TEMPLATE}},
    {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": JOB_TEMPLATE}},
    {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}},
    },
    {"apiVersion": "v1", "kind": "Pod", "spec": POD_TEMPLATE["spec"]},
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    },
    {"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"pods": "10"}}},
    {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "spec": {"selector": LABELS, "template": POD_TEMPLATE},
    },
    {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
        },
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "spec": {"minAvailable": 1, "selector": SELECTOR},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
    },
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {"podSelector": SELECTOR}},
    {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    },
]


async def test_every_served_kind_parses_into_the_models(lk: AsyncClient) -> None:
    """lightkube's structs are typed (an int served as a string, a malformed timestamp, a
    required field left out all fail): list every kind it has a model for, across namespaces,
    and read every object and its status and scale through the models."""
    await lk.create(deployment("web"))
    for sample in SAMPLES:
        await lk.create(codecs.from_dict({**sample, "metadata": {"name": "web"}}))
    checked = []
    for module_info in pkgutil.iter_modules(lightkube.resources.__path__):
        module = importlib.import_module(f"lightkube.resources.{module_info.name}")
        for kind in vars(module).values():
            if not (isinstance(kind, type) and issubclass(kind, (NamespacedResourceG, GlobalResource))):
                continue
            if "list" not in api_info(kind).verbs:
                continue
            namespaced = issubclass(kind, NamespacedResourceG)
            try:
                objects = [obj async for obj in lk.list(kind, namespace="*" if namespaced else None)]
            except ApiError as error:
                assert error.status.code == 404, error.status.message  # a version kubelab does not serve
                continue
            checked.append(kind)
            for obj in objects:
                scope = {"namespace": obj.metadata.namespace} if namespaced else {}
                for read in (kind, getattr(kind, "Status", None), getattr(kind, "Scale", None)):
                    if read is not None:
                        assert (
                            await lk.get(read, obj.metadata.name, **scope)
                        ).metadata.name == obj.metadata.name
    assert len(checked) > 40
