"""A node agent running real pods against a real API server: start, status, environment,
logs, restarts with CrashLoopBackOff, restart policies, init containers, deletion."""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest

from control.kubelet.agent import NodeAgentOptions
from control.kubelet.logs import LogOptions, read_container_log
from control.kubelet.objectcache import CONFIG_MAPS, SECRETS
from control.kubelet.pods import LogUnavailableError
from control.kubelet.runtime.process import RuntimeOptions
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import (
    FAST,
    Cluster,
    RunningAgent,
    condition,
    container_status,
    pod,
    shell,
    state_of,
)


async def log_text(agent: RunningAgent, name: str, container: str, *, previous: bool = False) -> str:
    source = agent.agent.pods.log_source("default", name, container, previous=previous)
    return b"".join([chunk async for chunk in read_container_log(source.path, LogOptions())]).decode()


async def wait_log(agent: RunningAgent, name: str, container: str, needle: str) -> str:
    text = ""
    for _ in range(200):
        text = await log_text(agent, name, container)
        if needle in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in the log of {name}/{container}: {text!r}")


async def test_pod_runs_with_its_environment_and_reports_status(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    await cluster.client.create(
        CONFIG_MAPS,
        {"metadata": {"name": "settings"}, "data": {"MODE": "fast", "LEVEL": "3"}},
        namespace="default",
    )
    await cluster.client.create(
        SECRETS, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}, namespace="default"
    )
    script = (
        'echo "name=$POD_NAME ip=$POD_IP node=$NODE_NAME host=$HOST_IP mem=$MEM cpu=$CPU greeting=$GREETING"; '
        'echo "mode=$CFG_MODE level=$CFG_LEVEL token=$TOKEN arg=$1 svc=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
        "sleep 60"
    )
    container = {
        "name": "main",
        "image": "busybox",
        "command": ["sh", "-c", script, "--"],
        "args": ["$(GREETING)-$$(GREETING)-$(UNDEFINED)"],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "GREETING", "value": "hello-$(POD_NAME)"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        ],
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
    }
    await cluster.create_pod(pod("env-demo", container))
    running = await cluster.wait_pod("env-demo", lambda p: condition(p, "Ready").get("status") == "True")
    status = running["status"]
    assert status["phase"] == "Running"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("127.244.1.0/24")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == "127.100.0.1" and status["hostIPs"] == [{"ip": "127.100.0.1"}]
    assert status["qosClass"] == "Guaranteed"
    assert status["startTime"]
    main = container_status(running, "main")
    assert re.fullmatch(r"kubelab://[0-9a-f]{64}", main["containerID"])
    assert main["imageID"].startswith("kubelab-process://busybox@")
    assert main["ready"] is True and main["started"] is True and main["restartCount"] == 0
    assert "running" in main["state"]
    assert {c["type"] for c in status["conditions"]} >= {
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    }

    text = await wait_log(agent, "env-demo", "main", "token=")
    assert (
        f"name=env-demo ip={status['podIP']} node=node-1 host=127.100.0.1 mem=64 cpu=500 greeting=hello-env-demo"
        in text
    )
    assert (
        "mode=fast level=3 token=s3cret arg=hello-env-demo-$(GREETING)-$(UNDEFINED) svc=127.96.0.1:443"
        in text
    )

    await cluster.client.delete(PODS, "env-demo", namespace="default")
    await cluster.wait_gone("env-demo")
    reasons = {event["reason"] for event in await cluster.events("env-demo")}
    assert {"Pulled", "Created", "Started", "Killing"} <= reasons
    for _ in range(100):
        if not list((agent.data_dir / "pods").glob("default_env-demo_*")):
            break
        await asyncio.sleep(0.05)
    assert not list((agent.data_dir / "pods").glob("default_env-demo_*")), "the sandbox goes with the pod"
    assert not list((agent.data_dir / "containers").glob("env-demo_default_*")), "and so do its log links"


