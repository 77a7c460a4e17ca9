"""Schemas of kinds, compiled for the write path: decoding checks and patch metadata.

Built-in kinds are described by upstream Kubernetes 1.33's OpenAPI definitions, vendored
as ``schemas/kubernetes-v1.33-definitions.json.gz`` (see ``schemas/README.md``); custom
resources by their CRD's ``openAPIV3Schema``. Both compile to the same navigable
:class:`SchemaNode` tree, which answers two questions on every write:

* What would kube-apiserver's JSON decoding say about this object? Go decodes a request
  body into typed structs: a field the struct lacks is an *unknown field* (an error with
  ``fieldValidation=Strict``, a warning with ``Warn``, silently dropped otherwise), and a
  value of the wrong JSON type is a *decoding error* (400 whatever ``fieldValidation``
  says). :func:`check_fields` walks an object once and reports both, optionally pruning
  unknown fields in place. For custom resources kube-apiserver decodes into unstructured
  maps and prunes by the structural schema, so there type errors come from schema
  validation instead (422); :class:`TypeMismatch` can render either form.
* How does a strategic merge patch treat this field? ``x-kubernetes-patch-strategy`` and
  ``x-kubernetes-patch-merge-key`` sit on the *field*, not on the referenced type, so a
  property that is a ``$ref`` with patch metadata compiles to its own node sharing the
  referenced definition's structure (see :meth:`SchemaNode.child`).

Definitions compile lazily, one definition (and what it references) on first use, and
are cached for the life of the process: the hot path never resolves a ``$ref``.
"""

from __future__ import annotations

import binascii
import gzip
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from control.resources.registry import FieldError, ResourceType

VENDORED_DEFINITIONS = Path(__file__).with_name("schemas") / "kubernetes-v1.33-definitions.json.gz"

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Node kinds. Plain ints: the checker compares them on every field.
ANY = 0  # RawExtension, apiextensions JSON, FieldsV1, x-kubernetes-preserve-unknown-fields without type
OBJECT = 1  # a struct: known properties, everything else unknown
MAP = 2  # additionalProperties: map[string]T
ARRAY = 3
STRING = 4
INTEGER = 5
NUMBER = 6
BOOLEAN = 7
INT_OR_STRING = 8
QUANTITY = 9
TIME = 10  # metav1.Time / MicroTime: an RFC 3339 string
BYTES = 11  # []byte: a base64 string

_KIND_NAMES = {
    ANY: "any",
    OBJECT: "object",
    MAP: "map",
    ARRAY: "array",
    STRING: "string",
    INTEGER: "integer",
    NUMBER: "number",
    BOOLEAN: "boolean",
    INT_OR_STRING: "int-or-string",
    QUANTITY: "quantity",
    TIME: "time",
    BYTES: "bytes",
}

# Definitions whose Go types implement UnmarshalJSON and take any JSON value.
_RAW_DEFINITIONS = frozenset(
    {
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    }
)
_SPECIAL_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": QUANTITY,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": TIME,
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": TIME,
}
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_REF_PREFIXES = ("#/$defs/", "#/components/schemas/", "#/definitions/", "/api/_definitions.json#/$defs/")


class UnknownDefinitionError(KeyError):
    """A definition name (or a ``$ref``) that the definitions do not hold."""


class SchemaNode:
    """One schema position: a definition, a property, a list element or a map value.

    Nodes are immutable once compiled and shared between every object checked against
    them; never modify one. ``properties`` of an object node includes every field the
    Go struct (or the CRD schema) declares.
    """

    __slots__ = (
        "_kind",
        "additional_properties",
        "builtin",
        "definition",
        "embedded_resource",
        "format",
        "go_type",
        "int_range",
        "items",
        "list_map_keys",
        "list_type",
        "patch_merge_key",
        "patch_strategies",
        "preserve_unknown_fields",
        "properties",
        "struct_name",
    )

    def __init__(self, *, builtin: bool, definition: str = "") -> None:
        self._kind = ANY
        self.builtin = builtin  # from the built-in definitions: strategic merge patch applies
        self.definition = definition  # the definition this node is (or aliases), if any
        self.properties: dict[str, SchemaNode] = {}
        self.items: SchemaNode | None = None
        self.additional_properties: SchemaNode | None = None
        self.patch_strategies: tuple[str, ...] = ()
        self.patch_merge_key = ""
        self.list_type = ""
        self.list_map_keys: tuple[str, ...] = ()
        self.preserve_unknown_fields = False
        self.embedded_resource = False
        self.format = ""
        self.int_range = _INT64  # bounds of integer (and int-or-string) values
        self.go_type = ""  # Go's name for the type, for decoding error messages: "[]v1.Container"
        self.struct_name = ""  # for object nodes of built-ins: "PodSpec"

    @property
    def kind(self) -> str:
        """``object``, ``map``, ``array``, ``string``, ``integer``, ``number``, ``boolean``,
        ``int-or-string``, ``quantity``, ``time``, ``bytes`` or ``any``."""
        return _KIND_NAMES[self._kind]

    @property
    def int_or_string(self) -> bool:
        return self._kind == INT_OR_STRING

    def child(self, name: str) -> SchemaNode | None:
        """The schema of field ``name``: a declared property, or a map's value schema."""
        node = self.properties.get(name)
        if node is None and self._kind == MAP:
            return self.additional_properties
        return node

    def __repr__(self) -> str:
        label = self.definition or self.go_type or self.kind
        return f"<SchemaNode {self.kind} {label}>"


