"""Tests for control.resources.openapi_v2: /openapi/v2 as Swagger 2.0 JSON and gnostic protobuf.

The protobuf is decoded by google.protobuf (the real protobuf runtime, not our encoder)
with message classes built here from a transcription of gnostic-models'
openapiv2/OpenAPIv2.proto (``GNOSTIC`` below: field types, names and numbers, oneofs).
Messages kubelab never writes are declared as ``bytes``: the same wire type, so a
stray write there would still be seen by the unknown-field and canonical-bytes checks.

What kubectl 1.27/1.28 do with the decoded document is ported below as small functions
over the decoded messages, so the tests check what kubectl will find:
``supports_query_param`` is cli-runtime pkg/resource/query_param_verifier.go
(supportsQueryParam + hasGVKExtension), ``model_errors`` lists what kube-openapi
pkg/util/proto/document.go (NewOpenAPIData/ParseSchema) would fail on, ``kind_models``
is kubectl pkg/util/openapi (the GVK extension of definitions), and ``explain`` follows
kubectl's v2 field lookup (Kind fields, Reference, Array and Map sub-types).
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import orjson
import pytest
import yaml
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from control.resources.builtin import builtin_registry
from control.resources.openapi import OpenAPIV3
from control.resources.openapi_v2 import (
    JSON_MEDIA_TYPE,
    PROTOBUF_MEDIA_TYPE,
    EncodingError,
    OpenAPIV2,
    encode_document,
    preferred_media_type,
    swagger_document,
)
from control.resources.registry import Registry, ResourceType

KUBECTL_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

_PRIMITIVE = (  # the keyword fields shared by primitive parameters and items, in order
    "string type",
    "string format",
    "PrimitivesItems items",
    "string collection_format",
    "Any default",
    "double maximum",
    "bool exclusive_maximum",
    "double minimum",
    "bool exclusive_minimum",
    "int64 max_length",
    "int64 min_length",
    "string pattern",
    "int64 max_items",
    "int64 min_items",
    "bool unique_items",
    "repeated Any enum",
    "double multiple_of",
    "repeated NamedAny vendor_extension",
)


def _numbered(specs: tuple[str, ...], first: int) -> tuple[str, ...]:
    return tuple(f"{spec} = {number}" for number, spec in enumerate(specs, start=first))


_HEAD = ("bool required = 1", "string in = 2", "string description = 3", "string name = 4")

GNOSTIC: dict[str, tuple[str, ...]] = {
    "AdditionalPropertiesItem": ("oneof Schema schema = 1", "oneof bool boolean = 2"),
    "Any": ("google.protobuf.Any value = 1", "string yaml = 2"),
    "BodyParameter": (
        "string description = 1",
        "string name = 2",
        "string in = 3",
        "bool required = 4",
        "Schema schema = 5",
        "repeated NamedAny vendor_extension = 6",
    ),
    "Definitions": ("repeated NamedSchema additional_properties = 1",),
    "Document": (
        "string swagger = 1",
        "Info info = 2",
        "string host = 3",
        "string base_path = 4",
        "repeated string schemes = 5",
        "repeated string consumes = 6",
        "repeated string produces = 7",
        "Paths paths = 8",
        "Definitions definitions = 9",
        "bytes parameters = 10",
        "bytes responses = 11",
        "repeated bytes security = 12",
        "bytes security_definitions = 13",
        "repeated bytes tags = 14",
        "ExternalDocs external_docs = 15",
        "repeated NamedAny vendor_extension = 16",
    ),
    "ExternalDocs": ("string description = 1", "string url = 2", "repeated NamedAny vendor_extension = 3"),
    "FormDataParameterSubSchema": (*_HEAD, "bool allow_empty_value = 5", *_numbered(_PRIMITIVE, 6)),
    "HeaderParameterSubSchema": (*_HEAD, *_numbered(_PRIMITIVE, 5)),
    "Info": (
        "string title = 1",
        "string version = 2",
        "string description = 3",
        "string terms_of_service = 4",
        "bytes contact = 5",
        "bytes license = 6",
        "repeated NamedAny vendor_extension = 7",
    ),
    "ItemsItem": ("repeated Schema schema = 1",),
    "JsonReference": ("string _ref = 1", "string description = 2"),
    "NamedAny": ("string name = 1", "Any value = 2"),
    "NamedPathItem": ("string name = 1", "PathItem value = 2"),
    "NamedResponseValue": ("string name = 1", "ResponseValue value = 2"),
    "NamedSchema": ("string name = 1", "Schema value = 2"),
    "NonBodyParameter": (
        "oneof HeaderParameterSubSchema header_parameter_sub_schema = 1",
        "oneof FormDataParameterSubSchema form_data_parameter_sub_schema = 2",
        "oneof QueryParameterSubSchema query_parameter_sub_schema = 3",
        "oneof PathParameterSubSchema path_parameter_sub_schema = 4",
    ),
    "Operation": (
        "repeated string tags = 1",
        "string summary = 2",
        "string description = 3",
        "ExternalDocs external_docs = 4",
        "string operation_id = 5",
        "repeated string produces = 6",
        "repeated string consumes = 7",
        "repeated ParametersItem parameters = 8",
        "Responses responses = 9",
        "repeated string schemes = 10",
        "bool deprecated = 11",
        "repeated bytes security = 12",
        "repeated NamedAny vendor_extension = 13",
    ),
    "Parameter": ("oneof BodyParameter body_parameter = 1", "oneof NonBodyParameter non_body_parameter = 2"),
    "ParametersItem": ("oneof Parameter parameter = 1", "oneof JsonReference json_reference = 2"),
    "PathItem": (
        "string _ref = 1",
        "Operation get = 2",
        "Operation put = 3",
        "Operation post = 4",
        "Operation delete = 5",
        "Operation options = 6",
        "Operation head = 7",
        "Operation patch = 8",
        "repeated ParametersItem parameters = 9",
        "repeated NamedAny vendor_extension = 10",
    ),
    "PathParameterSubSchema": (*_HEAD, *_numbered(_PRIMITIVE, 5)),
    "Paths": ("repeated NamedAny vendor_extension = 1", "repeated NamedPathItem path = 2"),
    "PrimitivesItems": _numbered(_PRIMITIVE, 1),
    "Properties": ("repeated NamedSchema additional_properties = 1",),
    "QueryParameterSubSchema": (*_HEAD, "bool allow_empty_value = 5", *_numbered(_PRIMITIVE, 6)),
    "Response": (
        "string description = 1",
        "SchemaItem schema = 2",
        "bytes headers = 3",
        "bytes examples = 4",
        "repeated NamedAny vendor_extension = 5",
    ),
    "ResponseValue": ("oneof Response response = 1", "oneof JsonReference json_reference = 2"),
    "Responses": ("repeated NamedResponseValue response_code = 1", "repeated NamedAny vendor_extension = 2"),
    "Schema": (
        "string _ref = 1",
        "string format = 2",
        "string title = 3",
        "string description = 4",
        "Any default = 5",
        "double multiple_of = 6",
        "double maximum = 7",
        "bool exclusive_maximum = 8",
        "double minimum = 9",
        "bool exclusive_minimum = 10",
        "int64 max_length = 11",
        "int64 min_length = 12",
        "string pattern = 13",
        "int64 max_items = 14",
        "int64 min_items = 15",
        "bool unique_items = 16",
        "int64 max_properties = 17",
        "int64 min_properties = 18",
        "repeated string required = 19",
        "repeated Any enum = 20",
        "AdditionalPropertiesItem additional_properties = 21",
        "TypeItem type = 22",
        "ItemsItem items = 23",
        "repeated Schema all_of = 24",
        "Properties properties = 25",
        "string discriminator = 26",
        "bool read_only = 27",
        "bytes xml = 28",
        "ExternalDocs external_docs = 29",
        "Any example = 30",
        "repeated NamedAny vendor_extension = 31",
    ),
    "SchemaItem": ("oneof Schema schema = 1", "oneof bytes file_schema = 2"),
    "TypeItem": ("repeated string value = 1",),
}

_FIELD = re.compile(r"(?:(repeated|oneof) )?([\w.]+) (\w+) = (\d+)")
_SCALARS = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def _gnostic_classes() -> dict[str, type[Message]]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="test_gnostic_openapiv2.proto",
        package="openapi.v2",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    for name, specs in GNOSTIC.items():
        message = proto.message_type.add(name=name)
        for spec in specs:
            match = _FIELD.fullmatch(spec)
            assert match is not None, spec
            label, type_name, field_name, number = match.groups()
            field = message.field.add(name=field_name, number=int(number))
            field.label = (
                descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                if label == "repeated"
                else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            )
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = "." + (type_name if "." in type_name else f"openapi.v2.{type_name}")
            if label == "oneof":
                if not message.oneof_decl:
                    message.oneof_decl.add(name="oneof")
                field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"openapi.v2.{name}"))
        for name in GNOSTIC
    }


CLASSES = _gnostic_classes()


def decode(body: bytes) -> Any:
    document = CLASSES["Document"]()
    document.ParseFromString(body)
    return document


# -- what kubectl does with the document, ported ------------------------------------------------


def has_gvk_extension(extensions: Any, gvk: dict[str, str]) -> bool:
    """hasGVKExtension: the first x-kubernetes-group-version-kind extension decides."""
    for extension in extensions:
        if not extension.value.yaml or extension.name != "x-kubernetes-group-version-kind":
            continue
        value = yaml.safe_load(extension.value.yaml)
        return all(value.get(key) == gvk[key] for key in ("group", "kind", "version"))
    return False


def supports_query_param(document: Any, gvk: dict[str, str], param: str) -> bool | None:
    """supportsQueryParam: the first path whose PATCH has the GVK decides; None: GVK not found."""
    for path in document.paths.path:
        patch = path.value.patch
        if not has_gvk_extension(patch.vendor_extension, gvk):
            continue
        return any(
            item.parameter.non_body_parameter.query_parameter_sub_schema.name == param
            for item in patch.parameters
        )
    return None


def model_errors(document: Any) -> list[str]:
    """What kube-openapi's NewOpenAPIData would fail on (it stops at the first)."""
    models = {named.name for named in document.definitions.additional_properties}
    errors: list[str] = []

    def parse(schema: Any, path: str) -> None:
        kinds = list(schema.type.value)
        if schema._ref:
            if schema.HasField("properties") and schema.properties.additional_properties:
                errors.append(f"{path}: unallowed embedded type definition")
            if kinds:
                errors.append(f"{path}: definition reference can't have a type")
            if not schema._ref.startswith("#/definitions/"):
                errors.append(f"{path}: unallowed reference to non-definition {schema._ref}")
            elif schema._ref.removeprefix("#/definitions/") not in models:
                errors.append(f"{path}: unknown model in reference {schema._ref}")
        elif len(kinds) > 1:
            errors.append(f"{path}: definitions with multiple types aren't supported")
        elif (not kinds or kinds[0] == "object") and schema.HasField("properties"):
            for named in schema.properties.additional_properties:
                parse(named.value, f"{path}.{named.name}")
        elif kinds == ["object"]:
            if schema.additional_properties.HasField("schema"):
                parse(schema.additional_properties.schema, path)
        elif kinds == ["array"]:
            if len(schema.items.schema) != 1:
                errors.append(f"{path}: array should have exactly one sub-item")
            else:
                parse(schema.items.schema[0], path)
        elif kinds and kinds[0] not in ("string", "number", "integer", "boolean"):
            errors.append(f"{path}: Unknown primitive type: {kinds[0]!r}")

    for named in document.definitions.additional_properties:
        parse(named.value, named.name)
    return errors


