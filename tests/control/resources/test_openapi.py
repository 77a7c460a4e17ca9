"""Tests for control.resources.openapi: the /openapi/v3 index and group-version documents.

What real clients do with these documents is ported below as small functions, so the
tests check what kubectl will find rather than the document's exact shape:
``supports_query_param`` is cli-runtime's pkg/resource/query_param_verifier_v3.go
(supportsQueryParamV3), ``explain_gvk``/``explain_field`` follow kubectl's
pkg/explain/v2/templates/plaintext.tmpl (the GVK search over paths, then the component
schema holding that GVK, then properties / $ref / allOf / items / additionalProperties).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from control.resources.openapi import OpenAPIV3, custom_schema_name, group_version_path
from control.resources.registry import Registry, ResourceType, ScaleSubresource

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "CronTab spec.",
            "properties": {"cronSpec": {"type": "string", "description": "When to run."}},
        }
    },
}


def _kinds() -> list[ResourceType]:
    return [
        ResourceType(
            group="",
            version="v1",
            kind="Pod",
            plural="pods",
            singular="pod",
            namespaced=True,
            has_status=True,
            definition="io.k8s.api.core.v1.Pod",
        ),
        ResourceType(
            group="",
            version="v1",
            kind="Namespace",
            plural="namespaces",
            singular="namespace",
            namespaced=False,
            has_status=True,
            definition="io.k8s.api.core.v1.Namespace",
        ),
        ResourceType(
            group="apps",
            version="v1",
            kind="Deployment",
            plural="deployments",
            singular="deployment",
            namespaced=True,
            has_status=True,
            scale=ScaleSubresource(),
            definition="io.k8s.api.apps.v1.Deployment",
        ),
        ResourceType(
            group="authorization.k8s.io",
            version="v1",
            kind="SelfSubjectAccessReview",
            plural="selfsubjectaccessreviews",
            singular="selfsubjectaccessreview",
            namespaced=False,
            verbs=("create",),
            virtual=True,
            definition="io.k8s.api.authorization.v1.SelfSubjectAccessReview",
        ),
        ResourceType(
            group="stable.example.com",
            version="v1",
            kind="CronTab",
            plural="crontabs",
            singular="crontab",
            namespaced=True,
            schema=CRONTAB_SCHEMA,
        ),
    ]


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    for rt in _kinds():
        registry.add(rt)
    return registry


@pytest.fixture
def openapi(registry: Registry) -> OpenAPIV3:
    return OpenAPIV3(registry)


def _document(openapi: OpenAPIV3, path: str) -> dict[str, Any]:
    document = openapi.document(path)
    assert document is not None, path
    return orjson.loads(document.body)


# -- what the clients do, ported ---------------------------------------------------------------


def supports_query_param(doc: dict[str, Any], gvk: dict[str, str], param: str) -> bool:
    """cli-runtime supportsQueryParamV3: the first PATCH operation for the GVK decides."""
    for path_item in doc["paths"].values():
        operation = path_item.get("patch")
        if operation is None or operation.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(parameter.get("name") == param for parameter in operation.get("parameters", []))
    return False


def explain_gvk(doc: dict[str, Any], *, group: str, version: str, plural: str) -> dict[str, str] | None:
    prefix = f"/apis/{group}" if group else "/api"
    candidates = (
        f"{prefix}/{version}/{plural}",
        f"{prefix}/{version}/{plural}/{{name}}",
        f"{prefix}/{version}/namespaces/{{namespace}}/{plural}",
        f"{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}",
    )
    gvk = None
    for candidate in candidates:
        path_item = doc["paths"].get(candidate)
        if path_item is None:
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method in path_item and path_item[method].get("x-kubernetes-group-version-kind"):
                gvk = path_item[method]["x-kubernetes-group-version-kind"]
                break
    return gvk


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None and len(schema.get("allOf", [])) == 1 and "properties" not in schema:
        ref = schema["allOf"][0].get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    return doc["components"]["schemas"][ref.removeprefix("#/components/schemas/")]


def explain_field(doc: dict[str, Any], gvk: dict[str, str], field_path: str) -> dict[str, Any]:
    """The schema ``kubectl explain <kind>.<field_path>`` prints."""
    kind_schema = next(
        schema
        for schema in doc["components"]["schemas"].values()
        if gvk in schema.get("x-kubernetes-group-version-kind", [])
    )
    schema = kind_schema
    for name in field_path.split(".") if field_path else []:
        schema = _resolve(doc, schema)
        while "properties" not in schema and (
            "items" in schema or isinstance(schema.get("additionalProperties"), dict)
        ):
            schema = _resolve(doc, schema.get("items") or schema["additionalProperties"])
        assert name in schema.get("properties", {}), f"{field_path}: no field {name}"
        schema = schema["properties"][name]
    return schema


# -- the index -----------------------------------------------------------------------------------


def test_index_points_at_each_group_version_with_its_hash(openapi: OpenAPIV3) -> None:
    index = orjson.loads(openapi.index())
    assert set(index["paths"]) == {
        "api/v1",
        "apis/apps/v1",
        "apis/authorization.k8s.io/v1",
        "apis/stable.example.com/v1",
    }
    for path, entry in index["paths"].items():
        document = openapi.document(path)
        assert document is not None
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={document.etag}"
        assert document.etag == hashlib.sha512(document.body).hexdigest().upper()


def test_documents_are_cached_and_deterministic(registry: Registry, openapi: OpenAPIV3) -> None:
    first = openapi.document("apis/apps/v1")
    assert openapi.document("/openapi/v3/apis/apps/v1") is first
    assert openapi.index() is openapi.index()
    fresh = OpenAPIV3(registry).document("apis/apps/v1")
    assert fresh is not None and first is not None
    assert fresh.body == first.body


def test_registry_changes_invalidate_the_cache(registry: Registry, openapi: OpenAPIV3) -> None:
    before = openapi.document("apis/apps/v1")
    index_before = openapi.index()
    registry.add(
        ResourceType(
            group="apps",
            version="v1",
            kind="StatefulSet",
            plural="statefulsets",
            singular="statefulset",
            namespaced=True,
            definition="io.k8s.api.apps.v1.StatefulSet",
        )
    )
    after = openapi.document("apis/apps/v1")
    assert before is not None and after is not None
    assert after.etag != before.etag
    assert "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}" in orjson.loads(after.body)["paths"]
    assert after.server_relative_url in openapi.index().decode()
    assert openapi.index() != index_before
    registry.remove(group="stable.example.com", version="v1", plural="crontabs")
    assert "apis/stable.example.com/v1" not in orjson.loads(openapi.index())["paths"]
    assert openapi.document("apis/stable.example.com/v1") is None


@pytest.mark.parametrize(
    "path", ["apis/apps", "apis/nothing.example.com/v1", "api/v2", "version", "apis/apps/v1/x"]
)
def test_unknown_documents(openapi: OpenAPIV3, path: str) -> None:
    assert openapi.document(path) is None


def test_path_helpers() -> None:
    assert group_version_path("", "v1") == "api/v1"
    assert group_version_path("apps", "v1") == "apis/apps/v1"
    assert custom_schema_name("stable.example.com", "v1", "CronTab") == "com.example.stable.v1.CronTab"


# -- server-side validation (kubectl --validate=strict) ---------------------------------------------


@pytest.mark.parametrize(
    ("path", "gvk"),
    [
        ("api/v1", {"group": "", "kind": "Pod", "version": "v1"}),
        ("api/v1", {"group": "", "kind": "Namespace", "version": "v1"}),
        ("apis/apps/v1", {"group": "apps", "kind": "Deployment", "version": "v1"}),
        ("apis/stable.example.com/v1", {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}),
    ],
)
def test_kubectl_finds_field_validation_on_patch(openapi: OpenAPIV3, path: str, gvk: dict[str, str]) -> None:
    doc = _document(openapi, path)
    assert supports_query_param(doc, gvk, "fieldValidation")
    # Go ranges over the paths map in random order: every PATCH for the kind must qualify.
    patches = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    for operation in patches:
        assert any(parameter["name"] == "fieldValidation" for parameter in operation["parameters"])


def test_patch_operations_carry_no_request_body(openapi: OpenAPIV3) -> None:
    for path in ("api/v1", "apis/apps/v1", "apis/stable.example.com/v1"):
        for item in _document(openapi, path)["paths"].values():
            if "patch" in item:
                assert "requestBody" not in item["patch"]
                assert "strategic-merge-patch" not in orjson.dumps(item["patch"]).decode()


# -- paths and operations ----------------------------------------------------------------------------


def _operations(doc: dict[str, Any], path: str) -> dict[str, str]:
    item = doc["paths"][path]
    return {method: op["x-kubernetes-action"] for method, op in item.items() if method != "parameters"}


def test_namespaced_kind_paths(openapi: OpenAPIV3) -> None:
    doc = _document(openapi, "apis/apps/v1")
    base = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert _operations(doc, base) == {"get": "list", "post": "post", "delete": "deletecollection"}
    assert _operations(doc, base + "/{name}") == {
        "get": "get",
        "put": "put",
        "patch": "patch",
        "delete": "delete",
    }
    assert _operations(doc, "/apis/apps/v1/deployments") == {"get": "list"}
    assert _operations(doc, base + "/{name}/status") == {"get": "get", "put": "put", "patch": "patch"}
    item = doc["paths"][base + "/{name}"]
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    assert item["patch"]["operationId"] == "patchAppsV1NamespacedDeployment"
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "kind": "Deployment",
        "version": "v1",
    }
    assert item["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    }
    listing = doc["paths"][base]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    }
    assert {"watch", "labelSelector", "limit", "continue"} <= {p["name"] for p in listing["parameters"]}


def test_scale_subresource_speaks_autoscaling_v1(openapi: OpenAPIV3) -> None:
    doc = _document(openapi, "apis/apps/v1")
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert set(scale) == {"get", "put", "patch", "parameters"}
    for method in ("get", "put", "patch"):
        assert scale[method]["x-kubernetes-group-version-kind"] == {
            "group": "autoscaling",
            "kind": "Scale",
            "version": "v1",
        }
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]


def test_cluster_scoped_kind_paths(openapi: OpenAPIV3) -> None:
    doc = _document(openapi, "api/v1")
    assert _operations(doc, "/api/v1/namespaces") == {
        "get": "list",
        "post": "post",
        "delete": "deletecollection",
    }
    assert doc["paths"]["/api/v1/namespaces/{name}"]["patch"]["operationId"] == "patchCoreV1Namespace"
    assert "/api/v1/namespaces/{name}/status" in doc["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/status" in doc["paths"]
    assert not any("deployments" in path for path in doc["paths"])


def test_virtual_kinds_only_accept_create(openapi: OpenAPIV3) -> None:
    doc = _document(openapi, "apis/authorization.k8s.io/v1")
    assert set(doc["paths"]) == {"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"}
    item = doc["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert _operations(doc, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") == {"post": "post"}
    assert item["post"]["operationId"] == "createAuthorizationV1SelfSubjectAccessReview"


def test_verbs_limit_the_operations() -> None:
    registry = Registry()
    registry.add(
        ResourceType(
            group="",
            version="v1",
            kind="Event",
            plural="events",
            singular="event",
            namespaced=True,
            verbs=("get", "list"),
            definition="io.k8s.api.core.v1.Event",
        )
    )
    document = OpenAPIV3(registry).document("api/v1")
    assert document is not None
    doc = orjson.loads(document.body)
    assert _operations(doc, "/api/v1/namespaces/{namespace}/events") == {"get": "list"}
    assert _operations(doc, "/api/v1/namespaces/{namespace}/events/{name}") == {"get": "get"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" not in doc["components"]["schemas"]


# -- schemas: kubectl explain --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "group", "plural", "field", "expected_type"),
    [
        ("apis/apps/v1", "apps", "deployments", "spec.template", None),
        (
            "apis/apps/v1",
            "apps",
            "deployments",
            "spec.template.spec.containers.ports.containerPort",
            "integer",
        ),
        ("apis/apps/v1", "apps", "deployments", "spec.replicas", "integer"),
        ("api/v1", "", "pods", "spec.containers.resources.limits", "object"),
        ("api/v1", "", "pods", "metadata.labels", "object"),
        ("api/v1", "", "namespaces", "spec.finalizers", "array"),
        ("apis/stable.example.com/v1", "stable.example.com", "crontabs", "spec.cronSpec", "string"),
        ("apis/stable.example.com/v1", "stable.example.com", "crontabs", "metadata.name", "string"),
    ],
)
def test_kubectl_explain_finds_fields(
    openapi: OpenAPIV3, path: str, group: str, plural: str, field: str, expected_type: str | None
) -> None:
    doc = _document(openapi, path)
    gvk = explain_gvk(doc, group=group, version="v1", plural=plural)
    assert gvk is not None
    schema = explain_field(doc, gvk, field)
    assert schema.get("description")
    if expected_type is not None:
        assert schema["type"] == expected_type


def test_every_reference_resolves_inside_the_document(openapi: OpenAPIV3) -> None:
    for path in orjson.loads(openapi.index())["paths"]:
        doc = _document(openapi, path)
        text = orjson.dumps(doc).decode()
        assert "#/$defs/" not in text
        refs: set[str] = set()
        _collect(doc, refs)
        assert refs <= {"#/components/schemas/" + name for name in doc["components"]["schemas"]}


def _collect(node: Any, refs: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                refs.add(value)
            else:
                _collect(value, refs)
    elif isinstance(node, list):
        for value in node:
            _collect(value, refs)


def test_schemas_are_openapi_3_0(openapi: OpenAPIV3) -> None:
    schemas = _document(openapi, "apis/apps/v1")["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["type"] == "object"
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["properties"]["apiVersion"] == {
        "description": deployment["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    assert deployment["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}
    ]
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == (
        "name",
        "merge",
    )
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    assert int_or_string["oneOf"] == [{"type": "string"}, {"type": "integer"}]

    def no_type_lists(node: Any) -> None:
        if isinstance(node, dict):
            assert not isinstance(node.get("type"), list)
            for value in node.values():
                no_type_lists(value)
        elif isinstance(node, list):
            for value in node:
                no_type_lists(value)

    no_type_lists(schemas)


def test_custom_kinds_get_generated_schemas(openapi: OpenAPIV3) -> None:
    doc = _document(openapi, "apis/stable.example.com/v1")
    schemas = doc["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert crontab["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert crontab["properties"]["spec"] == CRONTAB_SCHEMA["properties"]["spec"]
    assert set(crontab["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    crontab_list = schemas["com.example.stable.v1.CronTabList"]
    assert crontab_list["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.stable.v1.CronTab"
    }
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" in schemas
    assert (
        "properties" not in CRONTAB_SCHEMA or "metadata" not in CRONTAB_SCHEMA["properties"]
    )  # input untouched
