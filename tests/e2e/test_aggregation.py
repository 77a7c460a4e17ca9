"""API aggregation in a real lab, with real kubectl: the local APIServices, and a remote one whose
Service is missing (the in-process tests in tests/control/apiserver/test_aggregation.py cover a
working extension server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Lab

NAME = "v1.example.kubelab.dev"


def test_every_group_version_served_here_has_an_available_local_apiservice(lab: Lab) -> None:
    items = json.loads(lab.kubectl("get", "apiservices", "-o", "json").stdout)["items"]
    by_name = {item["metadata"]["name"]: item for item in items}
    for name in ("v1.", "v1.apps", "v1.rbac.authorization.k8s.io", "v1.apiregistration.k8s.io"):
        assert name in by_name, sorted(by_name)
    for item in items:
        if item["spec"].get("service") is not None:
            continue  # another test's remote APIService
        (available,) = [c for c in item["status"]["conditions"] if c["type"] == "Available"]
        assert (available["status"], available["reason"]) == ("True", "Local"), item
    table = lab.kubectl("get", "apiservice", "v1.apps").stdout.splitlines()
    assert table[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    assert table[1].split()[:3] == ["v1.apps", "Local", "True"]


@pytest.fixture
def missing_backend(lab: Lab) -> Iterator[None]:
    manifest = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": NAME},
        "spec": {
            "group": "example.kubelab.dev",
            "version": "v1",
            "service": {"namespace": "kube-system", "name": "no-such-extension", "port": 443},
            "insecureSkipTLSVerify": True,
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
        },
    }
    lab.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        yield
    finally:
        lab.kubectl("delete", "apiservice", NAME, "--ignore-not-found")


@pytest.mark.usefixtures("missing_backend")
def test_an_extension_without_its_service_is_unavailable_and_kubectl_says_so(lab: Lab) -> None:
    deadline = time.monotonic() + 30
    while True:
        row = lab.kubectl("get", "apiservice", NAME, "--no-headers").stdout.split()
        if row[2:4] == ["False", "(ServiceNotFound)"]:  # AVAILABLE: status and (reason)
            break
        assert time.monotonic() < deadline, f"the APIService never became unavailable: {row}"
        time.sleep(0.2)
    assert row[1] == "kube-system/no-such-extension"
    condition = json.loads(
        lab.kubectl("get", "apiservice", NAME, "-o", "jsonpath={.status.conditions[0]}").stdout
    )
    assert condition["message"] == 'service/no-such-extension in "kube-system" is not present'
    raw = lab.kubectl("get", "--raw", "/apis/example.kubelab.dev/v1", check=False)
    assert raw.returncode != 0
    assert "the server is currently unable to handle the request" in raw.stderr, raw.stderr
    groups = json.loads(lab.kubectl("get", "--raw", "/apis").stdout)["groups"]
    assert "example.kubelab.dev" in {group["name"] for group in groups}
