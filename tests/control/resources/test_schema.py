"""Tests for control.resources.schema: compiled schemas and kube-apiserver's decoding checks."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from control.resources.registry import ResourceType
from control.resources.schema import (
    VENDORED_DEFINITIONS,
    Definitions,
    SchemaNode,
    UnknownDefinitionError,
    check_fields,
    compile_crd_schema,
    definitions,
    quantity_error,
    schema_for,
)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"


@pytest.fixture(scope="module")
def deployment() -> SchemaNode:
    return definitions().node(DEPLOYMENT)


@pytest.fixture(scope="module")
def pod() -> SchemaNode:
    return definitions().node(POD)


def _walk(node: SchemaNode, path: str) -> SchemaNode:
    for name in path.split("."):
        if name == "[]":
            assert node.items is not None, path
            node = node.items
        else:
            child = node.child(name)
            assert child is not None, f"{path}: no {name}"
            node = child
    return node


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


# -- the vendored definitions -------------------------------------------------------------


def test_vendored_definitions_load_once_and_hold_the_built_in_kinds() -> None:
    defs = definitions()
    assert defs is definitions()
    assert VENDORED_DEFINITIONS.is_file()
    for name in (DEPLOYMENT, POD, "io.k8s.api.core.v1.Service", "io.k8s.api.rbac.v1.ClusterRole"):
        assert name in defs
    assert defs.raw(DEPLOYMENT)["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]


def test_nodes_are_compiled_once_and_shared(deployment: SchemaNode) -> None:
    defs = definitions()
    assert defs.node(DEPLOYMENT) is deployment
    assert _walk(deployment, "spec.template.spec") is defs.node("io.k8s.api.core.v1.PodSpec")


def test_unknown_definition() -> None:
    with pytest.raises(UnknownDefinitionError):
        definitions().node("io.k8s.api.nothing.v1.Nothing")
    with pytest.raises(UnknownDefinitionError):
        Definitions({"a": {"properties": {"b": {"$ref": "#/$defs/missing"}}}}).node("a")


def test_patch_metadata_comes_from_the_field(deployment: SchemaNode) -> None:
    containers = _walk(deployment, "spec.template.spec.containers")
    assert containers.kind == "array"
    assert containers.patch_strategies == ("merge",)
    assert containers.patch_merge_key == "name"
    assert containers.list_type == "map"
    assert containers.list_map_keys == ("name",)
    container = _walk(deployment, "spec.template.spec.containers.[]")
    assert container.definition == "io.k8s.api.core.v1.Container"
    assert container.patch_strategies == ()  # the type itself carries none
    assert container.child("ports").patch_merge_key == "containerPort"
    assert container.child("volumeMounts").patch_merge_key == "mountPath"
    assert container.child("env").patch_merge_key == "name"
    assert container.child("args").patch_strategies == ()
    assert _walk(deployment, "spec.template.spec.volumes").patch_strategies == ("merge", "retainKeys")
    assert _walk(deployment, "spec.template.spec.tolerations").patch_strategies == ()


def test_a_ref_with_patch_metadata_shares_the_referenced_structure(deployment: SchemaNode) -> None:
    strategy = _walk(deployment, "spec.strategy")
    target = definitions().node("io.k8s.api.apps.v1.DeploymentStrategy")
    assert strategy is not target
    assert strategy.patch_strategies == ("retainKeys",)
    assert strategy.properties is target.properties
    assert strategy.definition == target.definition
    assert target.patch_strategies == ()


def test_primitive_list_maps_and_special_types(pod: SchemaNode) -> None:
    finalizers = _walk(pod, "metadata.finalizers")
    assert (finalizers.patch_strategies, finalizers.patch_merge_key, finalizers.list_type) == (
        ("merge",),
        "",
        "set",
    )
    assert finalizers.items is not None and finalizers.items.kind == "string"
    labels = _walk(pod, "metadata.labels")
    assert labels.kind == "map"
    assert labels.additional_properties is not None and labels.additional_properties.kind == "string"
    assert labels.child("anything") is labels.additional_properties
    port = _walk(pod, "spec.containers.[].livenessProbe.httpGet.port")
    assert port.int_or_string and port.kind == "int-or-string"
    assert _walk(pod, "spec.containers.[].resources.limits").additional_properties.kind == "quantity"
    assert _walk(pod, "metadata.creationTimestamp").kind == "time"
    assert _walk(pod, "metadata.managedFields.[].fieldsV1").kind == "any"
    assert definitions().node("io.k8s.api.core.v1.Secret").child("data").additional_properties.kind == "bytes"
    assert all(node.builtin for node in (pod, labels, port))


def test_recursive_definitions_compile() -> None:
    props = definitions().node("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
    assert props.child("properties").additional_properties is props
    assert props.child("items").kind == "any"  # JSONSchemaPropsOrArray takes any JSON


def test_compiling_from_several_threads_gives_one_node() -> None:
    defs = Definitions.load()
    found: list[SchemaNode] = []
    barrier = threading.Barrier(4)

    def compile_statefulset() -> None:
        barrier.wait()
        found.append(defs.node("io.k8s.api.apps.v1.StatefulSet"))

    threads = [threading.Thread(target=compile_statefulset) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4
    assert all(node is found[0] for node in found)
    assert _walk(found[0], "spec.template.spec.containers").patch_merge_key == "name"


# -- decoding checks: unknown fields -------------------------------------------------------


def test_a_valid_object_passes(pod: SchemaNode) -> None:
    obj = _pod(
        volumes=[{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
        tolerations=[{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
    )
    obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    before = copy.deepcopy(obj)
    report = check_fields(obj, pod)
    assert report.ok
    assert obj == before


def test_unknown_fields_are_reported_with_their_paths(deployment: SchemaNode) -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "colour": "red"},
        "spec": {
            "replicas": 1,
            "foo": 1,
            "template": {
                "spec": {"containers": [{"name": "a"}, {"name": "b", "imagePullPolicyy": "Always"}]}
            },
        },
        "status": {"bogus": True},
    }
    report = check_fields(obj, deployment)
    assert report.unknown_fields == [
        "metadata.colour",
        "spec.template.spec.containers[1].imagePullPolicyy",
        "spec.foo",
        "status.bogus",
    ]
    assert report.type_errors == []
    assert report.strict_error() == (
        'strict decoding error: unknown field "metadata.colour", unknown field '
        '"spec.template.spec.containers[1].imagePullPolicyy", unknown field "spec.foo", unknown field "status.bogus"'
    )
    assert report.warnings()[0] == 'unknown field "metadata.colour"'
    assert obj["spec"]["foo"] == 1  # reporting alone leaves the object as it is


def test_prune_drops_exactly_the_unknown_fields(pod: SchemaNode) -> None:
    obj = _pod()
    obj["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    obj["spec"]["extra"] = {"deep": [1]}
    obj["metadata"]["labels"]["any-key"] = "kept"  # map keys are never unknown
    report = check_fields(obj, pod, prune=True)
    assert report.unknown_fields == ["spec.containers[0].imagePullPolicyy", "spec.extra"]
    expected = _pod()
    expected["metadata"]["labels"]["any-key"] = "kept"
    assert obj == expected


def test_null_is_accepted_anywhere(pod: SchemaNode) -> None:
    obj = _pod(nodeSelector=None, containers=[{"name": "c", "ports": None, "image": None}])
    obj["metadata"]["creationTimestamp"] = None
    obj["status"] = None
    assert check_fields(obj, pod).ok


def test_any_typed_fields_take_any_json() -> None:
    revision = definitions().node("io.k8s.api.apps.v1.ControllerRevision")
    obj = {
        "metadata": {"name": "r", "managedFields": [{"fieldsV1": {"f:spec": {}}}]},
        "data": {"x": [1, {"y": 2}]},
    }
    assert check_fields(obj, revision).ok
    assert check_fields({"data": "a string"}, revision).ok


# -- decoding checks: types ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        pytest.param(
            lambda o: o["spec"].update(containers="web"),
            "spec.containers",
            "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container",
            id="string for a list",
        ),
        pytest.param(
            lambda o: o["spec"].update(containers=["web"]),
            "spec.containers[0]",
            "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type v1.Container",
            id="string for a list element",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(ports=[{"containerPort": "80"}]),
            "spec.containers[0].ports[0].containerPort",
            "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            id="string for an int",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(ports=[{"containerPort": 80.5}]),
            "spec.containers[0].ports[0].containerPort",
            "json: cannot unmarshal number 80.5 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            id="fraction for an int",
        ),
        pytest.param(
            lambda o: o["spec"].update(terminationGracePeriodSeconds=True),
            "spec.terminationGracePeriodSeconds",
            "json: cannot unmarshal bool into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64",
            id="bool for an int",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(ports=[{"containerPort": 2**31}]),
            "spec.containers[0].ports[0].containerPort",
            "json: cannot unmarshal number 2147483648 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            id="int32 overflow",
        ),
        pytest.param(
            lambda o: o["metadata"].update(labels={"app": 1}),
            "metadata.labels.app",
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels.app of type string",
            id="number in a string map",
        ),
        pytest.param(
            lambda o: o["spec"].update(hostNetwork="yes"),
            "spec.hostNetwork",
            "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool",
            id="string for a bool",
        ),
        pytest.param(
            lambda o: o["spec"].update(securityContext=[]),
            "spec.securityContext",
            "json: cannot unmarshal array into Go struct field PodSpec.spec.securityContext of type v1.PodSecurityContext",
            id="array for an object",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(args=["a", 1]),
            "spec.containers[0].args[1]",
            "json: cannot unmarshal number into Go struct field Container.spec.containers.args of type string",
            id="number in a string list",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(livenessProbe={"httpGet": {"port": True}}),
            "spec.containers[0].livenessProbe.httpGet.port",
            "json: cannot unmarshal bool into Go struct field HTTPGetAction.spec.containers.livenessProbe.httpGet.port of type int32",
            id="bool for an int-or-string",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(resources={"limits": {"cpu": "1x"}}),
            "spec.containers[0].resources.limits.cpu",
            "spec.containers[0].resources.limits.cpu: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            id="bad quantity",
        ),
        pytest.param(
            lambda o: o["spec"]["containers"][0].update(resources={"limits": {"cpu": True}}),
            "spec.containers[0].resources.limits.cpu",
            "spec.containers[0].resources.limits.cpu: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            id="bool for a quantity",
        ),
        pytest.param(
            lambda o: o["metadata"].update(creationTimestamp="yesterday"),
            "metadata.creationTimestamp",
            'metadata.creationTimestamp: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": '
            'cannot parse "yesterday" as RFC 3339',
            id="bad time",
        ),
        pytest.param(
            lambda o: o["metadata"].update(creationTimestamp=5),
            "metadata.creationTimestamp",
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string",
            id="number for a time",
        ),
    ],
)
def test_type_errors_name_the_field_and_types(pod: SchemaNode, mutate: Any, path: str, message: str) -> None:
    obj = _pod()
    mutate(obj)
    report = check_fields(obj, pod)
    assert [error.path for error in report.type_errors] == [path]
    assert report.type_errors[0].message() == message
    assert report.unknown_fields == []


def test_a_root_that_is_not_an_object(deployment: SchemaNode) -> None:
    report = check_fields(["not", "an", "object"], deployment)
    assert (
        report.type_errors[0].message() == "json: cannot unmarshal array into Go value of type v1.Deployment"
    )


def test_several_type_errors_are_all_reported(pod: SchemaNode) -> None:
    obj = _pod(hostNetwork="yes", priority="high")
    assert [error.path for error in check_fields(obj, pod).type_errors] == [
        "spec.hostNetwork",
        "spec.priority",
    ]


def test_scalar_forms_kube_apiserver_accepts(pod: SchemaNode) -> None:
    obj = _pod(
        containers=[
            {
                "name": "c",
                "resources": {
                    "limits": {"cpu": "100m", "memory": 1073741824},
                    "requests": {"cpu": 0.5, "memory": "1e3"},
                },
                "livenessProbe": {"httpGet": {"port": "http"}, "tcpSocket": {"port": 8080}},
            }
        ],
        activeDeadlineSeconds=2**40,  # an int64
    )
    obj["metadata"]["creationTimestamp"] = "2025-01-02T03:04:05Z"
    obj["metadata"]["deletionTimestamp"] = "2025-01-02T03:04:05.123456+02:00"
    assert check_fields(obj, pod).ok


def test_secret_data_must_be_base64() -> None:
    secret = definitions().node("io.k8s.api.core.v1.Secret")
    assert check_fields(
        {"data": {"a": "aGVsbG8=", "b": "aGVs\nbG8="}, "stringData": {"c": "plain"}}, secret
    ).ok
    report = check_fields({"data": {"a": "not base64!"}}, secret)
    assert report.type_errors[0].path == "data.a"
    assert report.type_errors[0].message() == "data.a: illegal base64 data at input byte 3"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("100m", ""),
        ("1Gi", ""),
        ("0", ""),
        ("1.5", ""),
        ("1e3", ""),
        ("-2", ""),
        (" 2 ", ""),
        ("1.G", ""),
        ("", "quantities must match"),
        ("lots", "quantities must match"),
        ("1Z", "quantities must match"),
        ("1Gb", "quantities must match"),
        ("1Gii", "unable to parse quantity's suffix"),
        ("1e", "unable to parse quantity's suffix"),
        ("1MM", "unable to parse quantity's suffix"),
    ],
)
def test_quantity_parsing_follows_apimachinery(text: str, error: str) -> None:
    if error:
        assert quantity_error(text).startswith(error)
    else:
        assert quantity_error(text) == ""


# -- custom resources ------------------------------------------------------------------------

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string"},
                "replicas": {"type": "integer"},
                "port": {"x-kubernetes-int-or-string": True},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}},
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _crontab_type(schema: dict[str, Any] | None = CRONTAB_SCHEMA) -> ResourceType:
    return ResourceType(
        group="stable.example.com",
        version="v1",
        kind="CronTab",
        plural="crontabs",
        singular="crontab",
        namespaced=True,
        schema=schema,
    )


def test_crd_schema_nodes() -> None:
    root = compile_crd_schema(CRONTAB_SCHEMA)
    assert not root.builtin
    assert set(root.properties) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert root.child("metadata") is definitions().node("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    spec = root.child("spec")
    assert spec.child("port").int_or_string
    assert spec.child("config").preserve_unknown_fields
    assert spec.child("template").embedded_resource
    assert set(spec.child("template").properties) == {"apiVersion", "kind", "metadata"}
    assert (spec.child("items").list_type, spec.child("items").list_map_keys) == ("map", ("name",))
    assert spec.child("env").kind == "map"


def test_crd_objects_are_pruned_by_the_structural_schema() -> None:
    root = compile_crd_schema(CRONTAB_SCHEMA)
    obj = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c", "bogus": 1},
        "spec": {
            "cronSpec": "* * * * *",
            "port": "http",
            "config": {"anything": {"goes": [1]}},
            "env": {"A": "1"},
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "x"},
                "spec": {"dropped": True},
            },
            "items": [{"name": "a", "extra": 1}],
            "unknown": 1,
        },
    }
    report = check_fields(obj, root, prune=True)
    assert report.unknown_fields == [
        "metadata.bogus",
        "spec.template.spec",
        "spec.items[0].extra",
        "spec.unknown",
    ]
    assert report.type_errors == []
    assert obj["spec"]["config"] == {"anything": {"goes": [1]}}
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}
    assert obj["spec"]["items"] == [{"name": "a"}]


def test_crd_type_errors_read_like_schema_validation() -> None:
    root = compile_crd_schema(CRONTAB_SCHEMA)
    report = check_fields(
        {"spec": {"replicas": "three", "port": True, "cronSpec": 5}, "status": {"ready": 2.0}}, root
    )
    assert [error.path for error in report.type_errors] == [
        "spec.replicas",
        "spec.port",
        "spec.cronSpec",
        "status.ready",
    ]
    first = report.type_errors[0]
    assert first.message() == (
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )
    field_error = first.field_error()
    assert (field_error.type, field_error.field) == ("FieldValueTypeInvalid", "spec.replicas")
    assert check_fields({"spec": {"replicas": 3.0, "port": 8080}}, root).ok  # integral numbers are integers


def test_schema_for_built_in_and_custom_kinds() -> None:
    deployment = ResourceType(
        group="apps",
        version="v1",
        kind="Deployment",
        plural="deployments",
        singular="deployment",
        namespaced=True,
        definition=DEPLOYMENT,
    )
    assert schema_for(deployment) is definitions().node(DEPLOYMENT)
    crontab = _crontab_type()
    node = schema_for(crontab)
    assert node is not None and not node.builtin
    assert schema_for(crontab) is node  # cached for the same schema
    changed = copy.deepcopy(CRONTAB_SCHEMA)
    changed["properties"]["spec"]["properties"]["suspend"] = {"type": "boolean"}
    updated = schema_for(_crontab_type(changed))
    assert updated is not node and updated.child("spec").child("suspend") is not None
    assert schema_for(_crontab_type(None)) is None
    missing = ResourceType(
        group="x",
        version="v1",
        kind="X",
        plural="xs",
        singular="x",
        namespaced=True,
        definition="io.k8s.nope.X",
    )
    assert schema_for(missing) is None
