"""core/v1 ReplicationControllers served as kube-apiserver serves them: discovery, defaulting and
validation on write, the status and scale subresources (the Scale's selector rendered from the
label map), Table rows and the OpenAPI v3 document, over the in-process HTTPS server."""

from __future__ import annotations

from typing import Any

from tests.control.apiserver.conftest import RunningServer

RC = "/api/v1/namespaces/default/replicationcontrollers"
MERGE = "application/merge-patch+json"
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def controller(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A ReplicationController with no selector: the server defaults it from the template."""
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": labels or {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
            **spec,
        },
    }


async def test_discovery_lists_the_kind_with_its_subresources(apiserver: RunningServer):
    _, core = await apiserver.request("GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    rc = by_name["replicationcontrollers"]
    assert (rc["kind"], rc["singularName"], rc["namespaced"]) == (
        "ReplicationController",
        "replicationcontroller",
        True,
    )
    assert rc["shortNames"] == ["rc"] and rc["categories"] == ["all"]
    assert rc["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    scale = by_name["replicationcontrollers/scale"]
    assert (scale["group"], scale["version"], scale["kind"], scale["verbs"]) == (
        "autoscaling",
        "v1",
        "Scale",
        ["get", "patch", "update"],
    )
    assert by_name["replicationcontrollers/status"]["kind"] == "ReplicationController"


async def test_create_defaults_selector_labels_and_replicas(apiserver: RunningServer):
    status, rc = await apiserver.request(
        "POST", RC, body=controller("web", labels={"app": "web", "tier": "front"})
    )
    assert status == 201, rc
    assert rc["spec"]["selector"] == {"app": "web", "tier": "front"}
    assert rc["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert rc["spec"]["replicas"] == 1
    assert rc["metadata"]["generation"] == 1
    assert rc["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    status, listed = await apiserver.request("GET", RC)
    assert status == 200 and listed["kind"] == "ReplicationControllerList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web"]


async def test_invalid_controllers_are_rejected_with_upstreams_causes(apiserver: RunningServer):
    bad = controller("web", replicas=-1, selector={"app": "other"})
    bad["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    status, body = await apiserver.request("POST", RC, body=bad)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "ReplicationController"
    assert [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [
        ("spec.replicas", "FieldValueInvalid"),
        ("spec.template.metadata.labels", "FieldValueInvalid"),
        ("spec.template.spec.restartPolicy", "FieldValueNotSupported"),
    ]
    status, body = await apiserver.request("POST", RC, body={"metadata": {"name": "bare"}, "spec": {}})
    assert status == 422
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.selector", "spec.template"]


async def test_selector_may_change_and_spec_changes_bump_the_generation(apiserver: RunningServer):
    await apiserver.request("POST", RC, body=controller("web"))
    change = {
        "spec": {
            "selector": {"app": "web", "track": "stable"},
            "template": {"metadata": {"labels": {"app": "web", "track": "stable"}}},
        }
    }
    status, rc = await apiserver.request("PATCH", f"{RC}/web", body=change, content_type=MERGE)
    assert status == 200, rc
    assert rc["spec"]["selector"] == {"app": "web", "track": "stable"}
    assert rc["metadata"]["generation"] == 2


async def test_status_subresource_writes_only_status(apiserver: RunningServer):
    _, rc = await apiserver.request("POST", RC, body=controller("web"))
    body = {**rc, "spec": {**rc["spec"], "replicas": 9}, "status": {"replicas": 1, "readyReplicas": 1}}
    status, after = await apiserver.request("PUT", f"{RC}/web/status", body=body)
    assert status == 200, after
    assert after["status"] == {"replicas": 1, "readyReplicas": 1} and after["spec"]["replicas"] == 1
    over = {**after, "status": {"replicas": 1, "readyReplicas": 2}}
    status, body = await apiserver.request("PUT", f"{RC}/web/status", body=over)
    assert status == 422
    assert (
        body["details"]["causes"][0]["message"] == "Invalid value: 2: cannot be greater than status.replicas"
    )


async def test_scale_renders_the_label_map_and_writes_replicas(apiserver: RunningServer):
    await apiserver.request("POST", RC, body=controller("web", labels={"tier": "front", "app": "web"}))
    status, scale = await apiserver.request("GET", f"{RC}/web/scale")
    assert status == 200 and (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 1}
    assert scale["status"] == {"replicas": 0, "selector": "app=web,tier=front"}
    status, scale = await apiserver.request(
        "PATCH", f"{RC}/web/scale", body={"spec": {"replicas": 4}}, content_type=MERGE
    )
    assert status == 200 and scale["spec"]["replicas"] == 4
    _, rc = await apiserver.request("GET", f"{RC}/web")
    assert rc["spec"]["replicas"] == 4
    status, body = await apiserver.request(
        "PATCH", f"{RC}/web/scale", body={"spec": {"replicas": -1}}, content_type=MERGE
    )
    assert status == 422 and body["reason"] == "Invalid"
    status, _ = await apiserver.request("GET", f"{RC}/absent/scale")
    assert status == 404


async def test_table_rows_are_kubectl_get_rc(apiserver: RunningServer):
    await apiserver.request("POST", RC, body=controller("web", replicas=3))
    status, table = await apiserver.request("GET", RC, headers=TABLE)
    assert status == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["web", 3, 0, 0]
    assert cells[5:] == ["web", "nginx:1.27", "app=web"]


async def test_field_selector_on_status_replicas(apiserver: RunningServer):
    await apiserver.request("POST", RC, body=controller("web"))
    status, listed = await apiserver.request("GET", RC, params={"fieldSelector": "status.replicas=0"})
    assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    status, listed = await apiserver.request("GET", RC, params={"fieldSelector": "status.replicas=1"})
    assert status == 200 and listed["items"] == []


async def test_openapi_v3_documents_the_kind_and_its_scale(apiserver: RunningServer):
    _, index = await apiserver.request("GET", "/openapi/v3")
    _, document = await apiserver.request("GET", index["paths"]["api/v1"]["serverRelativeURL"])
    item = document["paths"]["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}"]
    assert item["get"]["x-kubernetes-group-version-kind"] == {
        "group": "",
        "version": "v1",
        "kind": "ReplicationController",
    }
    scale = document["paths"]["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    schemas = document["components"]["schemas"]
    assert "io.k8s.api.core.v1.ReplicationControllerSpec" in schemas


async def test_a_delete_naming_no_policy_orphans_the_pods_as_upstreams_v1_default(apiserver: RunningServer):
    for name in ("kept", "collected", "foreground"):
        status, _ = await apiserver.request("POST", RC, body=controller(name))
        assert status == 201
    status, _ = await apiserver.request("DELETE", f"{RC}/kept")
    assert status == 200
    status, kept = await apiserver.request("GET", f"{RC}/kept")  # the GC removes it once orphaning is done
    assert status == 200 and kept["metadata"]["finalizers"] == ["orphan"]
    assert kept["metadata"]["deletionTimestamp"]

    status, _ = await apiserver.request(
        "DELETE", f"{RC}/collected", body={"kind": "DeleteOptions", "propagationPolicy": "Background"}
    )
    assert status == 200
    status, _ = await apiserver.request("GET", f"{RC}/collected")
    assert status == 404

    status, _ = await apiserver.request(
        "DELETE", f"{RC}/foreground", body={"kind": "DeleteOptions", "propagationPolicy": "Foreground"}
    )
    assert status == 200
    status, foreground = await apiserver.request("GET", f"{RC}/foreground")
    assert status == 200 and foreground["metadata"]["finalizers"] == ["foregroundDeletion"]