def _extensions(extensions: Any) -> dict[str, Any]:
    return {extension.name: yaml.safe_load(extension.value.yaml) for extension in extensions}


def kind_models(document: Any) -> dict[tuple[str, str, str], str]:
    """kubectl's resources map: (group, version, kind) -> definition name."""
    found = {}
    for named in document.definitions.additional_properties:
        for gvk in _extensions(named.value.vendor_extension).get("x-kubernetes-group-version-kind", []):
            found[(gvk["group"], gvk["version"], gvk["kind"])] = named.name
    return found


def explain(document: Any, *, gvk: tuple[str, str, str], field_path: str) -> Any:
    """The schema ``kubectl explain --output plaintext-openapiv2 <kind>.<field_path>`` prints."""
    models = {named.name: named.value for named in document.definitions.additional_properties}

    def resolve(schema: Any) -> Any:
        while True:
            if schema._ref:
                schema = models[schema._ref.removeprefix("#/definitions/")]
            elif schema.type.value == ["array"]:
                schema = schema.items.schema[0]
            elif not schema.HasField("properties") and schema.additional_properties.HasField("schema"):
                schema = schema.additional_properties.schema
            else:
                return schema

    schema = models[kind_models(document)[gvk]]
    for name in field_path.split("."):
        fields = {named.name: named.value for named in resolve(schema).properties.additional_properties}
        assert name in fields, f"{field_path}: no field {name}"
        schema = fields[name]
    return schema


