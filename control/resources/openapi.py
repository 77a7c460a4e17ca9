"""OpenAPI v3 documents for ``/openapi/v3``, built from the registry of kinds.

Real clients read these documents, so they are shaped by what those clients look for:

* The index (``GET /openapi/v3``) maps each served group-version to its document's URL,
  ``{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=H"}}}``,
  H being the document's ETag (upper-case hex SHA-512, as kube-openapi's handler3 makes
  it): client-go caches a document by that URL, so the hash must change with the content.
* ``kubectl create/apply/replace`` validate on the server only if the group-version
  document has a PATCH operation whose ``x-kubernetes-group-version-kind`` is the kind
  and whose own ``parameters`` include ``fieldValidation`` (cli-runtime's
  query_param_verifier_v3). Every PATCH operation here carries it.
* PATCH operations have no ``requestBody``: one listing
  ``application/strategic-merge-patch+json`` would make kubectl compute apply patches
  from these schemas instead of its compiled-in types.
* ``kubectl explain`` (kubectl pkg/explain/v2) finds the kind by an operation's GVK on
  ``/apis/<g>/<v>[/namespaces/{namespace}]/<plural>[/{name}]``, then the component schema
  whose ``x-kubernetes-group-version-kind`` list holds it, and follows ``$ref`` (also
  inside a one-element ``allOf``) through ``components.schemas``. So each document
  carries the real schemas of its kinds and everything they reference, converted from
  the vendored JSON Schema definitions to OpenAPI 3.0. Custom resources get their CRD
  schema under a generated name (``com.example.stable.v1.CronTab``).

Rendered bytes are cached per group-version and dropped when the registry changes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from control.resources.registry import Registry, ResourceType
from control.resources.schema import OBJECT_META, Definitions, definitions

OPENAPI_VERSION = "3.0.0"
INFO = {"title": "Kubernetes", "version": "v1.33.0"}

_COMPONENT_PREFIX = "#/components/schemas/"
_STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
_DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
_LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_SCALE = "io.k8s.api.autoscaling.v1.Scale"
_SCALE_GVK = {"group": "autoscaling", "kind": "Scale", "version": "v1"}

_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _query(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": schema_type, "uniqueItems": True},
    }


_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized "
    "dryRun directive will result in an error response and no further processing of the request. "
    "Valid values are: - All: all dry run stages will be processed",
)
_FIELD_MANAGER = _query(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown "
    "fields that are silently dropped from the object, and will ignore all but the last duplicate field "
    "that the decoder encounters. - Warn: This will send a warning via the standard warning response "
    "header for each unknown field that is dropped from the object, and for each duplicate field that "
    "is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields "
    "would be dropped from the object, or if any duplicate fields are present.",
)
_FORCE = _query(
    "force",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned '
    "by other people. Force flag must be unset for non-apply patch requests.",
    "boolean",
)
_DELETE_PARAMETERS = (
    _DRY_RUN,
    _query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
    _query("orphanDependents", "Deprecated: please use the PropagationPolicy.", "boolean"),
    _query(
        "propagationPolicy",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    ),
)
_LIST_PARAMETERS = (
    _query(
        "allowWatchBookmarks", 'allowWatchBookmarks requests watch events with type "BOOKMARK".', "boolean"
    ),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query(
        "resourceVersion",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    _query(
        "resourceVersionMatch",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    _query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources and return them as a stream.", "boolean"),
)


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_NAMESPACE = _path_parameter("namespace", "object name and auth scope, such as for teams and projects")


@dataclass(frozen=True, slots=True)
class OpenAPIDocument:
    """One rendered group-version document and its ETag (the ``hash`` of its URL)."""

    path: str  # "apis/apps/v1"
    body: bytes
    etag: str

    @property
    def server_relative_url(self) -> str:
        return f"/openapi/v3/{self.path}?hash={self.etag}"


def group_version_path(group: str, version: str) -> str:
    """``api/v1`` for the core group, ``apis/<group>/<version>`` otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def custom_schema_name(group: str, version: str, kind: str) -> str:
    """The component name of a custom kind, as kube-apiserver publishes CRDs:
    the group reversed, then version and kind (``com.example.stable.v1.CronTab``)."""
    return ".".join([*reversed(group.split(".")), version, kind])


