"""OpenAPI v2 (Swagger 2.0) for ``/openapi/v2``, as JSON and as gnostic protobuf.

kubectl 1.27 and 1.28 need this document even though they read OpenAPI v3 too:
``kubectl create/apply/replace`` (factory Validator) and ``kubectl explain`` (Complete)
call ``f.OpenAPISchema()`` unconditionally, which GETs ``/openapi/v2`` with ``Accept:
application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and unmarshals the body as
the gnostic ``openapi_v2.Document`` message whatever the Content-Type says. kubectl then
builds its model with kube-openapi's pkg/util/proto, which fails the whole command on
any definition it cannot parse, so every definition here obeys its rules: each
``$ref`` is ``#/definitions/<name>`` of a definition the document holds and has no
``type`` or ``properties`` beside it; an array has exactly one ``items`` schema; a type
is one of string, number, integer, boolean, object or array. What kubectl reads from it:

* cli-runtime's QueryParamVerifier (the fallback of the v3 one) takes the first path
  whose PATCH operation's ``x-kubernetes-group-version-kind`` is the kind and looks for
  a query parameter named ``fieldValidation`` among that operation's ``parameters``.
* ``kubectl explain --output plaintext-openapiv2`` and the client-side validation find a
  kind by the ``x-kubernetes-group-version-kind`` list of a definition, then walk
  properties, ``$ref``, ``items`` and ``additionalProperties``.
* ``kubectl apply`` asks the PATCH operation's ``consumes`` whether to compute
  strategic merge patches from these schemas; like the v3 documents (which have no
  PATCH ``requestBody``) this one lists nothing, so kubectl uses its compiled-in types.

The document is derived from the v3 documents of :mod:`control.resources.openapi`, so the
two always describe the same operations and schemas: paths are merged, parameter schemas
flattened, request bodies become ``body`` parameters, response content becomes
``schema``, and component schemas become definitions the way kube-apiserver downgrades
schemas for v2 (apiextensions-apiserver ToStructuralOpenAPIV2: no ``oneOf``/``anyOf``/
``allOf``/``not``; ``nullable`` and ``x-kubernetes-preserve-unknown-fields`` drop what
kubectl cannot cope with). ``IntOrString`` and ``Quantity`` are strings, as upstream
publishes them.

The protobuf form is written by the small encoder at the end of this module, field by
field after gnostic-models' ``openapiv2/OpenAPIv2.proto``: vendor extensions are
``NamedAny`` whose ``Any.yaml`` holds the value as YAML text, as gnostic's compiler
stores them. Both forms are rendered once and cached until the registry changes.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from control.resources.openapi import INFO, OpenAPIV3, group_version_path
from control.resources.registry import Registry

JSON_MEDIA_TYPE = "application/json"
PROTOBUF_MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
SWAGGER_VERSION = "2.0"

# What kube-openapi's handler serves, in its order: the first one an Accept clause
# matches wins, so "*/*" gets JSON. kubectl asks for the older protobuf name.
_SERVED = (
    ("application", "json", JSON_MEDIA_TYPE),
    ("application", "com.github.proto-openapi.spec.v2@v1.0+protobuf", PROTOBUF_MEDIA_TYPE),
    ("application", "com.github.proto-openapi.spec.v2.v1.0+protobuf", PROTOBUF_MEDIA_TYPE),
)

_V3_REF_PREFIX = "#/components/schemas/"
_V2_REF_PREFIX = "#/definitions/"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Swagger 2.0 schema keywords copied as they are; the ones that hold schemas are
# converted, and everything else (oneOf, anyOf, not, nullable, ...) has no v2 form.
_SCHEMA_KEYWORDS = frozenset(
    {
        "format",
        "title",
        "description",
        "default",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "type",
        "readOnly",
        "example",
        "externalDocs",
    }
)
_OPERATION_KEYWORDS = ("tags", "summary", "description", "externalDocs", "operationId", "deprecated")
# Definitions the v3 documents describe with oneOf, published as strings by upstream's v2.
_STRING_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}


class EncodingError(ValueError):
    """The document holds something the gnostic OpenAPI v2 messages cannot carry."""


@dataclass(frozen=True, slots=True)
class Rendering:
    """The document in one media type, and its ETag (upper-case hex SHA-512, unquoted)."""

    media_type: str
    body: bytes
    etag: str


class OpenAPIV2:
    """Serves ``/openapi/v2`` for the kinds of a registry, from ``documents`` (the v3 ones).

    Construct it after ``documents``: both drop their caches on the registry's change
    notification, and ``documents`` must have dropped its own first. Safe to call from
    several threads.
    """

    def __init__(self, registry: Registry, *, documents: OpenAPIV3) -> None:
        self._registry = registry
        self._documents = documents
        self._lock = threading.Lock()
        self._generation = 0
        self._swagger: dict[str, Any] | None = None
        self._renderings: dict[str, Rendering] = {}
        registry.on_change(self.invalidate)

    def invalidate(self) -> None:
        """Forget the rendered document (the registry calls this when kinds change)."""
        with self._lock:
            self._generation += 1
            self._swagger = None
            self._renderings = {}

    def negotiate(self, accept: str) -> Rendering | None:
        """The rendering an ``Accept`` header asks for; None when it accepts neither form."""
        media_type = preferred_media_type(accept)
        return None if media_type is None else self.rendering(media_type)

    def rendering(self, media_type: str) -> Rendering:
        """The document as :data:`JSON_MEDIA_TYPE` or :data:`PROTOBUF_MEDIA_TYPE`."""
        cached = self._renderings.get(media_type)
        if cached is not None:
            return cached
        if media_type not in (JSON_MEDIA_TYPE, PROTOBUF_MEDIA_TYPE):
            raise ValueError(
                f"OpenAPI v2 is served as {JSON_MEDIA_TYPE} or {PROTOBUF_MEDIA_TYPE}, not {media_type}"
            )
        generation = self._generation
        document = self.document()
        if media_type == JSON_MEDIA_TYPE:
            body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        else:
            body = encode_document(document)
        rendering = Rendering(media_type=media_type, body=body, etag=hashlib.sha512(body).hexdigest().upper())
        with self._lock:
            if generation == self._generation:
                self._renderings = {**self._renderings, media_type: rendering}
        return rendering

    def document(self) -> dict[str, Any]:
        """The Swagger 2.0 document as JSON data. Shared and cached: do not modify it."""
        swagger = self._swagger
        if swagger is not None:
            return swagger
        generation = self._generation
        documents = []
        for group, version in self._registry.group_versions():
            rendered = self._documents.document(group_version_path(group, version))
            if rendered is not None:
                documents.append(orjson.loads(rendered.body))
        swagger = swagger_document(documents)
        with self._lock:
            if generation == self._generation:
                self._swagger = swagger
        return swagger


def preferred_media_type(accept: str) -> str | None:
    """The media type to answer an ``Accept`` header with, as kube-openapi negotiates:
    clauses by descending quality (specific before wildcards), the first served type a
    clause matches. An empty header accepts anything; None if nothing served matches."""
    clauses = []
    for position, entry in enumerate((accept or "*/*").split(",")):
        media, *parameters = (part.strip() for part in entry.split(";"))
        kind, _, subtype = media.lower().partition("/")
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind and subtype and quality > 0:
            clauses.append((-quality, kind == "*", subtype == "*", position, kind, subtype))
    for *_, kind, subtype in sorted(clauses):
        for served_kind, served_subtype, media_type in _SERVED:
            if kind in (served_kind, "*") and subtype in (served_subtype, "*"):
                return media_type
    return None


# -- OpenAPI v3 documents -> one Swagger 2.0 document -----------------------------------------


def swagger_document(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge OpenAPI 3.0 group-version documents into one Swagger 2.0 document."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for document in documents:
        for path, item in document.get("paths", {}).items():
            paths[path] = _path_item(item)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name not in definitions:
                definitions[name] = _definition(name, schema)
    return {"swagger": SWAGGER_VERSION, "info": dict(INFO), "paths": paths, "definitions": definitions}


def _path_item(item: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in item.items():
        if key in _METHODS:
            converted[key] = _operation(value)
        elif key == "parameters":
            converted[key] = [_parameter(parameter) for parameter in value]
        elif key.startswith("x-"):
            converted[key] = value
    return converted


def _operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    converted = {key: operation[key] for key in _OPERATION_KEYWORDS if key in operation}
    parameters = []
    body = operation.get("requestBody")
    if body is not None:
        converted["consumes"] = list(body.get("content", {}))
        parameters.append(_body_parameter(body))
    parameters.extend(_parameter(parameter) for parameter in operation.get("parameters", ()))
    if parameters:
        converted["parameters"] = parameters
    converted["responses"] = {code: _response(response) for code, response in operation["responses"].items()}
    converted.update((key, value) for key, value in operation.items() if key.startswith("x-"))
    return converted


def _body_parameter(body: Mapping[str, Any]) -> dict[str, Any]:
    parameter: dict[str, Any] = {"in": "body", "name": "body", "required": bool(body.get("required"))}
    if "description" in body:
        parameter["description"] = body["description"]
    schema = _content_schema(body)
    parameter["schema"] = {} if schema is None else _schema(schema)
    return parameter


def _parameter(parameter: Mapping[str, Any]) -> dict[str, Any]:
    """A v3 parameter with its ``schema`` flattened into it, as v2 non-body parameters are."""
    converted = {key: value for key, value in parameter.items() if key != "schema"}
    converted.update(parameter.get("schema", {}))
    return converted


def _response(response: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"description": response.get("description", "")}
    schema = _content_schema(response)
    if schema is not None:
        converted["schema"] = _schema(schema)
    return converted


def _content_schema(holder: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of ``application/json`` content, else of the first content listed."""
    content = holder.get("content", {})
    media = content.get(JSON_MEDIA_TYPE) or next(iter(content.values()), {})
    return media.get("schema")


