"""Which fields each kind can be selected by, and what those fields read, as upstream.

kube-apiserver answers ``fieldSelector`` in two independent steps, and this module
keeps them apart because they do not agree:

1. *Acceptance*: every term goes through the kind's field-label conversion
   (``AddFieldLabelConversionFunc`` in ``k8s.io/kubernetes/pkg/apis/<group>/<version>/
   conversion.go``). It rejects unknown labels with a per-kind message (a 400) and
   may rename a label (pods' legacy ``spec.host``; events.k8s.io's ``regarding.*``).
   Kinds without a conversion function accept only ``metadata.name`` and
   ``metadata.namespace`` (``runtime.DefaultMetaV1FieldSelectorConversion``); custom
   resources accept ``metadata.name`` and, when namespaced, ``metadata.namespace``.
2. *Matching*: the registry strategy's ``ToSelectableFields`` projects the object
   into a set of strings. An accepted label missing from that set reads ``""`` (pods
   accept ``status.podIPs`` but never set it), booleans read ``true``/``false`` and
   counts read as decimals, ``0`` when unset (Go's zero values).

Kinds are looked up by (group, kind). Objects are read in the served (versioned)
JSON shape, so an events.k8s.io Event is read through ``regarding`` and
``reportingController`` while its labels are the core ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from control.resources.registry import ResourceType
from control.resources.selectors import FieldSelector, LabelSelector, SelectorError, go_quote

Reader = Callable[[Mapping[str, Any]], str]
FieldGetter = Callable[[Mapping[str, Any], str], str]
ObjectFilter = Callable[[Mapping[str, Any]], bool]


def _text(*path: str) -> Reader:
    """Read a string at ``path``; "" when any step is missing or not a string."""

    def read(obj: Mapping[str, Any]) -> str:
        node: Any = obj
        for key in path:
            if not isinstance(node, dict):
                return ""
            node = node.get(key)
        return node if isinstance(node, str) else ""

    return read


def _flag(*path: str) -> Reader:
    """A bool as ``strconv.FormatBool`` renders it; unset is ``false``."""
    inner = _raw(*path)
    return lambda obj: "true" if inner(obj) is True else "false"


def _count(*path: str) -> Reader:
    """An integer as ``strconv.Itoa`` renders it; unset is ``0``."""
    inner = _raw(*path)

    def read(obj: Mapping[str, Any]) -> str:
        value = inner(obj)
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"

    return read


def _raw(*path: str) -> Callable[[Mapping[str, Any]], Any]:
    def read(obj: Mapping[str, Any]) -> Any:
        node: Any = obj
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    return read


def _first_pod_ip(obj: Mapping[str, Any]) -> str:
    """``status.podIP`` as upstream's internal ``PodIPs[0]``: podIP wins, else podIPs[0]."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return ""
    ip = status.get("podIP")
    if isinstance(ip, str) and ip:
        return ip
    ips = status.get("podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], dict):
        first = ips[0].get("ip")
        return first if isinstance(first, str) else ""
    return ""


def _first_of(*readers: Reader) -> Reader:
    """The first non-empty value, as upstream's event ``source`` (component, else controller)."""

    def read(obj: Mapping[str, Any]) -> str:
        for reader in readers:
            value = reader(obj)
            if value:
                return value
        return ""

    return read


_NAME = _text("metadata", "name")
_NAMESPACE = _text("metadata", "namespace")
_META = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}


def _unsupported(label: str) -> str:
    return f"field label not supported: {label}"


def _not_known(label: str) -> str:
    return (
        f"{go_quote(label)} is not a known field selector: only "
        f"{go_quote('metadata.name')}, {go_quote('metadata.namespace')}"
    )


