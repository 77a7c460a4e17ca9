"""Real kubectl against a real `kubelab up`: the acceptance of the control-plane issue.

The whole module runs once per kubectl client version the machine ships (1.27 .. 1.33,
plus the default one), each version in a namespace of its own, so every client passes
the same tests against the same server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTL_VERSIONS, Lab, kubectl_binary

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    team: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: {ns}
type: Opaque
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
{extra_port}        env:
        - name: MODE
          value: {mode}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: {ns}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {ns}-reader
rules:
- apiGroups: [""]
  resources: ["pods", "configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: readers
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {ns}-reader
subjects:
- kind: User
  name: alice
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: batch/v1
kind: Job
metadata:
  name: once
  namespace: {ns}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: once
        image: busybox
        command: ["sh", "-c", "echo hi"]
"""

EXTRA_PORT = "        - containerPort: 443\n"
CLIENTS = [None, *KUBECTL_VERSIONS]


@dataclass(frozen=True)
class Client:
    """kubectl of one version, bound to the lab and to this version's namespace."""

    lab: Lab
    version: str | None
    ns: str

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.lab.kubectl(*args, version=self.version, check=check, input=input)

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json").stdout)

    def manifest(self, *, replicas: int = 2, mode: str = "blue", extra_port: bool = True) -> str:
        return MANIFEST.format(
            ns=self.ns, replicas=replicas, mode=mode, extra_port=EXTRA_PORT if extra_port else ""
        )


@pytest.fixture(scope="module", params=CLIENTS, ids=lambda v: f"kubectl-{v or 'default'}")
def kc(request: pytest.FixtureRequest, lab: Lab) -> Iterator[Client]:
    version = request.param
    ns = f"shop-{(version or 'default').replace('.', '-')}"
    client = Client(lab, version, ns)
    client("apply", "-f", "-", input=client.manifest())
    yield client
    client("delete", "clusterrole", f"{ns}-reader", "--ignore-not-found", check=False)


