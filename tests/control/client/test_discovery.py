"""Discovery documents and the cached kind → Resource resolver."""

from __future__ import annotations

import pytest

from control.client.config import ClientConfig
from control.client.discovery import Discovery, GroupDiscoveryFailedError, UnknownKindError
from control.client.errors import ServiceUnavailableError
from control.client.rest import Resource, RESTClient
from control.client.testing import FakeClock
from tests.control.client.wire import FakeWireServer, json_answer, status_answer

CORE = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node", "verbs": ["get"]},
    ],
}
APPS = {
    "kind": "APIResourceList",
    "groupVersion": "apps/v1",
    "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment"},
        {
            "name": "deployments/scale",
            "singularName": "",
            "namespaced": True,
            "kind": "Scale",
            "group": "autoscaling",
            "version": "v1",
        },
    ],
}
METRICS = {"kind": "APIResourceList", "groupVersion": "metrics.k8s.io/v1beta1", "resources": []}


@pytest.fixture
async def cluster():
    wire = FakeWireServer()
    await wire.start()
    wire.routes.update(
        {
            "/version": json_answer({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}),
            "/api": json_answer({"kind": "APIVersions", "versions": ["v1"]}),
            "/apis": json_answer(
                {
                    "kind": "APIGroupList",
                    "groups": [
                        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
                        {
                            "name": "metrics.k8s.io",
                            "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                        },
                    ],
                }
            ),
            "/api/v1": json_answer(CORE),
            "/apis/apps/v1": json_answer(APPS),
            "/apis/metrics.k8s.io/v1beta1": json_answer(METRICS),
        }
    )
    clock = FakeClock()
    client = RESTClient(ClientConfig(server=wire.url), clock=clock)
    yield wire, Discovery(client, clock=clock), clock
    await client.close()
    await wire.stop()


async def test_version_and_group_versions(cluster):
    _, discovery, _ = cluster
    assert (await discovery.server_version())["gitVersion"] == "v1.32.0"
    assert await discovery.server_group_versions() == ["v1", "apps/v1", "metrics.k8s.io/v1beta1"]


async def test_server_resources(cluster):
    _, discovery, _ = cluster
    lists = await discovery.server_resources()
    assert [item["groupVersion"] for item in lists] == ["v1", "apps/v1", "metrics.k8s.io/v1beta1"]


async def test_server_resources_reports_partial_failure(cluster):
    wire, discovery, _ = cluster
    wire.routes["/apis/metrics.k8s.io/v1beta1"] = status_answer("ServiceUnavailable", 503, "metrics down")
    with pytest.raises(GroupDiscoveryFailedError) as caught:
        await discovery.server_resources()
    assert list(caught.value.failed) == ["metrics.k8s.io/v1beta1"]
    assert isinstance(caught.value.failed["metrics.k8s.io/v1beta1"], ServiceUnavailableError)
    assert [item["groupVersion"] for item in caught.value.resources] == ["v1", "apps/v1"]


async def test_resolves_kinds_and_caches_per_group_version(cluster):
    wire, discovery, _ = cluster
    assert await discovery.resource_for(api_version="apps/v1", kind="Deployment") == Resource(
        "apps", "v1", "deployments", "Deployment", True
    )
    assert await discovery.resource_for(api_version="v1", kind="Node") == Resource(
        "", "v1", "nodes", "Node", False
    )
    assert await discovery.resource_for(api_version="v1", kind="Pod") == Resource(
        "", "v1", "pods", "Pod", True
    )
    assert [r.path for r in wire.requests] == ["/apis/apps/v1", "/api/v1"]


async def test_subresources_are_not_what_kinds_resolve_to(cluster):
    _, discovery, _ = cluster
    with pytest.raises(UnknownKindError, match="Scale"):
        await discovery.resource_for(api_version="apps/v1", kind="Scale")


async def test_missing_kind_is_refetched_at_most_every_refresh_interval(cluster):
    wire, discovery, clock = cluster
    with pytest.raises(UnknownKindError):
        await discovery.resource_for(api_version="apps/v1", kind="StatefulSet")
    with pytest.raises(UnknownKindError):
        await discovery.resource_for(api_version="apps/v1", kind="StatefulSet")
    assert len(wire.requests) == 1, "a fresh cache answers 'unknown' without asking again"
    wire.routes["/apis/apps/v1"] = json_answer(
        {
            **APPS,
            "resources": [
                *APPS["resources"],
                {"name": "statefulsets", "namespaced": True, "kind": "StatefulSet"},
            ],
        }
    )
    clock.advance(31.0)
    assert (await discovery.resource_for(api_version="apps/v1", kind="StatefulSet")).plural == "statefulsets"
    assert len(wire.requests) == 2


async def test_unserved_group_version_is_an_unknown_kind(cluster):
    wire, discovery, _ = cluster
    with pytest.raises(UnknownKindError, match="does not serve"):
        await discovery.resource_for(api_version="example.com/v1", kind="Widget")
    with pytest.raises(UnknownKindError):
        await discovery.resource_for(api_version="example.com/v1", kind="Widget")
    assert len(wire.requests) == 1


async def test_invalidate_forgets_the_cache(cluster):
    wire, discovery, _ = cluster
    await discovery.resource_for(api_version="v1", kind="Pod")
    discovery.invalidate()
    await discovery.resource_for(api_version="v1", kind="Pod")
    assert len(wire.requests) == 2
