"""kubernetes_asyncio (the official client's aiohttp twin) works unchanged against kubelab.

The client deserializes every answer into generated models that refuse ``None`` for a
required field (``client_side_validation``), raises ``ApiException`` with the HTTP status
and reason for every error, turns a watch's ERROR event into an ``ApiException``, and picks
the patch Content-Type from the body (a list is a JSON patch, anything else a strategic
merge patch; custom objects have no strategic merge, so callers pass ``_content_type``).
These tests drive it as its users do, from the lab's kubeconfig: typed CRUD with
``CoreV1Api`` and ``AppsV1Api`` (status and scale included), ``Watch().stream`` seeing
ADDED/MODIFIED/DELETED, ``_continue`` pagination, ``pods/log`` (read and followed) and ``exec`` (``WsApiClient``) through a fake kubelet, and
``CustomObjectsApi`` CRUD with the status subresource.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.stream import WsApiClient

from control.kubelet.logs import CRILogWriter
from tests.control.apiserver.conftest import RunningServer, running_apiserver
from tests.control.kubelet.fakes import RunningKubelet, make_pod, running_kubelet

NAMESPACE = "default"
LABELS = {"app": "web"}


async def api_client_for(server: RunningServer) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(server.data_dir / "kubeconfig"),
        client_configuration=configuration,
        persist_config=False,
    )
    return client.ApiClient(configuration)


@pytest.fixture
async def api(apiserver: RunningServer) -> AsyncIterator[client.ApiClient]:
    """A typed client from the lab's admin kubeconfig."""
    api_client = await api_client_for(apiserver)
    try:
        yield api_client
    finally:
        await api_client.close()


def deployment(name: str, *, replicas: int = 1) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=LABELS),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=LABELS),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=LABELS),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1")]),
            ),
        ),
    )


def configmap(name: str, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None), data={"k": "v"})


async def api_exception(call: Any) -> ApiException:
    with pytest.raises(ApiException) as caught:
        await call
    return caught.value


async def test_core_kinds_round_trip_through_the_typed_models(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    namespace = await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="work")))
    assert isinstance(namespace, client.V1Namespace) and namespace.status.phase == "Active"

    created = await core.create_namespaced_config_map("work", configmap("cm", app="web"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    read = await core.read_namespaced_config_map("cm", "work")
    assert read.data == {"k": "v"}
    listed = await core.list_namespaced_config_map("work", label_selector="app=web")
    assert isinstance(listed, client.V1ConfigMapList) and [c.metadata.name for c in listed.items] == ["cm"]
    patched = await core.patch_namespaced_config_map("cm", "work", {"data": {"m": "1"}})
    assert patched.data == {"k": "v", "m": "1"}
    json_patched = await core.patch_namespaced_config_map(
        "cm", "work", [{"op": "replace", "path": "/data/k", "value": "j"}]
    )
    assert json_patched.data == {"k": "j", "m": "1"}
    json_patched.data = {"only": "this"}
    replaced = await core.replace_namespaced_config_map("cm", "work", json_patched)
    assert replaced.data == {"only": "this"}
    deleted = await core.delete_namespaced_config_map("cm", "work")
    assert isinstance(deleted, client.V1Status) and deleted.status == "Success"

    secret = await core.create_namespaced_secret(
        "work", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"password": "x"})
    )
    assert (secret.type, secret.data, secret.string_data) == ("Opaque", {"password": "eA=="}, None)

    service = await core.create_namespaced_service(
        "work",
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(selector=LABELS, ports=[client.V1ServicePort(port=80, name="http")]),
        ),
    )
    assert service.spec.cluster_ip and service.spec.ports[0].target_port == 80
    service_status = await core.read_namespaced_service_status("web", "work")
    assert isinstance(service_status.status, client.V1ServiceStatus)
    gone = await core.delete_namespaced_service("web", "work")
    assert isinstance(gone, client.V1Service) and gone.metadata.name == "web"

    everywhere = await core.list_service_for_all_namespaces()
    assert [s.metadata.name for s in everywhere.items] == ["kubernetes"]

    # The server answers the Namespace being finalized, as upstream does; the client's generated
    # return type is V1Status, so it arrives as a V1Status whose kind says Namespace.
    answer = await core.delete_namespace("work")
    assert answer.kind == "Namespace"
    assert (await core.read_namespace("work")).status.phase == "Terminating"


