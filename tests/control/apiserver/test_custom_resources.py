"""Kinds declared by CustomResourceDefinitions are served like built-ins, at run time."""

from __future__ import annotations

import asyncio

from tests.control.apiserver.conftest import RunningServer

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRONTABS = "/apis/stable.example.com/v1/namespaces/default/crontabs"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "cronSpec": {"type": "string"},
                                    "replicas": {"type": "integer"},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


def crontab(name: str, **spec) -> dict:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": name},
        "spec": spec,
    }


async def until(predicate, *, within: float = 10.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await predicate()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_a_crd_is_established_and_its_kind_served(apiserver: RunningServer):
    status, _ = await apiserver.request("POST", CRDS, body=CRD)
    assert status == 201

    async def established():
        _, crd = await apiserver.request("GET", f"{CRDS}/crontabs.stable.example.com")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions", [])}
        return crd if conditions.get("Established") == "True" else None

    crd = await until(established)
    assert crd["status"]["acceptedNames"]["kind"] == "CronTab"
    assert "customresourcecleanup.apiextensions.k8s.io" in crd["metadata"]["finalizers"]

    _, groups = await apiserver.request("GET", "/apis")
    assert "stable.example.com" in {g["name"] for g in groups["groups"]}
    _, resources = await apiserver.request("GET", "/apis/stable.example.com/v1")
    names = {r["name"]: r for r in resources["resources"]}
    assert names["crontabs"]["shortNames"] == ["ct"] and "crontabs/status" in names

    status, created = await apiserver.request(
        "POST", CRONTABS, body={**crontab("c1", cronSpec="* * * * *", replicas=2), "extra": 1}
    )
    assert status == 201 and "extra" not in created  # pruned, as structural schemas do
    assert created["spec"] == {"cronSpec": "* * * * *", "replicas": 2}
    status, body = await apiserver.request("POST", CRONTABS, body=crontab("c2", replicas="two"))
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.replicas"

    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    _, table = await apiserver.request("GET", CRONTABS, headers=headers)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas"]
    assert table["rows"][0]["cells"] == ["c1", "* * * * *", 2]

    status, _ = await apiserver.request("DELETE", f"{CRDS}/crontabs.stable.example.com")
    assert status == 200

    async def gone():
        status, _ = await apiserver.request("GET", f"{CRDS}/crontabs.stable.example.com")
        return status == 404

    await until(gone)
    status, _ = await apiserver.request("GET", CRONTABS)
    assert status == 404


async def test_custom_resources_are_checked_against_the_schema_values(apiserver: RunningServer):
    crd = {
        **CRD,
        "metadata": {"name": "gadgets.stable.example.com"},
        "spec": {
            **CRD["spec"],
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "string", "enum": ["small", "large"]},
                                        "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    status, _ = await apiserver.request("POST", CRDS, body=crd)
    assert status == 201
    gadgets = "/apis/stable.example.com/v1/namespaces/default/gadgets"

    async def served():
        status, _ = await apiserver.request("GET", gadgets)
        return status == 200

    await until(served)
    body = {"apiVersion": "stable.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    status, answer = await apiserver.request(
        "POST", gadgets, body={**body, "spec": {"size": "huge", "replicas": 9}}
    )
    assert status == 422
    assert answer["message"] == (
        'Gadget.stable.example.com "g" is invalid: [spec.size: Unsupported value: "huge": supported values: '
        '"small", "large", spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 5]'
    )
    assert [cause["field"] for cause in answer["details"]["causes"]] == ["spec.size", "spec.replicas"]
    status, answer = await apiserver.request("POST", gadgets, body=body)
    assert status == 422 and answer["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec",
    }
    status, _ = await apiserver.request(
        "POST", gadgets, body={**body, "spec": {"size": "small", "replicas": 2}}
    )
    assert status == 201
    # updates are checked too
    status, answer = await apiserver.request(
        "PATCH",
        f"{gadgets}/g",
        body={"spec": {"replicas": 0}},
        content_type="application/merge-patch+json",
    )
    assert status == 422 and "should be greater than or equal to 1" in answer["message"]
    await apiserver.request("DELETE", f"{CRDS}/gadgets.stable.example.com")


async def test_a_new_storage_version_joins_the_stored_versions(apiserver: RunningServer):
    """As upstream's PrepareForUpdate: the old storage version stays listed (objects may still be
    stored in it) until someone removes it from the status."""
    name = "crontabs.stable.example.com"
    status, _ = await apiserver.request("POST", CRDS, body=CRD)
    assert status == 201

    async def established():
        _, crd = await apiserver.request("GET", f"{CRDS}/{name}")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions", [])}
        return crd if conditions.get("Established") == "True" else None

    crd = await until(established)
    assert crd["status"]["storedVersions"] == ["v1"]
    v1 = crd["spec"]["versions"][0]
    crd["spec"]["versions"] = [{**v1, "storage": False}, {**v1, "name": "v2", "storage": True}]
    status, updated = await apiserver.request("PUT", f"{CRDS}/{name}", body=crd)
    assert status == 200, updated
    assert updated["status"]["storedVersions"] == ["v1", "v2"]

    # Dropping v1 from spec.versions while it is still a stored version is refused, as upstream.
    updated["spec"]["versions"] = [updated["spec"]["versions"][1]]
    status, body = await apiserver.request("PUT", f"{CRDS}/{name}", body=updated)
    assert status == 422 and "status.storedVersions[0]" in body["message"], body
    # After migrating, the status may forget v1; then v1 may go.
    _, current = await apiserver.request("GET", f"{CRDS}/{name}")
    current["status"]["storedVersions"] = ["v2"]
    status, body = await apiserver.request("PUT", f"{CRDS}/{name}/status", body=current)
    assert status == 200 and body["status"]["storedVersions"] == ["v2"], body
    body["spec"]["versions"] = [body["spec"]["versions"][1]]
    status, body = await apiserver.request("PUT", f"{CRDS}/{name}", body=body)
    assert status == 200 and body["status"]["storedVersions"] == ["v2"], body
