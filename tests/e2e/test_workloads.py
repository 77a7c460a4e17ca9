"""Issue 3's acceptance on the shared 3-node lab, with real kubectl: pods really run.

Deployments spread and serve through their Service (from the host and from another pod),
a rollout under load drops no request, probes restart and unready pods leave the
EndpointSlice, DaemonSets cover every node, StatefulSets have stable names, Jobs complete,
cascading deletes follow their propagation policy, and deleting a namespace empties it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import Lab

NS = "workloads"

HTTP_SERVER = """\
      - name: web
        image: python:3.11
        command: ["python3", "-c", "$(SCRIPT)"]
        env:
        - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
        - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        - {{name: VERSION, value: "{version}"}}
        - name: SCRIPT
          value: |
            import http.server, os
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = (os.environ["VERSION"] + " " + os.environ["POD_NAME"]).encode()
                    self.send_response(200); self.send_header("Content-Length", str(len(body)))
                    self.end_headers(); self.wfile.write(body)
                def log_message(self, *args): pass
            http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
        ports: [{{containerPort: 8080, name: http}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
        # as on any cluster: keep serving while the endpoint removal reaches every proxy
        lifecycle: {{preStop: {{exec: {{command: [sleep, "2"]}}}}}}
"""


def deployment(version: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {NS}}}
spec:
  replicas: 3
  strategy: {{rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
{HTTP_SERVER.format(version=version)}---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
"""


def until(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def get_json(lab: Lab, *args: str) -> dict:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def cluster(lab: Lab) -> Iterator[Lab]:
    with lab.namespace(NS):
        yield lab


def test_deployment_spreads_and_serves_through_its_service(cluster: Lab) -> None:
    cluster.kubectl("apply", "-f", "-", input=deployment("v1"))
    cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=90s")
    pods = get_json(cluster, "pods", "-n", NS, "-l", "app=web")["items"]
    assert len({pod["spec"]["nodeName"] for pod in pods}) == 3, "3 replicas spread over the 3 nodes"
    ip = get_json(cluster, "service", "web", "-n", NS)["spec"]["clusterIP"]
    answers = {http_get(f"http://{ip}/") for _ in range(30)}
    assert {answer.split()[1] for answer in answers} == {pod["metadata"]["name"] for pod in pods}
    # from inside another pod, by IP
    cluster.kubectl(
        "run",
        "probe",
        "-n",
        NS,
        "--image=python:3.11",
        "--restart=Never",
        "--command",
        "--",
        "python3",
        "-c",
        f"import urllib.request; print(urllib.request.urlopen('http://{ip}/').read().decode())",
    )
    until(
        lambda: get_json(cluster, "pod", "probe", "-n", NS)["status"].get("phase") == "Succeeded",
        what="the probe pod to finish",
    )
    assert cluster.kubectl("logs", "probe", "-n", NS).stdout.startswith("v1 ")


def test_rollout_under_load_drops_no_request(cluster: Lab) -> None:
    ip = get_json(cluster, "service", "web", "-n", NS)["spec"]["clusterIP"]
    failures: list[str] = []
    versions: set[str] = set()
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                versions.add(http_get(f"http://{ip}/").split()[0])
            except (urllib.error.URLError, OSError) as exc:
                failures.append(repr(exc))

    loop = threading.Thread(target=client)
    loop.start()
    try:
        cluster.kubectl("apply", "-f", "-", input=deployment("v2"))
        cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=120s")
        until(lambda: "v2" in versions, what="the new version to answer")
    finally:
        done.set()
        loop.join()
    assert not failures, f"{len(failures)} failed requests during the rollout: {failures[:3]}"
    history = cluster.kubectl("rollout", "history", "deployment/web", "-n", NS).stdout
    assert "1 " in history and "2 " in history


def test_readiness_and_liveness_probes(cluster: Lab) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"""\
apiVersion: v1
kind: Pod
metadata: {{name: flaky, namespace: {NS}, labels: {{app: flaky}}}}
spec:
  containers:
  - name: main
    image: busybox
    # The marker lives on an emptyDir, which outlives container restarts: once removed, the pod stays unready
    # while the liveness probe (which never passes) keeps restarting the container.
    command: ["sh", "-c", "[ -e /probe/started ] || touch /probe/ready; touch /probe/started; while true; do sleep 1; done"]
    volumeMounts: [{{name: probe, mountPath: /probe}}]
    readinessProbe: {{exec: {{command: [test, -e, /probe/ready]}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: [test, -e, /probe/alive]}}, periodSeconds: 1, failureThreshold: 2,
                    initialDelaySeconds: 2}}
  volumes: [{{name: probe, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: flaky, namespace: {NS}}}
spec:
  selector: {{app: flaky}}
  ports: [{{port: 80}}]
""",
    )

    def slice_ready() -> list[bool]:
        slices = get_json(cluster, "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=flaky")[
            "items"
        ]
        return [
            bool((e.get("conditions") or {}).get("ready")) for s in slices for e in s.get("endpoints") or []
        ]

    until(lambda: slice_ready() == [True], what="the pod to be ready in its EndpointSlice")
    cluster.kubectl("exec", "flaky", "-n", NS, "--", "rm", "/probe/ready")
    until(lambda: slice_ready() == [False], what="the unready pod to leave the ready endpoints")
    # no /probe/alive: the liveness probe fails and the kubelet restarts the container
    until(
        lambda: (
            get_json(cluster, "pod", "flaky", "-n", NS)["status"]["containerStatuses"][0]["restartCount"] >= 1
        ),
        what="a liveness restart",
    )
    events = cluster.kubectl(
        "get", "events", "-n", NS, "--field-selector", "involvedObject.name=flaky"
    ).stdout
    assert "Unhealthy" in events and "Liveness probe failed" in events


def test_daemonset_runs_on_every_node(cluster: Lab) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"""\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers: [{{name: main, image: busybox, command: [sh, -c, "while true; do sleep 5; done"]}}]
""",
    )
    cluster.kubectl("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=90s")
    pods = get_json(cluster, "pods", "-n", NS, "-l", "app=agent")["items"]
    assert sorted(pod["spec"]["nodeName"] for pod in pods) == ["node-1", "node-2", "node-3"]


def test_statefulset_names_and_hostnames(cluster: Lab) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"""\
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 3
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: [{{name: main, image: busybox, command: [sh, -c, "hostname > /tmp/h; sleep 3600"]}}]
""",
    )
    cluster.kubectl("rollout", "status", "statefulset/db", "-n", NS, "--timeout=120s")
    names = sorted(
        p["metadata"]["name"] for p in get_json(cluster, "pods", "-n", NS, "-l", "app=db")["items"]
    )
    assert names == ["db-0", "db-1", "db-2"]
    assert cluster.kubectl("exec", "db-1", "-n", NS, "--", "cat", "/tmp/h").stdout.strip() == "db-1"
    pod = get_json(cluster, "pod", "db-2", "-n", NS)
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("db-2", "db")