async def test_deployments_with_status_and_scale(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    created = await apps.create_namespaced_deployment(NAMESPACE, deployment("web", replicas=2))
    assert (created.metadata.generation, created.spec.strategy.type) == (1, "RollingUpdate")
    assert created.spec.template.spec.containers[0].termination_message_path == "/dev/termination-log"

    env = [{"name": "web", "env": [{"name": "A", "value": "1"}]}]
    patched = await apps.patch_namespaced_deployment(
        "web", NAMESPACE, {"spec": {"template": {"spec": {"containers": env}}}}
    )
    (container,) = patched.spec.template.spec.containers
    assert (container.image, container.env[0].name, patched.metadata.generation) == ("nginx:1", "A", 2)

    status = await apps.patch_namespaced_deployment_status(
        "web", NAMESPACE, {"status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 2}}
    )
    assert (status.status.replicas, status.status.ready_replicas) == (2, 1)
    read_status = await apps.read_namespaced_deployment_status("web", NAMESPACE)
    read_status.status.ready_replicas = 2
    replaced_status = await apps.replace_namespaced_deployment_status("web", NAMESPACE, read_status)
    assert replaced_status.status.ready_replicas == 2

    scale = await apps.read_namespaced_deployment_scale("web", NAMESPACE)
    assert isinstance(scale, client.V1Scale) and (scale.spec.replicas, scale.status.selector) == (
        2,
        "app=web",
    )
    scaled = await apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 5}})
    assert scaled.spec.replicas == 5
    stale = await api_exception(apps.replace_namespaced_deployment_scale("web", NAMESPACE, scale))
    assert (stale.status, json.loads(stale.body)["reason"]) == (409, "Conflict")
    scaled.spec.replicas = 3
    assert (await apps.replace_namespaced_deployment_scale("web", NAMESPACE, scaled)).spec.replicas == 3

    read = await apps.read_namespaced_deployment("web", NAMESPACE)
    read.spec.replicas = 4
    replaced = await apps.replace_namespaced_deployment("web", NAMESPACE, read)
    assert (replaced.spec.replicas, replaced.status.ready_replicas) == (4, 2)
    everywhere = await apps.list_deployment_for_all_namespaces(label_selector="app=web")
    assert [d.metadata.name for d in everywhere.items] == ["web"]

    # A foreground delete only marks the Deployment (the garbage collector finishes it): the
    # answer is the object, which this client's V1Status return type carries by its kind.
    answer = await apps.delete_namespaced_deployment("web", NAMESPACE, propagation_policy="Foreground")
    assert answer.kind == "Deployment"
    marked = await apps.read_namespaced_deployment("web", NAMESPACE)
    assert marked.metadata.deletion_timestamp and marked.metadata.finalizers == ["foregroundDeletion"]


