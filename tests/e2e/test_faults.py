"""Issue 3's "bad input and faults" on a real lab, with real kubectl.

Broken pods (a command that does not exist, an image the runtime cannot run, a readiness
probe that never succeeds, a container killed for exceeding its memory limit) show upstream's
waiting/terminated reasons in `kubectl get` and `kubectl describe`, while a healthy pod on
the same node keeps running and answering.

The process faults that need running pods use the shared session lab too, and leave it as
healthy as they found it. A lab of their own with nodes is not an option while the shared
one runs: node N's address (127.100.0.N) belongs to one lab at a time, and a second 3-node
lab would cost as much as the tests themselves.

- SIGKILL a node agent: node-3's. To see it die within seconds rather than upstream's 40 s,
  the test first restarts the lab's controllers process with ``KUBELAB_NODE_MONITOR_PERIOD``
  and ``KUBELAB_NODE_MONITOR_GRACE_PERIOD`` (read by control/controllers/manager.py) and
  restarts it with the defaults again at the end. `kubelab up` on a lab whose server runs
  does not restart a dead node agent (it only reports the lab running), so the test starts
  node-3 again the way `up` spawns it; the new agent holds node-3's pidfile, so it belongs
  to the lab and `kubelab down` stops it with the rest.
- SIGKILL the controllers process in the middle of a rollout and start it again as `up`
  does (`up` on a lab whose server runs does not restart it): the rollout completes with
  exactly ``replicas`` pods and one container process each.
- SIGKILL the API server *and* the controllers process mid-rollout, then `kubelab up`. This
  one runs in a lab of its own without nodes (``own_lab``), where pods stay Pending and the
  rollout stops half-way: killing the shared lab's server would change the pid other tests
  check, and `up` on a lab whose node agents kept running times out waiting for a Ready
  heartbeat newer than its start (a running kubelet refreshes it only when its status
  changes or every 5 minutes; its Lease is the frequent heartbeat).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control import lab as lab_files
from tests.e2e.conftest import Lab, process_gone

NS = "faults"
NODE = "node-2"

BROKEN_PODS = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: healthy, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE}}}
  containers:
  - name: web
    image: python:3.11
    command: ["python3", "-c", "$(SCRIPT)"]
    env:
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - name: SCRIPT
      value: |
        import http.server, os
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.send_header("Content-Length", "2")
                self.end_headers(); self.wfile.write(b"ok")
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
    ports: [{{containerPort: 8080}}]
    readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: no-command, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE}}}
  containers: [{{name: main, image: busybox, command: [/no/such/program]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: unknown-image, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE}}}
  containers: [{{name: main, image: registry.example/no-such-image:1.0}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: never-ready, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE}}}
  containers:
  - name: main
    image: busybox
    command: [sleep, "3600"]
    readinessProbe: {{exec: {{command: ["false"]}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: oom, namespace: {NS}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE}}}
  restartPolicy: Never
  containers:
  - name: main
    image: python:3.11
    command: [python3, -c, "blocks = [bytearray(1 << 20) for _ in range(400)]; import time; time.sleep(60)"]
    resources: {{limits: {{memory: 64Mi}}}}
"""


