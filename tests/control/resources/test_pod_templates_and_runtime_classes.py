"""core/v1 PodTemplates and node.k8s.io/v1 RuntimeClasses: their declarations, defaults,
validation (upstream's paths and messages, create and update) and ``kubectl get`` columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.printers import column_definitions, row_cells
from control.resources.registry import ResourceType
from control.resources.validation import validate

REGISTRY = builtin_registry()
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CREATED = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def kind(plural: str, group: str = "") -> ResourceType:
    found = REGISTRY.lookup(group=group, version="v1", plural=plural)
    assert found is not None
    return found


POD_TEMPLATE = kind("podtemplates")
RUNTIME_CLASS = kind("runtimeclasses", "node.k8s.io")


def pod_template(name: str = "tmpl", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": CREATED},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}
            | spec,
        },
    }


def runtime_class(name: str = "kata", **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": name, "creationTimestamp": CREATED},
        "handler": "kata",
        **fields,
    }


def errors_of(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple]:
    return [(e.type, e.field, e.detail) for e in validate(rt, obj, old=old)]


# --- declarations -------------------------------------------------------------------


def test_both_kinds_are_declared_as_upstream_serves_them() -> None:
    assert (POD_TEMPLATE.kind, POD_TEMPLATE.namespaced, POD_TEMPLATE.short_names) == ("PodTemplate", True, ())
    assert POD_TEMPLATE.definition == "io.k8s.api.core.v1.PodTemplate"
    assert not POD_TEMPLATE.has_status and POD_TEMPLATE.categories == ()
    assert (RUNTIME_CLASS.kind, RUNTIME_CLASS.namespaced, RUNTIME_CLASS.short_names) == (
        "RuntimeClass",
        False,
        (),
    )
    assert RUNTIME_CLASS.definition == "io.k8s.api.node.v1.RuntimeClass"
    assert len(RUNTIME_CLASS.verbs) == 8 and not RUNTIME_CLASS.has_status


# --- defaults -----------------------------------------------------------------------


def test_a_pod_template_gets_the_pod_spec_defaults() -> None:
    obj = pod_template()
    apply_defaults(POD_TEMPLATE, obj)
    spec = obj["template"]["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30 and spec["schedulerName"] == "default-scheduler"
    assert spec["containers"][0]["terminationMessagePolicy"] == "File"
    assert spec["containers"][0]["imagePullPolicy"] == "Always"  # no tag: latest
    assert "enableServiceLinks" not in spec  # a Pod's own default, not a template's


def test_a_runtime_class_has_no_defaults() -> None:
    obj = runtime_class(scheduling={"tolerations": [{"key": "k", "operator": "Exists"}]})
    before = copy.deepcopy(obj)
    apply_defaults(RUNTIME_CLASS, obj)
    assert obj == before


# --- PodTemplate validation ---------------------------------------------------------


def defaulted_template(**spec: Any) -> dict[str, Any]:
    obj = pod_template(**spec)
    apply_defaults(POD_TEMPLATE, obj)
    return obj


def test_a_valid_pod_template_passes_and_any_restart_policy_is_allowed() -> None:
    assert errors_of(POD_TEMPLATE, defaulted_template()) == []
    assert errors_of(POD_TEMPLATE, defaulted_template(restartPolicy="Never")) == []


def test_the_template_is_validated_as_a_pod_template_spec() -> None:
    obj = defaulted_template()
    obj["metadata"]["name"] = "Bad_Name"
    obj["template"]["metadata"]["labels"] = {"app": "-bad-"}
    obj["template"]["spec"]["containers"][0]["name"] = "Web"
    obj["template"]["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox"}]
    found = errors_of(POD_TEMPLATE, obj)
    fields = [field for _, field, _ in found]
    assert fields[0] == "metadata.name"
    assert "template.labels" in fields  # upstream reports the template's labels at <path>.labels
    assert "template.spec.containers[0].name" in fields
    assert (
        "FieldValueForbidden",
        "template.spec.ephemeralContainers",
        "ephemeral containers not allowed in pod template",
    ) in found


def test_a_pod_template_without_containers_is_invalid() -> None:
    obj = {"metadata": {"name": "empty", "namespace": "default"}}
    apply_defaults(POD_TEMPLATE, obj)
    assert ("FieldValueRequired", "template.spec.containers", "") in errors_of(POD_TEMPLATE, obj)


def test_a_pod_template_update_revalidates_the_template_and_keeps_identity() -> None:
    old = defaulted_template()
    old["metadata"] |= {"uid": "u-1", "resourceVersion": "5"}
    new = copy.deepcopy(old)
    new["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"  # the template is mutable
    assert errors_of(POD_TEMPLATE, new, old) == []
    new["template"]["spec"]["containers"] = []
    new["metadata"]["uid"] = "u-2"
    found = errors_of(POD_TEMPLATE, new, old)
    assert ("FieldValueInvalid", "metadata.uid", "field is immutable") in found
    assert ("FieldValueRequired", "template.spec.containers", "") in found


# --- RuntimeClass validation --------------------------------------------------------


def test_a_valid_runtime_class_passes() -> None:
    obj = runtime_class(
        overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}},
        scheduling={
            "nodeSelector": {"runtime": "kata"},
            "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}],
        },
    )
    assert errors_of(RUNTIME_CLASS, obj) == []


def test_the_handler_must_be_a_dns_label() -> None:
    for handler in ("Kata", "kata.v2", "", "a" * 64):
        found = validate(RUNTIME_CLASS, runtime_class(handler=handler))
        assert [(e.type, e.field, e.value) for e in found] == [("FieldValueInvalid", "handler", handler)]
    found = validate(RUNTIME_CLASS, runtime_class(handler="Kata"))
    assert found[0].detail.startswith("a lowercase RFC 1123 label must consist of lower case alphanumeric")


def test_the_name_must_be_a_dns_subdomain() -> None:
    found = errors_of(RUNTIME_CLASS, runtime_class(name="Kata"))
    assert [(kind_, field) for kind_, field, _ in found] == [("FieldValueInvalid", "metadata.name")]


def test_overhead_is_checked_as_container_limits_at_upstreams_path() -> None:
    obj = runtime_class(overhead={"podFixed": {"cpu": "-1", "example.com/gpu": "0.5", "pods": "1"}})
    found = [(e.field, e.detail) for e in validate(RUNTIME_CLASS, obj)]
    assert ("overhead.limits[cpu]", "must be greater than or equal to 0") in found
    assert ("overhead.limits[example.com/gpu]", "must be an integer") in found
    assert ("overhead.limits[pods]", "must be a standard resource for containers") in found


def test_scheduling_node_selector_and_tolerations_are_validated() -> None:
    obj = runtime_class(
        scheduling={
            "nodeSelector": {"bad key!": "v", "ok": "bad value!"},
            "tolerations": [
                {"operator": "Equal", "value": "x"},
                {"key": "k", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5},
            ],
        }
    )
    found = validate(RUNTIME_CLASS, obj)
    fields = [(e.type, e.field) for e in found]
    # ValidateLabels reports keys and values alike at the map's path
    selector = [e.value for e in found if e.field == "scheduling.nodeSelector"]
    assert selector == ["bad key!", "bad value!"]
    assert ("FieldValueInvalid", "scheduling.tolerations[0].operator") in fields
    assert ("FieldValueInvalid", "scheduling.tolerations[2].effect") in fields
    duplicate = [e for e in found if e.type == "FieldValueDuplicate"]
    assert [e.field for e in duplicate] == ["scheduling.tolerations[2]"]
    assert str(duplicate[0].value) == (
        'core.Toleration{Key:"k", Operator:"Exists", Value:"", Effect:"NoSchedule", '
        "TolerationSeconds:(*int64)(5)}"
    )


def test_the_handler_is_immutable_and_the_rest_is_revalidated_on_update() -> None:
    old = runtime_class()
    old["metadata"] |= {"uid": "u-1", "resourceVersion": "3"}
    new = copy.deepcopy(old)
    new["overhead"] = {"podFixed": {"cpu": "100m"}}
    assert errors_of(RUNTIME_CLASS, new, old) == []
    new["handler"] = "runc"
    assert errors_of(RUNTIME_CLASS, new, old) == [("FieldValueInvalid", "handler", "field is immutable")]
    new["overhead"] = {"podFixed": {"cpu": "-1"}}
    assert [field for _, field, _ in errors_of(RUNTIME_CLASS, new, old)] == [
        "overhead.limits[cpu]",
        "handler",
    ]


# --- Table columns ------------------------------------------------------------------


def test_pod_template_columns_and_row() -> None:
    columns = column_definitions(POD_TEMPLATE)
    assert [(c["name"], c["priority"]) for c in columns] == [
        ("Name", 0),
        ("Containers", 0),
        ("Images", 0),
        ("Pod Labels", 0),
    ]
    assert columns[3]["description"] == "The labels for the pod template."
    assert row_cells(POD_TEMPLATE, pod_template(), now=NOW) == [
        "tmpl",
        "web,log",
        "nginx,busybox",
        "app=web,tier=front",
    ]
    unlabelled = pod_template()
    del unlabelled["template"]["metadata"]
    assert row_cells(POD_TEMPLATE, unlabelled, now=NOW)[3] == "<none>"


def test_runtime_class_columns_and_row() -> None:
    columns = column_definitions(RUNTIME_CLASS)
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Name", "string"),
        ("Handler", "string"),
        ("Age", "string"),
    ]
    assert columns[1]["description"] == ""  # upstream looks the description up in ObjectMeta's docs
    assert row_cells(RUNTIME_CLASS, runtime_class(), now=NOW) == ["kata", "kata", "5m"]