async def test_crashing_container_restarts_with_crash_loop_back_off(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    await cluster.create_pod(pod("crasher", shell("app", "echo attempt; exit 3")))
    backing_off = await cluster.wait_pod(
        "crasher",
        lambda p: (
            container_status(p, "app").get("restartCount", 0) >= 2
            and state_of(p, "app").get("waiting", {}).get("reason") == "CrashLoopBackOff"
        ),
    )
    app = container_status(backing_off, "app")
    assert re.fullmatch(
        r"back-off \ds restarting failed container=app pod=crasher_default\(.+\)",
        app["state"]["waiting"]["message"],
    )
    last = app["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert last["containerID"] == app["containerID"]
    assert backing_off["status"]["phase"] == "Running"
    assert condition(backing_off, "Ready")["status"] == "False"
    assert condition(backing_off, "Ready")["message"] == "containers with unready status: [app]"
    await cluster.wait_event("crasher", "BackOff", contains="Back-off restarting failed container app")
    assert await log_text(agent, "crasher", "app") == "attempt\n"
    assert await log_text(agent, "crasher", "app", previous=True) == "attempt\n"


async def test_restart_policies_never_and_on_failure(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(
        pod(
            "never",
            shell(
                "app",
                "echo first; echo 'why it failed'; exit 1",
                terminationMessagePolicy="FallbackToLogsOnError",
            ),
            restartPolicy="Never",
        )
    )
    await cluster.create_pod(pod("on-failure", shell("app", "exit 0"), restartPolicy="OnFailure"))
    failed = await cluster.wait_pod("never", lambda p: p["status"].get("phase") == "Failed")
    terminated = state_of(failed, "app")["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"
    assert terminated["message"] == "first\nwhy it failed\n", "FallbackToLogsOnError: the log's tail"
    assert container_status(failed, "app")["restartCount"] == 0
    assert condition(failed, "Ready")["reason"] == "PodFailed"
    succeeded = await cluster.wait_pod("on-failure", lambda p: p["status"].get("phase") == "Succeeded")
    assert state_of(succeeded, "app")["terminated"]["reason"] == "Completed"
    assert condition(succeeded, "Ready")["reason"] == "PodCompleted"
    # A finished pod stays (for its logs) until deleted; deleting it is immediate.
    await cluster.client.delete(PODS, "never", namespace="default")
    await cluster.wait_gone("never")


async def test_init_containers_run_in_order_before_the_containers(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    volume = [{"name": "work", "emptyDir": {}}]
    mount = [{"name": "work", "mountPath": "/work-area"}]
    await cluster.create_pod(
        pod(
            "init-demo",
            shell("main", "cat /work-area/order; sleep 60", volumeMounts=mount),
            initContainers=[
                shell("first", "echo first >> /work-area/order", volumeMounts=mount),
                shell("second", "echo second >> /work-area/order", volumeMounts=mount),
            ],
            volumes=volume,
        )
    )
    running = await cluster.wait_pod("init-demo", lambda p: "running" in state_of(p, "main"))
    for name in ("first", "second"):
        terminated = state_of(running, name, init=True)["terminated"]
        assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
        assert container_status(running, name, init=True)["ready"] is True
    assert condition(running, "Initialized")["status"] == "True"
    assert await wait_log(agent, "init-demo", "main", "second") == "first\nsecond\n"

    await cluster.create_pod(
        pod(
            "init-fails",
            shell("main", "sleep 60"),
            initContainers=[shell("setup", "exit 2")],
            restartPolicy="Never",
        )
    )
    failed = await cluster.wait_pod("init-fails", lambda p: p["status"].get("phase") == "Failed")
    assert state_of(failed, "setup", init=True)["terminated"]["exitCode"] == 2
    assert state_of(failed, "main")["waiting"]["reason"] == "PodInitializing"
    assert condition(failed, "Initialized")["message"] == "containers with incomplete status: [setup]"
    with pytest.raises(LogUnavailableError, match="is waiting to start: PodInitializing"):
        agent.agent.pods.log_source("default", "init-fails", "main")


async def test_follow_reads_until_the_container_exits(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    await cluster.create_pod(
        pod(
            "counter", shell("app", "for i in 1 2 3; do echo line $i; sleep 0.2; done"), restartPolicy="Never"
        )
    )
    await cluster.wait_pod(
        "counter", lambda p: "running" in state_of(p, "app") or "terminated" in state_of(p, "app")
    )
    source = agent.agent.pods.log_source("default", "counter", "app")
    options = LogOptions(follow=True, timestamps=True)
    chunks = [
        chunk async for chunk in read_container_log(source.path, options, still_running=source.still_running)
    ]
    lines = b"".join(chunks).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line 1", "line 2", "line 3"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", line.split(" ")[0]) for line in lines)
    with pytest.raises(LogUnavailableError, match="previous terminated container"):
        agent.agent.pods.log_source("default", "counter", "app", previous=True)
    with pytest.raises(LogUnavailableError, match='pod "nope" cannot be found'):
        agent.agent.pods.log_source("default", "nope", "app")


async def test_without_root_isolation_the_pod_still_runs_and_is_told_why(cluster: Cluster) -> None:
    options = NodeAgentOptions(kubelet=FAST, runtime=RuntimeOptions(namespaces=False, cgroups=False))
    agent = await cluster.start_agent(options=options)
    assert agent.agent.runtime.namespaces is False and agent.agent.runtime.cgroups is None
    await cluster.create_pod(
        pod("plain", shell("app", 'echo "search=$LOCALDOMAIN options=$RES_OPTIONS"; sleep 60'))
    )
    await cluster.wait_pod("plain", lambda p: "running" in state_of(p, "app"))
    text = await wait_log(agent, "plain", "app", "search=")
    assert "search=default.svc.cluster.local svc.cluster.local cluster.local" in text
    assert "options=ndots:5" in text
    event = await cluster.wait_event("plain", "ProcessRuntimeLimits")
    assert "volumes are not mounted at their mountPath" in event["message"]
    assert "memory and CPU limits are not enforced" in event["message"]