def schema_json(schema: Any) -> dict[str, Any]:
    """A decoded Schema message back as Swagger 2.0 JSON data."""
    out: dict[str, Any] = {}
    if schema._ref:
        out["$ref"] = schema._ref
    for field, key in (
        ("format", "format"),
        ("title", "title"),
        ("description", "description"),
        ("pattern", "pattern"),
        ("multiple_of", "multipleOf"),
        ("maximum", "maximum"),
        ("minimum", "minimum"),
        ("exclusive_maximum", "exclusiveMaximum"),
        ("exclusive_minimum", "exclusiveMinimum"),
        ("max_length", "maxLength"),
        ("min_length", "minLength"),
        ("max_items", "maxItems"),
        ("min_items", "minItems"),
        ("unique_items", "uniqueItems"),
        ("max_properties", "maxProperties"),
        ("min_properties", "minProperties"),
        ("read_only", "readOnly"),
    ):
        value = getattr(schema, field)
        if value:
            out[key] = value
    if schema.HasField("default"):
        out["default"] = yaml.safe_load(schema.default.yaml)
    if schema.HasField("example"):
        out["example"] = yaml.safe_load(schema.example.yaml)
    if schema.required:
        out["required"] = list(schema.required)
    if schema.enum:
        out["enum"] = [yaml.safe_load(member.yaml) for member in schema.enum]
    if schema.HasField("additional_properties"):
        choice = schema.additional_properties.WhichOneof("oneof")
        out["additionalProperties"] = (
            schema.additional_properties.boolean
            if choice == "boolean"
            else schema_json(schema.additional_properties.schema)
        )
    if schema.HasField("type"):
        kinds = list(schema.type.value)
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    if schema.HasField("items"):
        items = [schema_json(item) for item in schema.items.schema]
        out["items"] = items[0] if len(items) == 1 else items
    if schema.all_of:
        out["allOf"] = [schema_json(part) for part in schema.all_of]
    if schema.HasField("properties"):
        out["properties"] = {
            named.name: schema_json(named.value) for named in schema.properties.additional_properties
        }
    if schema.HasField("external_docs"):
        out["externalDocs"] = {
            "description": schema.external_docs.description,
            "url": schema.external_docs.url,
        }
    out.update(_extensions(schema.vendor_extension))
    return out


