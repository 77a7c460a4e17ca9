"""Real kubectl's protobuf request bodies against a real `kubelab up`.

kubectl 1.32 and later (client-go's typed clients) send what `kubectl create <kind>` makes,
and the DeleteOptions of a typed delete, as ``application/vnd.kubernetes.protobuf``; 1.27
to 1.31 send the same objects as JSON. The same create commands run with the default
kubectl, the oldest (1.27) and the newest (1.33), each in a namespace of its own. kubectl's
``-v=8`` log shows the Content-Type each request went with, so every test knows which
encoding it exercised; the stored objects are checked field by field with
``kubectl get -o json``, and those made from protobuf must equal those made from JSON
apart from what the server assigns.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Lab

CLIENTS = [None, "1.27", "1.33"]
PROTOBUF = "application/vnd.kubernetes.protobuf"
BLOB = b"\x00\xff\xfe"
_USER_AGENT = re.compile(r"User-Agent: kubectl[\w.]*/v1\.(\d+)\.")
_CONTENT_TYPE = re.compile(r"Content-Type: ([\w./+-]+)")

# What each `kubectl create` is asked to make, by the kind's `kubectl get` name.
CREATES: dict[str, tuple[str, ...]] = {
    "configmap/settings": (
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=blue",
        "--from-file=blob={blob}",
    ),
    "secret/creds": ("create", "secret", "generic", "creds", "--from-literal=password=hunter2"),
    "deployment/web": ("create", "deployment", "web", "--image=nginx:1.25", "--replicas=0", "--port=80"),
    "service/web": ("create", "service", "clusterip", "web", "--tcp=80:8080"),
    "job/once": ("create", "job", "once", "--image=busybox", "--", "sh", "-c", "echo hi"),
    "role/reader": ("create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps"),
    "rolebinding/readers": (
        "create",
        "rolebinding",
        "readers",
        "--role=reader",
        "--user=alice",
        "--serviceaccount={ns}:default",
    ),
}


def client_id(version: str | None) -> str:
    return f"kubectl-{version or 'default'}"


@dataclass(frozen=True)
class Made:
    """What one kubectl version created: its namespace, and each command's output."""

    version: str | None
    ns: str
    namespace_run: subprocess.CompletedProcess[str]
    runs: dict[str, subprocess.CompletedProcess[str]]


def sends_protobuf(run: subprocess.CompletedProcess[str]) -> bool:
    """Whether kubectl's -v=8 log shows a client that prefers protobuf (client-go 1.32+)."""
    match = _USER_AGENT.search(run.stderr)
    assert match, f"no User-Agent in kubectl's -v=8 log:\n{run.stderr[:2000]}"
    return int(match.group(1)) >= 32


def request_content_types(run: subprocess.CompletedProcess[str]) -> set[str]:
    return set(_CONTENT_TYPE.findall(run.stderr))


@pytest.fixture(scope="module")
def made(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str | None, Made]]:
    blob = tmp_path_factory.mktemp("protobuf") / "blob.bin"
    blob.write_bytes(BLOB)
    result: dict[str | None, Made] = {}
    for version in CLIENTS:
        ns = f"pb-{(version or 'default').replace('.', '-')}"
        namespace_run = lab.kubectl("create", "namespace", ns, "-v=8", version=version)
        runs = {
            # flags first: whatever follows a job's `--` is its command
            name: lab.kubectl(
                "-n", ns, "-v=8", *(arg.format(ns=ns, blob=blob) for arg in command), version=version
            )
            for name, command in CREATES.items()
        }
        result[version] = Made(version, ns, namespace_run, runs)
    yield result
    for each in result.values():
        lab.kubectl("delete", "namespace", each.ns, "--wait=false", check=False)


def get(lab: Lab, made: Made, name: str) -> dict[str, Any]:
    return json.loads(lab.kubectl("get", name, "-n", made.ns, "-o", "json", version=made.version).stdout)


@pytest.mark.parametrize("version", CLIENTS, ids=client_id)
def test_every_create_is_sent_in_the_clients_encoding_and_accepted(
    made: dict[str | None, Made], version: str | None
) -> None:
    runs = {"namespace": made[version].namespace_run, **made[version].runs}
    protobuf = sends_protobuf(runs["namespace"])
    assert protobuf == (version != "1.27")  # 1.27 is older than client-go's protobuf default
    for name, run in runs.items():
        assert "created" in run.stdout, f"{name}: {run.stdout}{run.stderr[-2000:]}"
        content_types = request_content_types(run)
        if protobuf:
            assert PROTOBUF in content_types, f"{name} was not sent as protobuf"
        else:
            assert PROTOBUF not in content_types and "application/json" in content_types


