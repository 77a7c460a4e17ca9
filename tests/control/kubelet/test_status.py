"""Pod status generation: container states, phases, conditions, QoS — upstream's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.kubelet.runtime.protocol import ContainerState, ContainerStatus
from control.kubelet.status import (
    ContainerView,
    PodView,
    container_status,
    generate_status,
    pod_phase,
    qos_class,
)


def runtime_status(
    state: ContainerState, *, exit_code: int | None = None, attempt: int = 0, reason: str = ""
) -> ContainerStatus:
    return ContainerStatus(
        id=f"{attempt:064d}",
        name="app",
        state=state,
        started_at=100.0,
        finished_at=200.0 if state is ContainerState.EXITED else None,
        exit_code=exit_code,
        reason=reason,
        log_path=Path("/x"),
        attempt=attempt,
        image_id="kubelab-process://busybox@/bin/sh",
    )


RUNNING = runtime_status(ContainerState.RUNNING, attempt=2)
CRASHED = runtime_status(ContainerState.EXITED, exit_code=1, attempt=1, reason="Error")


def test_container_states() -> None:
    running = container_status(
        ContainerView(
            name="app",
            image="busybox",
            current=RUNNING,
            previous=CRASHED,
            restart_count=2,
            ready=True,
            started=True,
        ),
        default_waiting="ContainerCreating",
        init=False,
    )
    assert running["state"] == {"running": {"startedAt": "1970-01-01T00:01:40Z"}}
    assert running["lastState"]["terminated"]["exitCode"] == 1
    assert running["lastState"]["terminated"]["containerID"] == "kubelab://" + CRASHED.id
    assert (running["ready"], running["started"], running["restartCount"]) == (True, True, 2)
    assert running["containerID"] == "kubelab://" + RUNNING.id

    backing_off = container_status(
        ContainerView(
            name="app",
            image="busybox",
            current=CRASHED,
            restart_count=1,
            waiting_reason="CrashLoopBackOff",
            waiting_message="back-off 10s",
        ),
        default_waiting="ContainerCreating",
        init=False,
    )
    assert backing_off["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert backing_off["lastState"]["terminated"]["finishedAt"] == "1970-01-01T00:03:20Z"
    assert backing_off["containerID"] == "kubelab://" + CRASHED.id and backing_off["ready"] is False

    fresh = container_status(
        ContainerView(name="app", image="busybox"), default_waiting="PodInitializing", init=False
    )
    assert fresh["state"] == {"waiting": {"reason": "PodInitializing"}} and "containerID" not in fresh
    assert fresh["imageID"] == "" and fresh["lastState"] == {}

    done_init = container_status(
        ContainerView(
            name="setup",
            image="busybox",
            current=runtime_status(ContainerState.EXITED, exit_code=0, reason="Completed"),
        ),
        default_waiting="PodInitializing",
        init=True,
    )
    assert done_init["ready"] is True and done_init["state"]["terminated"]["reason"] == "Completed"


def pod(*containers: str, init: tuple[str, ...] = (), policy: str = "Always") -> dict:
    return {
        "metadata": {"name": "p", "namespace": "d", "uid": "u"},
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": name} for name in containers],
            "initContainers": [{"name": name} for name in init],
        },
    }


def state(
    kind: str, *, code: int = 0, last_code: int | None = None, name: str = "app", ready: bool = False
) -> dict:
    body: dict = {"name": name, "ready": ready}
    if kind == "running":
        body["state"] = {"running": {}}
    elif kind == "terminated":
        body["state"] = {"terminated": {"exitCode": code}}
    else:
        body["state"] = {"waiting": {"reason": "X"}}
    body["lastState"] = {"terminated": {"exitCode": last_code}} if last_code is not None else {}
    return body


@pytest.mark.parametrize(
    ("policy", "statuses", "terminal", "phase"),
    [
        ("Always", [state("running")], False, "Running"),
        ("Always", [state("waiting")], False, "Pending"),
        ("Always", [state("waiting", last_code=1)], False, "Running"),
        ("Always", [state("terminated", code=0)], False, "Running"),
        ("Never", [state("terminated", code=0)], False, "Succeeded"),
        ("Never", [state("terminated", code=2)], False, "Failed"),
        ("OnFailure", [state("terminated", code=2)], False, "Running"),
        ("OnFailure", [state("terminated", code=0)], False, "Succeeded"),
        ("Always", [state("terminated", code=143)], True, "Failed"),
        ("Always", [state("terminated", code=0)], True, "Succeeded"),
        ("Always", [], False, "Pending"),
    ],
)
def test_phase(policy: str, statuses: list[dict], terminal: bool, phase: str) -> None:
    assert (
        pod_phase(pod("app", policy=policy), init_statuses=[], statuses=statuses, terminal=terminal) == phase
    )


def sidecar_pod(policy: str = "Never") -> dict:
    spec = pod("app", init=("proxy",), policy=policy)
    spec["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    return spec


def test_phase_with_a_sidecar() -> None:
    spec = sidecar_pod()
    not_started = {**state("running", name="proxy"), "started": False}
    started = {**state("running", name="proxy"), "started": True}

    def phase(sidecar: dict, main: dict, *, initialized: bool = False) -> str:
        return pod_phase(
            spec, init_statuses=[sidecar], statuses=[main], terminal=False, initialized=initialized
        )

    assert phase(not_started, state("waiting")) == "Pending"  # its startup has not finished
    assert phase(started, state("running")) == "Running"
    # the main container is done but the sidecar still runs: Running until the kubelet stops it
    assert phase(started, state("terminated")) == "Running"
    # a stopped sidecar does not count: the pod's outcome is its containers'
    assert phase(state("terminated", code=143, name="proxy"), state("terminated")) == "Succeeded"
    assert phase(state("terminated", code=0, name="proxy"), state("terminated", code=1)) == "Failed"
    # restarting after initialization does not make the pod Pending again
    restarting = {**state("waiting", name="proxy", last_code=1)}
    assert phase(restarting, state("running"), initialized=True) == "Running"


def test_phase_with_init_containers() -> None:
    spec = pod("app", init=("setup",), policy="Never")
    running_init = [state("running", name="setup")]
    assert (
        pod_phase(spec, init_statuses=running_init, statuses=[state("waiting")], terminal=False) == "Pending"
    )
    failed_init = [state("terminated", code=1, name="setup")]
    assert pod_phase(spec, init_statuses=failed_init, statuses=[state("waiting")], terminal=False) == "Failed"
    retrying = pod("app", init=("setup",), policy="Always")
    assert (
        pod_phase(
            retrying,
            init_statuses=[state("waiting", last_code=1, name="setup")],
            statuses=[state("waiting")],
            terminal=False,
        )
        == "Pending"
    )


def test_qos_class() -> None:
    def with_resources(*resources: dict) -> dict:
        return {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}}

    assert qos_class(with_resources({})) == "BestEffort"
    guaranteed = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(with_resources(guaranteed)) == "Guaranteed"
    assert qos_class(with_resources(guaranteed, {})) == "Burstable"
    assert qos_class(with_resources({"requests": {"cpu": "100m"}})) == "Burstable"


def view(pod_obj: dict, *containers: ContainerView, terminal: bool = False) -> PodView:
    return PodView(
        pod=pod_obj,
        init_containers=[],
        containers=list(containers),
        pod_ips=["127.244.1.4"],
        host_ip="127.100.0.1",
        start_time="2024-01-01T00:00:00Z",
        sandbox_ready=True,
        terminal=terminal,
    )


def test_generate_status_conditions_and_transition_times() -> None:
    spec = pod("app")
    spec["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    spec["status"] = {"conditions": [{"type": "example.com/lb", "status": "False"}], "qosClass": "Burstable"}
    ready_view = ContainerView(
        name="app", image="busybox", current=RUNNING, restart_count=2, ready=True, started=True
    )
    first = generate_status(view(spec, ready_view), now=1000.0)
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["ContainersReady"]["status"] == "True"
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "ReadinessGatesNotReady",
        "message": 'the status of pod readiness gate "example.com/lb" is not "True", but False',
        "lastProbeTime": None,
        "lastTransitionTime": "1970-01-01T00:16:40Z",
    }
    assert conditions["example.com/lb"]["status"] == "False", "conditions the kubelet does not own are kept"
    assert first["qosClass"] == "Burstable" and first["podIP"] == "127.244.1.4"
    assert first["hostIPs"] == [{"ip": "127.100.0.1"}] and first["startTime"] == "2024-01-01T00:00:00Z"

    spec["status"]["conditions"] = [{"type": "example.com/lb", "status": "True"}]
    second = generate_status(view(spec, ready_view), last_sent=first, now=2000.0)
    again = {c["type"]: c for c in second["conditions"]}
    assert (
        again["Ready"]["status"] == "True" and again["Ready"]["lastTransitionTime"] == "1970-01-01T00:33:20Z"
    )
    assert again["ContainersReady"]["lastTransitionTime"] == "1970-01-01T00:16:40Z", "unchanged: time kept"


def test_terminal_phase_is_never_left() -> None:
    spec = pod("app")
    spec["status"] = {"phase": "Failed"}
    status = generate_status(view(spec, ContainerView(name="app", image="busybox", current=RUNNING)))
    assert status["phase"] == "Failed"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["reason"] == "PodFailed"


def test_a_pod_the_kubelet_fails_is_failed_with_its_reason() -> None:
    spec = pod("app")
    spec["status"] = {"phase": "Running"}
    running = ContainerView(name="app", image="busybox", current=RUNNING, ready=True, started=True)
    failed = view(spec, running)
    failed.failure = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    status = generate_status(failed)
    assert status["phase"] == "Failed"
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "Pod was active on the node longer than the specified deadline"
    assert {c["type"]: c for c in status["conditions"]}["Ready"]["reason"] == "PodFailed"


def test_a_succeeded_pod_stays_succeeded_whatever_the_kubelet_says_later() -> None:
    spec = pod("app", policy="Never")
    spec["status"] = {"phase": "Succeeded"}
    done = ContainerView(
        name="app", image="busybox", current=runtime_status(ContainerState.EXITED, exit_code=0)
    )
    finished = view(spec, done)
    finished.failure = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    status = generate_status(finished)
    assert status["phase"] == "Succeeded" and "reason" not in status