class OpenAPIV3:
    """Serves the ``/openapi/v3`` index and the per-group-version documents of a registry.

    Safe to call from several threads; the registry's change notifications drop the cache.
    """

    def __init__(self, registry: Registry, *, schemas: Definitions | None = None) -> None:
        self._registry = registry
        self._schemas = schemas
        self._lock = threading.Lock()
        self._generation = 0
        self._documents: dict[str, OpenAPIDocument] = {}
        self._index: bytes | None = None
        self._converted: dict[str, dict[str, Any]] = {}
        self._dependencies: dict[str, frozenset[str]] = {}
        registry.on_change(self.invalidate)

    @property
    def _defs(self) -> Definitions:
        if self._schemas is None:
            self._schemas = definitions()
        return self._schemas

    def invalidate(self) -> None:
        """Forget rendered documents (the registry calls this when kinds change)."""
        with self._lock:
            self._generation += 1
            self._documents = {}
            self._index = None

    def index(self) -> bytes:
        """The body of ``GET /openapi/v3``."""
        index = self._index
        if index is not None:
            return index
        generation = self._generation
        paths = {}
        for group, version in self._registry.group_versions():
            document = self.document(group_version_path(group, version))
            if document is not None:
                paths[document.path] = {"serverRelativeURL": document.server_relative_url}
        index = orjson.dumps({"paths": paths}, option=orjson.OPT_SORT_KEYS)
        with self._lock:
            if generation == self._generation:
                self._index = index
        return index

    def document(self, path: str) -> OpenAPIDocument | None:
        """The document for ``api/v1`` or ``apis/<group>/<version>``; None if not served."""
        path = path.strip("/").removeprefix("openapi/v3/")
        cached = self._documents.get(path)
        if cached is not None:
            return cached
        group_version = _parse_group_version(path)
        if group_version is None:
            return None
        generation = self._generation
        kinds = [rt for rt in self._registry if rt.group_version == group_version]
        if not kinds:
            return None
        body = orjson.dumps(self._render(kinds), option=orjson.OPT_SORT_KEYS)
        document = OpenAPIDocument(path=path, body=body, etag=hashlib.sha512(body).hexdigest().upper())
        with self._lock:
            if generation == self._generation:
                self._documents = {**self._documents, path: document}
        return document

    # -- rendering -----------------------------------------------------------------------

    def _render(self, kinds: Iterable[ResourceType]) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        roots: set[str] = set()
        custom: dict[str, dict[str, Any]] = {}
        for rt in sorted(kinds, key=lambda rt: rt.plural):
            kind_schema, list_schema = self._kind_schemas(rt, custom, roots)
            _add_operations(paths, rt, kind_schema=kind_schema, list_schema=list_schema)
            if kind_schema is not None:
                roots.add(_STATUS)
                if "delete" in rt.verbs or "deletecollection" in rt.verbs:
                    roots.add(_DELETE_OPTIONS)
            if rt.scale is not None and _SCALE in self._defs:
                roots.add(_SCALE)
        schemas = {name: self._convert(name) for name in self._closure(roots)}
        schemas.update(custom)
        return {
            "openapi": OPENAPI_VERSION,
            "info": INFO,
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def _kind_schemas(
        self, rt: ResourceType, custom: dict[str, dict[str, Any]], roots: set[str]
    ) -> tuple[str | None, str | None]:
        """Component names of the kind and of its list kind, registering what they need."""
        defs = self._defs
        if rt.definition:
            if rt.definition not in defs:
                return None, None
            roots.add(rt.definition)
            list_name = rt.definition + "List"
            if list_name in defs and "list" in rt.verbs:
                roots.add(list_name)
                return rt.definition, list_name
            return rt.definition, None
        if rt.schema is None:
            return None, None
        name = custom_schema_name(rt.group, rt.version, rt.kind)
        custom[name] = _custom_kind_schema(rt)
        roots.update((OBJECT_META, _LIST_META))
        if "list" not in rt.verbs:
            return name, None
        custom[name + "List"] = _custom_list_schema(rt, item=name)
        return name, name + "List"

    def _closure(self, roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in seen or name not in self._defs:
                continue
            seen.add(name)
            stack.extend(self._references(name))
        return seen

    def _references(self, name: str) -> frozenset[str]:
        refs = self._dependencies.get(name)
        if refs is None:
            found: set[str] = set()
            _collect_refs(self._defs.raw(name), found)
            refs = frozenset(found)
            self._dependencies[name] = refs
        return refs

    def _convert(self, name: str) -> dict[str, Any]:
        converted = self._converted.get(name)
        if converted is None:
            converted = _definition_to_openapi(name, self._defs.raw(name))
            self._converted[name] = converted
        return converted


def _parse_group_version(path: str) -> tuple[str, str] | None:
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


# -- schema conversion (JSON Schema definitions -> OpenAPI 3.0) ------------------------------


def _ref_target(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _collect_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(_ref_target(value))
            else:
                _collect_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_refs(value, found)


def _definition_to_openapi(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    converted = _to_openapi(raw)
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        converted.setdefault("format", "int-or-string")
    if "x-kubernetes-group-version-kind" in raw:
        # kubernetes-validate pins apiVersion and kind with enums; upstream does not.
        properties = converted.get("properties", {})
        for key in ("apiVersion", "kind"):
            if key in properties:
                properties[key] = {k: v for k, v in properties[key].items() if k != "enum"}
    return converted


def _to_openapi(node: Any) -> Any:
    """Rewrite a JSON Schema node as OpenAPI 3.0: one ``type``, component ``$ref``s, and
    a ``$ref`` with siblings wrapped in ``allOf`` (siblings of ``$ref`` are ignored in 3.0)."""
    if isinstance(node, list):
        return [_to_openapi(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    ref = None
    for key, value in node.items():
        if key == "$ref":
            ref = _COMPONENT_PREFIX + _ref_target(value)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                converted["type"] = types[0]
        elif key == "properties":
            converted[key] = {name: _to_openapi(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not", "oneOf", "anyOf", "allOf"):
            converted[key] = _to_openapi(value)
        else:
            converted[key] = value
    if ref is None:
        return converted
    if not converted:
        return {"$ref": ref}
    converted["allOf"] = [{"$ref": ref}]
    return converted


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "kind": rt.kind, "version": rt.version}


def _custom_kind_schema(rt: ResourceType) -> dict[str, Any]:
    schema = orjson.loads(orjson.dumps(rt.schema or {}))
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"description": _API_VERSION_DESCRIPTION, "type": "string"})
    properties.setdefault("kind", {"description": _KIND_DESCRIPTION, "type": "string"})
    properties["metadata"] = {
        "allOf": [{"$ref": _COMPONENT_PREFIX + OBJECT_META}],
        "description": _METADATA_DESCRIPTION,
    }
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _custom_list_schema(rt: ResourceType, *, item: str) -> dict[str, Any]:
    return {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": f"List of {rt.plural}.",
                "type": "array",
                "items": {"$ref": _COMPONENT_PREFIX + item},
            },
            "kind": {"description": _KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "allOf": [{"$ref": _COMPONENT_PREFIX + _LIST_META}],
                "description": "Standard list metadata.",
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": rt.group, "kind": rt.kind + "List", "version": rt.version}
        ],
    }


# -- operations --------------------------------------------------------------------------


def _operation_name(rt: ResourceType) -> str:
    """``AppsV1`` / ``CoreV1`` / ``RbacAuthorizationV1``, as upstream operation ids spell it."""
    group = rt.group.removesuffix(".k8s.io") if rt.group else "core"
    words = [part for chunk in group.split(".") for part in chunk.split("-")]
    return "".join(word[:1].upper() + word[1:] for word in words) + rt.version[:1].upper() + rt.version[1:]


def _content(schema: str | None) -> dict[str, Any]:
    if schema is None:
        return {"description": "OK"}
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": _COMPONENT_PREFIX + schema}}},
    }


def _operation(
    rt: ResourceType,
    *,
    action: str,
    operation_id: str,
    description: str,
    responses: Mapping[str, str | None],
    parameters: Iterable[dict[str, Any]] = (),
    request_body: str | None = None,
    gvk: dict[str, str] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "description": description,
        "operationId": operation_id,
        "tags": [f"{rt.group.replace('.', '_') or 'core'}_{rt.version}"],
        "parameters": list(parameters),
        "responses": {code: _content(schema) for code, schema in responses.items()}
        | {"401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk or _gvk(rt),
    }
    if request_body is not None:
        operation["requestBody"] = {
            "content": {"*/*": {"schema": {"$ref": _COMPONENT_PREFIX + request_body}}},
            "required": True,
        }
    return operation


def _add_operations(
    paths: dict[str, dict[str, Any]], rt: ResourceType, *, kind_schema: str | None, list_schema: str | None
) -> None:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = "Namespaced" if rt.namespaced else ""
    op = _operation_name(rt)
    kind = rt.kind
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    )
    item = f"{collection}/{{name}}"
    scope_parameters = [_NAMESPACE] if rt.namespaced else []
    name_parameter = _path_parameter("name", f"name of the {kind}")
    status = _STATUS if kind_schema is not None else None
    verbs = ("create",) if rt.virtual else rt.verbs

    collection_ops: dict[str, Any] = {}
    if "list" in verbs:
        collection_ops["get"] = _operation(
            rt,
            action="list",
            operation_id=f"list{op}{scope}{kind}",
            description=f"list or watch objects of kind {kind}",
            parameters=_LIST_PARAMETERS,
            responses={"200": list_schema},
        )
        if rt.namespaced:
            paths[f"{prefix}/{rt.plural}"] = {
                "get": _operation(
                    rt,
                    action="list",
                    operation_id=f"list{op}{kind}ForAllNamespaces",
                    description=f"list or watch objects of kind {kind}",
                    parameters=_LIST_PARAMETERS,
                    responses={"200": list_schema},
                ),
                "parameters": [_PRETTY],
            }
    if "create" in verbs:
        collection_ops["post"] = _operation(
            rt,
            action="post",
            operation_id=f"create{op}{scope}{kind}",
            description=f"create a {kind}",
            parameters=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION),
            responses={"200": kind_schema, "201": kind_schema, "202": kind_schema},
            request_body=kind_schema,
        )
    if "deletecollection" in verbs:
        collection_ops["delete"] = _operation(
            rt,
            action="deletecollection",
            operation_id=f"delete{op}Collection{scope}{kind}",
            description=f"delete collection of {kind}",
            parameters=(*_DELETE_PARAMETERS, *_LIST_PARAMETERS),
            responses={"200": status},
        )
    if collection_ops:
        paths[collection] = {**collection_ops, "parameters": [*scope_parameters, _PRETTY]}

    item_ops: dict[str, Any] = {}
    if "get" in verbs:
        item_ops["get"] = _operation(
            rt,
            action="get",
            operation_id=f"read{op}{scope}{kind}",
            description=f"read the specified {kind}",
            responses={"200": kind_schema},
        )
    if "update" in verbs:
        item_ops["put"] = _operation(
            rt,
            action="put",
            operation_id=f"replace{op}{scope}{kind}",
            description=f"replace the specified {kind}",
            parameters=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION),
            responses={"200": kind_schema, "201": kind_schema},
            request_body=kind_schema,
        )
    if "patch" in verbs:
        item_ops["patch"] = _operation(
            rt,
            action="patch",
            operation_id=f"patch{op}{scope}{kind}",
            description=f"partially update the specified {kind}",
            parameters=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE),
            responses={"200": kind_schema, "201": kind_schema},
        )
    if "delete" in verbs:
        item_ops["delete"] = _operation(
            rt,
            action="delete",
            operation_id=f"delete{op}{scope}{kind}",
            description=f"delete a {kind}",
            parameters=_DELETE_PARAMETERS,
            responses={"200": status, "202": status},
        )
    if item_ops:
        paths[item] = {**item_ops, "parameters": [name_parameter, *scope_parameters, _PRETTY]}

    if rt.has_status and not rt.virtual:
        paths[f"{item}/status"] = {
            **_subresource_operations(rt, op=op, scope=scope, suffix="Status", schema=kind_schema, gvk=None),
            "parameters": [name_parameter, *scope_parameters, _PRETTY],
        }
    if rt.scale is not None and not rt.virtual:
        paths[f"{item}/scale"] = {
            **_subresource_operations(rt, op=op, scope=scope, suffix="Scale", schema=_SCALE, gvk=_SCALE_GVK),
            "parameters": [_path_parameter("name", "name of the Scale"), *scope_parameters, _PRETTY],
        }


def _subresource_operations(
    rt: ResourceType, *, op: str, scope: str, suffix: str, schema: str | None, gvk: dict[str, str] | None
) -> dict[str, Any]:
    what = f"{suffix.lower()} of the specified {rt.kind}"
    return {
        "get": _operation(
            rt,
            action="get",
            operation_id=f"read{op}{scope}{rt.kind}{suffix}",
            description=f"read {what}",
            responses={"200": schema},
            gvk=gvk,
        ),
        "put": _operation(
            rt,
            action="put",
            operation_id=f"replace{op}{scope}{rt.kind}{suffix}",
            description=f"replace {what}",
            parameters=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION),
            responses={"200": schema, "201": schema},
            request_body=schema,
            gvk=gvk,
        ),
        "patch": _operation(
            rt,
            action="patch",
            operation_id=f"patch{op}{scope}{rt.kind}{suffix}",
            description=f"partially update {what}",
            parameters=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE),
            responses={"200": schema, "201": schema},
            gvk=gvk,
        ),
    }