def _definition(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    converted = _schema(schema)
    converted.update(_STRING_DEFINITIONS.get(name, {}))
    return converted


def _schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """One schema in v2 form, downgraded as kube-apiserver publishes CRD schemas to v2."""
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYWORDS or key.startswith("x-"):
            converted[key] = value
        elif key == "properties":
            converted[key] = {name: _schema(child) for name, child in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            converted[key] = _schema(value)
        elif key == "additionalProperties":
            converted[key] = value if isinstance(value, bool) else _schema(value)
    ref = _reference(node)
    if ref is not None:
        for key in ("type", "properties", "items", "additionalProperties"):
            converted.pop(key, None)  # kubectl's parser rejects these beside a $ref
        converted["$ref"] = ref
        return converted
    preserves_unknown = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if node.get("nullable"):
        for key in ("type", "items", "properties"):
            converted.pop(key, None)
    if preserves_unknown:
        converted.pop("items", None)
        converted.pop("properties", None)
    if converted.get("type") == "array" and "items" not in converted:
        converted.pop("type")
    if preserves_unknown and converted.get("type") == "object":
        converted.pop("type")
    _drop_nullable_required(node, converted)
    return converted


def _reference(node: Mapping[str, Any]) -> str | None:
    """The v2 ``$ref`` of a node that is one: a ``$ref``, or a one-element ``allOf`` of one."""
    ref = node.get("$ref")
    if ref is None:
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            ref = all_of[0].get("$ref")
    if not isinstance(ref, str):
        return None
    return _V2_REF_PREFIX + ref.removeprefix(_V3_REF_PREFIX)


def _drop_nullable_required(node: Mapping[str, Any], converted: dict[str, Any]) -> None:
    """A nullable property is not required in v2; a nullable map value makes nothing required."""
    required = converted.get("required")
    if not required:
        return
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping) and additional.get("nullable"):
        del converted["required"]
        return
    properties = node.get("properties", {})
    kept = [name for name in required if not properties.get(name, {}).get("nullable")]
    if len(kept) != len(required):
        if kept:
            converted["required"] = kept
        else:
            del converted["required"]


# -- protobuf encoding (gnostic-models openapiv2/OpenAPIv2.proto, package openapi.v2) --------

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
# Keywords of primitive (non-body) parameters and items, in the order of their fields:
# PrimitivesItems numbers them from 1, Path/HeaderParameterSubSchema from 5 and
# Query/FormDataParameterSubSchema from 6; vendor_extension follows multiple_of.
_PRIMITIVE_KEYWORDS = (
    "type",
    "format",
    "items",
    "collectionFormat",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
)
_DOUBLE_KEYWORDS = frozenset({"maximum", "minimum", "multipleOf"})
_INTEGER_KEYWORDS = frozenset({"maxLength", "minLength", "maxItems", "minItems"})
_BOOLEAN_KEYWORDS = frozenset({"exclusiveMaximum", "exclusiveMinimum", "uniqueItems"})
# NonBodyParameter's oneof: which sub-schema message, and where its keywords start.
_NON_BODY_PARAMETERS = {"header": (1, 5), "formData": (2, 6), "query": (3, 6), "path": (4, 5)}
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))