def until(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def pod(lab: Lab, name: str) -> dict:
    return json.loads(lab.kubectl("get", "pod", name, "-n", NS, "-o", "json").stdout)


def status_column(lab: Lab, name: str) -> str:
    """The STATUS column of `kubectl get pod`, as a user reads it."""
    row = lab.kubectl("get", "pod", name, "-n", NS, "--no-headers").stdout.split()
    return row[2]


def describe(lab: Lab, name: str) -> str:
    return lab.kubectl("describe", "pod", name, "-n", NS).stdout


@pytest.fixture(scope="module")
def broken(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        lab.kubectl("apply", "-f", "-", input=BROKEN_PODS)
        lab.kubectl("wait", "pod/healthy", "-n", NS, "--for=condition=Ready", "--timeout=60s")
        yield lab


def test_missing_command_waits_with_run_container_error(broken: Lab) -> None:
    until(
        lambda: status_column(broken, "no-command") in ("RunContainerError", "CrashLoopBackOff"),
        what="no-command to wait with RunContainerError",
    )
    until(
        lambda: pod(broken, "no-command")["status"]["containerStatuses"][0]["lastState"].get("terminated"),
        what="no-command's failed attempt in lastState",
    )
    status = pod(broken, "no-command")["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["reason"] == "StartError"
    assert status["lastState"]["terminated"]["exitCode"] == 128
    assert "/no/such/program" in status["lastState"]["terminated"]["message"]
    text = describe(broken, "no-command")
    assert "Reason:       StartError" in text
    assert "Exit Code:    128" in text


def test_unknown_image_waits_with_image_pull_back_off(broken: Lab) -> None:
    until(
        lambda: status_column(broken, "unknown-image") == "ImagePullBackOff",
        what="unknown-image to back off",
    )
    waiting = pod(broken, "unknown-image")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff"
    assert "registry.example/no-such-image:1.0" in waiting["message"]
    text = describe(broken, "unknown-image")
    assert "Reason:       ImagePullBackOff" in text
    assert "Error: ErrImagePull" in text


def test_failing_readiness_probe_keeps_the_pod_running_but_unready(broken: Lab) -> None:
    until(
        lambda: "Readiness probe failed" in describe(broken, "never-ready"),
        what="an Unhealthy event for never-ready",
    )
    row = broken.kubectl("get", "pod", "never-ready", "-n", NS, "--no-headers").stdout.split()
    assert row[1:4] == ["0/1", "Running", "0"]
    ready = {c["type"]: c["status"] for c in pod(broken, "never-ready")["status"]["conditions"]}
    assert ready["Ready"] == "False"
    assert ready["ContainersReady"] == "False"


def test_memory_limit_exceeded_is_oom_killed(broken: Lab) -> None:
    until(lambda: status_column(broken, "oom") == "OOMKilled", what="oom to be OOMKilled")
    terminated = pod(broken, "oom")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
    assert pod(broken, "oom")["status"]["phase"] == "Failed"
    text = describe(broken, "oom")
    assert "Reason:       OOMKilled" in text
    assert "Exit Code:    137" in text


def test_the_node_keeps_serving_its_healthy_pod(broken: Lab) -> None:
    # runs after the broken pods above have failed on the same node
    healthy = pod(broken, "healthy")
    assert healthy["spec"]["nodeName"] == NODE
    container = healthy["status"]["containerStatuses"][0]
    assert container["ready"] is True
    assert container["restartCount"] == 0
    assert status_column(broken, "healthy") == "Running"
    url = f"http://{healthy['status']['podIP']}:8080/"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"ok"
    assert broken.kubectl("exec", "healthy", "-n", NS, "--", "echo", "alive").stdout == "alive\n"


# --- process faults ----------------------------------------------------------------------

KILLED_NODE = "node-3"
KILLED_NODE_INDEX = 3
FAST_NODE_MONITOR = {"KUBELAB_NODE_MONITOR_PERIOD": "1", "KUBELAB_NODE_MONITOR_GRACE_PERIOD": "12"}
SPAWN = (
    "import sys; from pathlib import Path; from control import lab; "
    "lab.spawn(name=sys.argv[1], argv=sys.argv[3:], log_file=Path(sys.argv[2]))"
)
# a container command no other process on the machine runs, to count containers in /proc
EVICTEE_SLEEP = "86413"
ROLLOUT_SLEEP = "86414"


def evictees(namespace: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: evictee, namespace: {namespace}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: evictee}}}}
  template:
    metadata: {{labels: {{app: evictee}}}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: {{matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{KILLED_NODE}]}}]}}
      tolerations:
      - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}
      - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}
      containers: [{{name: main, image: busybox, command: [sleep, "{EVICTEE_SLEEP}"]}}]
"""


def container_processes(last_argument: str) -> int:
    """How many live `sleep <last_argument>` processes this machine runs."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if len(argv) == 2 and argv[0].endswith(b"sleep") and argv[1] == last_argument.encode():
            count += 1
    return count


