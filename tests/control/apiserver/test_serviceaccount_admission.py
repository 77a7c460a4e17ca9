"""The ServiceAccount admission plugin, through pod creates on the real API server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control.apiserver.serviceaccount_admission import TOKEN_MOUNT_PATH, token_volume_source
from tests.control.apiserver.conftest import RunningServer, running_apiserver

PODS = "/api/v1/namespaces/default/pods"
ACCOUNTS = "/api/v1/namespaces/default/serviceaccounts"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path) as running:
        yield running


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec},
    }


async def create(server: RunningServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return await server.request("POST", PODS, body=body)


def token_volumes(created: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in created["spec"].get("volumes") or () if v["name"].startswith("kube-api-access-")]


async def test_a_pod_gets_the_default_account_and_its_token_volume(server: RunningServer) -> None:
    body = pod(
        "web",
        initContainers=[{"name": "init", "image": "busybox"}],
        containers=[
            {"name": "app", "image": "busybox"},
            {
                "name": "own",
                "image": "busybox",
                "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}],
            },
        ],
        volumes=[{"name": "mine", "emptyDir": {}}],
    )
    code, created = await create(server, body)
    assert code == 201, created
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = token_volumes(created)
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == token_volume_source()
    assert volume["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}
    }
    expected = {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    assert spec["initContainers"][0]["volumeMounts"] == [expected]
    assert spec["containers"][0]["volumeMounts"] == [expected]
    # A container that mounts something at the token path keeps it, alone.
    assert spec["containers"][1]["volumeMounts"] == [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]


async def test_automount_preferences_pod_first_then_account(server: RunningServer) -> None:
    await server.request(
        "POST", ACCOUNTS, body={"metadata": {"name": "quiet"}, "automountServiceAccountToken": False}
    )
    await server.request("POST", ACCOUNTS, body={"metadata": {"name": "loud"}})
    cases = [
        ("pod-off", {"serviceAccountName": "loud", "automountServiceAccountToken": False}, False),
        ("account-off", {"serviceAccountName": "quiet"}, False),
        ("pod-on", {"serviceAccountName": "quiet", "automountServiceAccountToken": True}, True),
        ("default-on", {"serviceAccountName": "loud"}, True),
    ]
    for name, spec, mounted in cases:
        code, created = await create(server, pod(name, **spec))
        assert code == 201, created
        assert bool(token_volumes(created)) is mounted, name
        mounts = created["spec"]["containers"][0].get("volumeMounts") or []
        assert any(m["mountPath"] == TOKEN_MOUNT_PATH for m in mounts) is mounted, name


async def test_an_existing_token_volume_is_reused_and_pull_secrets_copied(server: RunningServer) -> None:
    await server.request(
        "POST", ACCOUNTS, body={"metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "registry"}]}
    )
    volume = {"name": "kube-api-access-mine1", "projected": token_volume_source()}
    code, created = await create(server, pod("reuse", serviceAccountName="puller", volumes=[volume]))
    assert code == 201, created
    assert [v["name"] for v in created["spec"]["volumes"]] == ["kube-api-access-mine1"]
    assert created["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-mine1"
    assert created["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    own = pod("own-pulls", serviceAccountName="puller", imagePullSecrets=[{"name": "mine"}])
    code, created = await create(server, own)
    assert created["spec"]["imagePullSecrets"] == [{"name": "mine"}]


async def test_an_unknown_account_is_refused_but_a_missing_default_is_not(server: RunningServer) -> None:
    code, answer = await create(server, pod("lost", serviceAccountName="ghost"))
    assert code == 403 and answer["reason"] == "Forbidden"
    assert answer["message"] == (
        'pods "lost" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found'
    )
    # No ServiceAccount controller runs here: "default" does not exist, and the pod is admitted.
    code, _ = await server.request("GET", f"{ACCOUNTS}/default")
    assert code == 404
    code, created = await create(server, pod("early"))
    assert code == 201 and token_volumes(created)


async def test_updates_are_not_mutated(server: RunningServer) -> None:
    code, created = await create(server, pod("steady", automountServiceAccountToken=False))
    assert code == 201
    created["metadata"]["labels"] = {"changed": "yes"}
    code, updated = await server.request("PUT", f"{PODS}/steady", body=created)
    assert code == 200, updated
    assert not token_volumes(updated)


MIRROR = {"kubernetes.io/config.mirror": "abc"}


async def test_mirror_pods_are_left_alone_and_may_not_use_accounts_or_secrets(
    server: RunningServer,
) -> None:
    body = pod("static-web", nodeName="node-1")
    body["metadata"]["annotations"] = MIRROR
    code, created = await create(server, body)
    assert code == 201, created
    assert "serviceAccountName" not in created["spec"] and not token_volumes(created)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"serviceAccountName": "default"}, "a mirror pod may not reference service accounts"),
        (
            {"volumes": [{"name": "s", "secret": {"secretName": "x"}}]},
            "a mirror pod may not reference secrets",
        ),
        (
            {
                "containers": [
                    {
                        "name": "app",
                        "image": "busybox",
                        "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}],
                    }
                ]
            },
            "a mirror pod may not reference secrets",
        ),
    ],
)
async def test_mirror_pod_refusals(server: RunningServer, spec: dict[str, Any], why: str) -> None:
    body = pod("static", nodeName="node-1", **spec)
    body["metadata"]["annotations"] = MIRROR
    code, answer = await create(server, body)
    assert code == 403, answer["message"]
    assert answer["message"] == f'pods "static" is forbidden: {why}'