async def test_watch_stream_sees_added_modified_deleted(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_config_map(NAMESPACE)
    await core.create_namespaced_config_map(NAMESPACE, configmap("w"))
    await core.patch_namespaced_config_map("w", NAMESPACE, {"data": {"k": "changed"}})
    await core.delete_namespaced_config_map("w", NAMESPACE)

    seen: list[tuple[str, str, dict[str, str]]] = []
    async with watch.Watch() as stream, asyncio.timeout(10):
        async for event in stream.stream(
            core.list_namespaced_config_map,
            NAMESPACE,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=30,
        ):
            obj = event["object"]
            assert isinstance(obj, client.V1ConfigMap)
            seen.append((event["type"], obj.metadata.name, obj.data))
            if event["type"] == "DELETED":
                stream.stop()
    assert seen == [
        ("ADDED", "w", {"k": "v"}),
        ("MODIFIED", "w", {"k": "changed"}),
        ("DELETED", "w", {"k": "changed"}),
    ]


async def test_watch_bookmarks_and_initial_events(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map(NAMESPACE, configmap("a"))
    await core.create_namespaced_config_map(NAMESPACE, configmap("b"))

    # WatchList (sendInitialEvents): ADDED for every object, then the bookmark ending them.
    async with watch.Watch() as stream, asyncio.timeout(10):
        events = stream.stream(
            core.list_namespaced_config_map,
            NAMESPACE,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
            timeout_seconds=30,
        )
        initial = [await anext(events) for _ in range(3)]
    assert [(e["type"], e["raw_object"]["metadata"].get("name")) for e in initial] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("BOOKMARK", None),
    ]
    bookmark = initial[2]["raw_object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert stream.resource_version == bookmark["metadata"]["resourceVersion"]

    # A bookmark comes just before the server's timeout; then the stream ends.
    listed = await core.list_namespaced_config_map(NAMESPACE)
    async with watch.Watch() as stream, asyncio.timeout(10):
        kinds = [
            event["type"]
            async for event in stream.stream(
                core.list_namespaced_config_map,
                NAMESPACE,
                resource_version=listed.metadata.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=1,
            )
        ]
    assert kinds == ["BOOKMARK"]
    assert stream.resource_version == listed.metadata.resource_version


async def test_watch_of_a_compacted_resource_version_raises_410(tmp_path: Path) -> None:
    async with running_apiserver(
        tmp_path, compaction_interval_seconds=0.05, compaction_keep_revisions=1
    ) as server:
        api_client = await api_client_for(server)
        try:
            core = client.CoreV1Api(api_client)
            old_rv = (
                await core.create_namespaced_config_map(NAMESPACE, configmap("old"))
            ).metadata.resource_version
            async with asyncio.timeout(10):
                while True:  # write until the server's own compaction has passed old_rv
                    await core.patch_namespaced_config_map("old", NAMESPACE, {"data": {"t": "x"}})
                    await core.patch_namespaced_config_map("old", NAMESPACE, {"data": {"t": "y"}})
                    async with watch.Watch() as stream:
                        events = stream.stream(
                            core.list_namespaced_config_map,
                            NAMESPACE,
                            resource_version=old_rv,
                            timeout_seconds=5,
                        )
                        try:
                            await anext(events)
                        except ApiException as error:
                            expired = error
                            break
                    await asyncio.sleep(0.05)
        finally:
            await api_client.close()
    assert expired.status == 410 and expired.reason.startswith("Expired: too old resource version")


async def test_list_pages_with_continue(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for index in range(5):
        await core.create_namespaced_config_map(NAMESPACE, configmap(f"cm-{index}"))
    names: list[str] = []
    remaining: list[int | None] = []
    token = None
    while True:
        page = await core.list_namespaced_config_map(NAMESPACE, limit=2, _continue=token)
        names += [c.metadata.name for c in page.items]
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"cm-{index}" for index in range(5)]
    assert remaining == [3, 1, None]

    error = await api_exception(core.list_namespaced_config_map(NAMESPACE, limit=2, _continue="not-a-token"))
    assert error.status == 400 and json.loads(error.body)["reason"] == "BadRequest"


@pytest.fixture
async def kubelet(
    apiserver: RunningServer, api: client.ApiClient, tmp_path: Path
) -> AsyncIterator[RunningKubelet]:
    """A fake kubelet as node-1, and pod "web" on it: container "main" running, its log
    (``tmp_path / "main.log"``) saying hello and world."""
    core = client.CoreV1Api(api)
    async with running_kubelet(apiserver.data_dir / "pki") as running:
        node = await core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="node-1")))
        node.status = client.V1NodeStatus(
            addresses=[client.V1NodeAddress(type="InternalIP", address="127.0.0.1")],
            daemon_endpoints=client.V1NodeDaemonEndpoints(
                kubelet_endpoint=client.V1DaemonEndpoint(port=running.server.config.port)
            ),
        )
        await core.replace_node_status("node-1", node)
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1PodSpec(
                node_name="node-1", containers=[client.V1Container(name="main", image="x")]
            ),
        )
        await core.create_namespaced_pod(NAMESPACE, pod)
        running.pods.add(make_pod("web", containers=("main",), running={"main": "main-id"}))
        running.runtime.add_container("main-id")
        writer = CRILogWriter(tmp_path / "main.log")
        writer.write("stdout", b"hello\nworld\n")
        writer.close()
        running.pods.add_log("web", "main", tmp_path / "main.log")
        yield running