def live_pods(lab: Lab, namespace: str) -> list[dict]:
    """The namespace's pods that are not being deleted."""
    items = json.loads(lab.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    return [item for item in items if not item["metadata"].get("deletionTimestamp")]


def ready_condition(lab: Lab, node: str) -> str:
    conditions = json.loads(lab.kubectl("get", "node", node, "-o", "json").stdout)["status"]["conditions"]
    return next(c["status"] for c in conditions if c["type"] == "Ready")


def stop_process(pid: int, *, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal ``pid`` and wait until it is gone (reaping it if this process spawned it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    until(lambda: process_gone(pid), timeout=30, what=f"pid {pid} to exit")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def running_pid(lab: Lab, name: str) -> int:
    pid = lab_files.running_pid(lab_files.Layout.resolve(lab.data_dir).pid_file(name))
    assert pid is not None, f"the lab's {name} process does not run"
    return pid


def spawn_like_up(lab: Lab, name: str, argv: list[str], *, env: dict[str, str]) -> None:
    """Start one of the lab's processes as `kubelab up` does (detached, through a process
    that exits at once, so it belongs to the lab and not to the test), with ``env`` added,
    and wait until it holds its pidfile."""
    layout = lab_files.Layout.resolve(lab.data_dir)
    subprocess.run(
        [sys.executable, "-c", SPAWN, name, str(layout.log_file(name)), *argv],
        env={**os.environ, **env},
        check=True,
        timeout=30,
    )
    until(
        lambda: lab_files.running_pid(layout.pid_file(name)) is not None, timeout=30, what=f"{name} to start"
    )


def restart_controllers(lab: Lab, *, env: dict[str, str]) -> None:
    layout = lab_files.Layout.resolve(lab.data_dir)
    settings = lab_files.load_settings(layout)
    assert settings is not None
    stop_process(running_pid(lab, lab_files.CONTROLLERS))
    spawn_like_up(lab, lab_files.CONTROLLERS, lab_files.controllers_command(layout, settings), env=env)


@pytest.fixture
def namespace(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:50].rstrip("-")
    lab.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        lab.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def fast_node_monitor(lab: Lab) -> Iterator[Lab]:
    """The lab's controllers noticing a silent node after 12 s; upstream's timings again after."""
    restart_controllers(lab, env=FAST_NODE_MONITOR)
    try:
        yield lab
    finally:
        restart_controllers(lab, env={})


def test_killed_node_agent_is_replaced_and_restarts_without_duplicates(
    fast_node_monitor: Lab, namespace: str
) -> None:
    lab = fast_node_monitor
    lab.kubectl("apply", "-f", "-", input=evictees(namespace))
    lab.kubectl("rollout", "status", "deployment/evictee", "-n", namespace, "--timeout=60s")
    on_killed_node = {
        p["metadata"]["name"] for p in live_pods(lab, namespace) if p["spec"]["nodeName"] == KILLED_NODE
    }
    assert on_killed_node, "no evictee pod was scheduled on the node to kill"
    until(lambda: container_processes(EVICTEE_SLEEP) == 3, timeout=20, what="3 evictee containers")

    stop_process(running_pid(lab, KILLED_NODE), sig=signal.SIGKILL)
    until(lambda: ready_condition(lab, KILLED_NODE) == "Unknown", timeout=40, what=f"{KILLED_NODE} Unknown")

    def tainted_unreachable() -> bool:
        node = json.loads(lab.kubectl("get", "node", KILLED_NODE, "-o", "json").stdout)
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints", [])}
        return ("node.kubernetes.io/unreachable", "NoExecute") in taints

    # one monitor period after the node went Unknown, as upstream
    until(tainted_unreachable, timeout=10, what=f"{KILLED_NODE}'s NoExecute unreachable taint")

    def replaced_elsewhere() -> bool:
        pods = live_pods(lab, namespace)
        return len(pods) == 3 and all(
            p["spec"].get("nodeName") not in (None, KILLED_NODE)
            and all(c.get("ready") for c in p["status"].get("containerStatuses", [{}]))
            for p in pods
        )

    until(replaced_elsewhere, timeout=40, what="3 ready replacements on the other nodes")
    assert on_killed_node.isdisjoint(p["metadata"]["name"] for p in live_pods(lab, namespace))

    layout = lab_files.Layout.resolve(lab.data_dir)
    settings = lab_files.load_settings(layout)
    assert settings is not None
    spawn_like_up(lab, KILLED_NODE, lab_files.node_command(layout, settings, KILLED_NODE_INDEX), env={})
    until(lambda: ready_condition(lab, KILLED_NODE) == "True", timeout=40, what=f"{KILLED_NODE} Ready again")

    def old_pods_gone() -> bool:
        items = json.loads(lab.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        return not on_killed_node & {item["metadata"]["name"] for item in items}

    until(old_pods_gone, timeout=40, what="the evicted pods to be removed by the restarted agent")
    until(lambda: container_processes(EVICTEE_SLEEP) == 3, timeout=20, what="exactly 3 evictee containers")
    assert len(live_pods(lab, namespace)) == 3
    until(
        lambda: (
            not json.loads(lab.kubectl("get", "node", KILLED_NODE, "-o", "json").stdout)["spec"].get("taints")
        ),
        timeout=30,
        what=f"{KILLED_NODE}'s taints to be lifted",
    )


def replicas_owned_as_specified(lab: Lab, namespace: str) -> bool:
    """Every ReplicaSet owns exactly ``spec.replicas`` live pods, and no pod is left over."""
    sets = json.loads(lab.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)["items"]
    owners = [
        next((o["uid"] for o in p["metadata"].get("ownerReferences", []) if o.get("controller")), None)
        for p in live_pods(lab, namespace)
    ]
    return sorted(owners, key=str) == sorted(
        (rs["metadata"]["uid"] for rs in sets for _ in range(rs["spec"]["replicas"])), key=str
    )


def rollout_deployment(namespace: str, *, version: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: rolling, namespace: {namespace}}}
spec:
  replicas: 4
  strategy: {{rollingUpdate: {{maxUnavailable: 1, maxSurge: 1}}}}
  selector: {{matchLabels: {{app: rolling}}}}
  template:
    metadata: {{labels: {{app: rolling}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sleep, "{ROLLOUT_SLEEP}"]
        env: [{{name: VERSION, value: "{version}"}}]
        # each new pod takes a few seconds to become ready, so the rollout is still going on
        # when the control plane is killed
        readinessProbe: {{exec: {{command: ["true"]}}, initialDelaySeconds: 3, periodSeconds: 1}}
"""


def test_controllers_killed_mid_rollout_converge_without_duplicates(lab: Lab, namespace: str) -> None:
    lab.kubectl("apply", "-f", "-", input=rollout_deployment(namespace, version="v1"))
    lab.kubectl("rollout", "status", "deployment/rolling", "-n", namespace, "--timeout=60s")
    lab.kubectl("apply", "-f", "-", input=rollout_deployment(namespace, version="v2"))

    def rollout_started() -> bool:
        sets = json.loads(lab.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)["items"]
        return any(
            rs["spec"]["replicas"] > 0
            and rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "v2"
            for rs in sets
        )

    until(rollout_started, timeout=20, what="the rollout to start")
    status = json.loads(lab.kubectl("get", "deployment", "rolling", "-n", namespace, "-o", "json").stdout)[
        "status"
    ]
    assert status.get("updatedReplicas", 0) < 4 or status.get("unavailableReplicas", 0) > 0, (
        "rollout already done"
    )
    stop_process(running_pid(lab, lab_files.CONTROLLERS), sig=signal.SIGKILL)
    layout = lab_files.Layout.resolve(lab.data_dir)
    settings = lab_files.load_settings(layout)
    assert settings is not None
    spawn_like_up(lab, lab_files.CONTROLLERS, lab_files.controllers_command(layout, settings), env={})
    lab.kubectl("rollout", "status", "deployment/rolling", "-n", namespace, "--timeout=90s")

    until(
        lambda: replicas_owned_as_specified(lab, namespace) and container_processes(ROLLOUT_SLEEP) == 4,
        timeout=30,
        what="exactly the ReplicaSets' replicas, one container each",
    )
    sets = json.loads(lab.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)["items"]
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 4]
    assert all(
        c["value"] == "v2"
        for p in live_pods(lab, namespace)
        for c in p["spec"]["containers"][0]["env"]
        if c["name"] == "VERSION"
    )


def test_server_and_controllers_killed_mid_rollout_converge_after_up(own_lab: Callable[..., Lab]) -> None:
    # a lab of its own without nodes: pods stay Pending, so the rollout stops half-way and
    # what the controllers did before and after the crash is all in the API
    lab = own_lab()
    lab.kubectl("apply", "-f", "-", input=rollout_deployment("default", version="v1"))
    until(lambda: len(live_pods(lab, "default")) == 4, timeout=30, what="4 pending v1 pods")
    lab.kubectl("apply", "-f", "-", input=rollout_deployment("default", version="v2"))
    until(
        lambda: len(json.loads(lab.kubectl("get", "rs", "-o", "json").stdout)["items"]) == 2,
        timeout=20,
        what="the v2 ReplicaSet",
    )
    stop_process(running_pid(lab, lab_files.CONTROLLERS), sig=signal.SIGKILL)
    stop_process(running_pid(lab, lab_files.SERVER), sig=signal.SIGKILL)

    result = lab.kubelab("up", "--timeout", "60")
    assert result.returncode == 0, f"kubelab up exited {result.returncode}: {result.stdout}{result.stderr}"
    assert "started the controller manager and the scheduler" in result.stdout + result.stderr

    def settled() -> bool:
        deployment = json.loads(lab.kubectl("get", "deployment", "rolling", "-o", "json").stdout)
        sets = json.loads(lab.kubectl("get", "rs", "-o", "json").stdout)["items"]
        return (
            deployment["status"].get("observedGeneration") == deployment["metadata"]["generation"]
            and all(rs["status"].get("replicas", 0) == rs["spec"]["replicas"] for rs in sets)
            and replicas_owned_as_specified(lab, "default")
        )

    until(settled, timeout=30, what="the restarted controllers to settle")
    sets = json.loads(lab.kubectl("get", "rs", "-o", "json").stdout)["items"]
    # maxSurge 1: never more than replicas + 1 pods, however often the controllers restarted
    assert 4 < sum(rs["spec"]["replicas"] for rs in sets) <= 5
    assert len(live_pods(lab, "default")) == sum(rs["spec"]["replicas"] for rs in sets)
