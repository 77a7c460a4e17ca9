"""ValidatingAdmissionPolicies and their bindings through real kubectl against the in-process API
server: the upstream docs' example applies, ``kubectl get`` prints upstream's columns, the stored
objects carry upstream's defaults and bad objects are refused with upstream's 422 causes. The rule
corners are in tests/control/resources/test_admission_policy_resources.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.control.apiserver.conftest import RunningServer

GROUP = "admissionregistration.k8s.io"
POLICIES = f"/apis/{GROUP}/v1/validatingadmissionpolicies"

# The example of https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
DOCS_EXAMPLE = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: "demo-policy.example.com"}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: "demo-binding-test.example.com"}
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {environment: test}
"""


async def apply(api: RunningServer, tmp_path: Path, text: str) -> tuple[int, str]:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text)
    code, out, err = await api.kubectl("apply", "-f", str(manifest))
    return code, out + err


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


async def test_docs_example_applies_prints_and_is_defaulted(apiserver: RunningServer, tmp_path: Path) -> None:
    code, out = await apply(apiserver, tmp_path, DOCS_EXAMPLE)
    assert code == 0, out
    assert out.splitlines() == [
        "validatingadmissionpolicy.admissionregistration.k8s.io/demo-policy.example.com created",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/demo-binding-test.example.com created",
    ]

    code, out, err = await apiserver.kubectl("get", "validatingadmissionpolicies")
    assert code == 0, err
    [header, row] = table(out)
    assert header == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert row[:3] == ["demo-policy.example.com", "1", "<unset>"]

    code, out, err = await apiserver.kubectl("get", "validatingadmissionpolicybindings")
    assert code == 0, err
    [header, row] = table(out)
    assert header == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert row[:3] == ["demo-binding-test.example.com", "demo-policy.example.com", "<unset>"]

    code, out, err = await apiserver.kubectl(
        "get", "validatingadmissionpolicy", "demo-policy.example.com", "-o", "yaml"
    )
    assert code == 0, err
    stored: dict[str, Any] = yaml.safe_load(out)
    assert stored["metadata"]["generation"] == 1
    assert stored["spec"]["failurePolicy"] == "Fail"
    assert stored["spec"]["matchConstraints"] == {
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "resourceRules": [
            {
                "apiGroups": ["apps"],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"],
                "scope": "*",
            }
        ],
    }

    code, out, err = await apiserver.kubectl(
        "get", "validatingadmissionpolicybinding", "demo-binding-test.example.com", "-o", "yaml"
    )
    assert code == 0, err
    assert yaml.safe_load(out)["spec"]["matchResources"] == {
        "matchPolicy": "Equivalent",
        "namespaceSelector": {"matchLabels": {"environment": "test"}},
        "objectSelector": {},
    }

    code, out, err = await apiserver.kubectl("get", "api-extensions", "-o", "name")
    assert code == 0, err
    assert (
        "validatingadmissionpolicy.admissionregistration.k8s.io/demo-policy.example.com" in out.splitlines()
    )


async def test_status_writes_keep_the_spec_and_spec_writes_bump_the_generation(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    code, out = await apply(apiserver, tmp_path, DOCS_EXAMPLE.split("---")[0])
    assert code == 0, out
    status, body = await apiserver.request(
        "PATCH",
        f"{POLICIES}/demo-policy.example.com/status",
        body={"spec": {"failurePolicy": "Ignore"}, "status": {"observedGeneration": 1}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, body
    assert body["status"] == {"observedGeneration": 1}
    assert body["spec"]["failurePolicy"] == "Fail"
    assert body["metadata"]["generation"] == 1

    code, out, err = await apiserver.kubectl(
        "patch",
        "validatingadmissionpolicy",
        "demo-policy.example.com",
        "--type=merge",
        "-p",
        '{"spec": {"failurePolicy": "Ignore"}}',
    )
    assert code == 0, out + err
    status, body = await apiserver.request("GET", f"{POLICIES}/demo-policy.example.com")
    assert (body["spec"]["failurePolicy"], body["metadata"]["generation"]) == ("Ignore", 2)
    assert body["status"] == {"observedGeneration": 1}  # a spec write leaves the status alone


async def test_invalid_objects_get_upstreams_causes(apiserver: RunningServer, tmp_path: Path) -> None:
    bad_policy = DOCS_EXAMPLE.split("---")[0].replace("object.spec.replicas <= 5", "object.x <")
    code, out = await apply(apiserver, tmp_path, bad_policy)
    assert code != 0
    assert (
        'The ValidatingAdmissionPolicy "demo-policy.example.com" is invalid: spec.validations[0].expression: '
        'Invalid value: "object.x <": compilation failed: ERROR: <input>:1:' in out
    )

    bad_binding = DOCS_EXAMPLE.split("---")[1].replace("[Deny]", "[Deny, Warn, Deny]")
    code, out = await apply(apiserver, tmp_path, bad_binding)
    assert code != 0
    assert 'The ValidatingAdmissionPolicyBinding "demo-binding-test.example.com" is invalid:' in out
    assert '* spec.validationActions[2]: Duplicate value: "Deny"' in out
    assert (
        '* spec.validationActions: Invalid value: []admissionregistration.ValidationAction{"Deny", "Warn", '
        '"Deny"}: must not contain both Deny and Warn' in out
    )

    status, body = await apiserver.request(
        "POST",
        POLICIES,
        body={
            "apiVersion": f"{GROUP}/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "empty.example.com"},
            "spec": {"matchConstraints": {}},
        },
    )
    assert status == 422
    assert [(c["reason"], c["field"], c["message"]) for c in body["details"]["causes"]] == [
        ("FieldValueRequired", "spec.matchConstraints.resourceRules", "Required value"),
        (
            "FieldValueRequired",
            "spec.validations",
            "Required value: validations or auditAnnotations must contain at least one item",
        ),
        (
            "FieldValueRequired",
            "spec.auditAnnotations",
            "Required value: validations or auditAnnotations must contain at least one item",
        ),
    ]