def test_apply_creates_every_kind_of_the_manifest(kc: Client) -> None:
    deploy = kc.json("get", "deployment", "web", "-n", kc.ns)
    assert deploy["spec"]["replicas"] == 2
    assert deploy["metadata"]["generation"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert [p["containerPort"] for p in container["ports"]] == [80, 443]
    svc = kc.json("get", "service", "web", "-n", kc.ns)
    assert re.fullmatch(r"127\.96\.\d+\.\d+", svc["spec"]["clusterIP"])
    assert svc["spec"]["clusterIP"] != "127.96.0.1"
    secret = kc.json("get", "secret", "creds", "-n", kc.ns)
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    names = kc("get", "configmap,ingress,job,rolebinding", "-n", kc.ns, "-o", "name").stdout.split()
    assert {
        "configmap/settings",
        "ingress.networking.k8s.io/web",
        "job.batch/once",
        "rolebinding.rbac.authorization.k8s.io/readers",
    } <= set(names)
    assert kc.json("get", "clusterrole", f"{kc.ns}-reader")["rules"][0]["verbs"] == ["get", "list", "watch"]


def test_apply_again_after_an_edit_patches_in_place(kc: Client) -> None:
    before = kc.json("get", "deployment", "web", "-n", kc.ns)
    out = kc("apply", "-f", "-", input=kc.manifest(replicas=3, mode="green", extra_port=False)).stdout
    assert "deployment.apps/web configured" in out
    assert "configmap/settings unchanged" in out
    after = kc.json("get", "deployment", "web", "-n", kc.ns)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    container = after["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "MODE", "value": "green"}]
    assert [p["containerPort"] for p in container["ports"]] == [80]
    # put it back for the other tests
    kc("apply", "-f", "-", input=kc.manifest())


def test_server_side_apply_takes_over_client_side_applied_objects(kc: Client) -> None:
    result = kc("apply", "--server-side", "-f", "-", input=kc.manifest())
    assert "serverside-applied" in result.stdout
    assert kc.json("get", "configmap", "settings", "-n", kc.ns)["data"] == {"mode": "blue"}
    managed = kc.json("get", "configmap", "settings", "-n", kc.ns, "--show-managed-fields")["metadata"]
    # kubectl also records what the last client-side apply set, as its own "kubectl-last-applied" manager
    assert ("kubectl", "Apply") in {(e["manager"], e["operation"]) for e in managed["managedFields"]}


def test_get_prints_upstream_tables(kc: Client) -> None:
    # the deployment controller fills the status the columns show
    kc("wait", "deployment/web", "-n", kc.ns, "--for=jsonpath={.status.updatedReplicas}=2", "--timeout=30s")
    out = kc("get", "deployments", "-n", kc.ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    name, ready, updated = out[1].split()[:3]
    assert (name, updated) == ("web", "2") and re.fullmatch(r"[0-2]/2", ready)
    wide = kc("get", "deployments", "-n", kc.ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=web"]
    svc = kc("get", "svc", "-n", kc.ns).stdout.splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[:5][0:2] == ["web", "ClusterIP"] and svc[1].split()[3:5] == ["<none>", "80/TCP"]
    all_ns = kc("get", "configmaps", "-A").stdout.splitlines()
    assert all_ns[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [kc.ns, "settings"] for line in all_ns)
    labels = kc("get", "deploy", "web", "-n", kc.ns, "--show-labels").stdout.splitlines()
    assert labels[0].split()[-1] == "LABELS" and labels[1].split()[-1] == "app=web"


def test_get_output_formats(kc: Client) -> None:
    yaml_out = kc("get", "configmap", "settings", "-n", kc.ns, "-o", "yaml").stdout
    assert "kind: ConfigMap" in yaml_out and "mode: blue" in yaml_out
    assert kc("get", "configmap", "settings", "-n", kc.ns, "-o", "jsonpath={.data.mode}").stdout == "blue"
    names = kc("get", "cm", "-n", kc.ns, "-l", "app notin (x)", "-o", "name").stdout.split()
    assert "configmap/settings" in names


def test_label_and_field_selectors(kc: Client) -> None:
    kc("create", "configmap", "sel-a", "-n", kc.ns, "--from-literal=k=v")
    kc("create", "configmap", "sel-b", "-n", kc.ns, "--from-literal=k=v")
    kc("label", "configmap", "sel-a", "-n", kc.ns, "tier=front")
    kc("label", "configmap", "sel-b", "-n", kc.ns, "tier=back")
    assert kc("get", "cm", "-n", kc.ns, "-l", "tier=front", "-o", "name").stdout.split() == [
        "configmap/sel-a"
    ]
    assert kc("get", "cm", "-n", kc.ns, "-l", "tier in (front,back)", "-o", "name").stdout.split() == [
        "configmap/sel-a",
        "configmap/sel-b",
    ]
    assert kc("get", "cm", "-n", kc.ns, "-l", "tier,tier!=front", "-o", "name").stdout.split() == [
        "configmap/sel-b"
    ]
    by_name = kc(
        "get", "cm", "-n", kc.ns, "--field-selector", "metadata.name=sel-b", "-o", "name"
    ).stdout.split()
    assert by_name == ["configmap/sel-b"]
    bad = kc("get", "cm", "-n", kc.ns, "--field-selector", "spec.nope=1", check=False)
    assert bad.returncode != 0 and '"spec.nope" is not a known field selector' in bad.stderr
    kc("delete", "configmap", "-n", kc.ns, "-l", "tier")
    assert kc("get", "cm", "-n", kc.ns, "-l", "tier", "-o", "name").stdout.split() == []


def test_describe(kc: Client) -> None:
    out = kc("describe", "deployment", "web", "-n", kc.ns).stdout
    assert re.search(r"^Name:\s+web$", out, re.MULTILINE)
    assert re.search(r"^Selector:\s+app=web$", out, re.MULTILINE)
    assert "MODE:" in out
    out = kc("describe", "service", "web", "-n", kc.ns).stdout
    assert re.search(r"^Type:\s+ClusterIP$", out, re.MULTILINE)
    assert kc("describe", "namespace", kc.ns).stdout.count("Active") >= 1


def test_label_annotate_and_every_patch_type(kc: Client) -> None:
    kc("label", "deployment", "web", "-n", kc.ns, "stage=beta")
    kc("annotate", "deployment", "web", "-n", kc.ns, "owner=ops")
    meta = kc.json("get", "deployment", "web", "-n", kc.ns)["metadata"]
    assert meta["labels"]["stage"] == "beta" and meta["annotations"]["owner"] == "ops"
    kc("label", "deployment", "web", "-n", kc.ns, "stage-")
    assert "stage" not in kc.json("get", "deployment", "web", "-n", kc.ns)["metadata"]["labels"]

    kc("patch", "configmap", "settings", "-n", kc.ns, "--type", "merge", "-p", '{"data":{"extra":"1"}}')
    kc(
        "patch",
        "configmap",
        "settings",
        "-n",
        kc.ns,
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/data/extra","value":"2"}]',
    )
    assert kc.json("get", "configmap", "settings", "-n", kc.ns)["data"]["extra"] == "2"
    kc(
        "patch",
        "deployment",
        "web",
        "-n",
        kc.ns,
        "--type",
        "strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"EXTRA","value":"x"}]}]}}}}',
    )
    env = kc.json("get", "deployment", "web", "-n", kc.ns)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "EXTRA", "value": "x"} in env and len(env) == 2  # merged by name, not replaced
    bad = kc(
        "patch",
        "configmap",
        "settings",
        "-n",
        kc.ns,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/data/extra","value":"nope"}]',
        check=False,
    )
    assert bad.returncode != 0
    kc(
        "patch",
        "configmap",
        "settings",
        "-n",
        kc.ns,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/data/extra"}]',
    )


def test_scale(kc: Client) -> None:
    kc("scale", "deployment", "web", "-n", kc.ns, "--replicas", "5")
    assert kc.json("get", "deployment", "web", "-n", kc.ns)["spec"]["replicas"] == 5
    bad = kc("scale", "deployment", "web", "-n", kc.ns, "--replicas", "-1", check=False)
    assert bad.returncode != 0
    kc("scale", "deployment", "web", "-n", kc.ns, "--replicas", "2")


def test_create_commands_and_delete(kc: Client) -> None:
    ns = f"{kc.ns}-tmp"
    kc("create", "namespace", ns)
    kc("create", "configmap", "c1", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    kc("create", "secret", "generic", "s1", "-n", ns, "--from-literal=token=abc")
    assert kc.json("get", "configmap", "c1", "-n", ns)["data"] == {"a": "1", "b": "2"}
    assert kc.json("get", "secret", "s1", "-n", ns)["data"] == {"token": "YWJj"}
    dup = kc("create", "configmap", "c1", "-n", ns, check=False)
    assert dup.returncode != 0 and 'configmaps "c1" already exists' in dup.stderr
    out = kc("delete", "configmap", "c1", "-n", ns).stdout
    assert 'configmap "c1" deleted' in out
    missing = kc("get", "configmap", "c1", "-n", ns, check=False)
    assert missing.returncode != 0 and 'configmaps "c1" not found' in missing.stderr
    kc("delete", "secret", "s1", "-n", ns)


def test_errors_are_upstream_status_messages(kc: Client) -> None:
    bad_name = kc("create", "configmap", "Bad_Name", "-n", kc.ns, check=False)
    assert bad_name.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in bad_name.stderr
    no_ns = kc("create", "configmap", "x", "-n", "does-not-exist", check=False)
    assert no_ns.returncode != 0 and 'namespaces "does-not-exist" not found' in no_ns.stderr
    unknown = kc(
        "apply",
        "-f",
        "-",
        check=False,
        input=(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\n  namespace: {kc.ns}\nbogus: 1\n"
        ),
    )
    assert unknown.returncode != 0 and 'unknown field "bogus"' in unknown.stderr


def test_get_watch_shows_later_changes(kc: Client) -> None:
    command = [
        str(kubectl_binary(kc.version)),
        "--kubeconfig",
        str(kc.lab.kubeconfig),
        "--cache-dir",
        str(kc.lab.kubectl_cache_dir / (kc.version or "default")),
        "get",
        "configmaps",
        "-n",
        kc.ns,
        "-w",
        "--output-watch-events",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        try:
            assert watcher.stdout is not None
            first = watcher.stdout.readline()  # the header, once the initial list arrived
            assert "NAME" in first, first + watcher.stderr.read() if watcher.poll() is not None else first
            kc("create", "configmap", "watched", "-n", kc.ns, "--from-literal=a=1")
            deadline = time.monotonic() + 20
            seen = ""
            while "watched" not in seen and time.monotonic() < deadline:
                seen = watcher.stdout.readline()
            assert "ADDED" in seen and "watched" in seen
            kc("delete", "configmap", "watched", "-n", kc.ns)
            while "DELETED" not in seen and time.monotonic() < deadline:
                seen = watcher.stdout.readline()
            assert "DELETED" in seen and "watched" in seen
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)


def test_api_resources_versions_and_explain(kc: Client) -> None:
    resources = kc("api-resources").stdout
    assert re.search(r"^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$", resources, re.MULTILINE)
    assert re.search(r"^pods\s+po\s+v1\s+true\s+Pod$", resources, re.MULTILINE)
    assert re.search(r"^namespaces\s+ns\s+v1\s+false\s+Namespace$", resources, re.MULTILINE)
    versions = kc("api-versions").stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1"} <= set(
        versions
    )
    explained = kc("explain", "deployment.spec.replicas").stdout
    assert "replicas" in explained and "integer" in explained


def test_wait_for_jsonpath(kc: Client) -> None:
    kc("patch", "configmap", "settings", "-n", kc.ns, "--type", "merge", "-p", '{"data":{"ready":"yes"}}')
    kc("wait", "configmap/settings", "-n", kc.ns, "--for=jsonpath={.data.ready}=yes", "--timeout=20s")


PRUNE_SET = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {ns}
  labels:
    prune-set: demo
data:
  key: value
"""


def test_apply_prune_by_label_removes_what_left_the_manifest(kc: Client) -> None:
    # kubectl's default prune set lists every kind it may prune, core/v1 ReplicationController
    # among them: each must be served for --prune to get past the first lookup.
    both = PRUNE_SET.format(name="kept", ns=kc.ns) + "---\n" + PRUNE_SET.format(name="stale", ns=kc.ns)
    kc("apply", "-n", kc.ns, "--prune", "-l", "prune-set=demo", "-f", "-", input=both)
    pruned = kc(
        "apply",
        "-n",
        kc.ns,
        "--prune",
        "-l",
        "prune-set=demo",
        "-f",
        "-",
        input=PRUNE_SET.format(name="kept", ns=kc.ns),
    )
    assert "configmap/stale pruned" in pruned.stdout
    names = kc("get", "configmaps", "-n", kc.ns, "-l", "prune-set=demo", "-o", "name").stdout.split()
    assert names == ["configmap/kept"]


REPLICATION_CONTROLLER = """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
  namespace: {ns}
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: legacy
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def test_replication_controllers_are_served_and_kept(kc: Client, tmp_path: Path) -> None:
    kc("apply", "-f", "-", input=REPLICATION_CONTROLLER.format(ns=kc.ns))
    rc = kc.json("get", "rc", "legacy", "-n", kc.ns)
    assert rc["spec"]["selector"] == {"app": "legacy"} and rc["metadata"]["labels"] == {"app": "legacy"}
    # the replicationcontroller controller makes the pods, owned by the ReplicationController
    kc("wait", "rc/legacy", "-n", kc.ns, "--for=jsonpath={.status.replicas}=2", "--timeout=30s")
    pods = kc.json("get", "pods", "-n", kc.ns, "-l", "app=legacy")["items"]
    assert len(pods) == 2
    assert {ref["kind"] for p in pods for ref in p["metadata"]["ownerReferences"]} == {
        "ReplicationController"
    }
    out = kc("get", "rc", "-n", kc.ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert out[1].split()[:3] == ["legacy", "2", "2"]
    wide = kc("get", "replicationcontrollers", "legacy", "-n", kc.ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=legacy"]
    kc("scale", "rc", "legacy", "-n", kc.ns, "--replicas", "1")
    kc("wait", "rc/legacy", "-n", kc.ns, "--for=jsonpath={.status.replicas}=1", "--timeout=30s")
    assert "replicationcontroller/legacy" in kc("get", "all", "-n", kc.ns, "-o", "name").stdout.split()
    # cluster-info dump lists every namespace's ReplicationControllers
    kc("cluster-info", "dump", "--namespaces", kc.ns, "--output-directory", str(tmp_path))
    dumped = json.loads((tmp_path / kc.ns / "replication-controllers.json").read_text())
    assert [item["metadata"]["name"] for item in dumped["items"]] == ["legacy"]
    kc("delete", "rc", "legacy", "-n", kc.ns, "--wait=true", "--timeout=30s")
    # kubectl deletes in the background: the garbage collector then deletes the pods (which the
    # kubelets may still be stopping)
    deadline = time.monotonic() + 30
    while any(
        "deletionTimestamp" not in p["metadata"]
        for p in kc.json("get", "pods", "-n", kc.ns, "-l", "app=legacy")["items"]
    ):
        assert time.monotonic() < deadline, "the ReplicationController's pods were not collected"
        time.sleep(0.2)


def test_proxy_subresources_and_component_statuses(lab: Lab) -> None:
    """``kubectl get --raw`` through services/proxy and pods/proxy to CoreDNS's metrics port (named
    ``metrics`` on both the Service and the container), and ``kubectl get cs``."""
    through_service = lab.kubectl(
        "get", "--raw", "/api/v1/namespaces/kube-system/services/kube-dns:metrics/proxy/metrics"
    ).stdout
    assert "coredns_dns_requests_total" in through_service
    pod = lab.kubectl(
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "k8s-app=kube-dns",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ).stdout
    through_pod = lab.kubectl(
        "get", "--raw", f"/api/v1/namespaces/kube-system/pods/{pod}:metrics/proxy/metrics"
    )
    assert "coredns_dns_requests_total" in through_pod.stdout
    statuses = lab.kubectl("get", "cs")
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in statuses.stderr
    lines = [line.split() for line in statuses.stdout.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert sorted(lines[1:]) == [
        ["controller-manager", "Healthy", "ok"],
        ["etcd-0", "Healthy", "ok"],
        ["scheduler", "Healthy", "ok"],
    ]