def _unknown_fields(message: Message, path: str = "Document") -> list[str]:
    found = [f"{path}: field {field.field_number}" for field in UnknownFieldSet(message)]
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.message_type.full_name == "google.protobuf.Any":
            continue
        children = value if descriptor.is_repeated else [value]
        for child in children:
            found.extend(_unknown_fields(child, f"{path}.{descriptor.name}"))
    return found


# -- fixtures ----------------------------------------------------------------------------------

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "CronTab spec.",
            "required": ["cronSpec", "note"],
            "properties": {
                "cronSpec": {"type": "string", "description": "When to run."},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "note": {"type": "string", "nullable": True},
                "mode": {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "blob": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"kept": {"type": "string"}},
                },
                "anything": {"type": "array", "x-kubernetes-preserve-unknown-fields": True, "items": {}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "choice": {"type": "object", "oneOf": [{"required": ["a"]}], "not": {"required": ["b"]}},
            },
        }
    },
}


def _crontab(version: str = "v1", schema: dict[str, Any] | None = None) -> ResourceType:
    return ResourceType(
        group="stable.example.com",
        version=version,
        kind="CronTab",
        plural="crontabs",
        singular="crontab",
        namespaced=True,
        schema=schema or CRONTAB_SCHEMA,
    )


@pytest.fixture(scope="module")
def builtin() -> tuple[Registry, OpenAPIV2]:
    registry = builtin_registry()
    return registry, OpenAPIV2(registry, documents=OpenAPIV3(registry))


@pytest.fixture(scope="module")
def decoded(builtin: tuple[Registry, OpenAPIV2]) -> Any:
    return decode(builtin[1].rendering(PROTOBUF_MEDIA_TYPE).body)


@pytest.fixture
def custom() -> tuple[Registry, OpenAPIV2]:
    registry = Registry()
    for rt in builtin_registry():
        if rt.kind in ("Namespace", "Deployment"):
            registry.add(rt)
    registry.add(_crontab())
    return registry, OpenAPIV2(registry, documents=OpenAPIV3(registry))


# -- the wire format ------------------------------------------------------------------------------


def test_protobuf_decodes_as_a_gnostic_document_with_no_unknown_fields(decoded: Any) -> None:
    assert decoded.swagger == "2.0"
    assert decoded.info.title == "Kubernetes"
    assert decoded.info.version.startswith("v1.")
    assert len(decoded.paths.path) > 50
    assert len(decoded.definitions.additional_properties) > 100
    assert _unknown_fields(decoded) == []


def test_protobuf_is_what_protobuf_itself_would_write(
    builtin: tuple[Registry, OpenAPIV2], decoded: Any
) -> None:
    """Field order, omitted defaults, present-but-empty messages and varints all match the
    canonical encoding of the decoded message, byte for byte."""
    body = builtin[1].rendering(PROTOBUF_MEDIA_TYPE).body
    assert decoded.SerializeToString(deterministic=True) == body


def test_definitions_round_trip(builtin: tuple[Registry, OpenAPIV2], decoded: Any) -> None:
    definitions = builtin[1].document()["definitions"]
    names = [named.name for named in decoded.definitions.additional_properties]
    assert names == sorted(definitions)
    for named in decoded.definitions.additional_properties:
        assert schema_json(named.value) == definitions[named.name], named.name


