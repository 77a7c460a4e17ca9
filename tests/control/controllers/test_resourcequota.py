"""The resource quota controller against the real API server (with the quota admission plugin):
status.hard follows spec.hard, status.used counts what exists (scopes, terminal pods, object
counts of any kind through discovery), usage is freed when objects go or finish, and a full
resync recounts."""

from __future__ import annotations

from typing import Any

import pytest

from control.client import errors
from control.client.rest import Resource
from control.controllers import resourcequota
from control.controllers.kinds import CONFIG_MAPS, PODS, RESOURCE_QUOTAS
from control.controllers.manager import ControllerContext
from control.controllers.resourcequota import ResourceQuotaController
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running

DEPLOYMENTS = Resource(group="apps", version="v1", plural="deployments", kind="Deployment")


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, resourcequota.new_controller) as cluster:
        yield cluster


async def create_quota(cluster: Cluster, name: str, hard: dict[str, str], **spec: Any) -> dict[str, Any]:
    return await cluster.client.create(
        RESOURCE_QUOTAS, {"metadata": {"name": name}, "spec": {"hard": hard, **spec}}, namespace="default"
    )


async def status_becomes(cluster: Cluster, name: str, expected: dict[str, Any]) -> None:
    async def check() -> bool:
        current = await cluster.client.get(RESOURCE_QUOTAS, name, namespace="default")
        return current.get("status") == expected

    await cluster.wait_for(check, what=f"quota {name} status {expected}")


def pod_body(name: str, *, cpu: str | None = None, deadline: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    spec: dict[str, Any] = {"containers": [container]}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"metadata": {"name": name}, "spec": spec}


async def test_a_new_quota_gets_hard_and_the_namespaces_usage(cluster: Cluster) -> None:
    await cluster.client.create(PODS, pod_body("a", cpu="250m"), namespace="default")
    await cluster.client.create(PODS, pod_body("b"), namespace="default")
    await create_quota(cluster, "compute", {"pods": "10", "requests.cpu": "2", "count/pods": "20"})
    await status_becomes(
        cluster,
        "compute",
        {
            "hard": {"count/pods": "20", "pods": "10", "requests.cpu": "2"},
            "used": {"count/pods": "2", "pods": "2", "requests.cpu": "250m"},
        },
    )


async def test_usage_is_freed_when_pods_finish_or_go(cluster: Cluster) -> None:
    await create_quota(cluster, "pods", {"pods": "2", "count/pods": "5"})
    await status_becomes(
        cluster, "pods", {"hard": {"count/pods": "5", "pods": "2"}, "used": {"count/pods": "0", "pods": "0"}}
    )
    await cluster.client.create(PODS, pod_body("one"), namespace="default")
    await cluster.client.create(PODS, pod_body("two"), namespace="default")
    with pytest.raises(errors.ForbiddenError, match="exceeded quota: pods"):
        await cluster.client.create(PODS, pod_body("three"), namespace="default")
    await cluster.client.patch(
        PODS, "one", {"status": {"phase": "Succeeded"}}, namespace="default", subresource="status"
    )
    await status_becomes(
        cluster, "pods", {"hard": {"count/pods": "5", "pods": "2"}, "used": {"count/pods": "2", "pods": "1"}}
    )
    await cluster.client.create(PODS, pod_body("three"), namespace="default")
    await cluster.client.delete(PODS, "two", namespace="default", grace_period_seconds=0)
    await cluster.client.delete(PODS, "one", namespace="default", grace_period_seconds=0)
    await status_becomes(
        cluster, "pods", {"hard": {"count/pods": "5", "pods": "2"}, "used": {"count/pods": "1", "pods": "1"}}
    )


async def test_changing_spec_hard_recounts(cluster: Cluster) -> None:
    await cluster.client.create(CONFIG_MAPS, {"metadata": {"name": "cm"}}, namespace="default")
    created = await create_quota(cluster, "objects", {"configmaps": "4"})
    await status_becomes(cluster, "objects", {"hard": {"configmaps": "4"}, "used": {"configmaps": "1"}})
    current = await cluster.client.get(RESOURCE_QUOTAS, "objects", namespace="default")
    current["spec"]["hard"] = {"configmaps": "1", "count/deployments.apps": "3"}
    assert created["metadata"]["uid"] == current["metadata"]["uid"]
    await cluster.client.replace(RESOURCE_QUOTAS, current)
    await status_becomes(
        cluster,
        "objects",
        {
            "hard": {"configmaps": "1", "count/deployments.apps": "3"},
            "used": {"configmaps": "1", "count/deployments.apps": "0"},
        },
    )
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_body("x")["spec"]},
        },
    }
    await cluster.client.create(DEPLOYMENTS, deployment, namespace="default")
    await cluster.client.delete(DEPLOYMENTS, "web", namespace="default")
    await status_becomes(
        cluster,
        "objects",
        {
            "hard": {"configmaps": "1", "count/deployments.apps": "3"},
            "used": {"configmaps": "1", "count/deployments.apps": "0"},
        },
    )


async def test_scoped_quotas_count_only_their_pods(cluster: Cluster) -> None:
    await cluster.client.create(PODS, pod_body("best-effort"), namespace="default")
    await cluster.client.create(PODS, pod_body("guaranteed", cpu="1"), namespace="default")
    await cluster.client.create(PODS, pod_body("batch", cpu="500m", deadline=60), namespace="default")
    await create_quota(cluster, "be", {"pods": "10"}, scopes=["BestEffort"])
    await create_quota(
        cluster, "long", {"pods": "10", "limits.cpu": "8"}, scopes=["NotTerminating", "NotBestEffort"]
    )
    await status_becomes(cluster, "be", {"hard": {"pods": "10"}, "used": {"pods": "1"}})
    await status_becomes(
        cluster, "long", {"hard": {"limits.cpu": "8", "pods": "10"}, "used": {"limits.cpu": "1", "pods": "1"}}
    )


async def test_a_kind_the_server_does_not_serve_is_not_counted(cluster: Cluster) -> None:
    await create_quota(cluster, "odd", {"count/widgets.example.com": "1", "pods": "1"})
    await status_becomes(
        cluster, "odd", {"hard": {"count/widgets.example.com": "1", "pods": "1"}, "used": {"pods": "0"}}
    )


async def test_a_full_resync_corrects_drifted_usage(apiserver) -> None:  # noqa: F811
    def fast_resync(ctx: ControllerContext) -> ResourceQuotaController:
        return ResourceQuotaController(ctx, resync_period=0.2)

    async with running(apiserver, fast_resync) as cluster:
        await create_quota(cluster, "drift", {"configmaps": "5"})
        await status_becomes(cluster, "drift", {"hard": {"configmaps": "5"}, "used": {"configmaps": "0"}})
        current = await cluster.client.get(RESOURCE_QUOTAS, "drift", namespace="default")
        current["status"]["used"] = {"configmaps": "4"}  # as a charge for a create that then failed
        await cluster.client.replace(RESOURCE_QUOTAS, current, subresource="status")
        await status_becomes(cluster, "drift", {"hard": {"configmaps": "5"}, "used": {"configmaps": "0"}})
