"""The ResourceQuota admission plugin through the real API server: upstream's refusals word for
word, charging status.used on admission, scopes, updates, dry runs, and N concurrent creates
against a quota of k admitting exactly k. The resource quota controller is not running here, so
each test seeds a quota's status (hard and used) through the status subresource, as the
controller would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.rest import Resource, RESTClient
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

QUOTAS = Resource(group="", version="v1", plural="resourcequotas", kind="ResourceQuota")
PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
SERVICES = Resource(group="", version="v1", plural="services", kind="Service")
CONFIG_MAPS = Resource(group="", version="v1", plural="configmaps", kind="ConfigMap")
CLAIMS = Resource(group="", version="v1", plural="persistentvolumeclaims", kind="PersistentVolumeClaim")
NAMESPACES = Resource(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False)
DEPLOYMENTS = Resource(group="apps", version="v1", plural="deployments", kind="Deployment")
PRIORITY_CLASSES = Resource(
    group="scheduling.k8s.io", version="v1", plural="priorityclasses", kind="PriorityClass", namespaced=False
)


@pytest.fixture
async def client(apiserver) -> Any:  # noqa: F811
    async with RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig")) as client:
        yield client


async def make_quota(
    client: RESTClient, name: str, hard: dict[str, str], *, used: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A quota whose status says ``hard`` with ``used`` (default: zero of everything)."""
    created = await client.create(
        QUOTAS, {"metadata": {"name": name}, "spec": {"hard": hard, **spec}}, namespace="default"
    )
    created["status"] = {"hard": hard, "used": used if used is not None else dict.fromkeys(hard, "0")}
    return await client.replace(QUOTAS, created, subresource="status")


def pod(
    name: str, *, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None, **spec: Any
) -> dict:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": resources}], **spec},
    }


async def used_of(client: RESTClient, name: str) -> dict[str, str]:
    return (await client.get(QUOTAS, name, namespace="default"))["status"]["used"]


async def test_pods_past_the_quota_are_refused_with_upstreams_message(client: RESTClient) -> None:
    await make_quota(client, "compute", {"pods": "2", "requests.cpu": "1"})
    await client.create(PODS, pod("a", requests={"cpu": "400m"}), namespace="default")
    assert await used_of(client, "compute") == {"pods": "1", "requests.cpu": "400m"}
    await client.create(PODS, pod("b", requests={"cpu": "400m"}), namespace="default")
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(PODS, pod("c", requests={"cpu": "100m"}), namespace="default")
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "c" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2'
    )
    assert refused.value.details == {"name": "c", "kind": "pods"}
    with pytest.raises(errors.NotFoundError):
        await client.get(PODS, "c", namespace="default")
    assert await used_of(client, "compute") == {"pods": "2", "requests.cpu": "800m"}


async def test_only_the_exceeded_resources_are_named(client: RESTClient) -> None:
    await make_quota(client, "cpu", {"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi"})
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(PODS, pod("big", requests={"cpu": "1500m", "memory": "2Gi"}), namespace="default")
    assert refused.value.message == (
        'pods "big" is forbidden: exceeded quota: cpu, requested: requests.cpu=1500m,requests.memory=2Gi, '
        "used: requests.cpu=0,requests.memory=0, limited: requests.cpu=1,requests.memory=1Gi"
    )


async def test_a_compute_quota_requires_every_container_to_name_the_resource(client: RESTClient) -> None:
    await make_quota(client, "limits", {"limits.cpu": "2", "requests.memory": "1Gi"})
    two_containers = pod("p")
    two_containers["spec"]["containers"].append({"name": "side", "image": "busybox"})
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(PODS, two_containers, namespace="default")
    assert refused.value.message == (
        'pods "p" is forbidden: failed quota: limits: must specify limits.cpu for: app,side; '
        "requests.memory for: app,side"
    )


async def test_a_quota_without_usage_refuses_until_the_controller_counted(client: RESTClient) -> None:
    await client.create(
        QUOTAS, {"metadata": {"name": "fresh"}, "spec": {"hard": {"pods": "5"}}}, namespace="default"
    )
    created = await client.get(QUOTAS, "fresh", namespace="default")
    created["status"] = {"hard": {"pods": "5"}}
    await client.replace(QUOTAS, created, subresource="status")
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(PODS, pod("x"), namespace="default")
    assert refused.value.message == 'pods "x" is forbidden: status unknown for quota: fresh, resources: pods'


async def test_a_quota_with_only_spec_hard_is_not_enforced_yet(client: RESTClient) -> None:
    await client.create(
        QUOTAS, {"metadata": {"name": "spec-only"}, "spec": {"hard": {"pods": "0"}}}, namespace="default"
    )
    await client.create(PODS, pod("free"), namespace="default")  # status.hard is what is enforced


