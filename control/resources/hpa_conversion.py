"""Converting HorizontalPodAutoscalers between autoscaling/v1 and autoscaling/v2, the version they are stored in.

Upstream keeps one HPA in etcd and serves it as autoscaling/v1 and autoscaling/v2
(``pkg/apis/autoscaling/v1/conversion.go``), so ``kubectl autoscale`` objects, the Python
client's ``AutoscalingV1Api`` and v2 clients all see and write the same objects. kubelab
stores HPAs in autoscaling/v2's shape; this module is the pair of conversions the
registry names in autoscaling/v1's ``StoredAs``.

autoscaling/v1 can say one thing about metrics: ``targetCPUUtilizationPercentage``, which
is the v2 Resource metric ``cpu`` with a ``Utilization`` target (and
``currentCPUUtilizationPercentage`` in the status). Everything else v2 holds travels in
annotations, so a v1 client that reads an object and writes it back loses nothing:

* ``autoscaling.alpha.kubernetes.io/metrics``: the other metrics, in autoscaling/v1's
  (v2beta1-like) ``MetricSpec`` JSON (``targetAverageUtilization``, ``metricName`` ...);
* ``autoscaling.alpha.kubernetes.io/current-metrics``: every current metric, in v1's
  ``MetricStatus`` JSON;
* ``autoscaling.alpha.kubernetes.io/conditions``: the conditions;
* ``autoscaling.alpha.kubernetes.io/behavior``: the behavior, as Go's ``json.Marshal`` of
  the *internal* type writes it (no json tags, so ``ScaleUp`` / ``StabilizationWindowSeconds``
  ..., read back case-insensitively as ``encoding/json`` does; upstream keeps this for
  compatibility with older API servers).

The reverse conversion reads those annotations back into fields and drops them; a v1
object without any metric gets upstream's implicit one (cpu at 80% utilization). Both
directions first drop any round-trip annotation already present, so only the ones the
conversion produced are served. Annotation values are compact JSON with Go's escaping of
``<``, ``>`` and ``&``; fields follow the Go structs' order and ``omitempty`` rules, with a
missing non-pointer quantity written as Go's zero quantity ``"0"``.

One deliberate difference: upstream fails the request when the metrics, current-metrics
or conditions annotation does not decode; here such an annotation is ignored (and
dropped), as upstream already does for a malformed behavior annotation, because the
conversion runs where no request can fail on it (the stored object's reads).

``to_storage`` also applies autoscaling/v2's defaults, because upstream applies them when
it decodes the stored object, and kubelab serves stored bytes as they are.
"""

from __future__ import annotations

import json
from typing import Any

from control.resources import defaults

V1_API_VERSION = "autoscaling/v1"
V2_API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"

METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
DEFAULT_CPU_UTILIZATION = 80

# DropRoundTripHorizontalPodAutoscalerAnnotations' list (with autoscaling/v2beta2's two tolerance
# annotations, which no version served here writes), shared with defaults for v2 writes.
_ROUND_TRIP_ANNOTATIONS = defaults.HPA_ROUND_TRIP_ANNOTATIONS

Obj = dict[str, Any]


# --- the two directions -------------------------------------------------------------------------


