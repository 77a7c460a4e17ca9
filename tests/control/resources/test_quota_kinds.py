"""core/v1 ResourceQuota and LimitRange: registry entries, LimitRange defaults, validation with
upstream's messages (pkg/apis/core/validation) and the ``kubectl get quota,limits`` columns; and
the quota usage arithmetic of ``control.resources.quota``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from control.resources import quota
from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.printers import column_definitions, row_cells
from control.resources.registry import ResourceType
from control.resources.validation import Quantity, validate, validate_status_update

REGISTRY = builtin_registry()
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def kind(plural: str) -> ResourceType:
    found = REGISTRY.lookup(group="", version="v1", plural=plural)
    assert found is not None
    return found


RQ = kind("resourcequotas")
LR = kind("limitranges")


def messages(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [error.message() for error in validate(rt, obj, old=old)]


def resource_quota(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "q", "namespace": "default"}, "spec": spec}


def limit_range(*items: dict[str, Any]) -> dict[str, Any]:
    obj = {"metadata": {"name": "l", "namespace": "default"}, "spec": {"limits": list(items)}}
    apply_defaults(LR, obj)
    return obj


def test_registry_entries_match_upstream_discovery() -> None:
    assert RQ.kind == "ResourceQuota" and RQ.short_names == ("quota",) and RQ.has_status and RQ.namespaced
    assert LR.kind == "LimitRange" and LR.short_names == ("limits",) and not LR.has_status and LR.namespaced
    assert len(RQ.verbs) == 8 and len(LR.verbs) == 8


def test_a_valid_quota_passes() -> None:
    valid = resource_quota(
        hard={
            "pods": "10",
            "requests.cpu": "1500m",
            "limits.memory": "2Gi",
            "count/deployments.apps": "3",
            "gold.storageclass.storage.k8s.io/requests.storage": "10Gi",
            "requests.example.com/gpu": "2",
            "hugepages-2Mi": "1Gi",
        }
    )
    assert messages(RQ, valid) == []


def test_quota_resource_names_and_quantities() -> None:
    bad = resource_quota(hard={"foo": "1", "pods": "1500m", "cpu": "-1", "secrets": "x"})
    assert messages(RQ, bad) == [
        'spec.hard[cpu]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
        'spec.hard[foo]: Invalid value: "foo": must be a standard resource for quota',
        'spec.hard[pods]: Invalid value: "1500m": must be an integer',
        'spec.hard[secrets]: Invalid value: "x": quantities must match the regular expression '
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ]


def test_quota_scopes() -> None:
    assert messages(RQ, resource_quota(hard={"pods": "1"}, scopes=["BestEffort", "NotBestEffort"])) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: conflicting scopes'
    ]
    assert messages(RQ, resource_quota(hard={"cpu": "1"}, scopes=["BestEffort"])) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort"}: unsupported scope applied to resource'
    ]
    assert messages(RQ, resource_quota(hard={"services": "1"}, scopes=["Terminating"])) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Terminating"}: unsupported scope applied to resource'
    ]
    assert messages(RQ, resource_quota(hard={"pods": "1"}, scopes=["Sometimes"])) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Sometimes"}: unsupported scope'
    ]


def test_quota_scope_selector() -> None:
    def selector(*expressions: dict[str, Any]) -> dict[str, Any]:
        return resource_quota(hard={"pods": "1"}, scopeSelector={"matchExpressions": list(expressions)})

    assert messages(RQ, selector({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]})) == []
    assert messages(RQ, selector({"scopeName": "PriorityClass", "operator": "In"})) == [
        "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when "
        "`operator` is 'In' or 'NotIn' for scope selector"
    ]
    assert messages(RQ, selector({"scopeName": "BestEffort", "operator": "In", "values": ["x"]})) == [
        "spec.scopeSelector.matchExpressions.operator: Invalid value: \"In\": must be 'Exist' when scope is any "
        "of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
        "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"
    ]
    assert messages(RQ, selector({"scopeName": "Terminating", "operator": "Exists", "values": ["x"]})) == [
        'spec.scopeSelector.matchExpressions.values: Invalid value: []string{"x"}: must be no value when '
        "`operator` is 'Exist' or 'DoesNotExist' for scope selector"
    ]
    assert messages(RQ, selector({"scopeName": "PriorityClass", "operator": "Near", "values": ["x"]})) == [
        'spec.scopeSelector.matchExpressions.operator: Invalid value: "Near": not a valid selector operator'
    ]
    conflicting = messages(
        RQ,
        selector(
            {"scopeName": "Terminating", "operator": "Exists"},
            {"scopeName": "NotTerminating", "operator": "Exists"},
        ),
    )
    assert len(conflicting) == 1 and conflicting[0].endswith(": conflicting scopes")


def test_quota_scopes_are_immutable_and_status_is_validated() -> None:
    old = resource_quota(hard={"pods": "1"}, scopes=["BestEffort"])
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["spec"]["scopes"] = ["NotBestEffort"]
    assert messages(RQ, new, old) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"NotBestEffort"}: field is immutable'
    ]
    with_status = copy.deepcopy(old)
    with_status["status"] = {"hard": {"pods": "1"}, "used": {"pods": "-1", "bogus": "1"}}
    assert [e.message() for e in validate_status_update(RQ, with_status, old=old)] == [
        'status.used[bogus]: Invalid value: "bogus": must be a standard resource type or fully qualified',
        'status.used[bogus]: Invalid value: "bogus": must be a standard resource for quota',
        'status.used[pods]: Invalid value: "-1": must be greater than or equal to 0',
    ]


def test_limit_range_container_defaults_fall_back_to_max_then_min() -> None:
    obj = limit_range(
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
        {"type": "Pod", "max": {"cpu": "4"}},
    )
    container, pod = obj["spec"]["limits"]
    assert container["default"] == {"cpu": "2"}
    assert container["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    assert "default" not in pod and "defaultRequest" not in pod
    assert messages(LR, obj) == []
    bare = limit_range({"type": "Container"})
    assert "default" not in bare["spec"]["limits"][0]


def test_limit_range_ordering_rules() -> None:
    obj = limit_range(
        {
            "type": "Container",
            "min": {"cpu": "2"},
            "max": {"cpu": "1"},
            "default": {"cpu": "500m"},
            "defaultRequest": {"cpu": "700m"},
        }
    )
    assert messages(LR, obj) == [
        'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
        'spec.limits[0].defaultRequest[cpu]: Invalid value: "700m": min value 2 is greater than default request '
        "value 700m",
        'spec.limits[0].defaultRequest[cpu]: Invalid value: "700m": default request value 700m is greater than '
        "default limit value 500m",
        'spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 500m',
    ]
    ratios = limit_range(
        {
            "type": "Container",
            "min": {"cpu": "100m"},
            "max": {"cpu": "200m"},
            "maxLimitRequestRatio": {"cpu": "3"},
        },
        {"type": "Pod", "maxLimitRequestRatio": {"memory": "500m"}},
    )
    assert messages(LR, ratios) == [
        'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000',
        'spec.limits[1].maxLimitRequestRatio[memory]: Invalid value: "500m": ratio 500m is less than 1',
    ]


def test_limit_range_types_and_names() -> None:
    obj = limit_range(
        {"type": "Pod", "default": {"cpu": "1"}, "max": {"storage": "1Gi"}},
        {"type": "Pod", "max": {"cpu": "1"}},
        {"type": "PersistentVolumeClaim", "max": {"cpu": "1"}},
        {"type": "Bogus"},
    )
    assert messages(LR, obj) == [
        'spec.limits[0].max[storage]: Invalid value: "storage": must be a standard resource for containers',
        "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
        'spec.limits[1].type: Duplicate value: "Pod"',
        "spec.limits[2].limits: Required value: either minimum or maximum storage value is required, but "
        "neither was provided",
        'spec.limits[3].type: Invalid value: "Bogus": must be a standard limit type or fully qualified',
    ]


def test_kubectl_get_columns() -> None:
    assert [c["name"] for c in column_definitions(RQ)] == ["Name", "Age", "Request", "Limit"]
    assert [(c["name"], c["type"]) for c in column_definitions(LR)] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    obj = resource_quota(hard={"pods": "10", "requests.cpu": "2", "limits.memory": "1Gi", "limits.cpu": "4"})
    obj["metadata"]["creationTimestamp"] = "2024-06-01T11:00:00Z"
    obj["status"] = {
        "hard": obj["spec"]["hard"],
        "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"},
    }
    assert row_cells(RQ, obj, now=NOW) == [
        "q",
        "60m",
        "pods: 3/10, requests.cpu: 500m/2",
        "limits.cpu: 1/4, limits.memory: 0/1Gi",
    ]
    fresh = resource_quota(hard={"pods": "1"})
    fresh["metadata"]["creationTimestamp"] = "2024-06-01T11:59:00Z"
    assert row_cells(RQ, fresh, now=NOW) == ["q", "60s", "pods: 0/0", ""]
    ranges = limit_range({"type": "Container"})
    ranges["metadata"]["creationTimestamp"] = "2024-06-01T11:00:00Z"
    assert row_cells(LR, ranges, now=NOW) == ["l", "2024-06-01T11:00:00Z"]


def q(text: str) -> Quantity:
    return Quantity.parse(text)


def test_usage_of_pods_services_and_claims() -> None:
    pods = quota.Evaluator(group="", plural="pods")
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "resources": {
                        "requests": {"cpu": "250m", "example.com/gpu": "1"},
                        "limits": {"memory": "1Gi"},
                    },
                },
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
        }
    }
    assert quota.render_list(pods.usage(pod, now=NOW)) == {
        "count/pods": "1",
        "cpu": "2",
        "limits.memory": "1Gi",
        "pods": "1",
        "requests.cpu": "2",
        "requests.example.com/gpu": "1",
    }
    finished = {**pod, "status": {"phase": "Succeeded"}}
    assert quota.render_list(pods.usage(finished, now=NOW)) == {"count/pods": "1"}
    services = quota.Evaluator(group="", plural="services")
    balancer = {"spec": {"type": "LoadBalancer", "ports": [{"port": 1}, {"port": 2}]}}
    assert quota.render_list(services.usage(balancer, now=NOW)) == {
        "count/services": "1",
        "services": "1",
        "services.loadbalancers": "1",
        "services.nodeports": "2",
    }
    claims = quota.Evaluator(group="", plural="persistentvolumeclaims")
    claim = {"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1.5"}}}}
    assert quota.render_list(claims.usage(claim, now=NOW)) == {
        "count/persistentvolumeclaims": "1",
        "fast.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "fast.storageclass.storage.k8s.io/requests.storage": "2",
        "persistentvolumeclaims": "1",
        "requests.storage": "2",
    }
    counter = quota.Evaluator(group="apps", plural="deployments")
    assert quota.render_list(counter.usage({}, now=NOW)) == {"count/deployments.apps": "1"}
    assert counter.matching_resources(["count/deployments.apps", "pods"]) == ["count/deployments.apps"]


def test_qos_class_as_upstream() -> None:
    def with_resources(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": str(i), "resources": r} for i, r in enumerate(resources)]}}

    assert quota.qos_class(with_resources({})) == "BestEffort"
    assert quota.qos_class(with_resources({"requests": {"cpu": "0"}})) == "BestEffort"
    both = {"cpu": "1", "memory": "1Gi"}
    assert quota.qos_class(with_resources({"requests": both, "limits": both})) == "Guaranteed"
    assert quota.qos_class(
        with_resources({"limits": both}, {"limits": {"cpu": "1000m", "memory": "1Gi"}})
    ) == (
        "Burstable"  # no requests given here: defaulting copies limits, this pod skipped it
    )
    assert quota.qos_class(with_resources({"requests": both, "limits": {"cpu": "1"}})) == "Burstable"
    assert quota.is_best_effort(with_resources({}, {"requests": {"example.com/gpu": "1"}}))


def test_resource_list_arithmetic() -> None:
    a = {"cpu": q("500m"), "memory": q("1Gi")}
    assert quota.render_list(quota.add(a, {"cpu": q("1")})) == {"cpu": "1500m", "memory": "1Gi"}
    assert quota.render_list(quota.add({"s": q("0")}, {"s": q("1536Mi")})) == {"s": "1536Mi"}
    assert quota.render_list(quota.subtract_non_negative(a, {"cpu": q("2")})) == {"cpu": "0", "memory": "1Gi"}
    assert quota.less_than_or_equal({"cpu": q("2"), "pods": q("1")}, {"cpu": q("1")}) == (False, ["cpu"])
    assert quota.less_than_or_equal({"cpu": q("1")}, {"cpu": q("1")}) == (True, [])
    assert quota.pretty({"pods": q("1"), "cpu": q("100m")}) == "cpu=100m,pods=1"
    assert quota.negative({"cpu": q("-1"), "pods": q("1")}) == ["cpu"]
    assert quota.parse_list({"cpu": "bad", "pods": 2}) == {"pods": q("2")}
    assert quota.counted_kinds(["pods", "requests.storage", "count/jobs.batch", "secrets"]) == [
        ("", "pods"),
        ("", "persistentvolumeclaims"),
        ("batch", "jobs"),
        ("", "secrets"),
    ]