async def test_pod_log_through_the_kubelet(
    kubelet: RunningKubelet, api: client.ApiClient, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    assert await core.read_namespaced_pod_log("web", NAMESPACE) == "hello\nworld\n"
    assert await core.read_namespaced_pod_log("web", NAMESPACE, tail_lines=1) == "world\n"
    stamped = await core.read_namespaced_pod_log("web", NAMESPACE, timestamps=True)
    assert [line.split(" ", 1)[1] for line in stamped.splitlines()] == ["hello", "world"]

    # Following: Watch().stream passes follow=True and yields the lines as they come.
    source = kubelet.pods.logs[(NAMESPACE, "web", "main", False)]
    assert not isinstance(source, str)
    lines: list[str] = []
    async with watch.Watch() as stream, asyncio.timeout(20):
        following = stream.stream(core.read_namespaced_pod_log, "web", NAMESPACE)
        lines += [await anext(following), await anext(following)]
        writer = CRILogWriter(tmp_path / "main.log")
        writer.write("stdout", b"more\n")
        lines.append(await anext(following))
        source.running = False  # the container stopped: the kubelet ends the stream at EOF
        writer.write("stdout", b"last\n")
        writer.close()
        lines += [line async for line in following]
    assert lines == ["hello\n", "world\n", "more\n", "last\n"]

    error = await api_exception(core.read_namespaced_pod_log("web", NAMESPACE, container="nope"))
    assert (
        error.status == 400 and "container nope is not valid for pod web" in json.loads(error.body)["message"]
    )

    pending = client.V1Pod(
        metadata=client.V1ObjectMeta(name="pending"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="x")]),
    )
    await core.create_namespaced_pod(NAMESPACE, pending)
    assert await core.read_namespaced_pod_log("pending", NAMESPACE) == ""


async def test_exec_through_the_websocket_client(kubelet: RunningKubelet, api: client.ApiClient) -> None:
    async with WsApiClient(api.configuration) as ws:
        exec_api = client.CoreV1Api(ws)
        output = await exec_api.connect_get_namespaced_pod_exec(
            "web", NAMESPACE, command=["sh", "-c", "echo out; echo err >&2"], stderr=True, stdout=True
        )
        # The exit code arrives as a Status on channel 3, which the client parses.
        connecting = await exec_api.connect_get_namespaced_pod_exec(
            "web", NAMESPACE, command=["sh", "-c", "exit 3"], stderr=True, stdout=True, _preload_content=False
        )
        async with connecting as socket, asyncio.timeout(20):
            statuses = [message.data[1:] async for message in socket if message.data[:1] == b"\x03"]
    assert sorted(output.splitlines()) == ["err", "out"]
    assert [WsApiClient.parse_error_data(status) for status in statuses] == [3]
    assert [call[:2] for call in kubelet.runtime.exec_calls] == [
        ("main-id", ["sh", "-c", "echo out; echo err >&2"]),
        ("main-id", ["sh", "-c", "exit 3"]),
    ]


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 0}},
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


