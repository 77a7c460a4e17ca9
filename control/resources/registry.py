"""The registry of kinds: what the API server serves, declared as data.

Adding a kind is adding a :class:`ResourceType` here (built-ins are declared in
``control.resources.builtin``); the API server has one generic handler for every kind.
The registry also takes kinds at run time (``Registry.add``), which is how
CustomResourceDefinitions plug in: a CRD becomes a ResourceType with ``schema`` set to
its ``openAPIV3Schema`` and ``printer_columns`` from ``additionalPrinterColumns``.

A ResourceType holds no behaviour. Defaulting, validation, Table printing and field
selectors live in their own modules and are looked up by (group, kind), so each concern
can be read in one place and kinds without special rules get the generic behaviour. The
one exception is :class:`StoredAs`: a kind served in a version other than the one it is
stored in (events.k8s.io/v1 Events live in core/v1's keys, as upstream keeps one Event in
etcd) names that storage version and the two pure functions that convert between them,
because which objects share keys is part of what the kind *is*, not a rule about it.
Likewise :class:`Conversion` names the storage version of a kind served in several
versions whose objects each keep the version they were written in (custom resources),
and the :class:`Converter` (a ``strategy: None`` rewrite or a conversion webhook) that
turns them into the version a request asks for.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class NameRule(enum.Enum):
    """How ``metadata.name`` is validated, as upstream's per-kind ValidateNameFunc."""

    DNS1123_SUBDOMAIN = "dns1123-subdomain"  # most kinds
    DNS1123_LABEL = "dns1123-label"  # namespaces, services
    PATH_SEGMENT = "path-segment"  # RBAC kinds: anything but '/', '%', '.' and '..'


ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    """One Table column: upstream's TableColumnDefinition plus, for CRDs, a JSONPath."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0
    json_path: str = ""


@dataclass(frozen=True, kw_only=True)
class ScaleSubresource:
    """Where the scale subresource reads and writes (dotted paths into the object)."""

    spec_replicas_path: str = "spec.replicas"
    status_replicas_path: str = "status.replicas"
    label_selector_path: str = "status.selector"  # for built-ins: spec.selector, rendered


ObjectConverter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, kw_only=True, eq=False)
class StoredAs:
    """Objects of a kind are stored as another version's (upstream's storage version).

    ``to_storage`` turns a served object into the stored version's shape and
    ``from_storage`` the reverse; both are pure, keep ``metadata`` as it is (the two
    versions share uid, resourceVersion, labels ...) and must not change their argument.
    Compared by identity: it is a hash key of the API server's per-event caches.
    """

    group: str  # the storage resource: "" for the core group
    plural: str
    to_storage: ObjectConverter
    from_storage: ObjectConverter

    @property
    def storage_prefix(self) -> str:
        return _registry_prefix(group=self.group, plural=self.plural)


def _registry_prefix(*, group: str, plural: str) -> str:
    """Key prefix of a resource in the store, as kube-apiserver lays out etcd."""
    return f"/registry/{group or 'core'}/{plural}/"


class Converter(Protocol):
    """Converts objects of one kind between its versions."""

    async def convert(self, objects: list[dict[str, Any]], *, api_version: str) -> list[dict[str, Any]]:
        """``objects`` (any of the kind's versions) in ``api_version``, in order; objects
        already in it come back as they are. Failures raise (the caller answers 500)."""
        ...


@dataclass(frozen=True, kw_only=True, eq=False)
class Conversion:
    """A kind served in several versions whose objects share one set of keys, each object
    in the version it was written in: new writes in ``storage_version`` (an apiVersion),
    older ones in whatever the storage version was then, and every read converted to the
    version asked for by ``converter``."""

    storage_version: str
    converter: Converter


@dataclass(frozen=True, kw_only=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    name_rule: NameRule = NameRule.DNS1123_SUBDOMAIN
    has_status: bool = False  # the status subresource exists
    scale: ScaleSubresource | None = None
    # Extra subresources served by special handlers (e.g. "log", "binding", "eviction").
    extra_subresources: tuple[str, ...] = ()
    # The OpenAPI definition name for built-ins (io.k8s.api.apps.v1.Deployment) ...
    definition: str = ""
    # ... or, for custom resources, the structural openAPIV3Schema.
    schema: dict[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Served but not stored (reviews): create answers without persisting.
    virtual: bool = False
    # Stored in another version's keys and shape (None: stored as served).
    stored_as: StoredAs | None = None
    # Served in several versions converted per request (custom resources with more than one).
    conversion: Conversion | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> tuple[str, str]:
        return (self.group, self.version)

    @property
    def group_resource(self) -> str:
        """``deployments.apps``; ``pods`` for the core group (as in upstream messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Deployment.apps``; ``Pod`` for the core group (as in 422 messages)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def storage_prefix(self) -> str:
        """Key prefix in the store: the storage version's keys."""
        if self.stored_as is not None:
            return self.stored_as.storage_prefix
        return self.own_prefix

    @property
    def own_prefix(self) -> str:
        """The keys this kind would be stored at if stored as served. Differs from
        ``storage_prefix`` only with ``stored_as``: data written before the kind shared
        another version's keys may still be there (see ``control.apiserver.conversion``)."""
        return _registry_prefix(group=self.group, plural=self.plural)

    @property
    def subresources(self) -> tuple[str, ...]:
        names: list[str] = []
        if self.has_status:
            names.append("status")
        if self.scale is not None:
            names.append("scale")
        names.extend(self.extra_subresources)
        return tuple(names)


@dataclass(frozen=True, kw_only=True)
class FieldError:
    """One invalid field, as upstream's field.Error. ``type`` is the Status cause reason:
    FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate,
    FieldValueForbidden, FieldValueTooLong, FieldValueTypeInvalid."""

    type: str
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    def message(self) -> str:
        """Upstream's field.Error.Error(): ``spec.replicas: Invalid value: -1: must be ...``."""
        return f"{self.field}: {self.body()}"

    def body(self) -> str:
        """Upstream's field.Error.ErrorBody() (the message without the field), as Status causes carry it."""
        label = {
            "FieldValueRequired": "Required value",
            "FieldValueInvalid": "Invalid value",
            "FieldValueNotSupported": "Unsupported value",
            "FieldValueDuplicate": "Duplicate value",
            "FieldValueForbidden": "Forbidden",
            "FieldValueTooLong": "Too long",
            "FieldValueTooMany": "Too many",
            "FieldValueTypeInvalid": "Invalid value",
            "FieldValueNotFound": "Not found",
        }.get(self.type, "Invalid value")
        text = label
        if self.has_value:
            text += f": {_render_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def field_error(type: str, path: str, detail: str = "", **kw: Any) -> FieldError:
    """Shorthand: ``field_error("FieldValueInvalid", "spec.replicas", "must be ...", value=-1)``."""
    if "value" in kw:
        return FieldError(type=type, field=path, detail=detail, value=kw["value"], has_value=True)
    return FieldError(type=type, field=path, detail=detail)


Listener = Callable[[], None]


@dataclass
class Registry:
    """Kinds by (group, version, plural) and by (group, kind); safe to change at run time.

    Readers get a consistent snapshot (lookups are dict reads); writers take a lock and
    notify listeners (discovery and OpenAPI caches) so they rebuild.
    """

    _by_resource: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _listeners: list[Listener] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rt: ResourceType) -> None:
        with self._lock:
            by_resource = dict(self._by_resource)
            by_kind = dict(self._by_kind)
            by_resource[(rt.group, rt.version, rt.plural)] = rt
            by_kind[(rt.group, rt.version, rt.kind)] = rt
            self._by_resource, self._by_kind = by_resource, by_kind
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def remove(self, *, group: str, version: str, plural: str) -> None:
        with self._lock:
            rt = self._by_resource.get((group, version, plural))
            if rt is None:
                return
            by_resource = {k: v for k, v in self._by_resource.items() if v is not rt}
            by_kind = {k: v for k, v in self._by_kind.items() if v is not rt}
            self._by_resource, self._by_kind = by_resource, by_kind
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def lookup(self, *, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_resource.get((group, version, plural))

    def lookup_kind(self, *, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_resource.values()))

    def group_versions(self) -> list[tuple[str, str]]:
        """Served (group, version) pairs, core first, then groups in declaration order."""
        seen: dict[tuple[str, str], None] = {}
        for rt in self._by_resource.values():
            seen.setdefault(rt.group_version, None)
        return sorted(seen, key=lambda gv: (gv[0] != "", list(seen).index(gv)))
