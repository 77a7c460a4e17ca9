"""The official `kubernetes` Python client, unchanged, against a real `kubelab up`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from tests.e2e.conftest import Lab

NS = "pyclient"


@pytest.fixture(scope="module")
def api(lab: Lab) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(lab.kubeconfig))
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    try:
        yield api_client
    finally:
        api_client.close()


def test_configmap_crud(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm", labels={"a": "1"}), data={"k": "v"})
    )
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("cm", NS)
    assert got.data == {"k": "v"}
    got.data["k"] = "w"
    replaced = core.replace_namespaced_config_map("cm", NS, got)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    stale = got  # still carries the old resourceVersion
    stale.data["k"] = "x"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("cm", NS, stale)
    assert conflict.value.status == 409
    patched = core.patch_namespaced_config_map("cm", NS, {"data": {"p": "q"}})
    assert patched.data == {"k": "w", "p": "q"}
    listed = core.list_namespaced_config_map(NS, label_selector="a=1")
    assert [item.metadata.name for item in listed.items] == ["cm"]
    core.delete_namespaced_config_map("cm", NS)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("cm", NS)
    assert missing.value.status == 404


def test_deployment_crud_scale_and_status(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d1"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "d1"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "d1"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(NS, body)
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].image_pull_policy == "Always"  # no tag
    scale = apps.read_namespaced_deployment_scale("d1", NS)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=d1"
    apps.patch_namespaced_deployment_scale("d1", NS, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("d1", NS).spec.replicas == 4
    # the main endpoint ignores status; the status subresource sets it. The deployment controller keeps
    # rewriting status, so each write is judged by the object it returned, and with counts no controller
    # would write for this four-replica Deployment.
    status_patch = {"status": {"replicas": 40, "readyReplicas": 20, "observedGeneration": 2}}
    ignored = apps.patch_namespaced_deployment("d1", NS, status_patch)
    assert ignored.status.ready_replicas != 20
    applied = apps.patch_namespaced_deployment_status("d1", NS, status_patch)
    assert applied.status.ready_replicas == 20 and applied.status.replicas == 40
    with pytest.raises(ApiException) as invalid:
        apps.patch_namespaced_deployment("d1", NS, {"spec": {"selector": {"matchLabels": {"app": "other"}}}})
    assert invalid.value.status == 422
    apps.delete_namespaced_deployment("d1", NS)


def test_service_gets_a_cluster_ip_and_node_port(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    svc = core.create_namespaced_service(
        NS,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="np"),
            spec=client.V1ServiceSpec(
                type="NodePort", selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]
            ),
        ),
    )
    assert svc.spec.cluster_ip.startswith("127.96.")
    assert 30000 <= svc.spec.ports[0].node_port <= 32767
    assert svc.spec.ports[0].target_port == 80
    kubernetes_svc = core.read_namespaced_service("kubernetes", "default")
    assert kubernetes_svc.spec.cluster_ip == "127.96.0.1"
    core.delete_namespaced_service("np", NS)


def test_watch_stream_sees_added_modified_deleted(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start_rv = core.list_namespaced_config_map(NS).metadata.resource_version
    events: list[tuple[str, str]] = []
    stream = watch.Watch()
    done = threading.Event()

    def consume() -> None:
        for event in stream.stream(
            core.list_namespaced_config_map, NS, resource_version=start_rv, timeout_seconds=30
        ):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                stream.stop()
        done.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={}))
    core.patch_namespaced_config_map("w", NS, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w", NS)
    assert done.wait(30), f"watch did not see the deletion; saw {events}"
    consumer.join(5)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_pagination_with_limit_and_continue(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for index in range(7):
        core.create_namespaced_config_map(
            NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"page-{index}", labels={"page": "y"}))
        )
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(NS, label_selector="page=y", limit=3, _continue=token)
        names += [item.metadata.name for item in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"page-{index}" for index in range(7)] and pages == 3
    core.delete_collection_namespaced_config_map(NS, label_selector="page=y")
    assert core.list_namespaced_config_map(NS, label_selector="page=y").items == []


def test_an_hpa_reads_back_through_the_typed_client(api: client.ApiClient) -> None:
    autoscaling = client.AutoscalingV2Api(api)
    body = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="hpa"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="nothing"
            ),
            max_replicas=3,
        ),
    )
    autoscaling.create_namespaced_horizontal_pod_autoscaler(NS, body)
    # The client requires status.desiredReplicas, which upstream always serialises.
    read = autoscaling.read_namespaced_horizontal_pod_autoscaler("hpa", NS)
    assert read.spec.max_replicas == 3 and read.status.desired_replicas is not None
    assert [
        item.metadata.name for item in autoscaling.list_namespaced_horizontal_pod_autoscaler(NS).items
    ] == ["hpa"]
    autoscaling.delete_namespaced_horizontal_pod_autoscaler("hpa", NS)


def test_exec_with_stdin_through_the_websocket_stream(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="shell"),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="sh", image="busybox", command=["sleep", "3600"])],
            termination_grace_period_seconds=0,
        ),
    )
    core.create_namespaced_pod(NS, pod)
    try:
        deadline = time.monotonic() + 60
        while core.read_namespaced_pod("shell", NS).status.phase != "Running":
            assert time.monotonic() < deadline, "the pod did not start in 60 s"
            time.sleep(0.2)
        session = stream(
            core.connect_get_namespaced_pod_exec,
            "shell",
            NS,
            command=["sh", "-c", "read line; echo got-$line; exit 3"],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        session.write_stdin("abc\n")  # the client sends text frames
        output = ""
        deadline = time.monotonic() + 30
        while session.is_open() and time.monotonic() < deadline:
            session.update(timeout=1)
            output += session.read_stdout()
        session.close()
        assert output == "got-abc\n"
        assert session.returncode == 3
    finally:
        core.delete_namespaced_pod("shell", NS, grace_period_seconds=0)