@dataclass(frozen=True)
class FieldRules:
    """One kind's field labels: what the conversion accepts and what each label reads."""

    accepted: Mapping[str, str]  # label as sent -> canonical label
    readers: Mapping[str, Reader]  # canonical label -> value
    reject: Callable[[str], str]  # the 400 message for a label not accepted

    def read(self, obj: Mapping[str, Any], label: str) -> str:
        canonical = self.accepted.get(label)
        reader = self.readers.get(canonical) if canonical is not None else None
        return reader(obj) if reader is not None else ""


def _same(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


_BUILTIN: dict[tuple[str, str], FieldRules] = {
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/pod/strategy.go
    ("", "Pod"): FieldRules(
        accepted={
            **_same(
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ),
            "spec.host": "spec.nodeName",
        },
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            "spec.nodeName": _text("spec", "nodeName"),
            "spec.restartPolicy": _text("spec", "restartPolicy"),
            "spec.schedulerName": _text("spec", "schedulerName"),
            "spec.serviceAccountName": _text("spec", "serviceAccountName"),
            "spec.hostNetwork": _flag("spec", "hostNetwork"),
            "status.phase": _text("status", "phase"),
            "status.podIP": _first_pod_ip,
            "status.nominatedNodeName": _text("status", "nominatedNodeName"),
        },
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/node/strategy.go
    ("", "Node"): FieldRules(
        accepted=_same("metadata.name", "spec.unschedulable"),
        readers={"metadata.name": _NAME, "spec.unschedulable": _flag("spec", "unschedulable")},
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/replicationcontroller/strategy.go
    ("", "ReplicationController"): FieldRules(
        accepted=_same("metadata.name", "metadata.namespace", "status.replicas"),
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            "status.replicas": _count("status", "replicas"),
        },
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/event/strategy.go
    ("", "Event"): FieldRules(
        accepted=_same(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ),
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            **{
                f"involvedObject.{part}": _text("involvedObject", part)
                for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
            },
            "reason": _text("reason"),
            "reportingComponent": _text("reportingComponent"),
            "source": _first_of(_text("source", "component"), _text("reportingComponent")),
            "type": _text("type"),
        },
        reject=_unsupported,
    ),
    # pkg/apis/events/v1/conversion.go + pkg/registry/core/event/strategy.go (shared storage)
    ("events.k8s.io", "Event"): FieldRules(
        accepted={
            "reason": "reason",
            **{
                f"regarding.{part}": f"involvedObject.{part}"
                for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
            },
            "reportingController": "reportingComponent",
            "source": "source",
            "type": "type",
            **_META,
        },
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            **{
                f"involvedObject.{part}": _text("regarding", part)
                for part in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
            },
            "reason": _text("reason"),
            "reportingComponent": _text("reportingController"),
            "source": _first_of(_text("deprecatedSource", "component"), _text("reportingController")),
            "type": _text("type"),
        },
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/namespace/strategy.go
    ("", "Namespace"): FieldRules(
        accepted=_same("status.phase", "metadata.name"),
        readers={"metadata.name": _NAME, "status.phase": _text("status", "phase")},
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/secret/strategy.go
    ("", "Secret"): FieldRules(
        accepted=_same("type", "metadata.namespace", "metadata.name"),
        readers={"metadata.name": _NAME, "metadata.namespace": _NAMESPACE, "type": _text("type")},
        reject=_unsupported,
    ),
    # pkg/apis/core/v1/conversion.go + pkg/registry/core/service/strategy.go
    ("", "Service"): FieldRules(
        accepted=_same("metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"),
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            "spec.clusterIP": _text("spec", "clusterIP"),
            "spec.type": _text("spec", "type"),
        },
        reject=_unsupported,
    ),
    # pkg/apis/batch/v1/conversion.go + pkg/registry/batch/job/strategy.go
    ("batch", "Job"): FieldRules(
        accepted=_same("metadata.name", "metadata.namespace", "status.successful"),
        readers={
            "metadata.name": _NAME,
            "metadata.namespace": _NAMESPACE,
            "status.successful": _count("status", "succeeded"),
        },
        reject=lambda label: f"field label {go_quote(label)} not supported for Job",
    ),
    # pkg/apis/certificates/v1/conversion.go + pkg/registry/certificates/certificates/strategy.go
    ("certificates.k8s.io", "CertificateSigningRequest"): FieldRules(
        accepted=_same("metadata.name", "spec.signerName"),
        readers={"metadata.name": _NAME, "spec.signerName": _text("spec", "signerName")},
        reject=_unsupported,
    ),
}

# Kinds without a conversion function: any metadata label is accepted; cluster-scoped
# objects have no namespace field in their selectable set, so it always reads "".
_DEFAULT_NAMESPACED = FieldRules(
    accepted=_META, readers={"metadata.name": _NAME, "metadata.namespace": _NAMESPACE}, reject=_not_known
)
_DEFAULT_CLUSTER = FieldRules(accepted=_META, readers={"metadata.name": _NAME}, reject=_not_known)
# Custom resources (apiextensions-apiserver's crConverter.ConvertFieldLabel).
_CUSTOM_NAMESPACED = FieldRules(
    accepted=_META, readers={"metadata.name": _NAME, "metadata.namespace": _NAMESPACE}, reject=_unsupported
)
_CUSTOM_CLUSTER = FieldRules(
    accepted={"metadata.name": "metadata.name"}, readers={"metadata.name": _NAME}, reject=_unsupported
)


def field_rules(rt: ResourceType) -> FieldRules:
    """The field-label rules of ``rt``: built-in by (group, kind), else custom or default."""
    if rt.schema is not None:
        return _CUSTOM_NAMESPACED if rt.namespaced else _CUSTOM_CLUSTER
    rules = _BUILTIN.get((rt.group, rt.kind))
    if rules is not None:
        return rules
    return _DEFAULT_NAMESPACED if rt.namespaced else _DEFAULT_CLUSTER


def supported_field_labels(rt: ResourceType) -> tuple[str, ...]:
    """The labels a ``fieldSelector`` on ``rt`` may use, sorted."""
    return tuple(sorted(field_rules(rt).accepted))


def check_field_selector(rt: ResourceType, selector: FieldSelector) -> None:
    """Reject, with upstream's message, the first term whose label ``rt`` does not support."""
    rules = field_rules(rt)
    for requirement in selector.requirements:
        if requirement.field not in rules.accepted:
            raise SelectorError(rules.reject(requirement.field))


def field_getter(rt: ResourceType) -> FieldGetter:
    """``getter(obj, label)``: the value a field selector compares, "" for unknown labels.

    Accepts every spelling :func:`check_field_selector` accepts (aliases included).
    """
    return field_rules(rt).read


def object_filter(rt: ResourceType, *, labels: LabelSelector, fields: FieldSelector) -> ObjectFilter | None:
    """One predicate for a list or watch request, or None when nothing is filtered.

    Checks ``fields`` against ``rt`` first (raising :class:`SelectorError`), then
    resolves every term to its reader once, so the per-object work is a few dict
    reads and comparisons.
    """
    check_field_selector(rt, fields)
    rules = field_rules(rt)
    terms = tuple(
        (rules.readers.get(rules.accepted[r.field], _blank), r.value, r.operator == "=")
        for r in fields.requirements
    )
    if labels.empty and not terms:
        return None
    if labels.matches_nothing:
        return lambda obj: False
    label_test = None if labels.empty else labels.matches

    def accept(obj: Mapping[str, Any]) -> bool:
        for read, value, equal in terms:
            if (read(obj) == value) != equal:
                return False
        if label_test is None:
            return True
        meta = obj.get("metadata")
        object_labels = meta.get("labels") if isinstance(meta, dict) else None
        return label_test(object_labels or _NO_LABELS)

    return accept


_NO_LABELS: Mapping[str, str] = {}


def _blank(obj: Mapping[str, Any]) -> str:
    """The value of an accepted label the kind never projects (upstream's missing key)."""
    return ""