def encode_document(document: Mapping[str, Any]) -> bytes:
    """The ``openapi_v2.Document`` protobuf message of a Swagger 2.0 document (JSON data)."""
    return _Encoder().document(document)


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64  # two's complement, as protobuf writes negative int64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The key of length-delimited field N (the highest number used is 31).
_LENGTH_DELIMITED_KEYS = tuple(_varint(number << 3 | _LENGTH_DELIMITED) for number in range(32))


class _Fields:
    """One message's fields, written in the order the caller adds them (by field number).

    Scalars equal to proto3's defaults are left out, as Go's proto.Marshal does; message
    fields are written whenever given, even empty, because presence means something
    (kubectl tells an object with ``properties: {}`` from a map by it).
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    def message(self, number: int, payload: bytes) -> None:
        self.out += _LENGTH_DELIMITED_KEYS[number]
        self.out += _varint(len(payload))
        self.out += payload

    def string(self, number: int, value: str) -> None:
        if value:
            self.message(number, value.encode())

    def strings(self, number: int, values: Iterable[str]) -> None:
        for value in values:
            self.message(number, value.encode())

    def boolean(self, number: int, value: bool) -> None:
        if value:
            self.out += _varint(number << 3 | _VARINT)
            self.out += b"\x01"

    def integer(self, number: int, value: int) -> None:
        if value:
            self.out += _varint(number << 3 | _VARINT)
            self.out += _varint(int(value))

    def double(self, number: int, value: float) -> None:
        if value:
            self.out += _varint(number << 3 | _FIXED64)
            self.out += struct.pack("<d", float(value))

    def payload(self) -> bytes:
        return bytes(self.out)


class _Encoder:
    """Writes the gnostic messages; one per document. It memoises the encoding of YAML
    values and of parameters, which repeat on every operation."""

    def __init__(self) -> None:
        self._yaml: dict[bytes, bytes] = {}
        self._parameters: dict[bytes, bytes] = {}

    def document(self, document: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, document.get("swagger", ""))
        if "info" in document:
            fields.message(2, self._info(document["info"]))
        fields.string(3, document.get("host", ""))
        fields.string(4, document.get("basePath", ""))
        fields.strings(5, document.get("schemes", ()))
        fields.strings(6, document.get("consumes", ()))
        fields.strings(7, document.get("produces", ()))
        if "paths" in document:
            fields.message(8, self._paths(document["paths"]))
        if "definitions" in document:
            fields.message(9, self._named(document["definitions"], self._schema))
        self._extensions(fields, 16, document)
        return fields.payload()

    def _info(self, info: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, info.get("title", ""))
        fields.string(2, info.get("version", ""))
        fields.string(3, info.get("description", ""))
        fields.string(4, info.get("termsOfService", ""))
        self._extensions(fields, 7, info)
        return fields.payload()

    def _paths(self, paths: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        self._extensions(fields, 1, paths)
        fields.out += self._named(
            {path: item for path, item in paths.items() if not path.startswith("x-")},
            self._path_item,
            number=2,
        )
        return fields.payload()

    def _named(self, entries: Mapping[str, Any], encode: Callable[[Any], bytes], *, number: int = 1) -> bytes:
        """``repeated Named<T> <field> = number`` (name = 1, value = 2), sorted by name."""
        fields = _Fields()
        for name in sorted(entries):
            entry = _Fields()
            entry.string(1, name)
            entry.message(2, encode(entries[name]))
            fields.message(number, entry.payload())
        return fields.payload()

    def _path_item(self, item: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, item.get("$ref", ""))
        for number, method in enumerate(_METHODS, start=2):
            if method in item:
                fields.message(number, self._operation(item[method]))
        for parameter in item.get("parameters", ()):
            fields.message(9, self._parameters_item(parameter))
        self._extensions(fields, 10, item)
        return fields.payload()

    def _operation(self, operation: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.strings(1, operation.get("tags", ()))
        fields.string(2, operation.get("summary", ""))
        fields.string(3, operation.get("description", ""))
        if "externalDocs" in operation:
            fields.message(4, self._external_docs(operation["externalDocs"]))
        fields.string(5, operation.get("operationId", ""))
        fields.strings(6, operation.get("produces", ()))
        fields.strings(7, operation.get("consumes", ()))
        for parameter in operation.get("parameters", ()):
            fields.message(8, self._parameters_item(parameter))
        if "responses" in operation:
            fields.message(9, self._responses(operation["responses"]))
        fields.strings(10, operation.get("schemes", ()))
        fields.boolean(11, operation.get("deprecated", False))
        self._extensions(fields, 13, operation)
        return fields.payload()

    def _parameters_item(self, parameter: Mapping[str, Any]) -> bytes:
        """ParametersItem{parameter = 1: Parameter{body_parameter = 1 | non_body_parameter = 2}}."""
        key = orjson.dumps(parameter)
        encoded = self._parameters.get(key)
        if encoded is None:
            encoded = self._parameters[key] = self._encode_parameters_item(parameter)
        return encoded

    def _encode_parameters_item(self, parameter: Mapping[str, Any]) -> bytes:
        chosen = _Fields()
        if parameter.get("in") == "body":
            chosen.message(1, self._body_parameter(parameter))
        else:
            chosen.message(2, self._non_body_parameter(parameter))
        item = _Fields()
        item.message(1, chosen.payload())
        return item.payload()

    def _body_parameter(self, parameter: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, parameter.get("description", ""))
        fields.string(2, parameter.get("name", ""))
        fields.string(3, parameter.get("in", ""))
        fields.boolean(4, parameter.get("required", False))
        if "schema" in parameter:
            fields.message(5, self._schema(parameter["schema"]))
        self._extensions(fields, 6, parameter)
        return fields.payload()

    def _non_body_parameter(self, parameter: Mapping[str, Any]) -> bytes:
        location = parameter.get("in", "")
        try:
            choice, first = _NON_BODY_PARAMETERS[location]
        except KeyError:
            raise EncodingError(
                f"parameter {parameter.get('name', '')!r} is in {location!r}; "
                "OpenAPI v2 parameters are in body, header, formData, query or path"
            ) from None
        fields = _Fields()
        fields.boolean(1, parameter.get("required", False))
        fields.string(2, location)
        fields.string(3, parameter.get("description", ""))
        fields.string(4, parameter.get("name", ""))
        if first == 6:
            fields.boolean(5, parameter.get("allowEmptyValue", False))
        self._primitive(fields, parameter, first=first)
        chosen = _Fields()
        chosen.message(choice, fields.payload())
        return chosen.payload()

    def _primitive(self, fields: _Fields, node: Mapping[str, Any], *, first: int) -> None:
        """The keywords of :data:`_PRIMITIVE_KEYWORDS` from field ``first`` on, then extensions."""
        for number, keyword in enumerate(_PRIMITIVE_KEYWORDS, start=first):
            if keyword not in node:
                continue
            value = node[keyword]
            if keyword == "items":
                items = _Fields()
                self._primitive(items, value, first=1)
                fields.message(number, items.payload())
            elif keyword == "default":
                fields.message(number, self._any(value))
            elif keyword == "enum":
                for member in value:
                    fields.message(number, self._any(member))
            elif keyword in _DOUBLE_KEYWORDS:
                fields.double(number, value)
            elif keyword in _INTEGER_KEYWORDS:
                fields.integer(number, value)
            elif keyword in _BOOLEAN_KEYWORDS:
                fields.boolean(number, value)
            else:
                fields.string(number, value)
        self._extensions(fields, first + len(_PRIMITIVE_KEYWORDS), node)

    def _responses(self, responses: Mapping[str, Any]) -> bytes:
        """Responses{response_code = 1: NamedResponseValue{name, ResponseValue{response = 1}}}."""
        fields = _Fields()
        for code in sorted(code for code in responses if not code.startswith("x-")):
            value = _Fields()
            value.message(1, self._response(responses[code]))
            entry = _Fields()
            entry.string(1, code)
            entry.message(2, value.payload())
            fields.message(1, entry.payload())
        self._extensions(fields, 2, responses)
        return fields.payload()

    def _response(self, response: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, response.get("description", ""))
        if "schema" in response:
            item = _Fields()  # SchemaItem{schema = 1}
            item.message(1, self._schema(response["schema"]))
            fields.message(2, item.payload())
        self._extensions(fields, 5, response)
        return fields.payload()

    def _schema(self, schema: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, schema.get("$ref", ""))
        fields.string(2, schema.get("format", ""))
        fields.string(3, schema.get("title", ""))
        fields.string(4, schema.get("description", ""))
        if "default" in schema:
            fields.message(5, self._any(schema["default"]))
        fields.double(6, schema.get("multipleOf", 0))
        fields.double(7, schema.get("maximum", 0))
        fields.boolean(8, schema.get("exclusiveMaximum", False))
        fields.double(9, schema.get("minimum", 0))
        fields.boolean(10, schema.get("exclusiveMinimum", False))
        fields.integer(11, schema.get("maxLength", 0))
        fields.integer(12, schema.get("minLength", 0))
        fields.string(13, schema.get("pattern", ""))
        fields.integer(14, schema.get("maxItems", 0))
        fields.integer(15, schema.get("minItems", 0))
        fields.boolean(16, schema.get("uniqueItems", False))
        fields.integer(17, schema.get("maxProperties", 0))
        fields.integer(18, schema.get("minProperties", 0))
        fields.strings(19, schema.get("required", ()))
        for member in schema.get("enum", ()):
            fields.message(20, self._any(member))
        if "additionalProperties" in schema:
            fields.message(21, self._additional_properties(schema["additionalProperties"]))
        if "type" in schema:
            kind = schema["type"]
            type_item = _Fields()  # TypeItem{repeated string value = 1}
            type_item.strings(1, kind if isinstance(kind, list) else [kind])
            fields.message(22, type_item.payload())
        if "items" in schema:
            items = schema["items"]
            items_item = _Fields()  # ItemsItem{repeated Schema schema = 1}
            for item in items if isinstance(items, list) else [items]:
                items_item.message(1, self._schema(item))
            fields.message(23, items_item.payload())
        for part in schema.get("allOf", ()):
            fields.message(24, self._schema(part))
        if "properties" in schema:
            fields.message(25, self._named(schema["properties"], self._schema))  # Properties
        fields.string(26, schema.get("discriminator", ""))
        fields.boolean(27, schema.get("readOnly", False))
        if "externalDocs" in schema:
            fields.message(29, self._external_docs(schema["externalDocs"]))
        if "example" in schema:
            fields.message(30, self._any(schema["example"]))
        self._extensions(fields, 31, schema)
        return fields.payload()

    def _additional_properties(self, value: bool | Mapping[str, Any]) -> bytes:
        """AdditionalPropertiesItem{oneof: schema = 1 | boolean = 2}; a oneof member is
        written even when false."""
        fields = _Fields()
        if isinstance(value, bool):
            fields.out += _varint(2 << 3 | _VARINT)
            fields.out += b"\x01" if value else b"\x00"
        else:
            fields.message(1, self._schema(value))
        return fields.payload()

    def _external_docs(self, docs: Mapping[str, Any]) -> bytes:
        fields = _Fields()
        fields.string(1, docs.get("description", ""))
        fields.string(2, docs.get("url", ""))
        self._extensions(fields, 3, docs)
        return fields.payload()

    def _extensions(self, fields: _Fields, number: int, node: Mapping[str, Any]) -> None:
        """``repeated NamedAny vendor_extension = number``: every ``x-`` key, sorted."""
        for name in sorted(key for key in node if key.startswith("x-")):
            entry = _Fields()
            entry.string(1, name)
            entry.message(2, self._any(node[name]))
            fields.message(number, entry.payload())

    def _any(self, value: Any) -> bytes:
        """Any{yaml = 2}: the value as YAML text, as gnostic's compiler stores it."""
        key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        encoded = self._yaml.get(key)
        if encoded is None:
            text = yaml.dump(value, Dumper=_YAML_DUMPER, allow_unicode=True, width=1 << 30)
            fields = _Fields()
            fields.string(2, text)
            encoded = fields.payload()
            self._yaml[key] = encoded
        return encoded