def to_v1(hpa: Obj) -> Obj:
    """An autoscaling/v2 HPA (as stored) in autoscaling/v1's shape."""
    spec, status = _map(hpa.get("spec")), _map(hpa.get("status"))
    metrics = [m for m in _list(spec.get("metrics")) if isinstance(m, dict)]
    current_metrics = [m for m in _list(status.get("currentMetrics")) if isinstance(m, dict)]
    conditions = _list(status.get("conditions"))

    v1_spec: Obj = {"scaleTargetRef": _reference(spec.get("scaleTargetRef"))}
    _copy(v1_spec, "minReplicas", spec)
    v1_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    for metric in metrics:  # the first cpu Resource metric decides, as upstream's loop breaks
        if metric.get("type") == "Resource" and _map(metric.get("resource")).get("name") == "cpu":
            utilization = _map(_map(metric["resource"]).get("target")).get("averageUtilization")
            if utilization is not None:
                v1_spec["targetCPUUtilizationPercentage"] = utilization
            break

    v1_status = _common_status(status)
    for metric in current_metrics:  # no break upstream: the last cpu utilization wins
        if metric.get("type") == "Resource" and _map(metric.get("resource")).get("name") == "cpu":
            utilization = _map(_map(metric["resource"]).get("current")).get("averageUtilization")
            if utilization is not None:
                v1_status["currentCPUUtilizationPercentage"] = utilization

    annotations: dict[str, str] = {}
    other_metrics = [_metric_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if other_metrics:
        annotations[METRIC_SPECS_ANNOTATION] = _go_json(other_metrics)
    if current_metrics:
        annotations[METRIC_STATUSES_ANNOTATION] = _go_json([_metric_status_to_v1(m) for m in current_metrics])
    if conditions:
        annotations[CONDITIONS_ANNOTATION] = _go_json(conditions)
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        annotations[BEHAVIOR_SPECS_ANNOTATION] = _go_json(_behavior_to_internal(behavior))
    return _object(hpa, api_version=V1_API_VERSION, added=annotations, spec=v1_spec, status=v1_status)


def to_v2(hpa: Obj) -> Obj:
    """An autoscaling/v1 HPA in autoscaling/v2's shape, without v2's defaults (what
    upstream's validation sees: the internal object)."""
    spec, status = _map(hpa.get("spec")), _map(hpa.get("status"))
    annotations = _map(_map(hpa.get("metadata")).get("annotations"))

    metrics: list[Obj] = []
    other = _decoded_list(annotations.get(METRIC_SPECS_ANNOTATION))
    if other is not None:
        metrics.extend(_metric_spec_to_v2(m) for m in other if isinstance(m, dict))
    percentage = spec.get("targetCPUUtilizationPercentage")
    if percentage is not None:  # after the annotation's metrics, as upstream
        metrics.append(_cpu_utilization_metric(percentage))
    if not metrics:
        metrics.append(_cpu_utilization_metric(DEFAULT_CPU_UTILIZATION))
    v2_spec: Obj = {"scaleTargetRef": _reference(spec.get("scaleTargetRef"))}
    _copy(v2_spec, "minReplicas", spec)
    v2_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    v2_spec["metrics"] = metrics
    behavior = _behavior_from_internal(annotations.get(BEHAVIOR_SPECS_ANNOTATION))
    if behavior is not None:
        v2_spec["behavior"] = behavior

    v2_status = _common_status(status)
    if not v2_status["currentReplicas"]:
        del v2_status["currentReplicas"]  # omitempty in v2
    current: list[Obj] | None = None
    if status.get("currentCPUUtilizationPercentage") is not None:
        current = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]},
                },
            }
        ]
    statuses = _decoded_list(annotations.get(METRIC_STATUSES_ANNOTATION))
    if statuses is not None:  # "the ones here have more information"
        current = [_metric_status_to_v2(m) for m in statuses if isinstance(m, dict)]
    v2_status["currentMetrics"] = current
    conditions = _decoded_list(annotations.get(CONDITIONS_ANNOTATION))
    if conditions:
        v2_status["conditions"] = conditions
    return _object(hpa, api_version=V2_API_VERSION, added={}, spec=v2_spec, status=v2_status)


def to_storage(hpa: Obj) -> Obj:
    """An autoscaling/v1 HPA as stored: in v2's shape with v2's defaults."""
    stored = to_v2(hpa)
    defaults.default_horizontal_pod_autoscaler(stored)
    return stored


# --- the object and its status -------------------------------------------------------------------


