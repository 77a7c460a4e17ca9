"""API aggregation: an APIService hands its group/version to an extension API server behind a
Service; we check it, list it in discovery and proxy to it as the front proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.control.apiserver.conftest import RunningServer, running_apiserver
from tests.control.apiserver.extension_apiserver import ExtensionAPIServer
from tests.control.apiserver.test_crd_cel import kubectl

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"
NAME = "v1beta1.metrics.k8s.io"
NODE_METRICS = [
    {
        "metadata": {"name": "node-1", "creationTimestamp": "2026-11-26T00:00:00Z"},
        "timestamp": "2026-11-26T00:00:00Z",
        "window": "20s",
        "usage": {"cpu": "250m", "memory": "512Mi"},
    }
]
POD_METRICS = [
    {
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": "2026-11-26T00:00:00Z"},
        "timestamp": "2026-11-26T00:00:00Z",
        "window": "20s",
        "containers": [{"name": "web", "usage": {"cpu": "5m", "memory": "20Mi"}}],
    }
]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path) as server:
        yield server


@pytest.fixture
async def extension(api: RunningServer, tmp_path: Path) -> AsyncIterator[ExtensionAPIServer]:
    server = ExtensionAPIServer(
        group="metrics.k8s.io",
        version="v1beta1",
        front_proxy_ca=api.data_dir / "pki" / "front-proxy-ca.crt",
        directory=tmp_path,
        resources={"nodes": ("NodeMetrics", False, NODE_METRICS), "pods": ("PodMetrics", True, POD_METRICS)},
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def create(api: RunningServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, created = await api.request("POST", path, body=body)
    assert status == 201, created
    return created


async def back_the_service(api: RunningServer, ext: ExtensionAPIServer, *, ready: bool = True) -> None:
    """The Service, Endpoints and EndpointSlice the controllers would make for the extension's pod."""
    await create(
        api,
        f"/api/v1/namespaces/{ext.namespace}/services",
        {
            "metadata": {"name": ext.service},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": ext.port}]},
        },
    )
    if ready:
        await create(
            api,
            f"/api/v1/namespaces/{ext.namespace}/endpoints",
            {
                "metadata": {"name": ext.service},
                "subsets": [
                    {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": ext.port}]}
                ],
            },
        )
    await create(
        api,
        f"/apis/discovery.k8s.io/v1/namespaces/{ext.namespace}/endpointslices",
        {
            "metadata": {"name": f"{ext.service}-x1", "labels": {"kubernetes.io/service-name": ext.service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}],
            "ports": [{"name": "https", "port": ext.port, "protocol": "TCP"}],
        },
    )


def api_service(ext: ExtensionAPIServer, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": NAME},
        "spec": {
            "group": ext.group,
            "version": ext.version,
            "service": {"namespace": ext.namespace, "name": ext.service, "port": 443},
            "caBundle": ext.ca_bundle,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            **spec,
        },
    }


async def availability(api: RunningServer, *, reason: str, within: float = 15.0) -> dict[str, Any]:
    """The Available condition once its reason is ``reason``."""
    deadline = asyncio.get_running_loop().time() + within
    condition: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        status, obj = await api.request("GET", f"{APISERVICES}/{NAME}")
        assert status == 200, obj
        conditions = (obj.get("status") or {}).get("conditions") or []
        condition = next((c for c in conditions if c["type"] == "Available"), {})
        if condition.get("reason") == reason:
            return condition
        await asyncio.sleep(0.05)
    raise AssertionError(f"Available never had reason {reason}; last: {condition}")


async def test_an_available_extension_is_discovered_and_proxied_as_the_front_proxy(
    api: RunningServer, extension: ExtensionAPIServer
) -> None:
    await back_the_service(api, extension)
    await create(api, APISERVICES, api_service(extension))
    condition = await availability(api, reason="Passed")
    assert condition["status"] == "True" and condition["message"] == "all checks passed"
    # The availability probe came as the aggregator, with the front proxy's certificate.
    probe = extension.seen[0]
    assert (probe.path, probe.user, probe.groups, probe.client_cn) == (
        "/apis/metrics.k8s.io/v1beta1",
        "system:kube-aggregator",
        ["system:masters"],
        "front-proxy-client",
    )

    _, groups = await api.request("GET", "/apis")
    metrics = next(g for g in groups["groups"] if g["name"] == "metrics.k8s.io")
    assert metrics["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    status, group = await api.request("GET", "/apis/metrics.k8s.io")
    assert status == 200 and group["kind"] == "APIGroup"
    status, resources = await api.request("GET", "/apis/metrics.k8s.io/v1beta1")
    assert status == 200 and {r["name"] for r in resources["resources"]} == {"nodes", "pods"}

    extension.seen.clear()
    status, nodes = await api.request(
        "GET", "/apis/metrics.k8s.io/v1beta1/nodes", headers={"Authorization": "Bearer not-for-them"}
    )
    assert status == 200 and nodes["items"] == NODE_METRICS
    seen = extension.seen[-1]
    assert seen.user == "kubernetes-admin" and "system:masters" in seen.groups, seen
    assert seen.authorization is None and seen.client_cn == "front-proxy-client"
    status, pod = await api.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1")
    assert status == 200 and pod["containers"][0]["usage"]["cpu"] == "5m"
    status, missing = await api.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
    assert status == 404 and missing["reason"] == "NotFound"  # the extension's own answer, passed on


async def test_the_user_passed_on_is_the_impersonated_one_and_impersonation_headers_stay_here(
    api: RunningServer, extension: ExtensionAPIServer
) -> None:
    await back_the_service(api, extension)
    await create(api, APISERVICES, api_service(extension))
    await availability(api, reason="Passed")
    extension.seen.clear()
    # Authorized here first: jane may not read the extension's nodes, and it never hears of it.
    status, body = await api.request(
        "GET", "/apis/metrics.k8s.io/v1beta1/nodes", headers={"Impersonate-User": "jane"}
    )
    assert status == 403 and 'cannot list resource "nodes" in API group "metrics.k8s.io"' in body["message"]
    assert extension.seen == []
    status, _ = await api.request(
        "GET",
        "/apis/metrics.k8s.io/v1beta1/nodes",
        headers={
            "Impersonate-User": "jane",
            "Impersonate-Group": "system:masters",
            "Impersonate-Extra-Scopes": "view",
            "X-Remote-User": "forged",
        },
    )
    assert status == 200
    seen = extension.seen[-1]
    assert seen.user == "jane"
    assert seen.groups == ["system:masters", "system:authenticated"]
    assert seen.extra == {"scopes": ["view"]}
    assert seen.impersonation == []


async def test_kubectl_top_reads_the_extension(
    api: RunningServer, extension: ExtensionAPIServer, tmp_path: Path
) -> None:
    await back_the_service(api, extension)
    await create(
        api,
        "/api/v1/nodes",
        {
            "metadata": {"name": "node-1"},
            "status": {
                "capacity": {"cpu": "2", "memory": "4Gi"},
                "allocatable": {"cpu": "2", "memory": "4Gi"},
            },
        },
    )
    await create(api, APISERVICES, api_service(extension))
    await availability(api, reason="Passed")

    code, out = await kubectl(api, tmp_path, "get", "apiservices", NAME)
    assert code == 0, out
    assert out.split("\n")[1].split()[:3] == [NAME, f"{extension.namespace}/{extension.service}", "True"], out
    code, out = await kubectl(api, tmp_path, "top", "nodes")
    assert code == 0, out
    header, row = out.strip().split("\n")[:2]
    assert header.split()[:2] == ["NAME", "CPU(cores)"], out
    assert row.split()[:5] == ["node-1", "250m", "12%", "512Mi", "12%"], out
    code, out = await kubectl(api, tmp_path, "top", "pods", "-n", "default")
    assert code == 0, out
    assert out.strip().split("\n")[1].split() == ["web-1", "5m", "20Mi"], out


async def test_why_an_extension_is_unavailable_in_upstreams_words(
    api: RunningServer, extension: ExtensionAPIServer
) -> None:
    await create(api, APISERVICES, api_service(extension))
    condition = await availability(api, reason="ServiceNotFound")
    assert condition["status"] == "False"
    assert condition["message"] == 'service/ext in "kube-system" is not present'
    status, body = await api.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert (status, body) == (503, "service unavailable\n")

    await back_the_service(api, extension, ready=False)
    condition = await availability(api, reason="MissingEndpoints")
    assert (
        condition["message"]
        == 'endpointslices for service/ext in "kube-system" have no addresses with port name "https"'
    )

    status, _ = await api.request(
        "DELETE", f"/api/v1/namespaces/{extension.namespace}/services/{extension.service}"
    )
    assert status == 200
    await create(
        api,
        f"/api/v1/namespaces/{extension.namespace}/services",
        {"metadata": {"name": extension.service}, "spec": {"ports": [{"name": "https", "port": 8443}]}},
    )
    condition = await availability(api, reason="ServicePortError")
    assert condition["message"] == 'service/ext in "kube-system" is not listening on port 443'

    # Now a ready endpoint and the right port, but the extension itself is broken.
    status, _ = await api.request(
        "DELETE", f"/api/v1/namespaces/{extension.namespace}/services/{extension.service}"
    )
    status, _ = await api.request(
        "DELETE", f"/apis/discovery.k8s.io/v1/namespaces/{extension.namespace}/endpointslices/ext-x1"
    )
    extension.healthy = False
    await back_the_service(api, extension)
    condition = await availability(api, reason="FailedDiscoveryCheck")
    url = f"https://127.0.0.1:{extension.port}/apis/metrics.k8s.io/v1beta1"
    assert condition["message"] == f"failing or missing response from {url}: bad status from {url}: 500"
    _, metrics = await api.request("GET", "/metrics")
    assert f'aggregator_unavailable_apiservice{{name="{NAME}"}} 1.0' in metrics

    extension.healthy = True  # it recovers: the retry finds it without any object changing
    condition = await availability(api, reason="Passed")
    assert condition["status"] == "True"
    _, metrics = await api.request("GET", "/metrics")
    assert f'aggregator_unavailable_apiservice{{name="{NAME}"}} 0.0' in metrics
    assert f'aggregator_unavailable_apiservice_total{{name="{NAME}",reason="ServiceNotFound"}} 1.0' in metrics


async def test_a_deleted_apiservice_takes_its_group_away(
    api: RunningServer, extension: ExtensionAPIServer
) -> None:
    await back_the_service(api, extension)
    await create(api, APISERVICES, api_service(extension))
    await availability(api, reason="Passed")
    status, _ = await api.request("DELETE", f"{APISERVICES}/{NAME}")
    assert status == 200

    async def gone() -> bool:
        _, groups = await api.request("GET", "/apis")
        return "metrics.k8s.io" not in {g["name"] for g in groups["groups"]}

    deadline = asyncio.get_running_loop().time() + 10
    while not await gone():
        assert asyncio.get_running_loop().time() < deadline, "the group stayed in /apis"
        await asyncio.sleep(0.05)
    status, _ = await api.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert status == 404


async def test_a_watch_streams_through_and_an_upgrade_is_refused(
    api: RunningServer, extension: ExtensionAPIServer
) -> None:
    await back_the_service(api, extension)
    await create(api, APISERVICES, api_service(extension))
    await availability(api, reason="Passed")
    async with api.session.get(
        api.url + "/apis/metrics.k8s.io/v1beta1/nodes", params={"watch": "true"}
    ) as response:
        assert response.status == 200
        lines = [line async for line in response.content if line.strip()]
    assert len(lines) == 1 and b'"ADDED"' in lines[0]
    status, body = await api.request(
        "GET", "/apis/metrics.k8s.io/v1beta1/nodes", headers={"Connection": "Upgrade", "Upgrade": "websocket"}
    )
    assert status == 501, body
