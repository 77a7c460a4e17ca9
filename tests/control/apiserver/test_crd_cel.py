"""CEL validation rules through the API server: real kubectl applies a CRD with
``x-kubernetes-validations`` and custom resources that break them, and prints upstream's errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import yaml

from tests.control.apiserver.conftest import RunningServer

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NAME = "scalers.example.com"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": NAME},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "scalers", "singular": "scaler", "kind": "Scaler"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.minReplicas <= self.maxReplicas",
                                        "message": "minReplicas cannot be larger than maxReplicas",
                                    },
                                    {
                                        "rule": "self.target == oldSelf.target",
                                        "message": "target is immutable",
                                    },
                                ],
                                "properties": {
                                    "minReplicas": {"type": "integer"},
                                    "maxReplicas": {"type": "integer"},
                                    "target": {"type": "string"},
                                    "image": {
                                        "type": "string",
                                        "x-kubernetes-validations": [
                                            {
                                                "rule": "self.contains(':')",
                                                "messageExpression": "'image ' + self + ' needs a tag'",
                                            }
                                        ],
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "integer"}},
                                "x-kubernetes-validations": [{"rule": "!has(self.ready) || self.ready >= 0"}],
                            },
                        },
                    }
                },
            }
        ],
    },
}


def scaler(name: str, **spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"name": name}, "spec": spec}


async def kubectl(
    api: RunningServer, tmp_path: Path, *args: str, manifest: dict | None = None
) -> tuple[int, str]:
    """Run kubectl (with ``manifest`` as the file of ``-f``); its exit code and its output."""
    extra: list[str] = []
    if manifest is not None:
        path = tmp_path / "manifest.yaml"
        path.write_text(yaml.safe_dump(manifest))
        extra = ["-f", str(path)]
    code, out, err = await api.kubectl(*args, *extra)
    return code, out + err


async def established(api: RunningServer) -> None:
    """Return once the CRD's kind is served (its conditions say Established)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        _, crd = await api.request("GET", f"{CRDS}/{NAME}")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions", [])}
        if conditions.get("Established") == "True":
            return
        assert asyncio.get_running_loop().time() < deadline, "the CRD was not established"
        await asyncio.sleep(0.02)


async def test_kubectl_shows_rule_failures_of_custom_resources(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    code, out = await kubectl(apiserver, tmp_path, "apply", manifest=CRD)
    assert code == 0, out
    await established(apiserver)

    code, out = await kubectl(
        apiserver,
        tmp_path,
        "apply",
        manifest=scaler("bad", minReplicas=5, maxReplicas=1, target="a", image="nginx"),
    )
    assert code != 0
    assert 'The Scaler "bad" is invalid:' in out
    assert "* spec: Invalid value: minReplicas cannot be larger than maxReplicas" in out
    assert '* spec.image: Invalid value: "nginx": image nginx needs a tag' in out

    good = scaler("good", minReplicas=1, maxReplicas=3, target="a", image="nginx:1")
    code, out = await kubectl(apiserver, tmp_path, "apply", manifest=good)
    assert code == 0, out
    code, out = await kubectl(
        apiserver, tmp_path, "apply", manifest={**good, "spec": {**good["spec"], "target": "b"}}
    )
    assert code != 0
    assert 'The Scaler "good" is invalid: spec: Invalid value: target is immutable' in out

    status, body = await apiserver.request(
        "PATCH",
        "/apis/example.com/v1/namespaces/default/scalers/good/status",
        raw=orjson.dumps({"status": {"ready": -1}}),
        content_type="application/merge-patch+json",
    )
    assert status == 422, body
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: failed rule: !has(self.ready) || self.ready >= 0",
            "field": "status",
        }
    ]


async def test_kubectl_shows_why_a_crd_rule_does_not_compile(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    broken = orjson.loads(orjson.dumps(CRD))
    spec_schema = broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["x-kubernetes-validations"] = [{"rule": "self.minReplicas <"}]
    code, out = await kubectl(apiserver, tmp_path, "apply", manifest=broken)
    assert code != 0
    assert f'The CustomResourceDefinition "{NAME}" is invalid:' in out
    assert (
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
        'apiextensions.ValidationRule{Rule:"self.minReplicas <", Message:"", MessageExpression:"", '
        'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: '
        "compilation failed: ERROR: <input>:1:19: Syntax error: mismatched input '<EOF>'"
    ) in out
    status, _ = await apiserver.request("GET", f"{CRDS}/{NAME}")
    assert status == 404