def _object(hpa: Obj, *, api_version: str, added: dict[str, str], spec: Obj, status: Obj) -> Obj:
    """``hpa``'s metadata with the round-trip annotations replaced by ``added``, and the
    converted spec and status (Go always writes both)."""
    out: Obj = {"apiVersion": api_version, "kind": KIND}
    metadata = hpa.get("metadata")
    if isinstance(metadata, dict):
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and any(key in annotations for key in _ROUND_TRIP_ANNOTATIONS):
            annotations = {k: v for k, v in annotations.items() if k not in _ROUND_TRIP_ANNOTATIONS}
        if added:
            annotations = {**(annotations if isinstance(annotations, dict) else {}), **added}
        if annotations is not metadata.get("annotations"):
            metadata = {k: v for k, v in metadata.items() if k != "annotations"}
            if annotations:
                metadata["annotations"] = annotations
        out["metadata"] = metadata
    elif added:
        out["metadata"] = {"annotations": added}
    out["spec"] = spec
    out["status"] = status
    return out


def _common_status(status: Obj) -> Obj:
    """The status fields both versions have, in the Go structs' order."""
    out: Obj = {}
    _copy(out, "observedGeneration", status)
    _copy(out, "lastScaleTime", status)
    out["currentReplicas"] = status.get("currentReplicas") or 0
    out["desiredReplicas"] = status.get("desiredReplicas") or 0
    return out


def _cpu_utilization_metric(utilization: Any) -> Obj:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def _is_cpu_utilization(metric: Obj) -> bool:
    """The metric ``targetCPUUtilizationPercentage`` stands for (kept out of the annotation)."""
    resource = _map(metric.get("resource"))
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and _map(resource.get("target")).get("averageUtilization") is not None
    )


# --- metric specs and statuses -------------------------------------------------------------------


def _metric_spec_to_v1(metric: Obj) -> Obj:
    """``Convert_autoscaling_MetricSpec_To_v1_MetricSpec``."""
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(source := metric.get("object"), dict):
        target = _map(source.get("target"))
        converted: Obj = {
            "target": _reference(source.get("describedObject")),
            "metricName": _map(source.get("metric")).get("name", ""),
            "targetValue": _quantity(target.get("value")),
        }
        _copy(converted, "selector", _map(source.get("metric")))
        _copy(converted, "averageValue", target)
        out["object"] = converted
    if isinstance(source := metric.get("pods"), dict):
        converted = {
            "metricName": _map(source.get("metric")).get("name", ""),
            "targetAverageValue": _quantity(_map(source.get("target")).get("averageValue")),
        }
        _copy(converted, "selector", _map(source.get("metric")))
        out["pods"] = converted
    for key in ("resource", "containerResource"):
        if isinstance(source := metric.get(key), dict):
            target = _map(source.get("target"))
            converted = {"name": source.get("name", "")}
            _copy(converted, "targetAverageUtilization", target, "averageUtilization")
            _copy(converted, "targetAverageValue", target, "averageValue")
            if key == "containerResource":
                converted["container"] = source.get("container", "")
            out[key] = converted
    if isinstance(source := metric.get("external"), dict):
        target = _map(source.get("target"))
        converted = {"metricName": _map(source.get("metric")).get("name", "")}
        _copy(converted, "metricSelector", _map(source.get("metric")), "selector")
        _copy(converted, "targetValue", target, "value")
        _copy(converted, "targetAverageValue", target, "averageValue")
        out["external"] = converted
    return out