def _copy_structure(target: SchemaNode, source: SchemaNode) -> None:
    target._kind = source._kind
    target.definition = source.definition
    target.properties = source.properties
    target.items = source.items
    target.additional_properties = source.additional_properties
    target.preserve_unknown_fields = source.preserve_unknown_fields
    target.embedded_resource = source.embedded_resource
    target.format = source.format
    target.int_range = source.int_range
    target.go_type = source.go_type
    target.struct_name = source.struct_name
    if not target.list_type:
        target.list_type = source.list_type
        target.list_map_keys = source.list_map_keys


def _ref_name(ref: str) -> str:
    for prefix in _REF_PREFIXES:
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    raise UnknownDefinitionError(ref)


def _schema_type(raw: Mapping[str, Any]) -> str:
    kind = raw.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "")
    return kind or ""


def _go_type_of_definition(name: str) -> str:
    parts = name.rsplit(".", 2)
    return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 2 else name


def _go_scalar_type(kind: int, fmt: str) -> str:
    if kind == STRING:
        return "string"
    if kind == INTEGER:
        return fmt if fmt in ("int32", "int64") else "int64"
    if kind == NUMBER:
        return "float64"
    if kind == BOOLEAN:
        return "bool"
    if kind == BYTES:
        return "[]uint8"
    return "interface {}"


