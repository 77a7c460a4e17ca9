"""Volumes seen from inside real containers: configMap, secret, downwardAPI, projected,
emptyDir, hostPath; updates reaching running containers; the pod's resolv.conf and hosts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from control.client.rest import Resource
from control.controllers.kinds import NAMESPACES, SERVICE_ACCOUNTS
from control.kubelet.objectcache import CONFIG_MAPS, SECRETS
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import Cluster, RunningAgent, container_status, pod, shell, state_of

TOKEN_REVIEWS = Resource(
    group="authentication.k8s.io", version="v1", plural="tokenreviews", kind="TokenReview", namespaced=False
)


async def run_in(agent: RunningAgent, pod_obj: dict, container: str, *command: str) -> str:
    container_id = container_status(pod_obj, container)["containerID"].removeprefix("kubelab://")
    result = await agent.agent.runtime.exec_sync(container_id, list(command), timeout=10)
    assert result.exit_code == 0, result
    return result.stdout.decode()


async def eventually_reads(
    agent: RunningAgent, pod_obj: dict, container: str, path: str, expected: str
) -> None:
    seen = ""
    for _ in range(200):
        seen = await run_in(agent, pod_obj, container, "cat", path)
        if seen == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} holds {seen!r}, not {expected!r}")


async def test_config_map_secret_and_downward_api_volumes_follow_changes(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    await cluster.client.create(
        CONFIG_MAPS,
        {"metadata": {"name": "app-config"}, "data": {"app.conf": "v1", "other": "x"}},
        namespace="default",
    )
    await cluster.client.create(
        SECRETS,
        {"metadata": {"name": "app-secret"}, "stringData": {"password": "hunter2"}},
        namespace="default",
    )
    volumes = [
        {
            "name": "config",
            "configMap": {"name": "app-config", "items": [{"key": "app.conf", "path": "conf/app.conf"}]},
        },
        {"name": "secret", "secret": {"secretName": "app-secret"}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                ]
            },
        },
        {
            "name": "bundle",
            "projected": {
                "sources": [
                    {"configMap": {"name": "app-config", "items": [{"key": "other", "path": "other"}]}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                        }
                    },
                ]
            },
        },
    ]
    mounts = [
        {"name": "config", "mountPath": "/etc/app"},
        {"name": "secret", "mountPath": "/var/run/secrets/app", "readOnly": True},
        {"name": "info", "mountPath": "/etc/podinfo"},
        {"name": "bundle", "mountPath": "/etc/bundle"},
    ]
    body = pod("volumes", shell("app", "sleep 60", volumeMounts=mounts), volumes=volumes)
    body["metadata"]["labels"] = {"app": "demo"}
    await cluster.create_pod(body)
    running = await cluster.wait_pod("volumes", lambda p: "running" in state_of(p, "app"))

    assert await run_in(agent, running, "app", "cat", "/etc/app/conf/app.conf") == "v1"
    assert await run_in(agent, running, "app", "cat", "/var/run/secrets/app/password") == "hunter2"
    mode = await run_in(agent, running, "app", "stat", "-L", "-c", "%a", "/var/run/secrets/app/password")
    assert mode.strip() == "600"
    assert await run_in(agent, running, "app", "cat", "/etc/podinfo/labels") == 'app="demo"'
    assert await run_in(agent, running, "app", "cat", "/etc/podinfo/name") == "volumes"
    assert await run_in(agent, running, "app", "cat", "/etc/bundle/other") == "x"
    assert await run_in(agent, running, "app", "cat", "/etc/bundle/namespace") == "default"
    denied = await agent.agent.runtime.exec_sync(
        container_status(running, "app")["containerID"].removeprefix("kubelab://"),
        ["sh", "-c", "echo x > /var/run/secrets/app/new"],
        timeout=10,
    )
    assert denied.exit_code != 0, "a readOnly mount is read-only"
    assert not any(map(os.path.exists, ("/etc/app", "/etc/podinfo"))), "mount points stay off the host"

    await cluster.client.patch(
        CONFIG_MAPS, "app-config", {"data": {"app.conf": "v2", "other": "y"}}, namespace="default"
    )
    await eventually_reads(agent, running, "app", "/etc/app/conf/app.conf", "v2")
    await eventually_reads(agent, running, "app", "/etc/bundle/other", "y")
    await cluster.client.patch(
        PODS, "volumes", {"metadata": {"labels": {"app": "demo", "tier": "web"}}}, namespace="default"
    )
    await eventually_reads(agent, running, "app", "/etc/podinfo/labels", 'app="demo"\ntier="web"')


async def test_empty_dir_is_shared_and_host_path_is_checked(cluster: Cluster, tmp_path: Path) -> None:
    agent = await cluster.start_agent()
    shared = [{"name": "scratch", "mountPath": "/scratch"}]
    created = tmp_path / "made-for-the-pod"
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "made", "hostPath": {"path": str(created), "type": "DirectoryOrCreate"}},
        {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
    ]
    writer = shell(
        "writer",
        "echo from-writer > /scratch/note; echo host > /made/file; sleep 60",
        volumeMounts=[
            *shared,
            {"name": "made", "mountPath": "/made"},
            {"name": "memory", "mountPath": "/fast"},
        ],
    )
    reader = shell("reader", "sleep 60", volumeMounts=shared)
    await cluster.create_pod(pod("sharing", writer, reader, volumes=volumes))
    running = await cluster.wait_pod(
        "sharing", lambda p: all("running" in state_of(p, c) for c in ("writer", "reader"))
    )
    await eventually_reads(agent, running, "reader", "/scratch/note", "from-writer\n")
    for _ in range(100):
        if (created / "file").exists():
            break
        await asyncio.sleep(0.05)
    assert (created / "file").read_text() == "host\n"
    if agent.agent.runtime.namespaces:
        mounts = await run_in(agent, running, "writer", "cat", "/proc/self/mounts")
        assert any(line.split()[1] == "/fast" and line.split()[2] == "tmpfs" for line in mounts.splitlines())

    missing = [{"name": "absent", "hostPath": {"path": str(tmp_path / "absent"), "type": "File"}}]
    await cluster.create_pod(
        pod(
            "bad-host-path",
            shell("app", "sleep 60", volumeMounts=[{"name": "absent", "mountPath": "/x"}]),
            volumes=missing,
        )
    )
    event = await cluster.wait_event("bad-host-path", "FailedMount")
    assert event["message"] == (
        f'MountVolume.SetUp failed for volume "absent" : hostPath type check failed: {tmp_path / "absent"} is not a file'
    )
    waiting = await cluster.wait_pod("bad-host-path", lambda p: bool(state_of(p, "app")))
    assert state_of(waiting, "app")["waiting"]["reason"] == "ContainerCreating"
    (tmp_path / "absent").write_text("")
    await cluster.wait_pod("bad-host-path", lambda p: "running" in state_of(p, "app"))


async def test_pod_has_its_own_resolv_conf_hosts_and_hostname(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    if not agent.agent.runtime.namespaces:
        pytest.skip("not root: containers see the host's /etc/resolv.conf and /etc/hosts")
    body = pod(
        "dns-demo",
        shell("app", "sleep 60"),
        hostname="web-0",
        subdomain="web",
        dnsConfig={
            "searches": ["example.test"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
        },
        hostAliases=[{"ip": "127.0.0.1", "hostnames": ["alias.local"]}],
    )
    await cluster.create_pod(body)
    running = await cluster.wait_pod("dns-demo", lambda p: "running" in state_of(p, "app"))
    resolv = await run_in(agent, running, "app", "cat", "/etc/resolv.conf")
    lines = resolv.splitlines()
    assert "nameserver 127.96.0.10" in lines
    search = next(line for line in lines if line.startswith("search "))
    assert search.split()[1:4] == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert search.split()[-1] == "example.test"
    options = next(line for line in lines if line.startswith("options ")).split()[1:]
    assert sorted(options) == ["edns0", "ndots:2"]
    hosts = await run_in(agent, running, "app", "cat", "/etc/hosts")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n")
    assert f"{running['status']['podIP']}\tweb-0.web.default.svc.cluster.local\tweb-0" in hosts
    assert "127.0.0.1\talias.local" in hosts
    assert (await run_in(agent, running, "app", "hostname")).strip() == "web-0"
    assert (await run_in(agent, running, "app", "sh", "-c", "echo $HOSTNAME")).strip() == "web-0"


async def test_the_admitted_service_account_volume_holds_a_bound_token(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    created = await cluster.create_pod(pod("sa", shell("app", "sleep 60")))
    assert any(v["name"].startswith("kube-api-access-") for v in created["spec"]["volumes"])
    running = await cluster.wait_pod("sa", lambda p: "running" in state_of(p, "app"))
    base = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert await run_in(agent, running, "app", "cat", f"{base}/namespace") == "default"
    ca = await run_in(agent, running, "app", "cat", f"{base}/ca.crt")
    assert ca == cluster.config.ca_data.decode()
    token = await run_in(agent, running, "app", "cat", f"{base}/token")
    review = await cluster.client.create(TOKEN_REVIEWS, {"spec": {"token": token}})
    status = review["status"]
    assert status["authenticated"] is True, status
    assert status["user"]["username"] == "system:serviceaccount:default:default"
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [running["metadata"]["uid"]]


async def test_a_pod_waits_for_its_missing_default_account(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.client.create(NAMESPACES, {"metadata": {"name": "fresh"}})
    await cluster.create_pod(pod("early", shell("app", "sleep 60"), namespace="fresh"))
    expected = 'failed to fetch token: serviceaccounts "default" not found'
    for _ in range(400):
        messages = [event["message"] for event in await cluster.events("early", namespace="fresh")]
        if any(expected in message for message in messages):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no FailedMount event for the missing account; events: {messages}")
    await cluster.client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default"}}, namespace="fresh")
    await cluster.wait_pod("early", lambda p: "running" in state_of(p, "app"), namespace="fresh")
