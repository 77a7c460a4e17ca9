"""Field labels per kind: what kube-apiserver accepts, the 400 it gives, and what each reads.

The accepted lists and messages come from k8s.io/kubernetes pkg/apis/*/*/conversion.go
(AddFieldLabelConversionFunc), runtime.DefaultMetaV1FieldSelectorConversion and
apiextensions-apiserver's crConverter; the values from pkg/registry/*/*/strategy.go
(ToSelectableFields).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from control.resources.fields import (
    check_field_selector,
    field_getter,
    object_filter,
    supported_field_labels,
)
from control.resources.registry import ResourceType
from control.resources.selectors import (
    EVERYTHING,
    NOTHING,
    FieldSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)


def _rt(
    group: str, kind: str, *, namespaced: bool = True, schema: dict[str, Any] | None = None
) -> ResourceType:
    plural = kind.lower() + "s"
    return ResourceType(
        group=group,
        version="v1",
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        schema=schema,
    )


POD = _rt("", "Pod")
NODE = _rt("", "Node", namespaced=False)
NAMESPACE = _rt("", "Namespace", namespaced=False)
EVENT = _rt("", "Event")
NEW_EVENT = _rt("events.k8s.io", "Event")
JOB = _rt("batch", "Job")
SECRET = _rt("", "Secret")
SERVICE = _rt("", "Service")
RC = _rt("", "ReplicationController")
DEPLOYMENT = _rt("apps", "Deployment")
REPLICA_SET = _rt("apps", "ReplicaSet")
CLUSTER_ROLE = _rt("rbac.authorization.k8s.io", "ClusterRole", namespaced=False)
CRD_NAMESPACED = _rt("example.com", "Widget", schema={"type": "object"})
CRD_CLUSTER = _rt("example.com", "Gadget", namespaced=False, schema={"type": "object"})


def test_pod_labels() -> None:
    assert supported_field_labels(POD) == (
        "metadata.name",
        "metadata.namespace",
        "spec.host",
        "spec.hostNetwork",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.nominatedNodeName",
        "status.phase",
        "status.podIP",
        "status.podIPs",
    )


@pytest.mark.parametrize(
    ("rt", "labels"),
    [
        (NODE, ("metadata.name", "spec.unschedulable")),
        (NAMESPACE, ("metadata.name", "status.phase")),
        (SECRET, ("metadata.name", "metadata.namespace", "type")),
        (SERVICE, ("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type")),
        (RC, ("metadata.name", "metadata.namespace", "status.replicas")),
        (JOB, ("metadata.name", "metadata.namespace", "status.successful")),
        # apps/v1 registers no conversion: status.replicas is not selectable on ReplicaSets.
        (REPLICA_SET, ("metadata.name", "metadata.namespace")),
        (DEPLOYMENT, ("metadata.name", "metadata.namespace")),
        (CLUSTER_ROLE, ("metadata.name", "metadata.namespace")),
        (CRD_NAMESPACED, ("metadata.name", "metadata.namespace")),
        (CRD_CLUSTER, ("metadata.name",)),
    ],
)
def test_supported_labels(rt: ResourceType, labels: tuple[str, ...]) -> None:
    assert supported_field_labels(rt) == labels


def test_event_labels_core_and_events_k8s_io() -> None:
    core = set(supported_field_labels(EVENT))
    assert {
        "involvedObject.kind",
        "involvedObject.uid",
        "reason",
        "reportingComponent",
        "source",
        "type",
    } <= core
    assert "regarding.kind" not in core
    new = set(supported_field_labels(NEW_EVENT))
    assert {"regarding.kind", "regarding.fieldPath", "reportingController", "source", "reason", "type"} <= new
    assert "involvedObject.kind" not in new and "reportingComponent" not in new


@pytest.mark.parametrize(
    ("rt", "text", "message"),
    [
        (POD, "spec.foo=x", "field label not supported: spec.foo"),
        (POD, "metadata.name=a,spec.containers=x", "field label not supported: spec.containers"),
        (NODE, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        (NAMESPACE, "name=x", "field label not supported: name"),
        (EVENT, "regarding.kind=Pod", "field label not supported: regarding.kind"),
        (NEW_EVENT, "involvedObject.kind=Pod", "field label not supported: involvedObject.kind"),
        (JOB, "status.active=1", 'field label "status.active" not supported for Job'),
        (
            REPLICA_SET,
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (CRD_CLUSTER, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        (CRD_NAMESPACED, "spec.size=1", "field label not supported: spec.size"),
    ],
)
def test_unsupported_labels_get_upstreams_message(rt: ResourceType, text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        check_field_selector(rt, parse_field_selector(text))
    assert str(caught.value) == message


def test_accepted_selectors_pass_the_check() -> None:
    check_field_selector(POD, parse_field_selector("spec.host=n1,status.podIPs=1.2.3.4"))
    check_field_selector(CLUSTER_ROLE, parse_field_selector("metadata.namespace="))
    check_field_selector(CRD_NAMESPACED, parse_field_selector("metadata.namespace=ns,metadata.name=a"))
    check_field_selector(POD, FieldSelector())


POD_OBJ = {
    "metadata": {"name": "web-1", "namespace": "prod"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIPs": [{"ip": "127.244.1.5"}], "nominatedNodeName": ""},
}


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("metadata.name", "web-1"),
        ("metadata.namespace", "prod"),
        ("spec.nodeName", "n1"),
        ("spec.host", "n1"),  # legacy alias of spec.nodeName
        ("spec.restartPolicy", "Always"),
        ("spec.schedulerName", "default-scheduler"),
        ("spec.serviceAccountName", ""),
        ("spec.hostNetwork", "false"),  # unset bool reads false
        ("status.phase", "Running"),
        ("status.podIP", "127.244.1.5"),  # from podIPs[0]
        ("status.podIPs", ""),  # accepted, never projected
        ("status.nominatedNodeName", ""),
        ("spec.unknown", ""),
    ],
)
def test_pod_values(label: str, value: str) -> None:
    assert field_getter(POD)(POD_OBJ, label) == value


def test_pod_ip_and_host_network_variants() -> None:
    get = field_getter(POD)
    assert (
        get({"status": {"podIP": "127.0.0.9", "podIPs": [{"ip": "127.0.0.8"}]}}, "status.podIP")
        == "127.0.0.9"
    )
    assert get({"spec": {"hostNetwork": True}}, "spec.hostNetwork") == "true"
    assert get({}, "status.podIP") == ""


@pytest.mark.parametrize(
    ("rt", "obj", "label", "value"),
    [
        (NODE, {"spec": {"unschedulable": True}}, "spec.unschedulable", "true"),
        (NODE, {"spec": {}}, "spec.unschedulable", "false"),
        (NODE, {"metadata": {"name": "n1", "namespace": "x"}}, "metadata.name", "n1"),
        (NAMESPACE, {"status": {"phase": "Terminating"}}, "status.phase", "Terminating"),
        (SECRET, {"type": "kubernetes.io/tls"}, "type", "kubernetes.io/tls"),
        (
            SERVICE,
            {"spec": {"clusterIP": "127.96.0.10", "type": "ClusterIP"}},
            "spec.clusterIP",
            "127.96.0.10",
        ),
        (SERVICE, {"spec": {"type": "NodePort"}}, "spec.type", "NodePort"),
        (JOB, {"status": {"succeeded": 3}}, "status.successful", "3"),
        (JOB, {"status": {}}, "status.successful", "0"),  # Go's zero value
        (RC, {"status": {"replicas": 2}}, "status.replicas", "2"),
        # cluster-scoped kinds have no namespace in their selectable set
        (CLUSTER_ROLE, {"metadata": {"name": "r", "namespace": "x"}}, "metadata.namespace", ""),
        (CRD_NAMESPACED, {"metadata": {"name": "w", "namespace": "ns"}}, "metadata.namespace", "ns"),
    ],
)
def test_kind_values(rt: ResourceType, obj: dict[str, Any], label: str, value: str) -> None:
    assert field_getter(rt)(obj, label) == value


def test_event_values() -> None:
    core = {
        "involvedObject": {
            "kind": "Pod",
            "name": "web-1",
            "namespace": "prod",
            "uid": "u1",
            "fieldPath": "spec",
        },
        "reason": "BackOff",
        "type": "Warning",
        "source": {"component": "kubelet"},
        "reportingComponent": "kubelet-rc",
    }
    get = field_getter(EVENT)
    assert get(core, "involvedObject.kind") == "Pod"
    assert get(core, "involvedObject.uid") == "u1"
    assert get(core, "source") == "kubelet"
    assert get(core, "reportingComponent") == "kubelet-rc"
    assert get({"reportingComponent": "scheduler"}, "source") == "scheduler"  # component falls back

    new = {
        "regarding": {"kind": "Pod", "name": "web-1", "resourceVersion": "7"},
        "reason": "Scheduled",
        "type": "Normal",
        "reportingController": "default-scheduler",
    }
    get_new = field_getter(NEW_EVENT)
    assert get_new(new, "regarding.kind") == "Pod"
    assert get_new(new, "regarding.resourceVersion") == "7"
    assert get_new(new, "reportingController") == "default-scheduler"
    assert get_new(new, "source") == "default-scheduler"
    assert get_new({"deprecatedSource": {"component": "kubelet"}}, "source") == "kubelet"


def test_object_filter_combines_labels_and_fields() -> None:
    pods = [
        {
            "metadata": {"name": "a", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
        },
        {
            "metadata": {"name": "b", "labels": {"app": "web"}},
            "spec": {"nodeName": "n2"},
            "status": {"phase": "Running"},
        },
        {
            "metadata": {"name": "c", "labels": {"app": "db"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
        },
        {"metadata": {"name": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Failed"}},
    ]
    accept = object_filter(
        POD, labels=parse_label_selector("app=web"), fields=parse_field_selector("spec.host=n1")
    )
    assert accept is not None
    assert [p["metadata"]["name"] for p in pods if accept(p)] == ["a"]

    no_app = object_filter(POD, labels=parse_label_selector("!app"), fields=parse_field_selector(""))
    assert no_app is not None
    assert [p["metadata"]["name"] for p in pods if no_app(p)] == ["d"]

    not_failed = object_filter(POD, labels=EVERYTHING, fields=parse_field_selector("status.phase!=Failed"))
    assert not_failed is not None
    assert [p["metadata"]["name"] for p in pods if not_failed(p)] == ["a", "b", "c"]

    ips = object_filter(POD, labels=EVERYTHING, fields=parse_field_selector("status.podIPs=1.2.3.4"))
    assert ips is not None and not any(ips(p) for p in pods)


def test_object_filter_edge_cases() -> None:
    assert object_filter(POD, labels=EVERYTHING, fields=FieldSelector()) is None
    nothing = object_filter(POD, labels=NOTHING, fields=FieldSelector())
    assert nothing is not None and not nothing({"metadata": {"labels": {}}})
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.bogus$"):
        object_filter(POD, labels=EVERYTHING, fields=parse_field_selector("spec.bogus=1"))
    accept = object_filter(POD, labels=parse_label_selector("app"), fields=FieldSelector())
    assert accept is not None
    assert not accept({"metadata": None})
    assert not accept({})


def test_filtering_ten_thousand_pods_is_fast() -> None:
    pods = [
        {
            "metadata": {
                "name": f"pod-{i}",
                "namespace": f"ns-{i % 10}",
                "labels": {
                    "app": f"app-{i % 20}",
                    "tier": ("web", "db", "cache")[i % 3],
                    "pod-template-hash": str(i),
                },
            },
            "spec": {"nodeName": f"node-{i % 50}", "restartPolicy": "Always"},
            "status": {
                "phase": ("Running", "Pending", "Failed")[i % 3],
                "podIP": f"127.244.{i // 250}.{i % 250}",
            },
        }
        for i in range(10_000)
    ]
    labels = parse_label_selector("app in (app-1,app-2,app-3),tier!=cache")
    fields = parse_field_selector("status.phase!=Failed,metadata.namespace=ns-1")
    start = time.perf_counter()
    accept = object_filter(POD, labels=labels, fields=fields)
    assert accept is not None
    matched = [pod for pod in pods if accept(pod)]
    elapsed = time.perf_counter() - start
    print(f"\nfiltered 10,000 pods by label and field selectors in {elapsed * 1000:.1f} ms")
    expected = [
        pod
        for pod in pods
        if pod["metadata"]["labels"]["app"] in ("app-1", "app-2", "app-3")
        and pod["metadata"]["labels"]["tier"] != "cache"
        and pod["status"]["phase"] != "Failed"
        and pod["metadata"]["namespace"] == "ns-1"
    ]
    assert matched == expected and matched