class Definitions:
    """A set of named schema definitions (upstream's ``$defs``), compiled on demand.

    ``Definitions(raw)`` takes the definitions dict itself; :func:`definitions` returns the
    process-wide instance loaded from the vendored file. Safe to use from several threads.
    """

    def __init__(self, raw: Mapping[str, Mapping[str, Any]], *, builtin: bool = True) -> None:
        self._raw = raw
        self._builtin = builtin
        # Finished nodes, replaced (never mutated) under the lock: readers need no lock.
        self._published: dict[str, SchemaNode] = {}
        # Nodes being compiled; only touched under the lock.
        self._nodes: dict[str, SchemaNode] = {}
        self._pending_aliases: list[tuple[SchemaNode, str]] = []
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path = VENDORED_DEFINITIONS) -> Definitions:
        """Load a ``{"$defs": {...}}`` document, gzipped or not."""
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        document = orjson.loads(data)
        return cls(document["$defs"])

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def names(self) -> Iterator[str]:
        return iter(self._raw)

    def raw(self, name: str) -> Mapping[str, Any]:
        """The definition as vendored (JSON Schema style). Do not modify it."""
        try:
            return self._raw[name]
        except KeyError:
            raise UnknownDefinitionError(name) from None

    def node(self, name: str) -> SchemaNode:
        """The compiled schema of definition ``name`` (``io.k8s.api.apps.v1.Deployment``)."""
        node = self._published.get(name)
        if node is not None:
            return node
        with self._lock:
            try:
                node = self._compile_definition(name)
                # Aliases copy the structure of definitions that may still have been
                # placeholders when the alias was made; every one is complete now.
                for alias, target in self._pending_aliases:
                    _copy_structure(alias, self._nodes[target])
            except BaseException:
                self._nodes = dict(self._published)
                raise
            finally:
                self._pending_aliases = []
            self._published = dict(self._nodes)
        return node

    def _compile_definition(self, name: str) -> SchemaNode:
        node = self._nodes.get(name)
        if node is not None:
            return node
        raw = self.raw(name)
        node = SchemaNode(builtin=self._builtin, definition=name)
        node.go_type = _go_type_of_definition(name)  # known before the node is filled
        self._nodes[name] = node  # a placeholder first: definitions are recursive
        self._fill(node, raw, name=name)
        return node

    def _fill(self, node: SchemaNode, raw: Mapping[str, Any], *, name: str = "") -> None:
        if name in _RAW_DEFINITIONS:
            node._kind = ANY
            node.go_type = _go_type_of_definition(name)
            return
        special = _SPECIAL_DEFINITIONS.get(name)
        if special is not None:
            node._kind = special
            node.go_type = _go_type_of_definition(name)
            node.int_range = _INT32  # IntOrString holds an int32
            return
        kind = _schema_type(raw)
        fmt = raw.get("format", "")
        node.format = fmt
        if "properties" in raw or (kind == "object" and "additionalProperties" not in raw):
            node._kind = OBJECT
            node.struct_name = name.rsplit(".", 1)[-1] if name else ""
            node.go_type = _go_type_of_definition(name) if name else "struct"
            node.properties = {
                key: self._compile_property(value) for key, value in raw.get("properties", {}).items()
            }
        elif kind == "object":
            additional = raw["additionalProperties"]
            node._kind = MAP
            node.additional_properties = self._compile_property(
                additional if isinstance(additional, dict) else {}
            )
            node.go_type = f"map[string]{node.additional_properties.go_type}"
        elif kind == "array":
            node._kind = ARRAY
            node.items = self._compile_property(raw.get("items", {}))
            node.go_type = f"[]{node.items.go_type}"
        elif kind == "string":
            node._kind = BYTES if fmt == "byte" else TIME if fmt == "date-time" else STRING
            node.go_type = _go_scalar_type(node._kind, fmt)
        elif kind in ("integer", "number", "boolean"):
            node._kind = {"integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}[kind]
            node.go_type = _go_scalar_type(node._kind, fmt)
            node.int_range = _INT32 if fmt == "int32" else _INT64
        else:
            node._kind = ANY
            node.go_type = "interface {}"

    def _compile_property(self, raw: Mapping[str, Any]) -> SchemaNode:
        ref = raw.get("$ref")
        if ref is None:
            all_of = raw.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
                ref = all_of[0]["$ref"]  # OpenAPI v3 style: {"allOf": [{"$ref": ...}], "description": ...}
        strategies = tuple(s for s in raw.get("x-kubernetes-patch-strategy", "").split(",") if s)
        merge_key = raw.get("x-kubernetes-patch-merge-key", "")
        list_type = raw.get("x-kubernetes-list-type", "")
        map_keys = tuple(raw.get("x-kubernetes-list-map-keys", ()))
        if ref is not None:
            target_name = _ref_name(ref)
            target = self._compile_definition(target_name)
            if not (strategies or merge_key or list_type):
                return target
            alias = SchemaNode(builtin=self._builtin)
            alias.patch_strategies = strategies
            alias.patch_merge_key = merge_key
            alias.list_type = list_type
            alias.list_map_keys = map_keys
            self._pending_aliases.append((alias, target_name))
            _copy_structure(alias, target)
            return alias
        node = SchemaNode(builtin=self._builtin)
        node.patch_strategies = strategies
        node.patch_merge_key = merge_key
        node.list_type = list_type
        node.list_map_keys = map_keys
        self._fill(node, raw)
        return node


_definitions: Definitions | None = None
_definitions_lock = threading.Lock()


def definitions() -> Definitions:
    """The vendored Kubernetes 1.33 definitions, loaded on first use."""
    global _definitions
    if _definitions is None:
        with _definitions_lock:
            if _definitions is None:
                _definitions = Definitions.load()
    return _definitions


# ---------------------------------------------------------------------------------------
# Custom resources


def compile_crd_schema(schema: Mapping[str, Any], *, objects: Definitions | None = None) -> SchemaNode:
    """Compile a CRD version's ``openAPIV3Schema`` (a structural schema, no ``$ref``).

    ``apiVersion``, ``kind`` and ``metadata`` are added at the root (and in
    ``x-kubernetes-embedded-resource`` objects) as kube-apiserver implies them;
    ``metadata`` is checked against ObjectMeta.
    """
    defs = objects if objects is not None else definitions()
    object_meta = defs.node(OBJECT_META)
    root = _compile_crd_node(schema, object_meta)
    if root._kind == ANY and not root.preserve_unknown_fields:
        root._kind = OBJECT
    if root._kind == OBJECT:
        _add_type_meta(root, object_meta)
    return root


def _add_type_meta(node: SchemaNode, object_meta: SchemaNode) -> None:
    properties = dict(node.properties)
    for key in ("apiVersion", "kind"):
        if key not in properties:
            scalar = SchemaNode(builtin=False)
            scalar._kind = STRING
            scalar.go_type = "string"
            properties[key] = scalar
    properties["metadata"] = object_meta
    node.properties = properties


def _compile_crd_node(raw: Mapping[str, Any], object_meta: SchemaNode) -> SchemaNode:
    node = SchemaNode(builtin=False)
    node.preserve_unknown_fields = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
    node.embedded_resource = bool(raw.get("x-kubernetes-embedded-resource"))
    node.list_type = raw.get("x-kubernetes-list-type", "")
    node.list_map_keys = tuple(raw.get("x-kubernetes-list-map-keys", ()))
    node.format = raw.get("format", "")
    kind = _schema_type(raw)
    if raw.get("x-kubernetes-int-or-string"):
        node._kind = INT_OR_STRING
    elif kind == "object" or (not kind and ("properties" in raw or node.embedded_resource)):
        additional = raw.get("additionalProperties")
        if "properties" not in raw and additional is not None and additional is not False:
            node._kind = MAP
            node.additional_properties = _compile_crd_node(
                additional
                if isinstance(additional, dict)
                else {"x-kubernetes-preserve-unknown-fields": True},
                object_meta,
            )
        else:
            node._kind = OBJECT
            node.properties = {
                key: _compile_crd_node(value, object_meta) for key, value in raw.get("properties", {}).items()
            }
            if node.embedded_resource:
                _add_type_meta(node, object_meta)
    elif kind == "array":
        node._kind = ARRAY
        node.items = _compile_crd_node(
            raw.get("items") or {"x-kubernetes-preserve-unknown-fields": True}, object_meta
        )
    elif kind in ("string", "integer", "number", "boolean"):
        node._kind = {"string": STRING, "integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}[kind]
    else:
        node._kind = ANY
    node.go_type = kind or "any"
    return node


_crd_cache: OrderedDict[int, tuple[Mapping[str, Any], SchemaNode]] = OrderedDict()
_crd_cache_lock = threading.Lock()
_CRD_CACHE_SIZE = 256


def schema_for(rt: ResourceType) -> SchemaNode | None:
    """The compiled schema of a kind: its built-in definition, or its CRD schema.

    ``None`` when the kind declares neither (nothing to check against).
    """
    if rt.definition:
        defs = definitions()
        return defs.node(rt.definition) if rt.definition in defs else None
    if rt.schema is None:
        return None
    key = id(rt.schema)
    with _crd_cache_lock:
        hit = _crd_cache.get(key)
        if hit is not None and hit[0] is rt.schema:
            _crd_cache.move_to_end(key)
            return hit[1]
    node = compile_crd_schema(rt.schema)
    with _crd_cache_lock:
        # The cache holds the schema dict itself, so its id cannot be reused while cached.
        _crd_cache[key] = (rt.schema, node)
        while len(_crd_cache) > _CRD_CACHE_SIZE:
            _crd_cache.popitem(last=False)
    return node


# ---------------------------------------------------------------------------------------
# Decoding checks


_QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"
_QUANTITY_NUMBER = re.compile(r"[+-]?[0-9]*(?:\.[0-9]*)?")
_QUANTITY_SUFFIX = re.compile(r"[eEinumkKMGTP]*(?:[-+]?[0-9]*)")
_QUANTITY_SUFFIXES = frozenset(
    {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
)
_DECIMAL_EXPONENT = re.compile(r"[eE][-+]?[0-9]+")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def quantity_error(text: str) -> str:
    """Why ``text`` is not a resource.Quantity, as apimachinery's ParseQuantity says; ``""`` if it is."""
    text = text.strip()
    if not text:
        return _QUANTITY_FORMAT_ERROR
    if text == "0":
        return ""
    number = _QUANTITY_NUMBER.match(text)
    suffix_start = number.end() if number else 0
    suffix = _QUANTITY_SUFFIX.match(text, suffix_start)
    if suffix is None or suffix.end() != len(text):
        return _QUANTITY_FORMAT_ERROR
    unit = text[suffix_start:]
    if unit in _QUANTITY_SUFFIXES or _DECIMAL_EXPONENT.fullmatch(unit):
        return ""
    return _QUANTITY_SUFFIX_ERROR


def _time_error(text: str) -> str:
    if _RFC3339.fullmatch(text):
        return ""
    return f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse "{text}" as RFC 3339'


def _base64_error(text: str) -> str:
    cleaned = text.replace("\r", "").replace("\n", "")
    try:
        binascii.a2b_base64(cleaned, strict_mode=True)
    except (binascii.Error, ValueError):
        for index, char in enumerate(cleaned):
            if not (char.isascii() and (char.isalnum() or char in "+/=")):
                return f"illegal base64 data at input byte {index}"
        return f"illegal base64 data at input byte {len(cleaned)}"
    return ""


def _json_kind(value: Any) -> str:
    """How Go's decoder names a JSON value in UnmarshalTypeError."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _openapi_kind(value: Any) -> str:
    """How the OpenAPI validator names a JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _json_kind(value)


@dataclass(frozen=True, slots=True)
class TypeMismatch:
    """A value that cannot be decoded into its field.

    ``path`` names the field with list indices (``spec.containers[0].ports``);
    ``expected`` is Go's type name for built-ins (``[]v1.ContainerPort``) and the OpenAPI
    type for custom resources (``integer``); ``actual`` is the JSON kind of the value, or
    ``number 1.5`` when a number does not fit. ``detail`` is set instead when the type's
    own decoder refused a string (quantities, times, base64).
    """

    path: str
    expected: str
    actual: str
    value: Any = None
    struct: str = ""
    detail: str = ""
    builtin: bool = True

    def message(self) -> str:
        """The decoder's message: ``json: cannot unmarshal string into Go struct field
        PodSpec.spec.containers of type []v1.Container`` for built-ins."""
        if self.detail:
            return f"{self.path}: {self.detail}" if self.path else self.detail
        if not self.builtin:
            return self.field_error().message()
        if self.path:
            go_field = re.sub(r"\[[^\]]*\]", "", self.path)
            return f"json: cannot unmarshal {self.actual} into Go struct field {self.struct}.{go_field} of type {self.expected}"
        return f"json: cannot unmarshal {self.actual} into Go value of type {self.expected}"

    def field_error(self) -> FieldError:
        """The field error schema validation reports for this value (custom resources):
        ``spec.replicas: Invalid value: "string": spec.replicas in body must be of type
        integer: "string"`` (upstream quotes the value's type, not the value)."""
        actual = _openapi_kind(self.value)
        detail = self.detail or f'{self.path} in body must be of type {self.expected}: "{actual}"'
        return FieldError(
            type="FieldValueTypeInvalid", field=self.path, detail=detail, value=actual, has_value=True
        )


@dataclass(slots=True)
class FieldCheck:
    """What decoding an object found: unknown fields (paths) and values of the wrong type."""

    unknown_fields: list[str] = field(default_factory=list)
    type_errors: list[TypeMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unknown_fields and not self.type_errors

    def strict_error(self) -> str:
        """Upstream's strict decoding error: ``strict decoding error: unknown field "spec.foo", ...``."""
        return "strict decoding error: " + ", ".join(self.warnings())

    def warnings(self) -> list[str]:
        """One ``unknown field "spec.foo"`` line per unknown field (fieldValidation=Warn)."""
        return [f'unknown field "{path}"' for path in self.unknown_fields]


def check_fields(obj: Any, schema: SchemaNode, *, prune: bool = False) -> FieldCheck:
    """Walk ``obj`` against ``schema`` as kube-apiserver's decoding would.

    Reports every unknown field (``spec.template.spec.containers[0].imagePullPolicyy``) and
    every value of the wrong type. With ``prune`` unknown fields are deleted from ``obj``
    in place (what decoding does under ``fieldValidation=Ignore`` or ``Warn``); ``obj``
    is otherwise left as it is. ``null`` is accepted everywhere, as Go's decoder does.
    """
    report = FieldCheck()
    _check(obj, schema, "", report, prune, "")
    return report


def _check(value: Any, node: SchemaNode, path: str, report: FieldCheck, prune: bool, struct: str) -> None:
    kind = node._kind
    if value is None or kind == ANY:
        return
    if kind == OBJECT:
        if type(value) is not dict:
            _record(report, node, path, value, struct)
            return
        properties = node.properties
        unknown: list[str] | None = None
        for key, child_value in value.items():
            child = properties.get(key)
            if child is None:
                if not node.preserve_unknown_fields:
                    if unknown is None:
                        unknown = []
                    unknown.append(key)
            elif child_value is not None and child._kind != ANY:
                if child._kind >= STRING:
                    if not _scalar_ok(child_value, child):
                        _scalar_mismatch(
                            report, child, f"{path}.{key}" if path else key, child_value, node.struct_name
                        )
                else:
                    _check(
                        child_value, child, f"{path}.{key}" if path else key, report, prune, node.struct_name
                    )
        if unknown:
            for key in unknown:
                report.unknown_fields.append(f"{path}.{key}" if path else key)
                if prune:
                    del value[key]
    elif kind == ARRAY:
        if type(value) is not list:
            _record(report, node, path, value, struct)
            return
        items = node.items
        if items is None or items._kind == ANY:
            return
        if items._kind >= STRING:
            for index, element in enumerate(value):
                if element is not None and not _scalar_ok(element, items):
                    _scalar_mismatch(report, items, f"{path}[{index}]", element, struct)
        else:
            for index, element in enumerate(value):
                _check(element, items, f"{path}[{index}]", report, prune, struct)
    elif kind == MAP:
        if type(value) is not dict:
            _record(report, node, path, value, struct)
            return
        values = node.additional_properties
        if values is None or values._kind == ANY:
            return
        scalar = values._kind >= STRING
        for key, element in value.items():
            if element is None:
                continue
            if scalar:
                if not _scalar_ok(element, values):
                    _scalar_mismatch(report, values, f"{path}.{key}" if path else key, element, struct)
            else:
                _check(element, values, f"{path}.{key}" if path else key, report, prune, struct)
    elif not _scalar_ok(value, node):
        _scalar_mismatch(report, node, path, value, struct)


def _scalar_ok(value: Any, node: SchemaNode) -> bool:
    kind = node._kind
    vtype = type(value)
    if kind == STRING:
        return vtype is str
    if kind == INTEGER:
        low, high = node.int_range
        return vtype is int and low <= value <= high
    if kind == BOOLEAN:
        return vtype is bool
    if kind == NUMBER:
        return vtype is int or vtype is float
    if kind == INT_OR_STRING:
        low, high = node.int_range
        return vtype is str or (vtype is int and low <= value <= high)
    if kind == QUANTITY:
        return vtype is int or vtype is float or (vtype is str and not quantity_error(value))
    if kind == TIME:
        return vtype is str and not _time_error(value)
    if kind == BYTES:
        return vtype is str and not _base64_error(value)
    return True


def _scalar_mismatch(report: FieldCheck, node: SchemaNode, path: str, value: Any, struct: str) -> None:
    """Record why ``value`` failed :func:`_scalar_ok` for ``node``."""
    kind = node._kind
    vtype = type(value)
    number = vtype is int or vtype is float
    if kind == INTEGER and number:
        if vtype is float and not node.builtin and value.is_integer():
            return  # the OpenAPI validator takes 2.0 for an integer
        _record(report, node, path, value, struct, actual=f"number {value!r}")
    elif kind == INT_OR_STRING:
        if number and not node.builtin and (vtype is int or value.is_integer()):
            return
        actual = f"number {value!r}" if number else ""
        _record(report, node, path, value, struct, actual=actual, expected="int32")
    elif kind == QUANTITY:
        detail = quantity_error(value) if vtype is str else _QUANTITY_FORMAT_ERROR
        _record(report, node, path, value, struct, detail=detail)
    elif kind == TIME and vtype is str:
        _record(report, node, path, value, struct, detail=_time_error(value))
    elif kind == TIME:
        _record(report, node, path, value, struct, expected="string")
    elif kind == BYTES and vtype is str:
        _record(report, node, path, value, struct, detail=_base64_error(value))
    else:
        _record(report, node, path, value, struct)


def _record(
    report: FieldCheck,
    node: SchemaNode,
    path: str,
    value: Any,
    struct: str,
    *,
    actual: str = "",
    expected: str = "",
    detail: str = "",
) -> None:
    if node.builtin:
        type_name = expected or node.go_type
    else:
        type_name = "integer,string" if node._kind == INT_OR_STRING else node.go_type
    report.type_errors.append(
        TypeMismatch(
            path=path,
            expected=type_name,
            actual=actual or _json_kind(value),
            value=value,
            struct=struct,
            detail=detail,
            builtin=node.builtin,
        )
    )