@pytest.mark.parametrize("version", CLIENTS, ids=client_id)
def test_stored_objects_hold_what_was_asked_for(
    lab: Lab, made: dict[str | None, Made], version: str | None
) -> None:
    mine = made[version]
    namespace = json.loads(lab.kubectl("get", "namespace", mine.ns, "-o", "json", version=version).stdout)
    assert namespace["metadata"]["name"] == mine.ns and namespace["status"]["phase"] == "Active"

    configmap = get(lab, mine, "configmap/settings")
    assert configmap["data"] == {"mode": "blue"}
    assert configmap["binaryData"] == {"blob": "AP/+"}  # base64 of the non-UTF-8 file

    secret = get(lab, mine, "secret/creds")
    assert secret["data"] == {"password": "aHVudGVyMg=="} and secret["type"] == "Opaque"

    deployment = get(lab, mine, "deployment/web")
    assert deployment["spec"]["replicas"] == 0  # a pointer zero, not dropped
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "web"}
    [container] = template["spec"]["containers"]
    assert container["name"] == "nginx" and container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    service = get(lab, mine, "service/web")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"app": "web"}
    assert service["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
    ]

    job = get(lab, mine, "job/once")
    job_pod = job["spec"]["template"]["spec"]
    assert job_pod["restartPolicy"] == "Never"
    assert job_pod["containers"][0]["command"] == ["sh", "-c", "echo hi"]

    role = get(lab, mine, "role/reader")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
    ]

    binding = get(lab, mine, "rolebinding/readers")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    # An empty apiGroup is the same as none (upstream's JSON omits it; kubelab's defaulting writes it).
    subjects = [
        {key: value for key, value in subject.items() if value != ""} for subject in binding["subjects"]
    ]
    assert subjects == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
        {"kind": "ServiceAccount", "name": "default", "namespace": mine.ns},
    ]


# Fields the server assigns, which differ between two creations of the same object.
_ASSIGNED_METADATA = (
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    for key in _ASSIGNED_METADATA:
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    spec = obj.get("spec", {})
    if obj["kind"] == "Service":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    if obj["kind"] == "Job":  # the controller-uid labels carry the Job's own uid
        for labels in (
            spec.get("selector", {}).get("matchLabels", {}),
            spec["template"]["metadata"].get("labels", {}),
            obj["metadata"].get("labels", {}),
        ):
            for key in [k for k in labels if "controller-uid" in k]:
                del labels[key]
    if obj["kind"] == "RoleBinding":
        for subject in obj.get("subjects", []):
            if subject.get("namespace"):
                subject["namespace"] = "<ns>"
    return obj


@pytest.mark.parametrize("version", [None, "1.33"], ids=client_id)
@pytest.mark.parametrize("name", CREATES)
def test_objects_made_from_protobuf_equal_those_made_from_json(
    lab: Lab, made: dict[str | None, Made], version: str | None, name: str
) -> None:
    from_json = _comparable(get(lab, made["1.27"], name))
    from_protobuf = _comparable(get(lab, made[version], name))
    assert from_protobuf == from_json


@pytest.mark.parametrize("version", [None, "1.33"], ids=client_id)
def test_drain_deletes_with_protobuf_delete_options(
    lab: Lab, made: dict[str | None, Made], version: str | None
) -> None:
    """`kubectl drain --disable-eviction` deletes each pod with the typed client: a DELETE
    whose body is a protobuf DeleteOptions (gracePeriodSeconds 0, a pointer zero)."""
    mine = made[version]
    node = f"{mine.ns}-node"
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node},
                "spec": {
                    "unschedulable": True,  # no kubelet runs it: keep every other pod off it
                    "taints": [{"key": "kubelab.test/fake", "effect": "NoSchedule"}],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "stray", "namespace": mine.ns},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            },
        ],
    }
    lab.kubectl("create", "-f", "-", input=json.dumps(manifest), version=version)
    try:
        drain = lab.kubectl(
            "drain",
            node,
            "--disable-eviction",
            "--force",
            "--grace-period=0",
            "--timeout=30s",
            "-v=8",
            version=version,
        )
        assert sends_protobuf(drain)
        deletes = [part for part in drain.stderr.split("DELETE")[1:] if "/pods/stray" in part[:200]]
        assert deletes, "drain sent no DELETE for the pod"
        assert PROTOBUF in _CONTENT_TYPE.findall(deletes[0])
        gone = lab.kubectl("get", "pod", "stray", "-n", mine.ns, version=version, check=False)
        assert gone.returncode != 0 and 'pods "stray" not found' in gone.stderr
    finally:
        lab.kubectl("delete", "node", node, "--ignore-not-found", version=version, check=False)


def test_a_malformed_protobuf_body_is_a_bad_request(lab: Lab) -> None:
    """What kubectl never sends, but a broken client might: a 400 Status naming the problem.
    Sent straight over HTTPS with the lab's admin certificate (kubectl cannot send it)."""
    pki = lab.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    connection = http.client.HTTPSConnection("127.0.0.1", lab.port, context=context, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            body=b"k8s\x00\x0a\x05\x0a\x02v1",  # a typeMeta running past the end of the body
            headers={"Content-Type": PROTOBUF, "Accept": "application/json"},
        )
        response = connection.getresponse()
        status = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 400
    assert status["kind"] == "Status" and status["reason"] == "BadRequest"
    assert "protobuf" in status["message"] and "runs past the end" in status["message"]
