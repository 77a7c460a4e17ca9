"""Sidecars (init containers with ``restartPolicy: Always``) on a real node agent: started in
their turn before the next init container, running beside the containers, restarted when they
exit, not keeping a finished pod from completing, stopped after the containers.

The agent runs as ``node-9`` (``127.100.0.9``), clear of the nodes a lab would use."""

from __future__ import annotations

from tests.control.kubelet.conftest import Cluster, condition, container_status, pod, shell

NODE = {"node_name": "node-9", "node_ip": "127.100.0.9"}
NO_TOKEN = {"automountServiceAccountToken": False}  # no ServiceAccount controller runs here
SHARED = {"name": "shared", "mountPath": "/shared"}


def sidecar(script: str, **extra: object) -> dict:
    return shell("proxy", script, restartPolicy="Always", volumeMounts=[SHARED], **extra)


async def test_a_sidecar_runs_beside_the_containers_and_stops_after_them(cluster: Cluster) -> None:
    await cluster.start_agent(**NODE)
    body = pod(
        "batch",
        shell("main", "cat /shared/ready; sleep 1; exit 0", volumeMounts=[SHARED]),
        node="node-9",
        restartPolicy="Never",
        **NO_TOKEN,
        initContainers=[
            # writes its marker only once running, and is started (startup probe) only when it exists
            sidecar(
                "echo up > /shared/ready; trap 'echo bye >> /shared/log; exit 0' TERM; while true; do sleep 0.2; done",
                startupProbe={"exec": {"command": ["test", "-e", "/shared/ready"]}, "periodSeconds": 1},
            ),
            shell("check", "test -e /shared/ready", volumeMounts=[SHARED]),
        ],
        volumes=[{"name": "shared", "emptyDir": {}}],
    )
    await cluster.create_pod(body)

    def running_together(p: dict) -> bool:
        return "running" in container_status(p, "main").get("state", {}) and "running" in container_status(
            p, "proxy", init=True
        ).get("state", {})

    during = await cluster.wait_pod("batch", running_together)
    proxy = container_status(during, "proxy", init=True)
    assert proxy["started"] is True and proxy["ready"] is True
    assert during["status"]["phase"] == "Running"
    assert condition(during, "Initialized")["status"] == "True"
    check = container_status(during, "check", init=True)
    assert check["state"]["terminated"]["exitCode"] == 0  # the sidecar was started before it ran

    done = await cluster.wait_pod("batch", lambda p: p["status"].get("phase") == "Succeeded")
    assert container_status(done, "main")["state"]["terminated"]["exitCode"] == 0
    assert "terminated" in container_status(done, "proxy", init=True)["state"]


async def test_a_sidecar_that_exits_is_restarted_while_the_containers_keep_running(cluster: Cluster) -> None:
    await cluster.start_agent(**NODE)
    body = pod(
        "svc",
        shell("main", "while true; do sleep 1; done"),
        node="node-9",
        **NO_TOKEN,
        initContainers=[shell("flaky", "sleep 0.5; exit 3", restartPolicy="Always")],
    )
    await cluster.create_pod(body)
    restarted = await cluster.wait_pod(
        "svc", lambda p: container_status(p, "flaky", init=True).get("restartCount", 0) >= 1
    )
    main = container_status(restarted, "main")
    assert "running" in main["state"] and main["restartCount"] == 0
    # Upstream counts a sidecar that is not running as unready: the pod is not Ready meanwhile.
    unready = await cluster.wait_pod(
        "svc", lambda p: "running" not in container_status(p, "flaky", init=True).get("state", {})
    )
    assert unready["status"]["phase"] == "Running"