async def test_custom_objects_crud_and_status(api: client.ApiClient) -> None:
    crd = await client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
    assert isinstance(crd, client.V1CustomResourceDefinition) and crd.spec.names.kind == "Widget"
    custom = client.CustomObjectsApi(api)
    scope = {"group": "example.com", "version": "v1", "namespace": NAMESPACE, "plural": "widgets"}
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}}
    async with asyncio.timeout(10):
        while True:  # the CRD's API is served once it is Established
            try:
                created = await custom.create_namespaced_custom_object(body=body, **scope)
                break
            except ApiException as error:
                assert error.status == 404
                await asyncio.sleep(0.02)
    assert created["metadata"]["uid"] and created["spec"] == {"size": 1}

    assert (await custom.get_namespaced_custom_object(name="w1", **scope))["spec"] == {"size": 1}
    listed = await custom.list_namespaced_custom_object(**scope)
    assert listed["kind"] == "WidgetList" and [w["metadata"]["name"] for w in listed["items"]] == ["w1"]
    everywhere = await custom.list_cluster_custom_object("example.com", "v1", "widgets")
    assert [w["metadata"]["name"] for w in everywhere["items"]] == ["w1"]

    merged = await custom.patch_namespaced_custom_object(
        name="w1", body={"spec": {"size": 2}}, _content_type="application/merge-patch+json", **scope
    )
    assert merged["spec"] == {"size": 2}
    json_patched = await custom.patch_namespaced_custom_object(
        name="w1", body=[{"op": "replace", "path": "/spec/size", "value": 3}], **scope
    )
    assert json_patched["spec"] == {"size": 3}
    json_patched["spec"]["size"] = 4
    replaced = await custom.replace_namespaced_custom_object(name="w1", body=json_patched, **scope)
    assert replaced["spec"] == {"size": 4}

    status = await custom.patch_namespaced_custom_object_status(
        name="w1", body={"status": {"phase": "Ready"}}, _content_type="application/merge-patch+json", **scope
    )
    assert (status["status"], status["spec"]) == ({"phase": "Ready"}, {"size": 4})
    read_status = await custom.get_namespaced_custom_object_status(name="w1", **scope)
    read_status["status"]["phase"] = "Done"
    replaced_status = await custom.replace_namespaced_custom_object_status(
        name="w1", body=read_status, **scope
    )
    assert replaced_status["status"] == {"phase": "Done"}

    invalid = await api_exception(
        custom.patch_namespaced_custom_object(
            name="w1", body={"spec": {"size": -1}}, _content_type="application/merge-patch+json", **scope
        )
    )
    assert (invalid.status, json.loads(invalid.body)["details"]["causes"][0]["field"]) == (422, "spec.size")

    # Custom resources answer a delete with a Status (upstream's customresource REST does not
    # set ReturnDeletedObject).
    deleted = await custom.delete_namespaced_custom_object(name="w1", **scope)
    assert (deleted["kind"], deleted["status"], deleted["details"]["name"]) == ("Status", "Success", "w1")
    missing = await api_exception(custom.get_namespaced_custom_object(name="w1", **scope))
    assert (missing.status, missing.reason) == (404, "Not Found")


async def test_api_exceptions_carry_status_and_reason(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    missing = await api_exception(core.read_namespaced_config_map("missing", NAMESPACE))
    assert (missing.status, missing.reason) == (404, "Not Found")
    status = json.loads(missing.body)
    assert (status["kind"], status["reason"], status["message"]) == (
        "Status",
        "NotFound",
        'configmaps "missing" not found',
    )
    assert missing.headers["Content-Type"] == "application/json"

    await core.create_namespaced_config_map(NAMESPACE, configmap("cm"))
    exists = await api_exception(core.create_namespaced_config_map(NAMESPACE, configmap("cm")))
    assert (exists.status, json.loads(exists.body)["reason"]) == (409, "AlreadyExists")

    stale = await core.read_namespaced_config_map("cm", NAMESPACE)
    await core.patch_namespaced_config_map("cm", NAMESPACE, {"data": {"k": "new"}})
    conflict = await api_exception(core.replace_namespaced_config_map("cm", NAMESPACE, stale))
    assert (conflict.status, json.loads(conflict.body)["reason"]) == (409, "Conflict")

    invalid = await api_exception(core.create_namespaced_config_map(NAMESPACE, configmap("Not_Valid")))
    body = json.loads(invalid.body)
    assert (invalid.status, invalid.reason, body["reason"]) == (422, "Unprocessable Entity", "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
