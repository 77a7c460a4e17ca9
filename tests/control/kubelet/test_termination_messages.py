"""Termination messages and the container's user in the pod status.

The file a container writes at its ``terminationMessagePath`` (bound from the sandbox in its
mount namespace) becomes ``state.terminated.message`` — its last 4096 bytes, within the pod's
12 KiB budget — and ``FallbackToLogsOnError`` falls back to the log's tail when the file is
empty; ``containerStatuses[].user`` is the identity the process started with. Real processes
(root, mount namespaces) for the agent tests; plain functions for the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from control.kubelet import logs
from control.kubelet.agent import NodeAgentOptions
from control.kubelet.runtime import procfs
from control.kubelet.runtime.process import RuntimeOptions
from control.kubelet.runtime.protocol import ContainerState, ContainerStatus, ContainerUser
from control.kubelet.status import (
    POD_TERMINATION_MESSAGE_BUDGET,
    ContainerView,
    container_status,
    trim_termination_messages,
)
from tests.control.kubelet.conftest import FAST, Cluster, pod, shell, state_of
from tests.control.kubelet.conftest import container_status as status_of

Obj = dict[str, Any]
# runc's default /dev for an unprivileged container: devices, pts, shm, mqueue and the links.
RUNC_DEV = frozenset(
    {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"}
    | {"ptmx", "fd", "stdin", "stdout", "stderr", "core"}
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces and users need root")


def pid_of(agent_dir: Path, container_id: str) -> tuple[int, int]:
    state = json.loads(next(agent_dir.glob(f"pods/*/containers/{container_id}/state.json")).read_text())
    return state["pid"], state["pid_start"]


def write_log(path: Path, *lines: str) -> None:
    path.write_bytes(b"".join(f"2024-05-01T10:00:00Z stdout F {line}\n".encode() for line in lines))


# ---------------------------------------------------------------------------- reading the message


def test_the_message_is_the_files_last_4096_bytes(tmp_path: Path) -> None:
    message_file = tmp_path / "0.termination-log"
    log_path = tmp_path / "0.log"
    write_log(log_path, "from the log")
    message_file.write_text("all done\n")
    assert logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=True) == (
        "all done\n"
    ), "a file with content wins over the logs, even under FallbackToLogsOnError"
    message_file.write_bytes(b"x" * 5000 + b"END")
    long = logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=False)
    assert len(long) == logs.TERMINATION_MESSAGE_MAX_BYTES and long.endswith("END")
    message_file.write_bytes(b"\xe2\x82\xac" * 2000)  # a character cut at the start is replaced
    assert logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=False)[
        1:
    ] == "€" * (4095 // 3)


def test_fallback_to_logs_only_when_the_file_is_empty_or_missing(tmp_path: Path) -> None:
    message_file = tmp_path / "0.termination-log"
    log_path = tmp_path / "0.log"
    write_log(log_path, *(f"line {n}" for n in range(100)))
    message_file.touch()
    from_logs = logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=True)
    assert from_logs.startswith("line 20\n") and from_logs.endswith("line 99\n"), "the last 80 lines"
    assert (
        logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=False) == ""
    )
    message_file.unlink()
    assert logs.termination_message(message_file=message_file, log_path=log_path, fallback_to_logs=True) == (
        from_logs
    )
    assert logs.termination_message(message_file=None, log_path=log_path, fallback_to_logs=True) == from_logs
    assert logs.termination_message(message_file=None, log_path=log_path, fallback_to_logs=False) == ""
    write_log(log_path, "y" * 3000)
    cut = logs.termination_message(message_file=None, log_path=log_path, fallback_to_logs=True)
    assert len(cut) == logs.TERMINATION_LOG_MAX_BYTES, "log fallback is cut at 2048 bytes"
    assert (
        logs.termination_message(message_file=None, log_path=tmp_path / "none.log", fallback_to_logs=True)
        == ""
    )


def test_an_unreadable_file_gives_upstreams_error_text(tmp_path: Path) -> None:
    message_file = tmp_path / "0.termination-log"
    message_file.mkdir()
    message = logs.termination_message(
        message_file=message_file, log_path=tmp_path / "0.log", fallback_to_logs=True
    )
    assert message.startswith(f"Error on reading termination log {message_file}: ")
    link = tmp_path / "1.termination-log"
    link.symlink_to(tmp_path / "elsewhere")
    assert logs.termination_message(
        message_file=link, log_path=tmp_path / "1.log", fallback_to_logs=False
    ).startswith("Error on reading termination log"), "a symlink put in the file's place is not followed"


def test_the_file_is_created_empty_and_world_writable(tmp_path: Path) -> None:
    path = logs.termination_message_path(tmp_path, container="app", restart_count=2)
    assert path == tmp_path / "app" / "2.termination-log"
    previous = os.umask(0o077)
    try:
        logs.create_termination_message_file(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 and path.read_bytes() == b""
    path.write_text("stale")
    logs.create_termination_message_file(path)
    assert path.read_bytes() == b"", "a re-used attempt number starts empty"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(logs.TerminationLogError, match="error on creating termination-log file") as failed:
        logs.create_termination_message_file(blocker / "app" / "0.termination-log")
    assert isinstance(failed.value.__cause__, OSError)


# ---------------------------------------------------------------------------- the status


def exited(message: str, **fields: Any) -> ContainerStatus:
    return ContainerStatus(
        id="c1", name="app", state=ContainerState.EXITED, exit_code=1, message=message, **fields
    )


def test_messages_share_the_pods_budget_keeping_their_first_bytes() -> None:
    containers = [{"name": f"c{n}"} for n in range(3)]
    body = {"spec": {"containers": containers, "initContainers": [{"name": "init"}]}}
    share = POD_TERMINATION_MESSAGE_BUDGET // 4
    statuses = [
        {"name": "c0", "state": {"terminated": {"message": "a" * 4096}}, "lastState": {}},
        {"name": "c1", "state": {"waiting": {}}, "lastState": {"terminated": {"message": "b" * 5000}}},
        {"name": "c2", "state": {"terminated": {"message": "short"}}, "lastState": {}},
    ]
    init = [{"name": "init", "state": {"terminated": {"message": "é" * 2000}}, "lastState": {}}]
    trim_termination_messages(body, [init, statuses])
    assert statuses[0]["state"]["terminated"]["message"] == "a" * share
    assert statuses[1]["lastState"]["terminated"]["message"] == "b" * share
    assert statuses[2]["state"]["terminated"]["message"] == "short"
    assert init[0]["state"]["terminated"]["message"] == "é" * (share // 2), "never half a character"

    # upstream's TestStatusNormalizationEnforcesMaxBytes: 48 containers, 256 bytes each at most
    many = [{"name": f"c{n}"} for n in range(48)]
    entries = [
        {"name": f"c{n}", "lastState": {"terminated": {"message": "abcdefgh" * (24 + n % 3)}}}
        for n in range(48)
    ]
    trim_termination_messages({"spec": {"containers": many}}, [entries])
    lengths = [len(entry["lastState"]["terminated"]["message"]) for entry in entries]
    assert all(192 <= length <= 256 for length in lengths) and sum(lengths) <= POD_TERMINATION_MESSAGE_BUDGET
    trim_termination_messages({"spec": {}}, [[{"name": "x", "state": {"terminated": {}}}]])  # no containers


def test_the_user_of_the_newest_attempt_is_reported() -> None:
    user = ContainerUser(uid=1000, gid=3000, supplemental_groups=(3000, 4000))
    view = ContainerView(name="app", image="busybox", current=exited("bye", user=user))
    status = container_status(view, default_waiting="ContainerCreating", init=False)
    assert status["user"] == {"linux": {"uid": 1000, "gid": 3000, "supplementalGroups": [3000, 4000]}}
    assert status["state"]["terminated"]["message"] == "bye"
    unknown = container_status(
        ContainerView(name="app", image="busybox", current=exited("")),
        default_waiting="ContainerCreating",
        init=False,
    )
    assert "user" not in unknown and "message" not in unknown["state"]["terminated"]
    waiting = container_status(ContainerView(name="app", image="busybox"), default_waiting="X", init=False)
    assert "user" not in waiting, "no attempt yet: no user"


# ---------------------------------------------------------------------------- real containers


def terminated_of(pod_obj: Obj, name: str) -> Obj:
    return state_of(pod_obj, name).get("terminated") or {}


@needs_root
async def test_containers_write_their_message_at_their_termination_message_path(cluster: Cluster) -> None:
    await cluster.start_agent()
    await cluster.create_pod(
        pod(
            "messages",
            shell("default-path", "echo 'disk full' > /dev/termination-log; echo to-the-log; exit 3"),
            shell(
                "own-path",
                "printf 'done: %s' ok > /tmp/why; exit 0",
                terminationMessagePath="/tmp/why",
            ),
            shell(
                "fallback",
                "echo first; echo 'why it failed'; exit 2",
                terminationMessagePolicy="FallbackToLogsOnError",
            ),
            shell(
                "long",
                "echo HEAD > /dev/termination-log; head -c 5000 /dev/zero | tr '\\0' x >> /dev/termination-log",
            ),
            shell(
                "shm",
                "test -c /dev/null && test -d /dev/pts && echo kept > /dev/shm/marker && echo ok > /dev/termination-log",
                volumeMounts=[{"name": "dshm", "mountPath": "/dev/shm"}],
            ),
            restartPolicy="Never",
            volumes=[{"name": "dshm", "emptyDir": {}}],
        )
    )
    done = await cluster.wait_pod(
        "messages",
        lambda p: all(
            terminated_of(p, name) for name in ("default-path", "own-path", "fallback", "long", "shm")
        ),
        within=30,
    )
    default = terminated_of(done, "default-path")
    assert (default["exitCode"], default["reason"], default["message"]) == (3, "Error", "disk full\n")
    assert terminated_of(done, "own-path")["message"] == "done: ok"
    assert terminated_of(done, "fallback")["message"] == "first\nwhy it failed\n"
    long = terminated_of(done, "long")["message"]
    # the file's last 4096 bytes (HEAD is gone), then this container's share of the pod's 12 KiB
    assert long == "x" * (POD_TERMINATION_MESSAGE_BUDGET // 5)
    assert terminated_of(done, "shm") == {**terminated_of(done, "shm"), "exitCode": 0, "message": "ok\n"}
    markers = list((cluster.root / "node-1" / "pods").glob("*/volumes/kubernetes.io~empty-dir/dshm/marker"))
    assert [marker.read_text() for marker in markers] == ["kept\n"], (
        "a /dev/shm volume survives the /dev shadow"
    )
    for name in ("default-path", "own-path"):
        user = status_of(done, name)["user"]["linux"]
        assert (user["uid"], user["gid"]) == (0, 0) and 0 in user["supplementalGroups"]


@needs_root
async def test_a_shadowed_dev_holds_runcs_default_devices_unless_privileged(cluster: Cluster) -> None:
    host_only = sorted(set(os.listdir("/dev")) - RUNC_DEV)
    assert host_only, "the host's /dev has entries beyond runc's default set"
    listing = "ls -a /dev | tr '\\n' ' ' > /dev/termination-log"
    await cluster.start_agent()
    await cluster.create_pod(
        pod(
            "devices",
            shell("plain", f"test -c /dev/urandom && test -L /dev/fd && test -L /dev/ptmx && {listing}"),
            shell("privileged", listing, securityContext={"privileged": True}),
            restartPolicy="Never",
        )
    )
    done = await cluster.wait_pod(
        "devices", lambda p: all(terminated_of(p, name) for name in ("plain", "privileged")), within=30
    )
    plain = set(terminated_of(done, "plain")["message"].split()) - {".", ".."}
    assert terminated_of(done, "plain")["exitCode"] == 0
    assert plain <= RUNC_DEV | {"termination-log"}, plain
    assert {"null", "urandom", "pts", "fd", "termination-log"} <= plain
    privileged = set(terminated_of(done, "privileged")["message"].split())
    assert set(host_only) <= privileged, "a privileged container sees every host device"


@needs_root
async def test_each_attempt_has_its_own_message_and_the_user_follows_the_security_context(
    cluster: Cluster,
) -> None:
    await cluster.start_agent()
    await cluster.create_pod(
        pod(
            "retries",
            shell(
                "app",
                'n=$(ls /data | wc -l); touch /data/run-$n; echo "attempt $n" > /dev/termination-log; '
                '[ "$n" -ge 1 ] && sleep 3600; exit 1',
                volumeMounts=[{"name": "data", "mountPath": "/data"}],
            ),
            restartPolicy="OnFailure",
            volumes=[{"name": "data", "emptyDir": {}}],
            securityContext={
                "runAsUser": 1000,
                "runAsGroup": 3000,
                "supplementalGroups": [4000],
                "fsGroup": 2000,
                "supplementalGroupsPolicy": "Strict",
            },
        )
    )
    running = await cluster.wait_pod(
        "retries", lambda p: "running" in state_of(p, "app") and status_of(p, "app").get("restartCount") == 1
    )
    app = status_of(running, "app")
    assert app["lastState"]["terminated"]["message"] == "attempt 0\n"
    assert app["user"] == {"linux": {"uid": 1000, "gid": 3000, "supplementalGroups": [2000, 3000, 4000]}}


async def test_without_mount_namespaces_only_the_log_fallback_applies(
    cluster: Cluster, tmp_path: Path
) -> None:
    await cluster.start_agent(
        options=NodeAgentOptions(
            kubelet=FAST, runtime=RuntimeOptions(namespaces=False), shutdown_grace_seconds=2.0
        )
    )
    host_file = tmp_path / "written-on-the-host"
    await cluster.create_pod(
        pod(
            "plain",
            shell(
                "app",
                f"echo ignored > {host_file}; echo from-the-log; exit 1",
                terminationMessagePath=str(host_file),
                terminationMessagePolicy="FallbackToLogsOnError",
            ),
            restartPolicy="Never",
        )
    )
    done = await cluster.wait_pod("plain", lambda p: bool(terminated_of(p, "app")))
    assert terminated_of(done, "app")["message"] == "from-the-log\n", "the path is the host's: not read"
    assert host_file.read_text() == "ignored\n"


@needs_root
async def test_a_restarted_agent_reads_the_message_of_an_attempt_that_exited_meanwhile(
    cluster: Cluster, tmp_path: Path
) -> None:
    first = await cluster.start_agent(
        options=NodeAgentOptions(kubelet=FAST, stop_containers_on_exit=False, shutdown_grace_seconds=2.0)
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    await cluster.create_pod(
        pod(
            "adopted",
            shell(
                "app",
                "until [ -e /gate/open ]; do sleep 0.05; done; echo 'exited while away' > /dev/termination-log; exit 6",
                volumeMounts=[{"name": "gate", "mountPath": "/gate"}],
            ),
            restartPolicy="Never",
            volumes=[{"name": "gate", "hostPath": {"path": str(gate)}}],
        )
    )
    running = await cluster.wait_pod("adopted", lambda p: "running" in state_of(p, "app"))
    pid, start = pid_of(first.data_dir, status_of(running, "app")["containerID"].removeprefix("kubelab://"))
    await first.stop()
    (gate / "open").touch()
    for _ in range(200):  # the attempt ends while no agent runs
        if not procfs.is_alive(pid, start):
            break
        await asyncio.sleep(0.05)
    assert not procfs.is_alive(pid, start)
    second = await cluster.start_agent()
    done = await cluster.wait_pod("adopted", lambda p: bool(terminated_of(p, "app")))
    terminated = terminated_of(done, "app")
    assert (terminated["exitCode"], terminated["message"]) == (6, "exited while away\n")
    await second.stop()
