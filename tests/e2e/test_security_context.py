"""The pod securityContext on a real lab, seen through the real kubectl: `kubectl exec` runs as
the container's user with its groups, no_new_privs, capabilities and read-only root, and a
runAsNonRoot container that would run as root waits with CreateContainerConfigError.

Runs on the session's lab (3 nodes); skips itself on a lab without node agents, or when the
lab does not run as root (the kubelet then cannot change users, and says so in an event)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab

NS = "security-context"
MANIFEST = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: Pod
metadata:
  name: locked
  namespace: {NS}
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    fsGroup: 2000
  volumes:
  - name: data
    emptyDir: {{}}
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 3600"]
    volumeMounts:
    - name: data
      mountPath: /data
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
---
apiVersion: v1
kind: Pod
metadata:
  name: wants-non-root
  namespace: {NS}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 3600"]
    securityContext:
      runAsNonRoot: true
"""


@pytest.fixture(scope="module")
def pods(lab: Lab) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab's node agents are not root: users and capabilities cannot be changed")
    lab.kubectl("apply", "-f", "-", input=MANIFEST)
    try:
        lab.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod/locked", "--timeout=120s", timeout=150)
        yield lab
    finally:
        lab.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_exec_runs_with_the_containers_identity_and_restrictions(pods: Lab) -> None:
    result = pods.kubectl(
        "exec",
        "-n",
        NS,
        "locked",
        "--",
        "sh",
        "-c",
        "id -u; id -g; id -G; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; stat -c %g /data",
    )
    lines = result.stdout.splitlines()
    assert lines[:2] == ["1000", "3000"]
    assert sorted(map(int, lines[2].split())) == [2000, 3000, 4000]
    assert lines[3].split() == ["CapEff:", "0000000000000000"]
    assert lines[4].split() == ["NoNewPrivs:", "1"]
    assert lines[5] == "2000", "the emptyDir belongs to fsGroup"

    denied = pods.kubectl("exec", "-n", NS, "locked", "--", "touch", "/made-by-exec", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    written = pods.kubectl("exec", "-n", NS, "locked", "--", "sh", "-c", "echo ok > /data/f && cat /data/f")
    assert written.stdout == "ok\n"


def test_run_as_non_root_refuses_a_root_container(pods: Lab) -> None:
    waiting = "{.status.containerStatuses[0].state.waiting"
    jsonpath = f"{waiting}.reason}}|{waiting}.message}}"
    deadline = time.monotonic() + 60
    output = ""
    while time.monotonic() < deadline:
        output = pods.kubectl("get", "-n", NS, "pod/wants-non-root", "-o", f"jsonpath={jsonpath}").stdout
        if output.startswith("CreateContainerConfigError|"):
            break
        time.sleep(0.5)
    reason, _, message = output.partition("|")
    assert reason == "CreateContainerConfigError", output
    assert message.startswith('container has runAsNonRoot and image will run as root (pod: "wants-non-root_')