def _metric_spec_to_v2(metric: Obj) -> Obj:
    """``Convert_v1_MetricSpec_To_autoscaling_MetricSpec``."""
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(source := metric.get("object"), dict):
        target: Obj = {"type": "Value" if source.get("averageValue") is None else "AverageValue"}
        target["value"] = _quantity(source.get("targetValue"))  # upstream takes its address: always set
        _copy(target, "averageValue", source)
        out["object"] = {
            "describedObject": _reference(source.get("target")),
            "target": target,
            "metric": _identifier(source, selector_key="selector"),
        }
    if isinstance(source := metric.get("pods"), dict):
        out["pods"] = {
            "metric": _identifier(source, selector_key="selector"),
            "target": {"type": "AverageValue", "averageValue": _quantity(source.get("targetAverageValue"))},
        }
    for key in ("resource", "containerResource"):
        if isinstance(source := metric.get(key), dict):
            utilization = source.get("targetAverageUtilization")
            target = {"type": "AverageValue" if utilization is None else "Utilization"}
            _copy(target, "averageValue", source, "targetAverageValue")
            _copy(target, "averageUtilization", source, "targetAverageUtilization")
            converted: Obj = {"name": source.get("name", ""), "target": target}
            if key == "containerResource":
                converted["container"] = source.get("container", "")
            out[key] = converted
    if isinstance(source := metric.get("external"), dict):
        target = {"type": "AverageValue" if source.get("targetValue") is None else "Value"}
        _copy(target, "value", source, "targetValue")
        _copy(target, "averageValue", source, "targetAverageValue")
        out["external"] = {"metric": _identifier(source, selector_key="metricSelector"), "target": target}
    return out


def _metric_status_to_v1(metric: Obj) -> Obj:
    """``Convert_autoscaling_MetricStatus_To_v1_MetricStatus``."""
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(source := metric.get("object"), dict):
        current = _map(source.get("current"))
        converted: Obj = {
            "target": _reference(source.get("describedObject")),
            "metricName": _map(source.get("metric")).get("name", ""),
            "currentValue": _quantity(current.get("value")),
        }
        _copy(converted, "selector", _map(source.get("metric")))
        _copy(converted, "averageValue", current)
        out["object"] = converted
    if isinstance(source := metric.get("pods"), dict):
        converted = {
            "metricName": _map(source.get("metric")).get("name", ""),
            "currentAverageValue": _quantity(_map(source.get("current")).get("averageValue")),
        }
        _copy(converted, "selector", _map(source.get("metric")))
        out["pods"] = converted
    for key in ("resource", "containerResource"):
        if isinstance(source := metric.get(key), dict):
            current = _map(source.get("current"))
            converted = {"name": source.get("name", "")}
            _copy(converted, "currentAverageUtilization", current, "averageUtilization")
            converted["currentAverageValue"] = _quantity(current.get("averageValue"))
            if key == "containerResource":
                converted["container"] = source.get("container", "")
            out[key] = converted
    if isinstance(source := metric.get("external"), dict):
        current = _map(source.get("current"))
        converted = {"metricName": _map(source.get("metric")).get("name", "")}
        _copy(converted, "metricSelector", _map(source.get("metric")), "selector")
        converted["currentValue"] = _quantity(current.get("value"))
        _copy(converted, "currentAverageValue", current, "averageValue")
        out["external"] = converted
    return out


def _metric_status_to_v2(metric: Obj) -> Obj:
    """``Convert_v1_MetricStatus_To_autoscaling_MetricStatus``."""
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(source := metric.get("object"), dict):
        current: Obj = {"value": _quantity(source.get("currentValue"))}
        _copy(current, "averageValue", source)
        out["object"] = {
            "metric": _identifier(source, selector_key="selector"),
            "current": current,
            "describedObject": _reference(source.get("target")),
        }
    if isinstance(source := metric.get("pods"), dict):
        out["pods"] = {
            "metric": _identifier(source, selector_key="selector"),
            "current": {"averageValue": _quantity(source.get("currentAverageValue"))},
        }
    for key in ("resource", "containerResource"):
        if isinstance(source := metric.get(key), dict):
            current = {"averageValue": _quantity(source.get("currentAverageValue"))}
            _copy(current, "averageUtilization", source, "currentAverageUtilization")
            converted: Obj = {"name": source.get("name", ""), "current": current}
            if key == "containerResource":
                converted["container"] = source.get("container", "")
            out[key] = converted
    if isinstance(source := metric.get("external"), dict):
        current = {"value": _quantity(source.get("currentValue"))}
        _copy(current, "averageValue", source, "currentAverageValue")
        out["external"] = {"metric": _identifier(source, selector_key="metricSelector"), "current": current}
    return out


