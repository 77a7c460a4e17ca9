"""`kubectl exec`, `attach`, `logs` and `port-forward` against a real `kubelab up` whose node
agents run the pods: the streaming acceptance of the nodes-and-workloads issue.

It runs on the session's 3-node lab (node agents serve the kubelet API on their node IPs);
on a lab started with `--nodes 0` it skips itself, saying so.

Client versions matter: kubectl 1.30+ speaks WebSocket for exec/attach (v5.channel.k8s.io)
and 1.31+ for port-forward (SPDY tunnelled in WebSocket); 1.27-1.29 (and 1.30 for
port-forward) speak SPDY/3.1. Both paths are exercised.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import Lab, kubectl_binary

NS = "streaming"
MANIFEST = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: Pod
metadata:
  name: shell
  namespace: {NS}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo ready; echo to stderr >&2; while true; do sleep 3600; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: http
  namespace: {NS}
spec:
  containers:
  - name: web
    image: kubelab
    command:
    - python3
    - -c
    - |
      import http.server, os
      server = http.server.HTTPServer((os.environ["POD_IP"], 8080), http.server.SimpleHTTPRequestHandler)
      print("serving", flush=True)
      server.serve_forever()
    env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    ports:
    - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: talk
  namespace: {NS}
spec:
  containers:
  - name: main
    image: busybox
    stdin: true
    command: ["sh", "-c", "while read line; do echo heard:$line; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
  namespace: {NS}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo attempt at $(date +%s%N); exit 1"]
"""
EXEC_VERSIONS = ("1.27", "1.29", "1.30", None)  # SPDY, SPDY, WebSocket, WebSocket (default 1.32)
PORT_FORWARD_VERSIONS = ("1.27", "1.30", "1.31", None)  # SPDY, SPDY, tunnel, tunnel


@pytest.fixture(scope="module")
def pods(lab: Lab) -> Iterator[Lab]:
    lab.kubectl("apply", "-f", "-", input=MANIFEST)
    try:
        lab.kubectl(
            "wait",
            "-n",
            NS,
            "--for=condition=Ready",
            "pod/shell",
            "pod/http",
            "pod/talk",
            "--timeout=120s",
            timeout=150,
        )
        yield lab
    finally:
        lab.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def until(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.2)


@pytest.mark.parametrize("version", EXEC_VERSIONS, ids=lambda v: v or "default")
def test_exec_output_and_exit_code(pods: Lab, version: str | None) -> None:
    result = pods.kubectl(
        "exec",
        "-n",
        NS,
        "shell",
        "--",
        "sh",
        "-c",
        "echo out $HOSTNAME; echo err >&2; exit 7",
        version=version,
        check=False,
    )
    assert result.returncode == 7
    assert result.stdout == "out shell\n"
    assert result.stderr == "err\ncommand terminated with exit code 7\n"
    echoed = pods.kubectl("exec", "-i", "-n", NS, "shell", "--", "cat", version=version, input="piped\n")
    assert echoed.stdout == "piped\n"


def test_exec_errors(pods: Lab) -> None:
    missing = pods.kubectl("exec", "-n", NS, "shell", "-c", "nope", "--", "true", check=False)
    assert missing.returncode == 1 and "container nope is not valid for pod shell" in missing.stderr
    command = pods.kubectl("exec", "-n", NS, "shell", "--", "/no/such/program", check=False)
    assert command.returncode != 0


def test_exec_with_a_terminal(pods: Lab) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [
            str(kubectl_binary()),
            "--kubeconfig",
            str(pods.kubeconfig),
            "exec",
            "-it",
            "-n",
            NS,
            "shell",
            "--",
            "sh",
            "-c",
            "tty >/dev/null && echo on-a-tty; exit 3",
        ],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=30) == 3
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"on-a-tty" in output


def test_attach(pods: Lab) -> None:
    process = subprocess.Popen(
        [str(kubectl_binary()), "--kubeconfig", str(pods.kubeconfig), "attach", "-i", "-n", NS, "talk"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"hello\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"heard:hello\n"  # the suite's timeout bounds the wait
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_logs(pods: Lab) -> None:
    assert pods.kubectl("logs", "-n", NS, "shell").stdout == "ready\nto stderr\n"
    assert pods.kubectl("logs", "-n", NS, "shell", "--tail=1").stdout == "to stderr\n"
    stamped = pods.kubectl("logs", "-n", NS, "shell", "--timestamps").stdout
    assert re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \S.*\n){2}", stamped)
    invalid = pods.kubectl("logs", "-n", NS, "shell", "-c", "nope", check=False)
    assert invalid.returncode == 1 and "container nope is not valid for pod shell" in invalid.stderr


def test_logs_follow(pods: Lab) -> None:
    process = subprocess.Popen(
        [str(kubectl_binary()), "--kubeconfig", str(pods.kubeconfig), "logs", "-f", "-n", NS, "http"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"serving\n"
        assert process.poll() is None  # still following a running container
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_logs_previous_after_a_crash(pods: Lab) -> None:
    def restarted() -> bool:
        count = pods.kubectl(
            "get", "pod", "-n", NS, "crash", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"
        ).stdout
        return count.isdigit() and int(count) >= 1

    until(restarted, what="the crashing container to restart")
    previous = pods.kubectl("logs", "-n", NS, "crash", "--previous")
    assert re.fullmatch(r"attempt at \d+\n", previous.stdout)


@pytest.mark.parametrize("version", PORT_FORWARD_VERSIONS, ids=lambda v: v or "default")
def test_port_forward(pods: Lab, version: str | None) -> None:
    process = subprocess.Popen(
        [
            str(kubectl_binary(version)),
            "--kubeconfig",
            str(pods.kubeconfig),
            "port-forward",
            "-n",
            NS,
            "pod/http",
            ":8080",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.search(r"127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, f"kubectl port-forward printed {line!r}"
        for _ in range(2):  # two connections through the same session
            with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/", timeout=10) as response:
                assert response.status == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)