def test_job_runs_to_completion(cluster: Lab) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: count, namespace: {NS}}}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: busybox, command: [sh, -c, "echo done"]}}]
""",
    )
    cluster.kubectl("wait", "job/count", "-n", NS, "--for=condition=Complete", "--timeout=120s")
    assert get_json(cluster, "job", "count", "-n", NS)["status"]["succeeded"] == 3


@pytest.mark.parametrize("policy", ["background", "foreground", "orphan"])
def test_cascading_delete(cluster: Lab, policy: str) -> None:
    name = f"cascade-{policy}"
    cluster.kubectl(
        "create",
        "deployment",
        name,
        "-n",
        NS,
        "--image=busybox",
        "--replicas=2",
        "--",
        "sh",
        "-c",
        "while true; do sleep 5; done",
    )
    cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", NS, "--timeout=90s")
    cluster.kubectl("delete", "deployment", name, "-n", NS, f"--cascade={policy}", "--timeout=90s")

    def replicasets() -> list[dict]:
        return get_json(cluster, "replicasets", "-n", NS, "-l", f"app={name}")["items"]

    if policy == "orphan":
        sets = replicasets()
        assert len(sets) == 1 and not sets[0]["metadata"].get("ownerReferences")
        cluster.kubectl("delete", "replicaset", "-n", NS, "-l", f"app={name}", "--timeout=90s")
    else:
        until(lambda: not replicasets(), what="the ReplicaSet to be collected")
    until(
        lambda: not get_json(cluster, "pods", "-n", NS, "-l", f"app={name}")["items"],
        timeout=90,
        what="the pods to be deleted",
    )


def test_deleting_a_namespace_removes_everything_in_it(lab: Lab) -> None:
    ns = "doomed"
    lab.kubectl("create", "namespace", ns)
    lab.kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=b")
    lab.kubectl("create", "deployment", "d", "-n", ns, "--image=busybox", "--", "sleep", "3600")
    lab.kubectl("rollout", "status", "deployment/d", "-n", ns, "--timeout=90s")
    lab.kubectl("delete", "namespace", ns, "--timeout=120s")
    missing = lab.kubectl("get", "namespace", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