def _identifier(source: Obj, *, selector_key: str) -> Obj:
    """A v2 MetricIdentifier from a v1 source's ``metricName`` and selector."""
    out: Obj = {"name": source.get("metricName", "")}
    _copy(out, "selector", source, selector_key)
    return out


def _reference(ref: Any) -> Obj:
    """A CrossVersionObjectReference (the same JSON in both versions)."""
    ref = _map(ref)
    out: Obj = {"kind": ref.get("kind", ""), "name": ref.get("name", "")}
    _copy(out, "apiVersion", ref)
    return out


# --- the behavior annotation: Go's internal struct without json tags -----------------------------

_RULE_FIELDS = (
    ("stabilizationWindowSeconds", "StabilizationWindowSeconds"),
    ("selectPolicy", "SelectPolicy"),
    ("policies", "Policies"),
    ("tolerance", "Tolerance"),
)
_POLICY_FIELDS = (("type", "Type", ""), ("value", "Value", 0), ("periodSeconds", "PeriodSeconds", 0))


def _behavior_to_internal(behavior: Obj) -> Obj:
    return {
        "ScaleUp": _rules_to_internal(behavior.get("scaleUp")),
        "ScaleDown": _rules_to_internal(behavior.get("scaleDown")),
    }


def _rules_to_internal(rules: Any) -> Obj | None:
    if not isinstance(rules, dict):
        return None
    out: Obj = {}
    for field, go_field in _RULE_FIELDS:
        value = rules.get(field)
        if field == "policies" and isinstance(value, list):
            value = [
                {go: _map(policy).get(name, zero) for name, go, zero in _POLICY_FIELDS} for policy in value
            ]
        out[go_field] = value
    return out


def _behavior_from_internal(raw: Any) -> Obj | None:
    """The behavior an annotation holds; None when it does not decode or is the zero value."""
    try:
        decoded = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    out: Obj = {}
    for field, go_field in (("scaleUp", "ScaleUp"), ("scaleDown", "ScaleDown")):
        rules = _go_field(decoded, go_field)
        if isinstance(rules, dict):
            out[field] = _rules_from_internal(rules)
    return out or None


def _rules_from_internal(rules: Obj) -> Obj:
    out: Obj = {}
    for field, go_field in _RULE_FIELDS:
        value = _go_field(rules, go_field)
        if value is None:
            continue
        if field == "policies" and isinstance(value, list):
            value = [
                {name: _go_field(_map(policy), go, zero) for name, go, zero in _POLICY_FIELDS}
                for policy in value
            ]
        out[field] = value
    return out


def _go_field(obj: Obj, name: str, zero: Any = None) -> Any:
    """``encoding/json``'s key match: exact, else the first case-insensitive one."""
    if name in obj:
        return obj[name]
    folded = name.lower()
    for key, value in obj.items():
        if key.lower() == folded:
            return value
    return zero


# --- small helpers ---------------------------------------------------------------------------------


def _go_json(value: Any) -> str:
    """Compact JSON as Go's json.Marshal writes it (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _decoded_list(raw: Any) -> list[Any] | None:
    """A JSON array annotation's items; None when absent or malformed."""
    if not isinstance(raw, str):
        return None
    try:
        decoded = json.loads(raw)
    except ValueError:
        return None
    return decoded if isinstance(decoded, list) else None


def _quantity(value: Any) -> Any:
    """A non-pointer resource.Quantity: Go's zero quantity marshals as ``"0"``."""
    return "0" if value is None else value


def _copy(out: Obj, key: str, source: Obj, source_key: str = "") -> None:
    """``out[key] = source[source_key or key]`` unless it is null or missing (omitempty)."""
    value = source.get(source_key or key)
    if value is not None:
        out[key] = value


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
