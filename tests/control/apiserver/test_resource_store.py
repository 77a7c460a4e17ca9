"""ResourceStore.update and the resourceVersion a write's transform sees.

Upstream applies a patch to the current object as stored, resourceVersion included
(apiserver: pkg/endpoints/handlers/patch.go, ``applyPatchToCurrentObject``), and the store
then refuses a result whose resourceVersion differs from the stored one
(registry/generic/registry/store.go, ``Update``). So a JSON patch may ``test`` the version
(kopf guards every JSON patch so), a patch that keeps it is unconditional, and a patch
that sets another one is a conflict.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.control.apiserver.conftest import RunningServer

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"


async def configmap(apiserver: RunningServer, name: str) -> dict[str, Any]:
    status, created = await apiserver.request(
        "POST", CM, body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    )
    assert status == 201, created
    return created


async def test_a_json_patch_may_test_the_current_resource_version(apiserver: RunningServer):
    created = await configmap(apiserver, "tested")
    version = created["metadata"]["resourceVersion"]
    status, patched = await apiserver.request(
        "PATCH",
        f"{CM}/tested",
        body=[
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]},
        ],
        content_type=JSON_PATCH,
    )
    assert status == 200, patched
    assert patched["metadata"]["finalizers"] == ["example.com/hold"]
    assert int(patched["metadata"]["resourceVersion"]) > int(version)


async def test_a_json_patch_on_the_status_subresource_may_test_the_resource_version(apiserver: RunningServer):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    status, created = await apiserver.request("POST", DEPLOY, body=deployment)
    assert status == 201, created
    status, patched = await apiserver.request(
        "PATCH",
        f"{DEPLOY}/web/status",
        body=[
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": created["metadata"]["resourceVersion"],
            },
            {"op": "add", "path": "/status/observedGeneration", "value": 1},
        ],
        content_type=JSON_PATCH,
    )
    assert status == 200, patched
    assert patched["status"]["observedGeneration"] == 1


async def test_a_json_patch_testing_a_stale_resource_version_changes_nothing(apiserver: RunningServer):
    created = await configmap(apiserver, "stale")
    await apiserver.request("PATCH", f"{CM}/stale", body={"data": {"a": "1"}}, content_type=MERGE)
    status, body = await apiserver.request(
        "PATCH",
        f"{CM}/stale",
        body=[
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": created["metadata"]["resourceVersion"],
            },
            {"op": "add", "path": "/data/b", "value": "2"},
        ],
        content_type=JSON_PATCH,
    )
    assert status == 422 and body["reason"] == "Invalid"
    _, current = await apiserver.request("GET", f"{CM}/stale")
    assert current["data"] == {"a": "1"}


@pytest.mark.parametrize(
    ("content_type", "pin"),
    [
        (MERGE, lambda version: {"metadata": {"resourceVersion": version}, "data": {"b": "2"}}),
        (
            JSON_PATCH,
            lambda version: [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
                {"op": "add", "path": "/data/b", "value": "2"},
            ],
        ),
    ],
    ids=["merge", "json"],
)
async def test_a_patch_setting_another_resource_version_is_a_conflict(
    apiserver: RunningServer, content_type: str, pin: Any
):
    created = await configmap(apiserver, "pinned")
    await apiserver.request("PATCH", f"{CM}/pinned", body={"data": {"a": "1"}}, content_type=MERGE)
    status, body = await apiserver.request(
        "PATCH", f"{CM}/pinned", body=pin(created["metadata"]["resourceVersion"]), content_type=content_type
    )
    assert status == 409 and body["reason"] == "Conflict"
    _, current = await apiserver.request("GET", f"{CM}/pinned")
    assert current["data"] == {"a": "1"}


async def test_a_patch_that_keeps_or_drops_the_resource_version_is_unconditional(apiserver: RunningServer):
    await configmap(apiserver, "free")
    status, kept = await apiserver.request(
        "PATCH", f"{CM}/free", body={"data": {"a": "1"}}, content_type=MERGE
    )
    assert status == 200, kept
    status, dropped = await apiserver.request(
        "PATCH",
        f"{CM}/free",
        body=[
            {"op": "remove", "path": "/metadata/resourceVersion"},
            {"op": "add", "path": "/data/b", "value": "2"},
        ],
        content_type=JSON_PATCH,
    )
    assert status == 200, dropped
    assert dropped["data"] == {"a": "1", "b": "2"}
    assert int(dropped["metadata"]["resourceVersion"]) > int(kept["metadata"]["resourceVersion"])


async def test_concurrent_patches_that_keep_the_version_all_land(apiserver: RunningServer):
    """A patch that does not name a resourceVersion is unconditional even though its transform saw
    one: when another write wins the race, it is applied again to the fresh object (409 only for
    a version the request itself pinned)."""
    await configmap(apiserver, "busy")

    async def label(index: int) -> int:
        status, answer = await apiserver.request(
            "PATCH",
            f"{CM}/busy",
            body={"metadata": {"labels": {f"writer-{index}": "yes"}}},
            content_type=MERGE,
        )
        assert status == 200, answer
        return status

    assert await asyncio.gather(*(label(index) for index in range(40))) == [200] * 40
    status, final = await apiserver.request("GET", f"{CM}/busy")
    assert status == 200
    assert sorted(final["metadata"]["labels"]) == sorted(f"writer-{index}" for index in range(40))