async def test_object_counts_services_and_claims(client: RESTClient) -> None:
    await make_quota(
        client,
        "objects",
        {
            "configmaps": "1",
            "count/deployments.apps": "0",
            "services.nodeports": "1",
            "persistentvolumeclaims": "5",
            "requests.storage": "2Gi",
            "gold.storageclass.storage.k8s.io/requests.storage": "1Gi",
        },
    )
    await client.create(CONFIG_MAPS, {"metadata": {"name": "one"}}, namespace="default")
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(CONFIG_MAPS, {"metadata": {"name": "two"}}, namespace="default")
    assert refused.value.message == (
        'configmaps "two" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, '
        "limited: configmaps=1"
    )
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]},
        },
    }
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(DEPLOYMENTS, deployment, namespace="default")
    assert refused.value.message == (
        'deployments.apps "web" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, '
        "used: count/deployments.apps=0, limited: count/deployments.apps=0"
    )
    node_port = {
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "name": "b"}]},
    }
    node_port["spec"]["ports"][0]["name"] = "a"
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(SERVICES, node_port, namespace="default")
    assert "requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1" in (
        refused.value.message
    )
    claim = {
        "metadata": {"name": "gold-claim"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "gold",
            "resources": {"requests": {"storage": "1536Mi"}},
        },
    }
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.create(CLAIMS, claim, namespace="default")
    assert refused.value.message == (
        'persistentvolumeclaims "gold-claim" is forbidden: exceeded quota: objects, requested: '
        "gold.storageclass.storage.k8s.io/requests.storage=1536Mi, used: "
        "gold.storageclass.storage.k8s.io/requests.storage=0, limited: "
        "gold.storageclass.storage.k8s.io/requests.storage=1Gi"
    )
    claim["spec"]["storageClassName"] = "silver"
    await client.create(CLAIMS, claim, namespace="default")
    used = await used_of(client, "objects")
    assert used["persistentvolumeclaims"] == "1"
    assert used["requests.storage"] == "1536Mi"


async def test_scopes_select_which_pods_a_quota_counts(client: RESTClient) -> None:
    await make_quota(client, "best-effort", {"pods": "1"}, scopes=["BestEffort"])
    await make_quota(client, "terminating", {"pods": "0"}, scopes=["Terminating"])
    await client.create(PODS, pod("be-1"), namespace="default")
    with pytest.raises(errors.ForbiddenError, match="exceeded quota: best-effort"):
        await client.create(PODS, pod("be-2"), namespace="default")
    await client.create(PODS, pod("burstable", requests={"cpu": "100m"}), namespace="default")
    with pytest.raises(errors.ForbiddenError, match="exceeded quota: terminating"):
        await client.create(
            PODS, pod("job-like", requests={"cpu": "100m"}, activeDeadlineSeconds=30), namespace="default"
        )
    assert await used_of(client, "best-effort") == {"pods": "1"}


async def test_a_priority_class_scope_selector(client: RESTClient) -> None:
    await client.create(PRIORITY_CLASSES, {"metadata": {"name": "high"}, "value": 1000})
    await make_quota(
        client,
        "high",
        {"pods": "0"},
        scopeSelector={
            "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]
        },
    )
    await client.create(PODS, pod("ordinary"), namespace="default")
    with pytest.raises(errors.ForbiddenError, match="exceeded quota: high"):
        await client.create(PODS, pod("urgent", priorityClassName="high"), namespace="default")


async def test_dry_runs_are_checked_but_not_charged(client: RESTClient) -> None:
    await make_quota(client, "pods", {"pods": "1"})
    await client.request("POST", PODS.path(namespace="default"), params={"dryRun": "All"}, body=pod("dry"))
    assert await used_of(client, "pods") == {"pods": "0"}
    await client.create(PODS, pod("real"), namespace="default")
    with pytest.raises(errors.ForbiddenError, match="exceeded quota: pods"):
        await client.request(
            "POST", PODS.path(namespace="default"), params={"dryRun": "All"}, body=pod("dry")
        )
    assert await used_of(client, "pods") == {"pods": "1"}


async def test_an_update_is_charged_only_what_it_adds(client: RESTClient) -> None:
    await make_quota(client, "ports", {"services.nodeports": "2", "services": "5"})
    service = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "name": "a"}]}}
    created = await client.create(SERVICES, service, namespace="default")
    assert await used_of(client, "ports") == {"services": "1", "services.nodeports": "1"}
    created["spec"]["ports"].append({"port": 81, "name": "b"})
    created = await client.replace(SERVICES, created)
    assert await used_of(client, "ports") == {"services": "1", "services.nodeports": "2"}
    created["spec"]["ports"].append({"port": 82, "name": "c"})
    with pytest.raises(errors.ForbiddenError) as refused:
        await client.replace(SERVICES, created)
    assert refused.value.message == (
        'services "s" is forbidden: exceeded quota: ports, requested: services.nodeports=1, '
        "used: services.nodeports=2, limited: services.nodeports=2"
    )


async def test_concurrent_creates_never_slip_past_the_quota(client: RESTClient) -> None:
    await make_quota(client, "three", {"count/configmaps": "3"})
    results = await asyncio.gather(
        *(
            client.create(CONFIG_MAPS, {"metadata": {"name": f"cm-{i}"}}, namespace="default")
            for i in range(12)
        ),
        return_exceptions=True,
    )
    admitted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, errors.ForbiddenError)]
    assert len(admitted) == 3
    assert len(refused) == 9
    assert await used_of(client, "three") == {"count/configmaps": "3"}
    listing = await client.list(CONFIG_MAPS, namespace="default")
    assert len([cm for cm in listing["items"] if cm["metadata"]["name"].startswith("cm-")]) == 3


async def test_a_quota_elsewhere_does_not_apply(client: RESTClient) -> None:
    await make_quota(client, "none", {"pods": "0"})
    await client.create(NAMESPACES, {"metadata": {"name": "other"}})
    await client.create(PODS, pod("elsewhere"), namespace="other")
