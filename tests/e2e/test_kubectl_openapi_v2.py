"""kubectl 1.27 and 1.28 against /openapi/v2 of a real `kubelab up`.

These clients download /openapi/v2 as gnostic protobuf before `create`/`apply` (to pick
server-side field validation) and before `explain`, and fail the whole command if it is
missing or does not parse. The tests run each client's own commands, then check the
endpoint itself over HTTPS with the lab's admin certificate: the protobuf media type,
JSON for everyone else, 406 for what it cannot serve, and ETag revalidation.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import Lab

OPENAPI_V2_CLIENTS = ("1.27", "1.28")
KUBECTL_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: {mode}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
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
"""

UNKNOWN_FIELD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
  namespace: {ns}
spec:
  replicass: 2
  selector:
    matchLabels:
      app: typo
  template:
    metadata:
      labels:
        app: typo
    spec:
      containers:
      - name: typo
        image: nginx:1.25
"""


@dataclass(frozen=True)
class Client:
    lab: Lab
    version: str
    ns: str

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> str:
        result = self.lab.kubectl(*args, version=self.version, check=check, input=input)
        return result.stdout + result.stderr

    def apply(self, *, replicas: int, mode: str) -> str:
        return self("apply", "-f", "-", input=MANIFEST.format(ns=self.ns, replicas=replicas, mode=mode))


@pytest.fixture(scope="module", params=OPENAPI_V2_CLIENTS, ids=lambda v: f"kubectl-{v}")
def kc(request: pytest.FixtureRequest, lab: Lab) -> Iterator[Client]:
    version = request.param
    client = Client(lab, version, f"openapi-v2-{version.replace('.', '-')}")
    yield client
    client("delete", "namespace", client.ns, "--ignore-not-found", "--wait=false", check=False)


def test_apply_creates_then_patches(kc: Client) -> None:
    created = kc.apply(replicas=1, mode="blue")
    assert f"namespace/{kc.ns} created" in created
    assert "configmap/settings created" in created
    assert "deployment.apps/web created" in created
    assert "unchanged" in kc.apply(replicas=1, mode="blue")
    patched = kc.apply(replicas=3, mode="green")
    assert "configmap/settings configured" in patched
    assert "deployment.apps/web configured" in patched
    deployment = json.loads(kc("get", "deployment", "web", "-n", kc.ns, "-o", "json"))
    assert deployment["spec"]["replicas"] == 3
    assert kc("get", "configmap", "settings", "-n", kc.ns, "-o", "jsonpath={.data.mode}") == "green"


def test_unknown_fields_are_left_to_the_server(kc: Client) -> None:
    """With fieldValidation found on the PATCH operation, kubectl sends Strict and the
    server answers; client-side validation would say 'error validating data' instead."""
    manifest = UNKNOWN_FIELD.format(ns=kc.ns)
    kc("create", "namespace", kc.ns, check=False)
    output = kc("create", "-f", "-", input=manifest, check=False)
    assert 'strict decoding error: unknown field "spec.replicass"' in output
    assert "error validating data" not in output
    warned = kc("create", "-f", "-", "--validate=warn", input=manifest)
    assert 'unknown field "spec.replicass"' in warned
    assert "deployment.apps/typo created" in warned
    kc("delete", "deployment", "typo", "-n", kc.ns)


@pytest.mark.parametrize("output", [None, "plaintext-openapiv2"])
def test_explain(kc: Client, output: str | None) -> None:
    args = ["explain", "deployment.spec.replicas"] + ([f"--output={output}"] if output else [])
    text = kc(*args)
    assert "replicas" in text and "<integer>" in text
    assert "Number of desired pods" in text


def test_explain_openapiv2_walks_references_lists_and_maps(kc: Client) -> None:
    text = kc("explain", "pods.spec.containers.resources.limits", "--output=plaintext-openapiv2")
    assert "limits" in text and "<map[string]string>" in text
    recursive = kc("explain", "deployment.spec.strategy", "--recursive", "--output=plaintext-openapiv2")
    assert "maxSurge" in recursive and "rollingUpdate" in recursive


# -- the endpoint itself ------------------------------------------------------------------------


def _get(lab: Lab, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    pki = lab.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    request = urllib.request.Request(f"{lab.server_url}/openapi/v2", headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_endpoint_negotiates_and_revalidates(lab: Lab) -> None:
    status, headers, body = _get(lab, {"Accept": KUBECTL_ACCEPT})
    assert status == 200
    assert headers["Content-Type"] == PROTOBUF
    assert body[:1] == b"\x0a"  # field 1 (swagger), length-delimited
    etag = headers["ETag"]
    assert etag.startswith('"') and len(etag) == 130
    assert _get(lab, {"Accept": KUBECTL_ACCEPT, "If-None-Match": etag})[0] == 304

    status, headers, body = _get(lab, {"Accept": "application/json"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert document["swagger"] == "2.0"
    assert "io.k8s.api.apps.v1.Deployment" in document["definitions"]

    status, _, body = _get(lab, {"Accept": "text/html"})
    assert status == 406
    assert json.loads(body)["reason"] == "NotAcceptable"