def test_paths_round_trip(builtin: tuple[Registry, OpenAPIV2], decoded: Any) -> None:
    paths = builtin[1].document()["paths"]
    assert [named.name for named in decoded.paths.path] == sorted(paths)
    for named in decoded.paths.path:
        item = paths[named.name]
        for method in ("get", "put", "post", "delete", "patch"):
            assert named.value.HasField(method) == (method in item), (named.name, method)
            if method not in item:
                continue
            operation, expected = getattr(named.value, method), item[method]
            assert operation.operation_id == expected["operationId"]
            assert operation.description == expected["description"]
            assert list(operation.tags) == expected["tags"]
            assert list(operation.consumes) == expected.get("consumes", [])
            assert _extensions(operation.vendor_extension) == {
                key: value for key, value in expected.items() if key.startswith("x-")
            }
            assert [_parameter_json(parameter) for parameter in operation.parameters] == expected.get(
                "parameters", []
            )
            responses = {
                code.name: _response_json(code.value.response) for code in operation.responses.response_code
            }
            assert responses == expected["responses"]
        assert [_parameter_json(parameter) for parameter in named.value.parameters] == item.get(
            "parameters", []
        )


def _parameter_json(item: Any) -> dict[str, Any]:
    parameter = item.parameter
    if parameter.WhichOneof("oneof") == "body_parameter":
        body = parameter.body_parameter
        return {
            "in": body.__getattribute__("in"),
            "name": body.name,
            "required": body.required,
            "schema": schema_json(body.schema),
        }
    non_body = parameter.non_body_parameter
    sub = getattr(non_body, non_body.WhichOneof("oneof"))
    out: dict[str, Any] = {"description": sub.description, "in": sub.__getattribute__("in"), "name": sub.name}
    if sub.required:
        out["required"] = True
    out["type"] = sub.type
    if sub.unique_items:
        out["uniqueItems"] = True
    return out


def _response_json(response: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"description": response.description}
    if response.HasField("schema"):
        out["schema"] = schema_json(response.schema.schema)
    return out


def test_vendor_extensions_hold_yaml(decoded: Any) -> None:
    deployment = next(
        named.value
        for named in decoded.definitions.additional_properties
        if named.name == "io.k8s.api.apps.v1.Deployment"
    )
    (extension,) = deployment.vendor_extension
    assert extension.name == "x-kubernetes-group-version-kind"
    assert extension.value.yaml == "- group: apps\n  kind: Deployment\n  version: v1\n"
    assert not extension.value.HasField("value")


# -- what kubectl finds ---------------------------------------------------------------------------


