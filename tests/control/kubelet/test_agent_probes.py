"""Liveness, readiness and startup probes on real containers (exec, httpGet, tcpSocket)."""

from __future__ import annotations

from tests.control.kubelet.conftest import Cluster, condition, container_status, pod, shell, state_of

POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def http_server(name: str, port: int, **extra: object) -> dict:
    return {
        "name": name,
        "image": "kubelab",
        "command": ["python3", "-m", "http.server", str(port), "--bind", "$(POD_IP)"],
        "env": POD_IP_ENV,
        **extra,
    }


async def test_readiness_http_probe_gates_ready(cluster: Cluster) -> None:
    await cluster.start_agent()
    ready_probe = {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1, "failureThreshold": 1}
    await cluster.create_pod(
        pod(
            "ready-web",
            http_server(
                "web", 8080, ports=[{"name": "web", "containerPort": 8080}], readinessProbe=ready_probe
            ),
        )
    )
    ready = await cluster.wait_pod("ready-web", lambda p: condition(p, "Ready").get("status") == "True")
    assert container_status(ready, "web")["ready"] is True

    missing = {"httpGet": {"path": "/no-such-page", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    await cluster.create_pod(pod("unready-web", http_server("web", 8080, readinessProbe=missing)))
    await cluster.wait_event(
        "unready-web", "Unhealthy", contains="Readiness probe failed: HTTP probe failed with statuscode: 404"
    )
    unready = await cluster.get_pod("unready-web")
    assert unready is not None
    assert "running" in state_of(unready, "web")
    assert condition(unready, "Ready")["status"] == "False"
    assert condition(unready, "ContainersReady")["message"] == "containers with unready status: [web]"
    assert container_status(unready, "web")["restartCount"] == 0, "a failing readiness probe never restarts"


async def test_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    await cluster.start_agent()
    liveness = {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 1}
    container = shell("app", "touch /tmp/alive; sleep 1; rm /tmp/alive; sleep 60", livenessProbe=liveness)
    await cluster.create_pod(pod("liveness", container))
    restarted = await cluster.wait_pod(
        "liveness", lambda p: container_status(p, "app").get("restartCount", 0) >= 1
    )
    last = container_status(restarted, "app")["lastState"]["terminated"]
    assert last["exitCode"] in (137, 143)
    await cluster.wait_event("liveness", "Unhealthy", contains="Liveness probe failed:")
    await cluster.wait_event(
        "liveness", "Killing", contains="Container app failed liveness probe, will be restarted"
    )


async def test_startup_probe_holds_back_liveness_until_it_passes(cluster: Cluster) -> None:
    await cluster.start_agent()
    startup = {"tcpSocket": {"port": 8081}, "periodSeconds": 1, "failureThreshold": 20}
    # Liveness would fail at once if it ran before the server is up.
    liveness = {"tcpSocket": {"port": 8081}, "periodSeconds": 1, "failureThreshold": 1}
    container = {
        "name": "slow",
        "image": "kubelab",
        "command": ["sh", "-c", "sleep 1; exec python3 -m http.server 8081 --bind $POD_IP"],
        "env": POD_IP_ENV,
        "startupProbe": startup,
        "livenessProbe": liveness,
    }
    await cluster.create_pod(pod("slow-start", container))
    started = await cluster.wait_pod(
        "slow-start", lambda p: container_status(p, "slow").get("started") is True
    )
    assert container_status(started, "slow")["restartCount"] == 0
    assert condition(started, "Ready")["status"] == "True"
    failures = [e for e in await cluster.events("slow-start") if e["reason"] == "Unhealthy"]
    assert all(e["message"].startswith("Startup probe failed: dial tcp ") for e in failures), failures

    never = {"tcpSocket": {"port": 9}, "periodSeconds": 1, "failureThreshold": 1}
    await cluster.create_pod(pod("never-starts", shell("app", "sleep 60", startupProbe=never)))
    await cluster.wait_event(
        "never-starts", "Killing", contains="Container app failed startup probe, will be restarted"
    )
