"""autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscaler conversion as upstream's
pkg/apis/autoscaling/v1/conversion.go: the cpu percentage, the round-trip annotations in v1's
JSON, the implicit cpu metric, status fields, and v1's defaults, validation and Table row."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from control.resources import builtin, defaults, hpa_conversion, printers, validation
from control.resources.hpa_conversion import (
    BEHAVIOR_SPECS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    to_storage,
    to_v1,
    to_v2,
)

REGISTRY = builtin.builtin_registry()
HPA_V1 = REGISTRY.lookup(group="autoscaling", version="v1", plural="horizontalpodautoscalers")
HPA_V2 = REGISTRY.lookup(group="autoscaling", version="v2", plural="horizontalpodautoscalers")

CPU_70 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
}
PODS = {
    "type": "Pods",
    "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}},
}
EXTERNAL = {
    "type": "External",
    "external": {
        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
        "target": {"type": "Value", "value": "30"},
    },
}
OBJECT = {
    "type": "Object",
    "object": {
        "describedObject": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"},
        "target": {"type": "AverageValue", "value": "0", "averageValue": "2"},
        "metric": {"name": "hits"},
    },
}
MEMORY = {
    "type": "ContainerResource",
    "containerResource": {
        "name": "memory",
        "target": {"type": "AverageValue", "averageValue": "500Mi"},
        "container": "app",
    },
}


def stored_v2(*metrics: dict, **status: object) -> dict:
    """A defaulted autoscaling/v2 HPA as kubelab stores it."""
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 2,
            "maxReplicas": 9,
            "metrics": list(metrics),
        },
        "status": {"desiredReplicas": 0, "currentMetrics": None, **status},
    }
    defaults.default_horizontal_pod_autoscaler(hpa)
    return hpa


def test_the_cpu_utilization_metric_is_the_percentage_and_nothing_else_is_annotated() -> None:
    hpa = stored_v2(CPU_70)
    v1 = to_v1(hpa)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "minReplicas": 2,
        "maxReplicas": 9,
        "targetCPUUtilizationPercentage": 70,
    }
    assert v1["metadata"]["annotations"] == {"team": "a"}
    assert v1["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    assert to_storage(v1) == hpa


def test_every_other_metric_travels_in_v1_json_and_comes_back() -> None:
    hpa = stored_v2(PODS, EXTERNAL, OBJECT, MEMORY, CPU_70)
    v1 = to_v1(hpa)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 70
    assert json.loads(v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}},
        {
            "type": "External",
            "external": {
                "metricName": "queue",
                "metricSelector": {"matchLabels": {"q": "jobs"}},
                "targetValue": "30",
            },
        },
        {
            "type": "Object",
            "object": {
                "target": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"},
                "metricName": "hits",
                "targetValue": "0",
                "averageValue": "2",
            },
        },
        {
            "type": "ContainerResource",
            "containerResource": {"name": "memory", "targetAverageValue": "500Mi", "container": "app"},
        },
    ]
    # Go's compact encoding, field order from the v1 structs.
    assert v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION].startswith(
        '[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"1k"}}'
    )
    assert to_storage(v1) == hpa  # the cpu metric came last, as upstream puts it back


def test_the_cpu_metric_goes_last_after_a_round_trip_as_upstream() -> None:
    hpa = stored_v2(CPU_70, PODS)
    back = to_storage(to_v1(hpa))
    assert back["spec"]["metrics"] == [PODS, CPU_70]


def test_a_cpu_metric_with_an_average_value_is_not_the_percentage() -> None:
    cpu_value = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "200m"}},
    }
    v1 = to_v1(stored_v2(cpu_value))
    assert "targetCPUUtilizationPercentage" not in v1["spec"]
    assert json.loads(v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "cpu", "targetAverageValue": "200m"}}
    ]
    assert to_storage(v1)["spec"]["metrics"] == [cpu_value]


def test_status_current_metrics_and_conditions_round_trip() -> None:
    condition = {
        "type": "AbleToScale",
        "status": "True",
        "lastTransitionTime": "2026-11-26T10:00:00Z",
        "reason": "ReadyForNewScale",
        "message": "recommended size matches current size",
    }
    current = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageValue": "120m", "averageUtilization": 40}},
        },
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "800"}}},
    ]
    hpa = stored_v2(
        CPU_70,
        PODS,
        observedGeneration=3,
        lastScaleTime="2026-11-26T09:00:00Z",
        currentReplicas=4,
        desiredReplicas=5,
    )
    hpa["status"]["currentMetrics"] = current
    hpa["status"]["conditions"] = [condition]
    v1 = to_v1(hpa)
    assert v1["status"] == {
        "observedGeneration": 3,
        "lastScaleTime": "2026-11-26T09:00:00Z",
        "currentReplicas": 4,
        "desiredReplicas": 5,
        "currentCPUUtilizationPercentage": 40,
    }
    annotations = v1["metadata"]["annotations"]
    assert json.loads(annotations[METRIC_STATUSES_ANNOTATION]) == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "currentAverageUtilization": 40, "currentAverageValue": "120m"},
        },
        {"type": "Pods", "pods": {"metricName": "qps", "currentAverageValue": "800"}},
    ]
    assert json.loads(annotations[CONDITIONS_ANNOTATION]) == [condition]
    back = to_storage(v1)
    assert back["status"] == hpa["status"]
    assert back["metadata"]["annotations"] == {"team": "a"}


def test_the_behavior_is_kept_as_gos_internal_struct() -> None:
    hpa = stored_v2(CPU_70)
    hpa["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 60, "tolerance": "0.05"}}
    defaults.default_horizontal_pod_autoscaler(hpa)
    v1 = to_v1(hpa)
    behavior = json.loads(v1["metadata"]["annotations"][BEHAVIOR_SPECS_ANNOTATION])
    assert behavior["ScaleDown"] == {
        "StabilizationWindowSeconds": 60,
        "SelectPolicy": "Max",
        "Policies": [{"Type": "Percent", "Value": 100, "PeriodSeconds": 15}],
        "Tolerance": "0.05",
    }
    assert behavior["ScaleUp"]["Tolerance"] is None
    assert to_storage(v1) == hpa


def test_a_behavior_annotation_is_read_case_insensitively_and_bad_ones_are_ignored() -> None:
    v1 = to_v1(stored_v2(CPU_70))
    v1["metadata"]["annotations"][BEHAVIOR_SPECS_ANNOTATION] = (
        '{"scaledown":{"stabilizationwindowseconds":5}}'
    )
    assert to_v2(v1)["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 5}}
    for bad in ("not json", "[]", "{}", '{"ScaleUp":null}'):
        v1["metadata"]["annotations"][BEHAVIOR_SPECS_ANNOTATION] = bad
        converted = to_v2(v1)
        assert "behavior" not in converted["spec"]
        assert converted["metadata"]["annotations"] == {"team": "a"}


def test_malformed_metric_annotations_are_dropped() -> None:
    v1 = to_v1(stored_v2(CPU_70))
    v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION] = "{broken"
    v1["metadata"]["annotations"][METRIC_STATUSES_ANNOTATION] = '{"not": "a list"}'
    v2 = to_v2(v1)
    assert v2["spec"]["metrics"] == [CPU_70]
    assert v2["status"]["currentMetrics"] is None
    assert v2["metadata"]["annotations"] == {"team": "a"}


def test_a_v1_object_without_metrics_gets_the_implicit_cpu_target() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bare"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "bare"}, "maxReplicas": 3},
    }
    original = copy.deepcopy(v1)
    v2 = to_v2(v1)
    assert v1 == original  # conversions never change their argument
    assert v2["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "bare"},
        "maxReplicas": 3,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ],
    }
    assert v2["status"] == {"desiredReplicas": 0, "currentMetrics": None}
    assert "annotations" not in v2["metadata"]
    assert to_storage(v1)["spec"]["minReplicas"] == 1  # v2's defaults, applied as upstream decodes storage


def test_stale_round_trip_annotations_are_replaced_on_the_way_to_v1() -> None:
    hpa = stored_v2(CPU_70)
    hpa["metadata"]["annotations"][METRIC_SPECS_ANNOTATION] = "[]"
    hpa["metadata"]["annotations"][CONDITIONS_ANNOTATION] = "[]"
    assert to_v1(hpa)["metadata"]["annotations"] == {"team": "a"}


def test_go_escapes_html_characters_in_annotations() -> None:
    hpa = stored_v2(
        {
            "type": "Pods",
            "pods": {"metric": {"name": "a<b>&c"}, "target": {"type": "AverageValue", "averageValue": "1"}},
        }
    )
    raw = to_v1(hpa)["metadata"]["annotations"][METRIC_SPECS_ANNOTATION]
    assert "a\\u003cb\\u003e\\u0026c" in raw
    assert to_storage(to_v1(hpa)) == hpa


def test_the_registry_serves_v1_stored_as_v2() -> None:
    assert HPA_V1 is not None and HPA_V2 is not None
    assert HPA_V1.stored_as is not None
    assert HPA_V1.storage_prefix == HPA_V2.storage_prefix == "/registry/autoscaling/horizontalpodautoscalers/"
    assert (
        HPA_V1.short_names == ("hpa",)
        and HPA_V1.definition == "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"
    )
    assert REGISTRY.group_versions().index(("autoscaling", "v2")) < REGISTRY.group_versions().index(
        ("autoscaling", "v1")
    )


def test_v1_defaults_set_only_min_replicas() -> None:
    hpa = {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 2}}
    defaults.apply_defaults(HPA_V1, hpa)
    assert hpa["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "a"},
        "maxReplicas": 2,
        "minReplicas": 1,
    }


def test_v1_validation_reports_the_internal_field_paths() -> None:
    hpa = {
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "a"},
            "minReplicas": 1,
            "maxReplicas": 2,
            "targetCPUUtilizationPercentage": -5,
        },
    }
    problems = validation.validate(HPA_V1, hpa)
    assert [p.message() for p in problems] == [
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0"
    ]
    hpa["spec"]["targetCPUUtilizationPercentage"] = 50
    assert validation.validate(HPA_V1, hpa) == []
    hpa["metadata"]["annotations"] = {
        METRIC_SPECS_ANNOTATION: '[{"type":"Pods","pods":{"metricName":"","targetAverageValue":"1"}}]'
    }
    assert [p.field for p in validation.validate(HPA_V1, hpa)] == ["spec.metrics[0].pods.metric.name"]


def test_both_versions_print_one_row() -> None:
    hpa = stored_v2(CPU_70, PODS)
    now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    hpa["metadata"]["creationTimestamp"] = "2026-11-26T10:00:00Z"
    assert printers.column_definitions(HPA_V1) == printers.column_definitions(HPA_V2)
    v1_row = printers.row_cells(HPA_V1, hpa_conversion.to_v1(hpa), now=now)
    v2_row = printers.row_cells(HPA_V2, hpa, now=now)
    assert v1_row[0] == v2_row[0] == "web"
    assert v1_row[3:] == v2_row[3:]
    assert set(v1_row[2].split(", ")) == set(v2_row[2].split(", ")) == {"cpu: <unknown>/70%", "<unknown>/1k"}


def test_a_v1_update_keeps_the_stored_status_annotations() -> None:
    old = {
        "metadata": {
            "name": "a",
            "resourceVersion": "7",
            "annotations": {CONDITIONS_ANNOTATION: "[]", METRIC_STATUSES_ANNOTATION: "[1]", "team": "a"},
        },
        "spec": {"minReplicas": 1, "maxReplicas": 2},
    }
    new = {
        "metadata": {"name": "a", "resourceVersion": "7", "annotations": {METRIC_STATUSES_ANNOTATION: "[2]"}},
        "spec": {"maxReplicas": 3},
    }
    defaults.apply_defaults(HPA_V1, new, old=old)
    assert new["metadata"]["annotations"] == {CONDITIONS_ANNOTATION: "[]", METRIC_STATUSES_ANNOTATION: "[1]"}
    del old["metadata"]["annotations"]
    defaults.apply_defaults(HPA_V1, new, old=old)
    assert "annotations" not in new["metadata"]


def test_a_v2_write_drops_v1s_round_trip_annotations() -> None:
    hpa = stored_v2(CPU_70)
    hpa["metadata"]["annotations"].update({METRIC_SPECS_ANNOTATION: "[]", BEHAVIOR_SPECS_ANNOTATION: "{}"})
    defaults.apply_defaults(HPA_V2, hpa)
    assert hpa["metadata"]["annotations"] == {"team": "a"}
    hpa["metadata"]["annotations"] = {CONDITIONS_ANNOTATION: "[]"}
    defaults.apply_defaults(HPA_V2, hpa)
    assert "annotations" not in hpa["metadata"]


def test_malformed_objects_convert_without_raising() -> None:
    for spec in (None, "bad", {"metrics": "bad", "scaleTargetRef": 3}, {"metrics": [None, 4]}):
        v1 = to_v1({"metadata": {"name": "x"}, "spec": spec, "status": "bad"})
        assert v1["spec"]["maxReplicas"] == 0 and v1["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
        v2 = to_v2({"metadata": {"annotations": "bad"}, "spec": spec})
        assert v2["spec"]["metrics"] == [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