def test_patch_of_deployments_carries_field_validation_and_the_gvk(decoded: Any) -> None:
    item = next(
        named.value
        for named in decoded.paths.path
        if named.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    )
    patch = item.patch
    assert _extensions(patch.vendor_extension) == {
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": "apps", "kind": "Deployment", "version": "v1"},
    }
    queries = [
        parameter.parameter.non_body_parameter.query_parameter_sub_schema
        for parameter in patch.parameters
        if parameter.parameter.non_body_parameter.WhichOneof("oneof") == "query_parameter_sub_schema"
    ]
    assert [query.name for query in queries] == ["dryRun", "fieldManager", "fieldValidation", "force"]
    field_validation = queries[2]
    assert field_validation.__getattribute__("in") == "query"
    assert field_validation.type == "string"
    assert "Strict" in field_validation.description
    assert list(patch.consumes) == []  # kubectl computes apply patches from its own types
    gvk = {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert supports_query_param(decoded, gvk, "fieldValidation") is True
    assert supports_query_param(decoded, gvk, "noSuchParameter") is False
    assert supports_query_param(decoded, {**gvk, "kind": "Nope"}, "fieldValidation") is None


def test_every_patchable_kind_supports_field_validation(
    builtin: tuple[Registry, OpenAPIV2], decoded: Any
) -> None:
    registry = builtin[0]
    for rt in registry:
        if "patch" in rt.verbs and not rt.virtual:
            gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
            assert supports_query_param(decoded, gvk, "fieldValidation") is True, rt.kind


def test_kubectl_parses_every_definition(decoded: Any) -> None:
    assert model_errors(decoded) == []


def test_every_kind_has_its_model(builtin: tuple[Registry, OpenAPIV2], decoded: Any) -> None:
    models = kind_models(decoded)
    for rt in builtin[0]:
        if rt.definition:
            assert models[(rt.group, rt.version, rt.kind)] == rt.definition


@pytest.mark.parametrize(
    ("gvk", "field_path", "kind", "fmt", "description"),
    [
        (("apps", "v1", "Deployment"), "spec.replicas", ["integer"], "int32", "Number of desired pods"),
        (
            ("apps", "v1", "Deployment"),
            "spec.template.spec.containers.image",
            ["string"],
            "",
            "Container image",
        ),
        (("", "v1", "Pod"), "spec.containers.ports.containerPort", ["integer"], "int32", "Number of port"),
        (
            ("", "v1", "ReplicationController"),
            "spec.selector",
            ["object"],
            "",
            "label query over pods that should match the Replicas count",
        ),
        (
            ("", "v1", "ReplicationController"),
            "spec.template.spec.containers.image",
            ["string"],
            "",
            "Container image",
        ),
    ],
)
def test_explain_finds_fields(
    decoded: Any, gvk: tuple[str, str, str], field_path: str, kind: list[str], fmt: str, description: str
) -> None:
    schema = explain(decoded, gvk=gvk, field_path=field_path)
    assert list(schema.type.value) == kind
    assert schema.format == fmt
    assert description in schema.description


def test_explain_sees_patch_metadata_and_string_aliases(decoded: Any) -> None:
    containers = explain(decoded, gvk=("", "v1", "Pod"), field_path="spec.containers")
    assert _extensions(containers.vendor_extension) == {
        "x-kubernetes-list-map-keys": ["name"],
        "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": "name",
        "x-kubernetes-patch-strategy": "merge",
    }
    models = {named.name: named.value for named in decoded.definitions.additional_properties}
    int_or_string = models["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (list(int_or_string.type.value), int_or_string.format) == (["string"], "int-or-string")
    assert list(models["io.k8s.apimachinery.pkg.api.resource.Quantity"].type.value) == ["string"]
    limits = explain(decoded, gvk=("", "v1", "Pod"), field_path="spec.containers.resources.limits")
    assert (
        limits.additional_properties.schema._ref
        == "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"
    )


def test_kinds_drop_the_pinned_api_version_and_kind(decoded: Any) -> None:
    api_version = explain(decoded, gvk=("apps", "v1", "Deployment"), field_path="apiVersion")
    assert list(api_version.enum) == []
    assert list(api_version.type.value) == ["string"]


# -- custom resources: downgraded as kube-apiserver publishes them to v2 -----------------------------


def test_custom_kinds_are_downgraded_for_kubectl(custom: tuple[Registry, OpenAPIV2]) -> None:
    definitions = custom[1].document()["definitions"]
    crontab = definitions["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert crontab["properties"]["metadata"] == {
        "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "description": crontab["properties"]["metadata"]["description"],
    }
    spec = crontab["properties"]["spec"]
    fields = spec["properties"]
    assert spec["required"] == ["cronSpec"]  # a nullable field is not required in v2
    assert fields["note"] == {}  # nullable: untyped
    assert fields["port"] == {"x-kubernetes-int-or-string": True}  # anyOf dropped
    assert fields["blob"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert fields["anything"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert fields["choice"] == {"type": "object"}  # oneOf and not dropped
    assert fields["replicas"] == {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}
    assert fields["mode"] == {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$"}
    assert fields["tags"] == {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
    assert fields["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert definitions["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"] == {
        "$ref": "#/definitions/com.example.stable.v1.CronTab"
    }


def test_custom_kinds_decode_for_kubectl(custom: tuple[Registry, OpenAPIV2]) -> None:
    document = custom[1].document()
    decoded = decode(custom[1].rendering(PROTOBUF_MEDIA_TYPE).body)
    assert model_errors(decoded) == []
    gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    assert supports_query_param(decoded, gvk, "fieldValidation") is True
    replicas = explain(decoded, gvk=("stable.example.com", "v1", "CronTab"), field_path="spec.replicas")
    assert (replicas.minimum, replicas.maximum, yaml.safe_load(replicas.default.yaml)) == (1.0, 10.0, 1)
    mode = explain(decoded, gvk=("stable.example.com", "v1", "CronTab"), field_path="spec.mode")
    assert [yaml.safe_load(member.yaml) for member in mode.enum] == ["a", "b"]
    for named in decoded.definitions.additional_properties:
        assert schema_json(named.value) == document["definitions"][named.name], named.name


def test_a_reference_never_keeps_a_type_or_properties() -> None:
    v3 = {
        "components": {
            "schemas": {
                "A": {
                    "type": "object",
                    "properties": {"b": {"$ref": "#/components/schemas/B", "type": "object"}},
                },
                "B": {
                    "type": "object",
                    "allOf": [{"$ref": "#/components/schemas/A"}],
                    "properties": {"x": {}},
                },
            }
        }
    }
    definitions = swagger_document([v3])["definitions"]
    assert definitions["A"]["properties"]["b"] == {"$ref": "#/definitions/B"}
    assert definitions["B"] == {"$ref": "#/definitions/A"}


# -- conversion of the v3 constructs ------------------------------------------------------------------


def test_request_bodies_become_body_parameters_and_content_a_schema() -> None:
    schema = {"$ref": "#/components/schemas/Thing"}
    v3 = {
        "paths": {
            "/things": {
                "post": {
                    "operationId": "createThing",
                    "parameters": [
                        {"name": "dryRun", "in": "query", "description": "d", "schema": {"type": "string"}}
                    ],
                    "requestBody": {"content": {"*/*": {"schema": schema}}, "required": True},
                    "responses": {
                        "201": {
                            "description": "Created",
                            "content": {"application/json": {"schema": schema}},
                        },
                        "401": {"description": "Unauthorized"},
                    },
                    "x-kubernetes-action": "post",
                },
                "parameters": [
                    {"name": "pretty", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                ],
                "summary": "v3 only",
            }
        },
        "components": {"schemas": {"Thing": {"type": "object", "properties": {}}}},
    }
    document = swagger_document([v3])
    post = document["paths"]["/things"]["post"]
    assert post["consumes"] == ["*/*"]
    assert post["parameters"] == [
        {"in": "body", "name": "body", "required": True, "schema": {"$ref": "#/definitions/Thing"}},
        {"name": "dryRun", "in": "query", "description": "d", "type": "string"},
    ]
    assert post["responses"] == {
        "201": {"description": "Created", "schema": {"$ref": "#/definitions/Thing"}},
        "401": {"description": "Unauthorized"},
    }
    assert post["x-kubernetes-action"] == "post"
    assert document["paths"]["/things"]["parameters"] == [
        {"name": "pretty", "in": "query", "type": "string", "uniqueItems": True}
    ]
    assert "summary" not in document["paths"]["/things"]
    decoded = decode(encode_document(document))
    thing = decoded.definitions.additional_properties[0]
    assert thing.value.HasField("properties")  # an object with no fields, not a map
    assert len(thing.value.properties.additional_properties) == 0


def test_group_versions_merge_and_share_definitions(builtin: tuple[Registry, OpenAPIV2]) -> None:
    document = builtin[1].document()
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in document["paths"]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale" in document["paths"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in document["definitions"]
    for definition in document["definitions"].values():
        references: set[str] = set()
        _collect_refs(definition, references)
        for reference in references:
            assert reference.removeprefix("#/definitions/") in document["definitions"], reference


def _collect_refs(schema: dict[str, Any], found: set[str]) -> None:
    """The references of a schema and of the schemas inside it (a property may be named "$ref")."""
    if "$ref" in schema:
        found.add(schema["$ref"])
    children = list(schema.get("properties", {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        _collect_refs(child, found)


# -- the encoder on its own ---------------------------------------------------------------------------


def test_encoder_writes_every_kind_of_field() -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "T", "version": "v1", "x-info": "i"},
        "x-top": {"a": [1, 2]},
        "paths": {
            "x-paths": True,
            "/p": {
                "get": {
                    "operationId": "op",
                    "deprecated": True,
                    "schemes": ["https"],
                    "produces": ["application/json"],
                    "parameters": [
                        {
                            "name": "h",
                            "in": "header",
                            "type": "array",
                            "items": {"type": "integer", "format": "int64", "maximum": 5},
                            "collectionFormat": "csv",
                        },
                        {
                            "name": "f",
                            "in": "formData",
                            "type": "string",
                            "allowEmptyValue": True,
                            "enum": ["x"],
                        },
                        {"name": "q", "in": "query", "type": "integer", "minimum": -2.5, "default": 3},
                        {"name": "id", "in": "path", "type": "string", "required": True, "maxLength": 9},
                    ],
                    "responses": {"200": {"description": "OK", "x-r": 1}},
                },
            },
        },
        "definitions": {
            "S": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": -1,
                "example": {"k": "v"},
                "externalDocs": {"description": "docs", "url": "https://example.com"},
                "allOf": [{"type": "object"}],
                "x-kubernetes-validations": [{"rule": "self.size() > 0", "message": "naïve\u2028text"}],
            },
            "Empty": {},
        },
    }
    body = encode_document(document)
    decoded = decode(body)
    assert _unknown_fields(decoded) == []
    assert decoded.SerializeToString(deterministic=True) == body
    assert _extensions(decoded.vendor_extension) == {"x-top": {"a": [1, 2]}}
    assert _extensions(decoded.info.vendor_extension) == {"x-info": "i"}
    assert _extensions(decoded.paths.vendor_extension) == {"x-paths": True}
    (path,) = decoded.paths.path
    get = path.value.get
    assert (get.operation_id, get.deprecated, list(get.schemes)) == ("op", True, ["https"])
    header, form, query, path_parameter = (
        getattr(item.parameter.non_body_parameter, item.parameter.non_body_parameter.WhichOneof("oneof"))
        for item in get.parameters
    )
    assert header.DESCRIPTOR.name == "HeaderParameterSubSchema"
    assert (header.items.type, header.items.format, header.items.maximum) == ("integer", "int64", 5.0)
    assert header.collection_format == "csv"
    assert form.DESCRIPTOR.name == "FormDataParameterSubSchema"
    assert form.allow_empty_value and [yaml.safe_load(member.yaml) for member in form.enum] == ["x"]
    assert query.DESCRIPTOR.name == "QueryParameterSubSchema"
    assert (query.minimum, yaml.safe_load(query.default.yaml)) == (-2.5, 3)
    assert path_parameter.DESCRIPTOR.name == "PathParameterSubSchema"
    assert (path_parameter.required, path_parameter.max_length) == (True, 9)
    (response,) = get.responses.response_code
    assert _extensions(response.value.response.vendor_extension) == {"x-r": 1}
    definitions = {named.name: named.value for named in decoded.definitions.additional_properties}
    assert definitions["S"].additional_properties.WhichOneof("oneof") == "boolean"
    assert schema_json(definitions["S"]) == document["definitions"]["S"]
    assert definitions["S"].min_properties == -1
    assert schema_json(definitions["Empty"]) == {}


def test_encoder_rejects_what_v2_cannot_carry() -> None:
    document = {
        "swagger": "2.0",
        "paths": {"/p": {"get": {"parameters": [{"name": "c", "in": "cookie"}], "responses": {}}}},
    }
    with pytest.raises(EncodingError, match="'c' is in 'cookie'"):
        encode_document(document)


# -- renderings, caching, negotiation -------------------------------------------------------------------


def test_json_rendering_is_the_document(builtin: tuple[Registry, OpenAPIV2]) -> None:
    rendering = builtin[1].rendering(JSON_MEDIA_TYPE)
    assert rendering.media_type == JSON_MEDIA_TYPE
    assert orjson.loads(rendering.body) == builtin[1].document()
    assert rendering.etag == hashlib.sha512(rendering.body).hexdigest().upper()
    protobuf = builtin[1].rendering(PROTOBUF_MEDIA_TYPE)
    assert protobuf.media_type == PROTOBUF_MEDIA_TYPE
    assert protobuf.etag == hashlib.sha512(protobuf.body).hexdigest().upper()


def test_renderings_are_cached_until_the_registry_changes(custom: tuple[Registry, OpenAPIV2]) -> None:
    registry, v2 = custom
    first = v2.rendering(PROTOBUF_MEDIA_TYPE)
    assert v2.rendering(PROTOBUF_MEDIA_TYPE) is first
    assert v2.document() is v2.document()
    registry.add(_crontab("v2"))
    second = v2.rendering(PROTOBUF_MEDIA_TYPE)
    assert second.body != first.body and second.etag != first.etag
    assert "com.example.stable.v2.CronTab" in v2.document()["definitions"]
    assert "/apis/stable.example.com/v2/namespaces/{namespace}/crontabs/{name}" in v2.document()["paths"]
    registry.remove(group="stable.example.com", version="v2", plural="crontabs")
    assert "com.example.stable.v2.CronTab" not in v2.document()["definitions"]
    assert v2.rendering(PROTOBUF_MEDIA_TYPE).body == first.body


def test_a_changed_custom_schema_is_republished(custom: tuple[Registry, OpenAPIV2]) -> None:
    registry, v2 = custom
    before = v2.document()
    schema = copy.deepcopy(CRONTAB_SCHEMA)
    schema["properties"]["spec"]["properties"]["extra"] = {"type": "boolean"}
    registry.add(_crontab(schema=schema))
    after = v2.document()["definitions"]["com.example.stable.v1.CronTab"]
    assert after["properties"]["spec"]["properties"]["extra"] == {"type": "boolean"}
    assert (
        "extra"
        not in before["definitions"]["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, PROTOBUF_MEDIA_TYPE),
        ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", PROTOBUF_MEDIA_TYPE),
        ("application/json", JSON_MEDIA_TYPE),
        ("application/json;charset=utf-8", JSON_MEDIA_TYPE),
        ("", JSON_MEDIA_TYPE),
        ("*/*", JSON_MEDIA_TYPE),
        ("application/*", JSON_MEDIA_TYPE),
        ("text/html, */*;q=0.1", JSON_MEDIA_TYPE),
        (f"application/json;q=0.5, {KUBECTL_ACCEPT}", PROTOBUF_MEDIA_TYPE),
        (f"*/*, {KUBECTL_ACCEPT}", PROTOBUF_MEDIA_TYPE),  # specific before wildcards
        (f"{KUBECTL_ACCEPT};q=0, application/json", JSON_MEDIA_TYPE),
        ("application/json;q=nonsense, application/yaml", None),
        ("text/html", None),
        ("application/yaml", None),
        ("garbage", None),
    ],
)
def test_negotiation(accept: str, expected: str | None) -> None:
    assert preferred_media_type(accept) == expected


def test_negotiate_answers_with_the_rendering(builtin: tuple[Registry, OpenAPIV2]) -> None:
    v2 = builtin[1]
    assert v2.negotiate(KUBECTL_ACCEPT) is v2.rendering(PROTOBUF_MEDIA_TYPE)
    assert v2.negotiate("application/json") is v2.rendering(JSON_MEDIA_TYPE)
    assert v2.negotiate("text/html") is None
    with pytest.raises(ValueError, match="application/yaml"):
        v2.rendering("application/yaml")
