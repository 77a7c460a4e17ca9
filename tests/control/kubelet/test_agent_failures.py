"""Bad input and faults: unknown images, missing commands, OOM kills, graceful termination
and lifecycle hooks — and the node agent keeps serving every other pod meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from control.kubelet.objectcache import CONFIG_MAPS
from control.kubelet.status import PODS
from tests.control.kubelet.conftest import Cluster, condition, container_status, pod, shell, state_of


async def test_bad_images_and_commands_leave_other_pods_running(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(pod("unknown-image", {"name": "app", "image": "registry.example/acme/app:1.0"}))
    await cluster.create_pod(pod("bad-name", {"name": "app", "image": "Not//Valid"}))
    await cluster.create_pod(
        pod("no-command", {"name": "app", "image": "busybox", "command": ["no-such-program"]})
    )
    await cluster.create_pod(pod("healthy", shell("app", "sleep 60")))

    healthy = await cluster.wait_pod("healthy", lambda p: condition(p, "Ready").get("status") == "True")
    assert healthy["status"]["phase"] == "Running"

    pulling = await cluster.wait_pod(
        "unknown-image", lambda p: state_of(p, "app").get("waiting", {}).get("reason") == "ImagePullBackOff"
    )
    message = state_of(pulling, "app")["waiting"]["message"]
    assert message.startswith('Back-off pulling image "registry.example/acme/app:1.0": ErrImagePull: ')
    assert "not supported by the kubelab process runtime" in message
    assert pulling["status"]["phase"] == "Pending"
    await cluster.wait_event(
        "unknown-image", "Failed", contains='Failed to pull image "registry.example/acme/app:1.0"'
    )
    await cluster.wait_event(
        "unknown-image", "BackOff", contains='Back-off pulling image "registry.example/acme/app:1.0"'
    )
    # As upstream's describe shows it: "Warning  Failed  ...  Error: ImagePullBackOff".
    await cluster.wait_event("unknown-image", "Failed", contains="Error: ImagePullBackOff")

    invalid = await cluster.wait_pod(
        "bad-name", lambda p: state_of(p, "app").get("waiting", {}).get("reason") == "InvalidImageName"
    )
    assert "invalid reference format" in state_of(invalid, "app")["waiting"]["message"]

    looping = await cluster.wait_pod(
        "no-command",
        lambda p: (
            state_of(p, "app").get("waiting", {}).get("reason") == "CrashLoopBackOff"
            and container_status(p, "app").get("restartCount", 0) >= 1
        ),
    )
    last = container_status(looping, "app")["lastState"]["terminated"]
    assert last["reason"] == "StartError" and last["exitCode"] == 128
    assert (
        last["message"]
        == 'failed to start container process: exec: "no-such-program": executable file not found in $PATH'
    )
    await cluster.wait_event("no-command", "Failed", contains='exec: "no-such-program"')

    still = await cluster.get_pod("healthy")
    assert still is not None and container_status(still, "app")["restartCount"] == 0


async def test_missing_config_map_waits_with_create_container_config_error(cluster: Cluster) -> None:
    await cluster.start_agent()
    container = shell("app", "echo $VALUE; sleep 60")
    container["env"] = [
        {"name": "VALUE", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "value"}}}
    ]
    await cluster.create_pod(pod("needs-config", container))
    waiting = await cluster.wait_pod(
        "needs-config",
        lambda p: state_of(p, "app").get("waiting", {}).get("reason") == "CreateContainerConfigError",
    )
    assert state_of(waiting, "app")["waiting"]["message"] == 'configmap "later" not found'
    await cluster.client.create(
        CONFIG_MAPS, {"metadata": {"name": "later"}, "data": {"value": "now"}}, namespace="default"
    )
    await cluster.wait_pod("needs-config", lambda p: "running" in state_of(p, "app"))


async def test_memory_limit_is_enforced_and_reported_as_oom_killed(cluster: Cluster) -> None:
    agent = await cluster.start_agent()
    if agent.agent.runtime.cgroups is None:
        pytest.skip("no writable cgroup hierarchy on this machine: memory limits cannot be enforced here")
    hog = {
        "name": "hog",
        "image": "kubelab",
        "command": [
            "python3",
            "-c",
            "blocks = [bytearray(8 << 20) for _ in range(64)]; import time; time.sleep(60)",
        ],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    await cluster.create_pod(pod("oom", hog, restartPolicy="Never"))
    failed = await cluster.wait_pod("oom", lambda p: "terminated" in state_of(p, "hog"))
    terminated = state_of(failed, "hog")["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137


async def test_graceful_termination_runs_pre_stop_then_sigterm_then_sigkill(
    cluster: Cluster, tmp_path: Path
) -> None:
    await cluster.start_agent()
    record = tmp_path / "record"
    record.mkdir()
    stubborn = shell(
        "app",
        "trap 'echo got-term >> /record/trace' TERM; echo started >> /record/trace; "
        "while true; do sleep 0.1; done",
        volumeMounts=[{"name": "record", "mountPath": "/record"}],
        lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop >> /record/trace"]}}},
    )
    volumes = [{"name": "record", "hostPath": {"path": str(record), "type": "Directory"}}]
    await cluster.create_pod(pod("stubborn", stubborn, volumes=volumes, terminationGracePeriodSeconds=2))
    await cluster.wait_pod("stubborn", lambda p: "running" in state_of(p, "app"))
    await cluster.client.delete(PODS, "stubborn", namespace="default")
    started = time.monotonic()
    await cluster.wait_gone("stubborn")
    elapsed = time.monotonic() - started
    # The shell traps SIGTERM and carries on: only SIGKILL, after the grace period, ends it.
    assert 1.5 <= elapsed < 10, elapsed
    assert (record / "trace").read_text().splitlines() == ["started", "pre-stop", "got-term"]
    await cluster.wait_event("stubborn", "Killing", contains="Stopping container app")


async def test_post_start_hook_runs_and_a_failing_one_restarts_the_container(
    cluster: Cluster, tmp_path: Path
) -> None:
    await cluster.start_agent()
    record = tmp_path / "hooks"
    record.mkdir()
    volumes = [{"name": "record", "hostPath": {"path": str(record), "type": "Directory"}}]
    mounts = [{"name": "record", "mountPath": "/record"}]
    good = shell(
        "app",
        "sleep 60",
        volumeMounts=mounts,
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo post-start > /record/ran"]}}},
    )
    await cluster.create_pod(pod("hooked", good, volumes=volumes))
    await cluster.wait_pod("hooked", lambda p: "running" in state_of(p, "app"))
    assert (record / "ran").read_text() == "post-start\n"

    bad = shell(
        "app", "sleep 60", lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo nope; exit 7"]}}}
    )
    await cluster.create_pod(pod("bad-hook", bad))
    await cluster.wait_pod("bad-hook", lambda p: container_status(p, "app").get("restartCount", 0) >= 1)
    event = await cluster.wait_event("bad-hook", "FailedPostStartHook")
    assert event["message"].startswith("Exec lifecycle hook ([")
    assert 'for Container "app" in Pod "bad-hook_default(' in event["message"]
    assert "nope" in event["message"]


async def test_deleted_pod_with_exiting_containers_is_removed_quickly(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(pod("quick", shell("app", "sleep 60")))
    await cluster.wait_pod("quick", lambda p: "running" in state_of(p, "app"))
    started = time.monotonic()
    await cluster.client.delete(PODS, "quick", namespace="default")
    await cluster.wait_gone("quick")
    assert time.monotonic() - started < 2.5


async def test_a_pod_made_terminal_by_someone_else_stops_running(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(pod("evicted", shell("app", "sleep 60")))
    await cluster.wait_pod("evicted", lambda p: "running" in state_of(p, "app"))
    await cluster.client.patch(
        PODS,
        "evicted",
        {"status": {"phase": "Failed", "reason": "Evicted"}},
        namespace="default",
        subresource="status",
    )
    stopped = await cluster.wait_pod("evicted", lambda p: "terminated" in state_of(p, "app"))
    assert stopped["status"]["phase"] == "Failed" and stopped["status"]["reason"] == "Evicted"
    assert state_of(stopped, "app")["terminated"]["exitCode"] == 143


async def test_a_pod_past_its_active_deadline_is_failed_and_stopped(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(pod("deadline", shell("app", "sleep 60"), activeDeadlineSeconds=2))
    await cluster.create_pod(pod("in-time", shell("app", "sleep 60"), activeDeadlineSeconds=600))
    await cluster.wait_pod("deadline", lambda p: "running" in state_of(p, "app"))
    failed = await cluster.wait_pod("deadline", lambda p: p["status"].get("phase") == "Failed")
    assert failed["status"]["reason"] == "DeadlineExceeded"
    assert failed["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    stopped = await cluster.wait_pod("deadline", lambda p: "terminated" in state_of(p, "app"))
    assert state_of(stopped, "app")["terminated"]["exitCode"] == 143
    assert container_status(stopped, "app")["restartCount"] == 0, "a failed pod is not restarted"
    event = await cluster.wait_event("deadline", "DeadlineExceeded")
    assert event["type"] == "Normal"
    in_time = await cluster.get_pod("in-time")
    assert in_time is not None and in_time["status"]["phase"] == "Running"
