"""Converting Events between events.k8s.io/v1 and core/v1, the version they are stored in.

Upstream keeps one Event in etcd (``/registry/events/<namespace>/<name>``) and serves it
as core/v1 and as events.k8s.io/v1 (``pkg/apis/events/v1/conversion.go``), so an Event
written by client-go's new events library (kube-scheduler, many controllers) shows in
``kubectl get events`` and ``kubectl describe``, and the reverse. kubelab stores Events in
core/v1's shape; this module is the pair of conversions the registry names in
events.k8s.io's ``StoredAs``.

The two versions differ in field names only: ``regarding`` is ``involvedObject``, ``note``
is ``message``, ``reportingController`` is ``reportingComponent``, ``deprecatedSource`` /
``deprecatedFirstTimestamp`` / ``deprecatedLastTimestamp`` / ``deprecatedCount`` are
``source`` / ``firstTimestamp`` / ``lastTimestamp`` / ``count``; ``eventTime``, ``series``,
``action``, ``reason``, ``type``, ``related`` and ``reportingInstance`` are the same. The
JSON each side writes follows its Go struct tags: core/v1 always has ``involvedObject``,
``reportingComponent`` and ``reportingInstance``; events.k8s.io/v1 always has
``eventTime`` (``null`` when unset) and ``regarding``, and leaves out empty strings and a
zero count. ``metadata`` is shared, not copied: both versions are one object.
"""

from __future__ import annotations

from typing import Any

EVENTS_V1_API_VERSION = "events.k8s.io/v1"

# events.k8s.io/v1 field -> core/v1 field
_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_TO_EVENTS_V1 = {core: new for new, core in _TO_CORE.items()}
# events.k8s.io/v1 fields tagged omitempty whose zero values are left out.
_OMITTED_WHEN_EMPTY = frozenset(
    {"reportingController", "reportingInstance", "action", "reason", "note", "type", "deprecatedCount"}
)
_ZERO = ("", 0, None)


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in core/v1's shape (its storage version)."""
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for key, value in event.items():
        if key in ("apiVersion", "kind"):
            continue
        out[_TO_CORE.get(key, key)] = value
    out.setdefault("involvedObject", {})
    out.setdefault("reportingComponent", "")
    out.setdefault("reportingInstance", "")
    return out


def to_events_v1(event: dict[str, Any]) -> dict[str, Any]:
    """A core/v1 Event (as stored) in events.k8s.io/v1's shape."""
    out: dict[str, Any] = {"apiVersion": EVENTS_V1_API_VERSION, "kind": "Event"}
    for key, value in event.items():
        if key in ("apiVersion", "kind"):
            continue
        renamed = _TO_EVENTS_V1.get(key, key)
        if renamed in _OMITTED_WHEN_EMPTY and value in _ZERO:
            continue
        out[renamed] = value
    out.setdefault("eventTime", None)
    out.setdefault("regarding", {})
    return out
