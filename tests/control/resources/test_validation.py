"""Validation, checked message by message against upstream's validation code.

Each case names the rule it exercises; the expected strings are what kube-apiserver 1.33
puts in the 422's causes (``field: Type: value: detail``) for the same object, taken from
k8s.io/apimachinery and pkg/apis/*/validation. Objects are defaulted first, as the
server does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.registry import ResourceType
from control.resources.validation import (
    InvalidQuantityError,
    Quantity,
    cron_schedule_error,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    is_qualified_name,
    regex_error,
    validate,
    validate_status_update,
)
from tests.control.certificate_requests import new_request

REGISTRY = builtin_registry()

DNS_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
POD_UPDATE = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def rt(api_version: str, plural: str) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    found = REGISTRY.lookup(group=group, version=version, plural=plural)
    assert found is not None
    return found


def messages(
    api_version: str, plural: str, obj: dict[str, Any], *, old: dict[str, Any] | None = None
) -> list[str]:
    obj = copy.deepcopy(obj)
    kind = rt(api_version, plural)
    apply_defaults(kind, obj, old=old)
    return [error.message() for error in validate(kind, obj, old=old)]


def stored(api_version: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the server stores it: defaulted, with a resourceVersion."""
    obj = copy.deepcopy(obj)
    apply_defaults(rt(api_version, plural), obj)
    obj["metadata"]["resourceVersion"] = "10"
    return obj


def changed(obj: dict[str, Any], edit: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    edit(obj)
    return obj


def meta(name: str = "web", namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    metadata = {"name": name, "uid": "uid-1", "creationTimestamp": "2025-01-02T03:04:05Z", **extra}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def pod_spec(**extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}], **extra}


def pod_template(**extra: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(**extra)}


# Minimal valid objects, one per kind.
VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "pods"): {"metadata": meta(), "spec": pod_spec()},
    ("v1", "persistentvolumes"): {
        "metadata": {"name": "pv-1"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/srv/pv-1"},
        },
    },
    ("v1", "persistentvolumeclaims"): {
        "metadata": meta(),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    },
    ("v1", "services"): {
        "metadata": meta(),
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    },
    ("v1", "namespaces"): {"metadata": meta("team-a", None)},
    ("v1", "nodes"): {
        "metadata": meta("node-1", None),
        "spec": {"podCIDRs": ["127.244.1.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    },
    ("v1", "componentstatuses"): {  # never written (get and list only): the generic checks
        "metadata": {"name": "scheduler"},
        "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
    },
    ("v1", "configmaps"): {
        "metadata": meta("cfg"),
        "data": {"app.conf": "x=1"},
        "binaryData": {"blob": "AAE="},
    },
    ("v1", "secrets"): {"metadata": meta("sec"), "data": {"password": "aHVudGVyMg=="}},
    ("v1", "resourcequotas"): {
        "metadata": meta("compute"),
        "spec": {"hard": {"pods": "10", "requests.cpu": "2"}, "scopes": ["NotBestEffort"]},
    },
    ("v1", "limitranges"): {
        "metadata": meta("defaults"),
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "defaultRequest": {"cpu": "100m"}}]},
    },
    ("v1", "serviceaccounts"): {"metadata": meta("bot")},
    ("v1", "endpoints"): {
        "metadata": meta(),
        "subsets": [{"addresses": [{"ip": "127.244.1.5"}], "ports": [{"port": 80}]}],
    },
    ("v1", "events"): {
        "metadata": meta("web.17a3f0c1", "default"),
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Started",
        "message": "Started container web",
        "type": "Normal",
    },
    ("v1", "bindings"): {"metadata": meta(), "target": {"kind": "Node", "name": "node-1"}},
    ("apps/v1", "deployments"): {
        "metadata": meta(),
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()},
    },
    ("apps/v1", "replicasets"): {
        "metadata": meta(),
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()},
    },
    ("v1", "replicationcontrollers"): {
        "metadata": meta(),
        "spec": {"selector": {"app": "web"}, "template": pod_template()},
    },
    ("apps/v1", "daemonsets"): {
        "metadata": meta(),
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()},
    },
    ("apps/v1", "statefulsets"): {
        "metadata": meta(),
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(),
        },
    },
    ("apps/v1", "controllerrevisions"): {"metadata": meta("web-1"), "data": {"spec": {}}, "revision": 1},
    ("batch/v1", "jobs"): {"metadata": meta("pi"), "spec": {"template": pod_template(restartPolicy="Never")}},
    ("batch/v1", "cronjobs"): {
        "metadata": meta("nightly"),
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": pod_template(restartPolicy="OnFailure")}},
        },
    },
    ("autoscaling/v2", "horizontalpodautoscalers"): {
        "metadata": meta(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
        },
    },
    ("autoscaling/v1", "horizontalpodautoscalers"): {
        "metadata": meta(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 60,
        },
    },
    ("networking.k8s.io/v1", "ingresses"): {
        "metadata": meta(),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
            "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
        },
    },
    ("networking.k8s.io/v1", "ingressclasses"): {
        "metadata": meta("nginx", None),
        "spec": {"controller": "k8s.io/ingress-nginx"},
    },
    ("networking.k8s.io/v1", "networkpolicies"): {
        "metadata": meta("deny"),
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
        },
    },
    ("discovery.k8s.io/v1", "endpointslices"): {
        "metadata": meta("web-abc"),
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.244.1.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80}],
    },
    ("rbac.authorization.k8s.io/v1", "roles"): {
        "metadata": meta("pod-reader"),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    },
    ("rbac.authorization.k8s.io/v1", "clusterroles"): {
        "metadata": meta("system:metrics", None),
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
    },
    ("rbac.authorization.k8s.io/v1", "rolebindings"): {
        "metadata": meta("read-pods"),
        "roleRef": {"kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}],
    },
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"): {
        "metadata": meta("read-metrics", None),
        "roleRef": {"kind": "ClusterRole", "name": "system:metrics"},
        "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}],
    },
    ("certificates.k8s.io/v1", "certificatesigningrequests"): {
        "metadata": meta("jane", None),
        "spec": {
            "request": new_request("jane", ["developers"]).encoded,
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "username": "jane",
        },
    },
    ("coordination.k8s.io/v1", "leases"): {
        "metadata": meta("node-1", "kube-node-lease"),
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40},
    },
    ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations"): {
        "metadata": meta("injector", None),
        "webhooks": [
            {
                "name": "inject.example.com",
                "clientConfig": {"service": {"namespace": "injector", "name": "webhook", "path": "/mutate"}},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "IfNeeded",
            }
        ],
    },
    ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations"): {
        "metadata": meta("policy", None),
        "webhooks": [
            {
                "name": "validate.example.com",
                "clientConfig": {"url": "https://policy.example.com/validate"},
                "rules": [
                    {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
                ],
                "sideEffects": "NoneOnDryRun",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "namespaceSelector": {"matchLabels": {"policy": "on"}},
            }
        ],
    },
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies"): {
        "metadata": meta("replica-limit.example.com", None),
        "spec": {
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {
                "resourceRules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [{"expression": "object.spec.replicas <= int(params.data.max)"}],
        },
    },
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings"): {
        "metadata": meta("replica-limit-binding.example.com", None),
        "spec": {
            "policyName": "replica-limit.example.com",
            "paramRef": {"name": "limits", "namespace": "default", "parameterNotFoundAction": "Deny"},
            "validationActions": ["Deny", "Audit"],
        },
    },
    ("apiregistration.k8s.io/v1", "apiservices"): {
        "metadata": meta("v1beta1.metrics.k8s.io", None),
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "service": {"namespace": "kube-system", "name": "metrics-server"},
            "insecureSkipTLSVerify": True,
        },
    },
    ("events.k8s.io/v1", "events"): {
        "metadata": meta("web.17a3f0c1"),
        "eventTime": "2025-01-02T03:04:05.000000Z",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Scheduled",
        "note": "Successfully assigned default/web to node-1",
        "type": "Normal",
        "action": "Binding",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-node-1",
    },
    ("policy/v1", "poddisruptionbudgets"): {
        "metadata": meta(),
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
    },
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"): {
        "metadata": meta("widgets.example.com", None),
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    },
    ("storage.k8s.io/v1", "storageclasses"): {
        "metadata": meta("local", None),
        "provisioner": "rancher.io/local-path",
        "parameters": {"type": "fast"},
    },
    ("scheduling.k8s.io/v1", "priorityclasses"): {"metadata": meta("high", None), "value": 1000},
    ("v1", "podtemplates"): {"metadata": meta(), "template": {"spec": pod_spec()}},
    ("node.k8s.io/v1", "runtimeclasses"): {"metadata": meta("runc", None), "handler": "runc"},
    # Reviews: never stored, metadata empty (as kubectl sends them).
    ("authentication.k8s.io/v1", "tokenreviews"): {
        "metadata": {"creationTimestamp": None},
        "spec": {"token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "audiences": ["https://kubernetes.default.svc"]},
    },
    ("authentication.k8s.io/v1", "selfsubjectreviews"): {"metadata": {"creationTimestamp": None}},
    ("authorization.k8s.io/v1", "selfsubjectaccessreviews"): {
        "metadata": {"creationTimestamp": None},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
    },
    ("authorization.k8s.io/v1", "subjectaccessreviews"): {
        "metadata": {},
        "spec": {
            "user": "alice",
            "groups": ["dev"],
            "extra": {"scopes": ["view"]},
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
        },
    },
    ("authorization.k8s.io/v1", "localsubjectaccessreviews"): {
        "metadata": {"namespace": "team-a"},
        "spec": {
            "groups": ["dev"],
            "resourceAttributes": {
                "namespace": "team-a",
                "verb": "list",
                "group": "apps",
                "resource": "deployments",
                "labelSelector": {"rawSelector": "app=web"},
            },
        },
    },
    ("authorization.k8s.io/v1", "selfsubjectrulesreviews"): {
        "metadata": {},
        "spec": {"namespace": "default"},
    },
}
VIRTUAL = {(kind.api_version, kind.plural) for kind in REGISTRY if kind.virtual}


def test_every_builtin_kind_has_a_valid_example() -> None:
    from control.resources.builtin import BUILTIN_TYPES

    assert sorted(VALID) == sorted((kind.api_version, kind.plural) for kind in BUILTIN_TYPES)


@pytest.mark.parametrize("key", sorted(VALID), ids=lambda key: f"{key[0]}/{key[1]}")
def test_valid_objects_pass_on_create_and_on_unchanged_update(key: tuple[str, str]) -> None:
    obj = VALID[key]
    assert messages(*key, obj) == []
    if key in VIRTUAL:
        return  # reviews are only ever created: there is no stored object to update
    before = stored(*key, obj)
    after = copy.deepcopy(before)
    after["metadata"].setdefault("labels", {})["touched"] = "yes"
    assert messages(*key, after, old=before) == []


# --- ObjectMeta ----------------------------------------------------------------------------

POD = ("v1", "pods")
POD_OBJ = VALID[POD]


def set_meta(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["metadata"].update(values)


META_CASES = [
    (
        "name must be a subdomain",
        POD,
        set_meta(name="Web_1"),
        [f'metadata.name: Invalid value: "Web_1": {SUBDOMAIN}'],
    ),
    (
        "subdomain names are at most 253 characters",
        POD,
        set_meta(name="a" * 254),
        [f'metadata.name: Invalid value: "{"a" * 254}": must be no more than 253 characters'],
    ),
    (
        "name is required",
        POD,
        lambda obj: obj["metadata"].pop("name"),
        ["metadata.name: Required value: name or generateName is required"],
    ),
    (
        "generateName is validated as a prefix",
        POD,
        set_meta(generateName="Web-", name="Web-x7k2p"),
        [
            f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN}',
            f'metadata.name: Invalid value: "Web-x7k2p": {SUBDOMAIN}',
        ],
    ),
    (
        "namespace is required",
        POD,
        lambda obj: obj["metadata"].pop("namespace"),
        ["metadata.namespace: Required value"],
    ),
    (
        "namespace must be a label",
        POD,
        set_meta(namespace="a.b"),
        ['metadata.namespace: Invalid value: "a.b": must not contain dots'],
    ),
    (
        "cluster-scoped kinds forbid a namespace",
        ("v1", "nodes"),
        set_meta(namespace="default"),
        ["metadata.namespace: Forbidden: not allowed on this type"],
    ),
    (
        "namespace names are DNS-1123 labels",
        ("v1", "namespaces"),
        set_meta(name="team.a", labels={}),
        ['metadata.name: Invalid value: "team.a": must not contain dots'],
    ),
    (
        "service names are DNS-1035 labels",
        ("v1", "services"),
        set_meta(name="1web"),
        [f'metadata.name: Invalid value: "1web": {DNS1035}'],
    ),
    (
        "statefulset names are DNS-1123 labels",
        ("apps/v1", "statefulsets"),
        set_meta(name="web.v2"),
        ['metadata.name: Invalid value: "web.v2": must not contain dots'],
    ),
    (
        "rbac names are path segments",
        ("rbac.authorization.k8s.io/v1", "roles"),
        set_meta(name="a/b%c"),
        [
            "metadata.name: Invalid value: \"a/b%c\": may not contain '/'",
            "metadata.name: Invalid value: \"a/b%c\": may not contain '%'",
        ],
    ),
    (
        "label keys are qualified names",
        POD,
        set_meta(labels={"bad key": "x"}),
        [f'metadata.labels: Invalid value: "bad key": {NAME_PART}'],
    ),
    (
        "label values",
        POD,
        set_meta(labels={"app": "-x"}),
        [f'metadata.labels: Invalid value: "-x": {LABEL_VALUE}'],
    ),
    (
        "label key prefixes are subdomains",
        POD,
        set_meta(labels={"Example.com/app": "x"}),
        [f'metadata.labels: Invalid value: "Example.com/app": prefix part {SUBDOMAIN}'],
    ),
    (
        "annotation keys allow upper case but not two slashes",
        POD,
        set_meta(annotations={"Example.com/Note": "ok", "a/b/c": "x"}),
        [
            'metadata.annotations: Invalid value: "a/b/c": a qualified name must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  "
            "or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ],
    ),
    (
        "annotations are at most 256 KiB in total",
        POD,
        set_meta(annotations={"big": "x" * (256 * 1024)}),
        ["metadata.annotations: Too long: may not be more than 262144 bytes"],
    ),
    (
        "owner references need version, kind, name and uid",
        POD,
        set_meta(ownerReferences=[{}]),
        [
            'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
            'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
            'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
            'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
        ],
    ),
    (
        "only one owner may be the controller",
        POD,
        set_meta(
            ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
            ]
        ),
        [
            "metadata.ownerReferences: Invalid value: "
            '[{"apiVersion":"apps/v1","controller":true,"kind":"ReplicaSet","name":"a","uid":"1"},'
            '{"apiVersion":"apps/v1","controller":true,"kind":"ReplicaSet","name":"b","uid":"2"}]: '
            "Only one reference can have Controller set to true. "
            'Found "true" in references for ReplicaSet/a and ReplicaSet/b'
        ],
    ),
    (
        "core kinds need standard or qualified finalizers",
        POD,
        set_meta(finalizers=["my-finalizer", "example.com/ok", "kubernetes"]),
        [
            'metadata.finalizers[0]: Invalid value: "my-finalizer": '
            "name is neither a standard finalizer name nor is it fully qualified"
        ],
    ),
    (
        "orphan and foregroundDeletion conflict",
        POD,
        set_meta(finalizers=["orphan", "foregroundDeletion"]),
        [
            'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
            "finalizer orphan and foregroundDeletion cannot be both set"
        ],
    ),
    (
        "negative generation",
        POD,
        set_meta(generation=-1),
        ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
    ),
]


@pytest.mark.parametrize(("case", "key", "edit", "expected"), META_CASES, ids=[c[0] for c in META_CASES])
def test_object_meta_rules(case: str, key: tuple[str, str], edit: Callable, expected: list[str]) -> None:
    assert messages(*key, changed(VALID[key], edit)) == expected


def test_leases_and_custom_resources_accept_any_qualified_finalizer() -> None:
    lease = changed(VALID[("coordination.k8s.io/v1", "leases")], set_meta(finalizers=["my-finalizer"]))
    assert messages("coordination.k8s.io/v1", "leases", lease) == []
    widget = ResourceType(
        group="example.com", version="v1", kind="Widget", plural="widgets", singular="widget", namespaced=True
    )
    obj = {"metadata": {"name": "w", "namespace": "default", "finalizers": ["my-finalizer"]}}
    assert validate(widget, obj) == []
    bad = {"metadata": {"name": "W", "finalizers": ["a/b/c"]}}
    assert [e.field for e in validate(widget, bad)] == [
        "metadata.name",
        "metadata.namespace",
        "metadata.finalizers",
    ]


UPDATE_META_CASES = [
    (
        "name is immutable",
        set_meta(name="other"),
        ['metadata.name: Invalid value: "other": field is immutable'],
    ),
    ("uid is immutable", set_meta(uid="uid-2"), ['metadata.uid: Invalid value: "uid-2": field is immutable']),
    (
        "creationTimestamp is immutable",
        set_meta(creationTimestamp="2026-01-01T00:00:00Z"),
        ["metadata.creationTimestamp: Invalid value: 2026-01-01 00:00:00 +0000 UTC: field is immutable"],
    ),
    (
        "an update needs a resourceVersion",
        lambda obj: obj["metadata"].pop("resourceVersion"),
        ['metadata.resourceVersion: Invalid value: "": must be specified for an update'],
    ),
    (
        "generation cannot go down",
        set_meta(generation=1),
        ["metadata.generation: Invalid value: 1: must not be decremented"],
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "expected"), UPDATE_META_CASES, ids=[c[0] for c in UPDATE_META_CASES]
)
def test_object_meta_update_rules(case: str, edit: Callable, expected: list[str]) -> None:
    old = stored("v1", "configmaps", VALID[("v1", "configmaps")])
    old["metadata"]["generation"] = 2
    assert messages("v1", "configmaps", changed(old, edit), old=old) == expected


def test_no_new_finalizers_while_deleting() -> None:
    old = stored("v1", "configmaps", VALID[("v1", "configmaps")])
    old["metadata"].update(deletionTimestamp="2025-05-05T00:00:00Z", finalizers=["example.com/a"])
    new = changed(old, set_meta(finalizers=["example.com/a", "example.com/b"]))
    assert messages("v1", "configmaps", new, old=old) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/b"}'
    ]


# --- pods -------------------------------------------------------------------------------------


def container(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["spec"]["containers"][0].update(fields)


def spec(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["spec"].update(fields)


POD_CASES = [
    ("containers are required", spec(containers=[]), ["spec.containers: Required value"]),
    (
        "container names are DNS labels",
        container(name="Web"),
        [f'spec.containers[0].name: Invalid value: "Web": {DNS_LABEL}'],
    ),
    (
        "container names are unique",
        lambda obj: obj["spec"]["containers"].append({"name": "web", "image": "busybox"}),
        ['spec.containers[1].name: Duplicate value: "web"'],
    ),
    (
        "init container names may not repeat regular ones",
        spec(initContainers=[{"name": "web", "image": "busybox"}]),
        ['spec.initContainers[0].name: Duplicate value: "web"'],
    ),
    ("image is required", container(image=""), ["spec.containers[0].image: Required value"]),
    (
        "image whitespace",
        container(image=" nginx"),
        ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace'],
    ),
    (
        "containerPort is required",
        container(ports=[{"containerPort": 0}]),
        ["spec.containers[0].ports[0].containerPort: Required value"],
    ),
    (
        "ports are 1-65535",
        container(ports=[{"containerPort": 70000, "hostPort": -1}]),
        [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
        ],
    ),
    (
        "port protocols",
        container(ports=[{"containerPort": 80, "protocol": "ICMP"}]),
        [
            'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
        ],
    ),
    (
        "port names",
        container(
            ports=[
                {"containerPort": 80, "name": "HTTP"},
                {"containerPort": 81, "name": "h"},
                {"containerPort": 82, "name": "h"},
            ]
        ),
        [
            'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
            'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at least one letter (a-z)',
            'spec.containers[0].ports[2].name: Duplicate value: "h"',
        ],
    ),
    (
        "host ports may not collide",
        lambda obj: (
            obj["spec"]["containers"].append(
                {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]}
            )
            or obj["spec"]["containers"][0]["ports"][0].update(hostPort=8080)
        ),
        ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"'],
    ),
    (
        "restartPolicy",
        spec(restartPolicy="Sometimes"),
        [
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
        ],
    ),
    (
        "dnsPolicy",
        spec(dnsPolicy="Cluster"),
        [
            'spec.dnsPolicy: Unsupported value: "Cluster": supported values: '
            '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"'
        ],
    ),
    (
        "dnsPolicy None needs a nameserver",
        spec(dnsPolicy="None"),
        ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
    ),
    (
        "env names",
        container(env=[{"name": ""}, {"name": "A=B"}, {"name": "MY.VAR-1"}]),
        [
            "spec.containers[0].env[0].name: Required value",
            "spec.containers[0].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
        ],
    ),
    (
        "env valueFrom needs one source",
        container(
            env=[
                {"name": "A", "valueFrom": {}},
                {"name": "B", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ]
        ),
        [
            'spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
            'spec.containers[0].env[1].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        ],
    ),
    (
        "downward API env paths",
        container(
            env=[
                {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}},
            ]
        ),
        [
            'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": supported values: '
            '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
            '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
            'spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Invalid value: "spec.foo": error converting fieldPath: field label not supported: spec.foo',
        ],
    ),
    (
        "secretKeyRef needs a name and a key",
        container(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "", "key": ""}}}]),
        [
            f'spec.containers[0].env[0].valueFrom.secretKeyRef.name: Invalid value: "": {SUBDOMAIN}',
            "spec.containers[0].env[0].valueFrom.secretKeyRef.key: Required value",
        ],
    ),
    (
        "envFrom needs a source",
        container(envFrom=[{"prefix": "X_"}]),
        ['spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`'],
    ),
    (
        "volumes have one source and unique names",
        spec(
            volumes=[
                {"name": "data", "emptyDir": {}, "configMap": {"name": "c"}},
                {"name": "v", "emptyDir": {}},
                {"name": "v", "emptyDir": {}},
            ]
        ),
        [
            "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
            'spec.volumes[2].name: Duplicate value: "v"',
        ],
    ),
    (
        "volume names are DNS labels",
        spec(volumes=[{"name": "Data", "emptyDir": {}}]),
        [f'spec.volumes[0].name: Invalid value: "Data": {DNS_LABEL}'],
    ),
    (
        "volume sources need their fields",
        spec(
            volumes=[
                {"name": "a", "secret": {}},
                {"name": "b", "persistentVolumeClaim": {}},
                {"name": "c", "hostPath": {"path": "/a/../b"}},
            ]
        ),
        [
            "spec.volumes[0].secret.secretName: Required value",
            "spec.volumes[1].persistentVolumeClaim.claimName: Required value",
            "spec.volumes[2].hostPath.path: Invalid value: \"/a/../b\": must not contain '..'",
        ],
    ),
    (
        "file modes",
        spec(
            volumes=[
                {
                    "name": "a",
                    "configMap": {"name": "c", "defaultMode": 1024, "items": [{"key": "k", "path": "/abs"}]},
                }
            ]
        ),
        [
            "spec.volumes[0].configMap.defaultMode: Invalid value: 1024: must be a number between 0 and 0777 (octal), both inclusive",
            'spec.volumes[0].configMap.items[0].path: Invalid value: "/abs": must be a relative path',
        ],
    ),
    (
        "volume mounts refer to volumes",
        container(volumeMounts=[{"name": "data", "mountPath": "/data"}, {"name": "", "mountPath": "/data"}]),
        [
            'spec.containers[0].volumeMounts[0].name: Not found: "data"',
            "spec.containers[0].volumeMounts[1].name: Required value",
            'spec.containers[0].volumeMounts[1].name: Not found: ""',
            'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique',
        ],
    ),
    (
        "a mount of a broken volume is not found either",
        lambda obj: (
            obj["spec"].update(volumes=[{"name": "data", "emptyDir": {}, "secret": {"secretName": "s"}}])
            or obj["spec"]["containers"][0].update(volumeMounts=[{"name": "data", "mountPath": "/d"}])
        ),
        [
            "spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type",
            'spec.containers[0].volumeMounts[0].name: Not found: "data"',
        ],
    ),
    (
        "requests may not exceed limits",
        container(
            resources={"limits": {"cpu": "0.5", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "512Mi"}}
        ),
        [
            'spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m'
        ],
    ),
    (
        "resource names and quantities (pod requests default to the limits, so both are reported)",
        container(resources={"limits": {"gpu": "1", "cpu": "-1", "memory": "lots"}}),
        [
            f"spec.containers[0].resources.{kind}[{problem}"
            for kind in ("limits", "requests")
            for problem in (
                'gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified',
                'gpu]: Invalid value: "gpu": must be a standard resource for containers',
                'cpu]: Invalid value: "-1": must be greater than or equal to 0',
                'memory]: Invalid value: "lots": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )
        ],
    ),
    (
        "extended resources are integers, with equal requests and limits",
        container(
            resources={
                "limits": {"example.com/gpu": "1"},
                "requests": {"example.com/gpu": "500m", "example.com/fpga": "1"},
            }
        ),
        [
            "spec.containers[0].resources.requests[example.com/gpu]: Invalid value: 500m: must be an integer",
            'spec.containers[0].resources.requests: Invalid value: "500m": must be equal to example.com/gpu limit of 1',
            "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
        ],
    ),
    (
        "probes need exactly one handler",
        container(livenessProbe={}, readinessProbe={"httpGet": {"port": 80}, "tcpSocket": {"port": 80}}),
        [
            "spec.containers[0].livenessProbe: Required value: must specify a handler type",
            "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        ],
    ),
    (
        "liveness success threshold and probe numbers",
        container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2, "periodSeconds": -1}),
        [
            "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ],
    ),
    (
        "probe ports and schemes",
        container(startupProbe={"httpGet": {"port": "web-port-name-too-long", "scheme": "FTP"}}),
        [
            'spec.containers[0].startupProbe.httpGet.port: Invalid value: "web-port-name-too-long": must be no more than 15 characters',
            'spec.containers[0].startupProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"',
        ],
    ),
    (
        "init containers without restartPolicy Always have no probes",
        spec(
            initContainers=[
                {"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}
            ]
        ),
        [
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
        ],
    ),
    (
        "regular containers have no restartPolicy",
        container(restartPolicy="Always"),
        ["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"],
    ),
    (
        "tolerations",
        spec(
            tolerations=[
                {"operator": "Equal", "value": "x"},
                {"key": "k", "operator": "Exists", "value": "v"},
                {"key": "k", "effect": "Never"},
            ]
        ),
        [
            'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
            "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            'spec.tolerations[2].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        ],
    ),
    (
        "node affinity needs terms",
        spec(
            affinity={
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
            }
        ),
        [
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"
        ],
    ),
    (
        "pod anti-affinity needs a topology key",
        spec(
            affinity={
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}}
                    ]
                }
            }
        ),
        [
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
            'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must be non-empty',
            f'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": {NAME_PART}',
        ],
    ),
    (
        "names of referenced objects",
        spec(serviceAccountName="Bot", nodeName="node_1", hostname="a.b", priorityClassName="High"),
        [
            f'spec.serviceAccountName: Invalid value: "Bot": {SUBDOMAIN}',
            f'spec.nodeName: Invalid value: "node_1": {SUBDOMAIN}',
            'spec.hostname: Invalid value: "a.b": must not contain dots',
            f'spec.priorityClassName: Invalid value: "High": {SUBDOMAIN}',
        ],
    ),
    (
        "activeDeadlineSeconds is positive",
        spec(activeDeadlineSeconds=0),
        ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"],
    ),
    (
        "security context ids",
        spec(securityContext={"runAsUser": -1}),
        ["spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"],
    ),
    (
        "ephemeral containers come only through the subresource",
        spec(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        ["spec.ephemeralContainers: Forbidden: cannot be set on create"],
    ),
    (
        "a bound pod may not keep scheduling gates",
        spec(nodeName="node-1", schedulingGates=[{"name": "example.com/wait"}]),
        ["spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"],
    ),
    (
        "projected tokens need a service account",
        spec(volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]),
        [
            "spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: must not be specified when serviceAccountName is not set"
        ],
    ),
    (
        "deletion cost annotation is an int32",
        set_meta(annotations={"controller.kubernetes.io/pod-deletion-cost": "big"}),
        [
            'metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: "big": must be a 32bit integer'
        ],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*POD, changed(POD_OBJ, edit)) == expected


def test_pod_errors_carry_upstream_cause_types() -> None:
    obj = changed(POD_OBJ, spec(restartPolicy="Sometimes", containers=[{"name": "web", "image": ""}]))
    apply_defaults(rt(*POD), obj)
    assert [(e.type, e.field) for e in validate(rt(*POD), obj)] == [
        ("FieldValueRequired", "spec.containers[0].image"),
        ("FieldValueNotSupported", "spec.restartPolicy"),
    ]


POD_UPDATE_CASES = [
    ("images may change", container(image="nginx:1.28"), []),
    ("labels may change", set_meta(labels={"x": "y"}), []),
    ("tolerations may be added", spec(tolerations=[{"key": "a", "operator": "Exists"}]), []),
    ("activeDeadlineSeconds may be set", spec(activeDeadlineSeconds=60), []),
    (
        "other fields may not",
        container(ports=[{"containerPort": 8080}]),
        [f"{POD_UPDATE}\nspec.containers[0].ports[0].containerPort"],
    ),
    (
        "containers may not be added",
        lambda obj: obj["spec"]["containers"].append({"name": "b", "image": "busybox"}),
        ["spec.containers: Forbidden: pod updates may not add or remove containers"],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), POD_UPDATE_CASES, ids=[c[0] for c in POD_UPDATE_CASES])
def test_pod_update_rules(case: str, edit: Callable, expected: list[str]) -> None:
    old = stored(*POD, POD_OBJ)
    assert messages(*POD, changed(old, edit), old=old) == expected


def test_pod_update_deadline_and_tolerations() -> None:
    old = stored(
        *POD,
        changed(POD_OBJ, spec(activeDeadlineSeconds=30, tolerations=[{"key": "a", "operator": "Exists"}])),
    )
    longer = changed(old, spec(activeDeadlineSeconds=60))
    assert messages(*POD, longer, old=old) == [
        "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"
    ]
    removed = changed(old, spec(tolerations=[]))
    assert messages(*POD, removed, old=old) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ]
    cleared = changed(old, lambda obj: obj["spec"].pop("activeDeadlineSeconds"))
    assert messages(*POD, cleared, old=old) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
    ]


def test_pod_status_updates() -> None:
    old = stored(*POD, POD_OBJ)
    old["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    new = copy.deepcopy(old)
    new["status"].update(
        phase="Running",
        podIP="127.244.1.5",
        podIPs=[{"ip": "127.244.1.5"}],
        conditions=[{"type": "Ready", "status": "True"}],
    )
    assert validate_status_update(rt(*POD), new, old=old) == []
    moved = changed(new, spec(nodeName="node-2"))
    bad_ip = changed(
        new, lambda obj: obj["status"].update(podIPs=[{"ip": "300.1.1.1"}], qosClass="Guaranteed")
    )
    assert [e.message() for e in validate_status_update(rt(*POD), moved, old=old)] == [
        "status.nodeName: Forbidden: may not be changed directly"
    ]
    assert [e.message() for e in validate_status_update(rt(*POD), bad_ip, old=old)] == [
        'status.qosClass: Invalid value: "Guaranteed": field is immutable',
        'status.podIPs[0]: Invalid value: "300.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]


def test_pod_status_cannot_restart_a_terminated_container_of_a_never_pod() -> None:
    old = stored(*POD, changed(POD_OBJ, spec(restartPolicy="Never")))
    old["status"] = {"containerStatuses": [{"name": "web", "state": {"terminated": {"exitCode": 0}}}]}
    new = changed(
        old, lambda obj: obj["status"].update(containerStatuses=[{"name": "web", "state": {"running": {}}}])
    )
    assert [e.message() for e in validate_status_update(rt(*POD), new, old=old)] == [
        "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"
    ]


# --- workloads ----------------------------------------------------------------------------------

DEPLOY = ("apps/v1", "deployments")
SELECTOR_MISMATCH = 'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'

WORKLOAD_CASES = [
    (
        "deployment selector is required",
        DEPLOY,
        lambda obj: obj["spec"].pop("selector"),
        ["spec.selector: Required value", SELECTOR_MISMATCH],
    ),
    (
        "deployment selector may not be empty",
        DEPLOY,
        spec(selector={}),
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        ],
    ),
    (
        "deployment selector must match the template",
        DEPLOY,
        spec(selector={"matchLabels": {"app": "api"}}),
        [SELECTOR_MISMATCH],
    ),
    (
        "selector expressions",
        DEPLOY,
        spec(selector={"matchExpressions": [{"key": "app", "operator": "Among", "values": []}]}),
        [
            'spec.selector.matchExpressions[0].operator: Invalid value: "Among": not a valid selector operator',
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:"
            '[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"Among", Values:[]string{}}}}: '
            "invalid label selector",
        ],
    ),
    (
        "replicas are non-negative",
        DEPLOY,
        spec(replicas=-1),
        ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
    ),
    (
        "maxSurge and maxUnavailable may not both be 0",
        DEPLOY,
        spec(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        [
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: '
            "may not be 0 when `maxSurge` is 0"
        ],
    ),
    (
        "percentages",
        DEPLOY,
        spec(
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x%", "maxUnavailable": "150%"}}
        ),
        [
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"x%"}: '
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
            "regex used for validation is '[0-9]+%')",
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: '
            "must not be greater than 100%",
        ],
    ),
    (
        "recreate takes no rolling update",
        DEPLOY,
        spec(strategy={"type": "Recreate", "rollingUpdate": {}}),
        ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
    ),
    (
        "strategy types",
        DEPLOY,
        spec(strategy={"type": "BlueGreen"}),
        [
            'spec.strategy: Unsupported value: {"type":"BlueGreen"}: supported values: "Recreate", "RollingUpdate"'
        ],
    ),
    (
        "templates restart always",
        DEPLOY,
        lambda obj: obj["spec"]["template"]["spec"].update(restartPolicy="Never"),
        ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
    ),
    (
        "templates are validated like pods",
        DEPLOY,
        lambda obj: obj["spec"]["template"]["spec"]["containers"][0].update(name="Web", image=""),
        [
            f'spec.template.spec.containers[0].name: Invalid value: "Web": {DNS_LABEL}',
            "spec.template.spec.containers[0].image: Required value",
        ],
    ),
    (
        "template labels are reported under template.labels",
        DEPLOY,
        lambda obj: obj["spec"]["template"]["metadata"]["labels"].update({"bad key": "x"}),
        [f'spec.template.labels: Invalid value: "bad key": {NAME_PART}'],
    ),
    (
        "progress deadline exceeds minReadySeconds",
        DEPLOY,
        spec(minReadySeconds=600),
        ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
    ),
    (
        "replica sets say deployment in the empty-selector message",
        ("apps/v1", "replicasets"),
        spec(selector={"matchLabels": {}}),
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        ],
    ),
    (
        "daemon sets cannot surge and be unavailable at once",
        ("apps/v1", "daemonsets"),
        spec(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
        [
            'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: '
            "may not be set when maxUnavailable is non-zero"
        ],
    ),
    (
        "daemon sets need something unavailable or surging",
        ("apps/v1", "daemonsets"),
        spec(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"],
    ),
    (
        "daemon set without a selector",
        ("apps/v1", "daemonsets"),
        lambda obj: obj["spec"].pop("selector"),
        [SELECTOR_MISMATCH],
    ),
    (
        "stateful set policies",
        ("apps/v1", "statefulsets"),
        spec(
            podManagementPolicy="Random",
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"},
        ),
        [
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
            'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Retain", "Delete"',
        ],
    ),
    (
        "stateful set templates are not fully validated",
        ("apps/v1", "statefulsets"),
        lambda obj: obj["spec"]["template"]["spec"]["containers"][0].update(name="Web"),
        [],
    ),
    (
        "controller revisions carry data",
        ("apps/v1", "controllerrevisions"),
        lambda obj: obj.pop("data") and obj.update(revision=-2),
        [
            "data: Required value: data is mandatory",
            "revision: Invalid value: -2: must be greater than or equal to 0",
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "key", "edit", "expected"), WORKLOAD_CASES, ids=[c[0] for c in WORKLOAD_CASES]
)
def test_workload_rules(case: str, key: tuple[str, str], edit: Callable, expected: list[str]) -> None:
    assert messages(*key, changed(VALID[key], edit)) == expected


@pytest.mark.parametrize("plural", ["deployments", "replicasets", "daemonsets"])
def test_apps_selectors_are_immutable(plural: str) -> None:
    old = stored("apps/v1", plural, VALID[("apps/v1", plural)])
    old["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    new = changed(old, spec(selector={"matchLabels": {"app": "web", "tier": "front"}}))
    assert messages("apps/v1", plural, new, old=old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"front"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    ]


def test_stateful_set_updates_only_touch_the_mutable_fields() -> None:
    old = stored("apps/v1", "statefulsets", VALID[("apps/v1", "statefulsets")])
    scaled = changed(old, spec(replicas=3, revisionHistoryLimit=2, minReadySeconds=5))
    assert messages("apps/v1", "statefulsets", scaled, old=old) == []
    renamed = changed(old, spec(serviceName="other"))
    assert messages("apps/v1", "statefulsets", renamed, old=old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
        "are forbidden"
    ]


def test_workload_status_updates() -> None:
    key = DEPLOY
    old = stored(*key, VALID[key])
    old["status"] = {"replicas": 2, "collisionCount": 1}
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2, "availableReplicas": 3, "updatedReplicas": -1}
    assert [e.message() for e in validate_status_update(rt(*key), new, old=old)] == [
        "status.updatedReplicas: Invalid value: -1: must be greater than or equal to 0",
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas",
        "status.collisionCount: Invalid value: 0: cannot be decremented",
    ]
    fine = changed(old, lambda obj: obj["status"].update(replicas=3, readyReplicas=2))
    assert validate_status_update(rt(*key), fine, old=old) == []


# --- core/v1 ReplicationController ------------------------------------------------------------------

RC = ("v1", "replicationcontrollers")
GCE_DISK = [{"name": "data", "gcePersistentDisk": {"pdName": "disk-1"}}]

RC_CASES = [
    (
        "an empty selector is required (nothing to default it from)",
        spec(selector={}, template={"metadata": {}, "spec": pod_spec()}),
        ["spec.selector: Required value"],
    ),
    ("the template is required", lambda obj: obj["spec"].pop("template"), ["spec.template: Required value"]),
    ("a null template is required too", spec(template=None), ["spec.template: Required value"]),
    (
        "the selector must match the template labels",
        spec(selector={"app": "db"}),
        [
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
            "`selector` does not match template `labels`"
        ],
    ),
    (
        "counts are non-negative, minReadySeconds first",
        spec(replicas=-1, minReadySeconds=-2),
        [
            "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ],
    ),
    (
        "pods restart always and have no deadline",
        lambda obj: obj["spec"]["template"]["spec"].update(restartPolicy="Never", activeDeadlineSeconds=30),
        [
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
            "spec.template.spec.activeDeadlineSeconds: Invalid value: 30: must not be specified",
        ],
    ),
    (
        "a GCE disk shared by several replicas must be read-only",
        lambda obj: (
            obj["spec"].update(replicas=2),
            obj["spec"]["template"]["spec"].update(volumes=GCE_DISK),
        ),
        [
            "spec.template.spec.volumes[0].gcePersistentDisk.readOnly: Invalid value: false: must be true for "
            "replicated pods > 1; GCE PD can only be mounted on multiple machines if it is read-only"
        ],
    ),
    (
        "one replica may write its GCE disk",
        lambda obj: obj["spec"]["template"]["spec"].update(volumes=GCE_DISK),
        [],
    ),
    (
        "template labels are checked, and again as the object labels they default",
        lambda obj: obj["spec"]["template"]["metadata"]["labels"].update({"bad key": "x"}),
        [
            f'metadata.labels: Invalid value: "bad key": {NAME_PART}',
            f'spec.template.labels: Invalid value: "bad key": {NAME_PART}',
        ],
    ),
    (
        "the name is a DNS subdomain",
        lambda obj: obj["metadata"].update(name="Web"),
        [f'metadata.name: Invalid value: "Web": {SUBDOMAIN}'],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), RC_CASES, ids=[c[0] for c in RC_CASES])
def test_replication_controller_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*RC, changed(VALID[RC], edit)) == expected


def test_replication_controller_selector_is_defaulted_then_valid() -> None:
    assert messages(*RC, changed(VALID[RC], lambda obj: obj["spec"].pop("selector"))) == []


def test_replication_controller_selector_may_change_on_update() -> None:
    old = stored(*RC, VALID[RC])
    old["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    new = changed(old, spec(selector={"app": "web", "tier": "front"}))
    assert messages(*RC, new, old=old) == []
    # An emptied selector is defaulted again from the template labels (defaults run on update too).
    emptied = changed(old, spec(selector={}))
    assert messages(*RC, emptied, old=old) == []


def test_replication_controller_status_updates() -> None:
    old = stored(*RC, VALID[RC])
    old["status"] = {"replicas": 2}
    new = changed(
        old,
        lambda obj: obj.update(
            status={"replicas": 1, "fullyLabeledReplicas": 2, "readyReplicas": -1, "availableReplicas": 1}
        ),
    )
    assert [e.message() for e in validate_status_update(rt(*RC), new, old=old)] == [
        "status.readyReplicas: Invalid value: -1: must be greater than or equal to 0",
        "status.fullyLabeledReplicas: Invalid value: 2: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 1: cannot be greater than readyReplicas",
    ]
    fine = changed(old, lambda obj: obj["status"].update(replicas=3, readyReplicas=2, availableReplicas=2))
    assert validate_status_update(rt(*RC), fine, old=old) == []


# --- batch ------------------------------------------------------------------------------------------

JOB = ("batch/v1", "jobs")
CRON = ("batch/v1", "cronjobs")


def test_jobs_need_on_failure_or_never() -> None:
    obj = changed(VALID[JOB], lambda o: o["spec"]["template"]["spec"].pop("restartPolicy"))
    assert messages(*JOB, obj) == [
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
    ]


JOB_CASES = [
    (
        "counts are non-negative",
        spec(completions=-1, parallelism=-2, backoffLimit=-3),
        [
            "spec.parallelism: Invalid value: -2: must be greater than or equal to 0",
            "spec.completions: Invalid value: -1: must be greater than or equal to 0",
            "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
        ],
    ),
    (
        "completion modes",
        spec(completionMode="Sometimes"),
        ['spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'],
    ),
    (
        "per-index backoff needs indexed jobs",
        spec(backoffLimitPerIndex=1),
        ["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"],
    ),
    (
        "a manual selector must match the template",
        spec(manualSelector=True, selector={"matchLabels": {"app": "other"}}),
        [SELECTOR_MISMATCH],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_job_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*JOB, changed(VALID[JOB], edit)) == expected


def test_job_generated_labels_must_not_be_overridden() -> None:
    obj = changed(
        VALID[JOB], lambda o: o["spec"]["template"]["metadata"]["labels"].update({"job-name": "other"})
    )
    assert messages(*JOB, obj)[0] == (
        'spec.template.metadata.labels[job-name]: Invalid value: map[string]string{"app":"web", '
        '"batch.kubernetes.io/controller-uid":"uid-1", "batch.kubernetes.io/job-name":"pi", '
        '"controller-uid":"uid-1", "job-name":"other"}: must be \'pi\''
    )


def test_job_updates_keep_selector_template_and_completions() -> None:
    old = stored(*JOB, VALID[JOB])
    assert messages(*JOB, changed(old, spec(parallelism=3, suspend=True)), old=old) == []
    retemplated = changed(
        old, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="busybox")
    )
    kind = rt(*JOB)
    errors = validate(kind, retemplated, old=old)
    assert [(e.type, e.field, e.detail) for e in errors] == [
        ("FieldValueInvalid", "spec.template", "field is immutable")
    ]
    more = changed(old, spec(completions=2))
    assert messages(*JOB, more, old=old) == ["spec.completions: Invalid value: 2: field is immutable"]


def test_suspended_jobs_that_never_ran_may_change_scheduling() -> None:
    old = stored(*JOB, changed(VALID[JOB], spec(suspend=True)))
    moved = changed(old, lambda o: o["spec"]["template"]["spec"].update(nodeSelector={"zone": "a"}))
    assert messages(*JOB, moved, old=old) == []
    old["status"] = {"startTime": "2025-01-01T00:00:00Z"}
    assert [e.field for e in validate(rt(*JOB), moved, old=old)] == ["spec.template"]


CRON_CASES = [
    ("schedule is required", spec(schedule=""), ["spec.schedule: Required value"]),
    (
        "schedule needs five fields",
        spec(schedule="every minute"),
        ['spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]'],
    ),
    (
        "schedule ranges",
        spec(schedule="61 * * * *"),
        ['spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'],
    ),
    (
        "TZ in the schedule",
        spec(schedule="TZ=UTC 0 3 * * *"),
        [
            'spec.schedule: Invalid value: "TZ=UTC 0 3 * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
        ],
    ),
    (
        "time zones",
        spec(timeZone="Mars/Olympus"),
        ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
    ),
    (
        "concurrency policies",
        spec(concurrencyPolicy="Sometimes"),
        [
            'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'
        ],
    ),
    (
        "job templates get a generated selector",
        lambda o: o["spec"]["jobTemplate"]["spec"].update(selector={"matchLabels": {"app": "web"}}),
        [
            'spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated"
        ],
    ),
    (
        "job template pods do not restart always",
        lambda o: o["spec"]["jobTemplate"]["spec"]["template"]["spec"].update(restartPolicy="Always"),
        [
            'spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
        ],
    ),
    (
        "names leave room for the job suffix",
        set_meta(name="n" * 53),
        [f'metadata.name: Invalid value: "{"n" * 53}": must be no more than 52 characters'],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), CRON_CASES, ids=[c[0] for c in CRON_CASES])
def test_cron_job_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*CRON, changed(VALID[CRON], edit)) == expected


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("*/15 9-17 * * MON-FRI", ""),
        ("0 0 1 jan,jul sun", ""),
        ("@hourly", ""),
        ("@every 1h30m", ""),
        ("CRON_TZ=Europe/Berlin 0 3 * * *", ""),
        ("", "empty spec string"),
        ("@often", "unrecognized descriptor: @often"),
        ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("0 0 * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        ("TZ=Nowhere/City 0 * * * *", "provided bad location Nowhere/City: unknown time zone Nowhere/City"),
    ],
)
def test_cron_schedules_parse_like_robfig_cron(schedule: str, error: str) -> None:
    assert cron_schedule_error(schedule) == error


# --- services and endpoints ---------------------------------------------------------------------------

SVC = ("v1", "services")

SERVICE_CASES = [
    (
        "ports are required",
        spec(ports=[]),
        ["spec.ports: Required value"],
    ),
    (
        "service types",
        spec(type="Internal"),
        [
            'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
        ],
    ),
    (
        "port names are required and unique when there are several",
        spec(ports=[{"port": 80}, {"port": 443, "name": "https"}, {"port": 8443, "name": "https"}]),
        ["spec.ports[0].name: Required value", 'spec.ports[2].name: Duplicate value: "https"'],
    ),
    (
        "port numbers and target ports",
        spec(ports=[{"port": 0, "targetPort": "HTTP"}]),
        [
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter (a-z)',
        ],
    ),
    (
        "duplicate ports",
        spec(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
        [
            'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
            'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
        ],
    ),
    (
        "cluster IP services take no node ports",
        spec(ports=[{"port": 80, "nodePort": 30080}]),
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ),
    (
        "external names",
        spec(type="ExternalName", ports=[]),
        ["spec.externalName: Required value"],
    ),
    (
        "external names are DNS names",
        spec(type="ExternalName", externalName="db_host.example.com."),
        [f'spec.externalName: Invalid value: "db_host.example.com": {SUBDOMAIN}'],
    ),
    (
        "cluster IPs must be valid and consistent",
        spec(clusterIP="127.96.0.500"),
        [
            'spec.clusterIPs[0]: Invalid value: "127.96.0.500": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
        ],
    ),
    (
        "cluster IPs and families agree",
        spec(clusterIP="::1", ipFamilies=["IPv4"]),
        ['spec.clusterIPs[0]: Invalid value: "::1": expected an IPv4 value as indicated by `ipFamilies[0]`'],
    ),
    (
        "load balancers may not be headless",
        spec(type="LoadBalancer", clusterIP="None"),
        ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"],
    ),
    (
        "external traffic policy needs external access",
        spec(externalTrafficPolicy="Local"),
        [
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'
        ],
    ),
    (
        "session affinity",
        spec(sessionAffinity="Sticky"),
        ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES])
def test_service_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*SVC, changed(VALID[SVC], edit)) == expected


def test_headless_services_without_ports_are_valid() -> None:
    assert messages(*SVC, changed(VALID[SVC], spec(clusterIP="None", ports=[]))) == []
    assert (
        messages(
            *SVC, changed(VALID[SVC], spec(type="ExternalName", externalName="db.example.com.", ports=[]))
        )
        == []
    )


def test_service_cluster_ip_is_immutable_except_through_external_name() -> None:
    old = stored(*SVC, changed(VALID[SVC], spec(clusterIP="127.96.0.20")))
    moved = changed(old, spec(clusterIP="127.96.0.21", clusterIPs=["127.96.0.21"]))
    assert messages(*SVC, moved, old=old) == [
        'spec.clusterIPs[0]: Invalid value: []string{"127.96.0.21"}: may not change once set'
    ]
    to_external = changed(old, spec(type="ExternalName", externalName="db.example.com"))
    assert messages(*SVC, to_external, old=old) == []


def test_switching_a_node_port_service_to_cluster_ip_validates() -> None:
    old = stored(*SVC, changed(VALID[SVC], spec(type="NodePort", clusterIP="127.96.0.7")))
    old["spec"]["ports"][0]["nodePort"] = 30007
    assert messages(*SVC, changed(old, spec(type="ClusterIP")), old=old) == []


def test_service_status_only_takes_load_balancer_ingress_for_load_balancers() -> None:
    old = stored(*SVC, VALID[SVC])
    new = changed(
        old, lambda o: o["status"].update(loadBalancer={"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]})
    )
    assert [e.message() for e in validate_status_update(rt(*SVC), new, old=old)] == [
        "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"
    ]


ENDPOINTS = ("v1", "endpoints")


def test_endpoints_rules() -> None:
    obj = changed(
        VALID[ENDPOINTS],
        lambda o: o.update(
            subsets=[
                {},
                {
                    "addresses": [{"ip": "0.0.0.0"}, {"ip": "not-an-ip"}],
                    "ports": [{"port": 80}, {"port": 99999, "name": "b", "protocol": "HTTP"}],
                },
            ]
        ),
    )
    assert messages(*ENDPOINTS, obj) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
        'subsets[1].addresses[0].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
        'subsets[1].addresses[1].ip: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
        'subsets[1].addresses[1].ip: Invalid value: "not-an-ip": must be a valid IP address',
        "subsets[1].ports[0].name: Required value",
        "subsets[1].ports[1].port: Invalid value: 99999: must be between 1 and 65535, inclusive",
        'subsets[1].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ]


def test_kubelab_pod_addresses_in_loopback_are_accepted() -> None:
    assert messages(*ENDPOINTS, VALID[ENDPOINTS]) == []
    link_local = changed(VALID[ENDPOINTS], lambda o: o["subsets"][0]["addresses"][0].update(ip="169.254.1.1"))
    assert messages(*ENDPOINTS, link_local) == [
        'subsets[0].addresses[0].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)'
    ]


SLICE = ("discovery.k8s.io/v1", "endpointslices")


def test_endpoint_slice_rules() -> None:
    obj = changed(
        VALID[SLICE],
        lambda o: o.update(
            endpoints=[{"addresses": []}, {"addresses": ["::1", "127.244.1.6"], "hostname": "A"}],
            ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81, "protocol": "QUIC"}],
        ),
    )
    assert messages(*SLICE, obj) == [
        "endpoints[0].addresses: Required value: must contain at least 1 address",
        'endpoints[1].addresses[0]: Invalid value: "::1": must be a valid IPv4 address',
        f'endpoints[1].hostname: Invalid value: "A": {DNS_LABEL}',
        'ports[1].name: Duplicate value: "http"',
        'ports[1].protocol: Unsupported value: "QUIC": supported values: "SCTP", "TCP", "UDP"',
    ]
    assert messages(*SLICE, changed(VALID[SLICE], lambda o: o.update(addressType="IP"))) == [
        'addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"',
    ]
    old = stored(*SLICE, VALID[SLICE])
    assert messages(*SLICE, changed(old, lambda o: o.update(addressType="IPv6", endpoints=[])), old=old) == [
        'addressType: Invalid value: "IPv6": field is immutable'
    ]


# --- configuration and identity -----------------------------------------------------------------------

CM = ("v1", "configmaps")
SECRET = ("v1", "secrets")

CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def test_config_map_rules() -> None:
    obj = changed(
        VALID[CM],
        lambda o: o.update(data={"bad/key": "x", "..": "y", "blob": "z"}, binaryData={"blob": "AA=="}),
    )
    assert messages(*CM, obj) == [
        f'data[bad/key]: Invalid value: "bad/key": {CONFIG_KEY}',
        "data[..]: Invalid value: \"..\": must not be '..'",
        'data[blob]: Invalid value: "blob": duplicate of key present in binaryData',
    ]
    huge = changed(VALID[CM], lambda o: o.update(data={"a": "x" * (1024 * 1024 + 1)}, binaryData={}))
    assert messages(*CM, huge) == [": Too long: may not be more than 1048576 bytes"]


def test_immutable_config_maps_and_secrets() -> None:
    for key, field in ((CM, "data"), (SECRET, "data")):
        old = stored(*key, changed(VALID[key], lambda o: o.update(immutable=True)))
        edited = changed(old, lambda o, f=field: o.update({f: {"other": "b2s="}}))
        assert messages(*key, edited, old=old) == [
            "data: Forbidden: field is immutable when `immutable` is set"
        ]
        unlocked = changed(old, lambda o: o.update(immutable=False))
        assert messages(*key, unlocked, old=old) == [
            "immutable: Forbidden: field is immutable when `immutable` is set"
        ]


def test_secret_rules() -> None:
    bad_data = changed(VALID[SECRET], lambda o: o.update(data={"a": "not base64!"}))
    assert messages(*SECRET, bad_data) == [
        'data[a]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3'
    ]
    tls = changed(VALID[SECRET], lambda o: o.update(type="kubernetes.io/tls", data={"tls.crt": "eA=="}))
    assert messages(*SECRET, tls) == ["data[tls.key]: Required value"]
    token = changed(VALID[SECRET], lambda o: o.update(type="kubernetes.io/service-account-token"))
    assert messages(*SECRET, token) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"
    ]
    docker = changed(
        VALID[SECRET],
        lambda o: o.update(type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": "e30="}),
    )
    assert messages(*SECRET, docker) == []
    broken = changed(docker, lambda o: o.update(data={".dockerconfigjson": "bm9wZQ=="}))
    assert messages(*SECRET, broken) == [
        "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'n' looking for beginning of value"
    ]
    old = stored(*SECRET, VALID[SECRET])
    retyped = changed(old, lambda o: o.update(type="example.com/custom"))
    assert messages(*SECRET, retyped, old=old) == [
        'type: Invalid value: "example.com/custom": field is immutable'
    ]
    huge = changed(VALID[SECRET], lambda o: o.update(stringData={"a": "x" * (1024 * 1024 + 1)}))
    assert messages(*SECRET, huge) == ["data: Too long: may not be more than 1048576 bytes"]


NS = ("v1", "namespaces")


def test_namespace_rules() -> None:
    obj = changed(VALID[NS], lambda o: o.update(spec={"finalizers": ["custom"]}))
    assert messages(*NS, obj) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'
    ]
    old = stored(*NS, VALID[NS])
    terminating = changed(old, lambda o: o["status"].update(phase="Terminating"))
    assert [e.message() for e in validate_status_update(rt(*NS), terminating, old=old)] == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    ]
    deleting = changed(terminating, set_meta(deletionTimestamp="2025-02-02T00:00:00Z"))
    old_deleting = changed(old, set_meta(deletionTimestamp="2025-02-02T00:00:00Z"))
    assert validate_status_update(rt(*NS), deleting, old=old_deleting) == []


NODE = ("v1", "nodes")


def test_node_rules() -> None:
    obj = changed(
        VALID[NODE],
        spec(
            taints=[
                {"key": "a", "effect": "NoSchedule"},
                {"key": "a", "effect": "NoSchedule"},
                {"key": "b", "effect": "Sometimes"},
            ]
        ),
    )
    assert messages(*NODE, obj) == [
        'metadata.taints[1]: Duplicate value: {"effect":"NoSchedule","key":"a"}: taints must be unique by key and effect pair',
        'metadata.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
    ]
    old = stored(*NODE, VALID[NODE])
    recidr = changed(old, spec(podCIDRs=["127.244.2.0/24"]))
    assert messages(*NODE, recidr, old=old) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
    ]
    status = changed(
        old, lambda o: o["status"].update(addresses=[{"type": "InternalIP", "address": "127.100.0.1"}] * 2)
    )
    assert [e.message() for e in validate_status_update(rt(*NODE), status, old=old)] == [
        'status.addresses[1]: Duplicate value: core.NodeAddress{Type:"InternalIP", Address:"127.100.0.1"}'
    ]


def test_core_events() -> None:
    key = ("v1", "events")
    elsewhere = changed(VALID[key], lambda o: o["involvedObject"].update(namespace="other"))
    assert messages(*key, elsewhere) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]
    unnamed = changed(VALID[key], set_meta(name="web/1"))
    assert messages(*key, unnamed) == ["metadata.name: Invalid value: \"web/1\": may not contain '/'"]


def test_events_api_events() -> None:
    key = ("events.k8s.io/v1", "events")
    obj = changed(
        VALID[key], lambda o: [o.pop("eventTime"), o.pop("action"), o.update(type="Info", deprecatedCount=3)]
    )
    assert messages(*key, obj) == [
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset',
    ]
    no_controller = changed(VALID[key], lambda o: o.update(reportingController="", action=""))
    assert messages(*key, no_controller) == [
        "reportingController: Required value",
        'reportingController: Invalid value: "": name part must be non-empty',
        f'reportingController: Invalid value: "": {NAME_PART}',
        "action: Required value",
    ]
    old = stored(*key, VALID[key])
    assert messages(*key, changed(old, lambda o: o.update(note="changed")), old=old) == [
        'message: Invalid value: "changed": field is immutable'
    ]


def test_bindings_target_nodes() -> None:
    key = ("v1", "bindings")
    obj = changed(VALID[key], lambda o: o.update(target={"kind": "Pod"}))
    assert messages(*key, obj) == [
        'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"',
        "target.name: Required value",
    ]


# --- networking ---------------------------------------------------------------------------------------

ING = ("networking.k8s.io/v1", "ingresses")


def rule_path(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["spec"]["rules"][0]["http"]["paths"][0].update(fields)


INGRESS_CASES = [
    (
        "rules or a default backend",
        spec(rules=[], tls=[]),
        ["spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"],
    ),
    (
        "pathType is required",
        lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"),
        ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
    ),
    (
        "pathType values",
        rule_path(pathType="Regex"),
        [
            'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"'
        ],
    ),
    (
        "paths are absolute and clean",
        rule_path(path="api//v1/.."),
        [
            'spec.rules[0].http.paths[0].path: Invalid value: "api//v1/..": must be an absolute path',
            "spec.rules[0].http.paths[0].path: Invalid value: \"api//v1/..\": must not contain '//'",
            "spec.rules[0].http.paths[0].path: Invalid value: \"api//v1/..\": cannot end with '/..'",
        ],
    ),
    (
        "backends need a service port",
        rule_path(backend={"service": {"name": "web", "port": {}}}),
        ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"],
    ),
    (
        "backends are a service or a resource",
        rule_path(backend={}),
        ['spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'],
    ),
    (
        "hosts are DNS names, not IPs",
        lambda o: o["spec"]["rules"][0].update(host="127.0.0.1"),
        ['spec.rules[0].host: Invalid value: "127.0.0.1": must be a DNS name, not an IP address'],
    ),
    (
        "wildcard hosts",
        lambda o: o["spec"]["rules"][0].update(host="*.*.example.com"),
        [
            "spec.rules[0].host: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.', "
            "followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
            "and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is "
            "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), INGRESS_CASES, ids=[c[0] for c in INGRESS_CASES])
def test_ingress_rules(case: str, edit: Callable, expected: list[str]) -> None:
    assert messages(*ING, changed(VALID[ING], edit)) == expected


def test_ingress_class_rules() -> None:
    key = ("networking.k8s.io/v1", "ingressclasses")
    obj = changed(
        VALID[key], spec(controller="nginx", parameters={"kind": "Config", "name": "c", "scope": "Namespace"})
    )
    assert messages(*key, obj) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")',
        "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
    ]
    old = stored(*key, VALID[key])
    assert messages(*key, changed(old, spec(controller="example.com/other")), old=old) == [
        'spec.controller: Invalid value: "example.com/other": field is immutable'
    ]


def test_network_policy_rules() -> None:
    key = ("networking.k8s.io/v1", "networkpolicies")
    obj = changed(
        VALID[key],
        spec(
            ingress=[
                {
                    "from": [
                        {},
                        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}, "podSelector": {}},
                    ],
                    "ports": [{"port": 80, "endPort": 70}],
                }
            ],
            policyTypes=["Ingress", "Sideways"],
        ),
    )
    assert messages(*key, obj) == [
        "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a strict subset of `cidr`',
        "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
    ]


# --- rbac -----------------------------------------------------------------------------------------------

RBAC = "rbac.authorization.k8s.io/v1"


def test_role_rules() -> None:
    role = changed(
        VALID[(RBAC, "roles")],
        lambda o: o.update(
            rules=[{"resources": ["pods"]}, {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
        ),
    )
    assert messages(RBAC, "roles", role) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        'rules[1].nonResourceURLs: Invalid value: []string{"/metrics"}: namespaced rules cannot apply to non-resource URLs',
    ]
    mixed = changed(VALID[(RBAC, "clusterroles")], lambda o: o["rules"][0].update(resources=["pods"]))
    assert messages(RBAC, "clusterroles", mixed) == [
        'rules[0].nonResourceURLs: Invalid value: []string{"/metrics"}: rules cannot apply to both regular resources and non-resource URLs'
    ]


def test_binding_rules() -> None:
    binding = changed(
        VALID[(RBAC, "rolebindings")],
        lambda o: o.update(
            roleRef={"apiGroup": "example.com", "kind": "Policy", "name": ""},
            subjects=[{"kind": "Robot", "name": "r2"}],
        ),
    )
    assert messages(RBAC, "rolebindings", binding) == [
        'roleRef.apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Policy": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
    ]
    cluster = changed(VALID[(RBAC, "clusterrolebindings")], lambda o: o["subjects"][0].pop("namespace"))
    assert messages(RBAC, "clusterrolebindings", cluster) == ["subjects[0].namespace: Required value"]
    old = stored(RBAC, "rolebindings", VALID[(RBAC, "rolebindings")])
    rebound = changed(old, lambda o: o["roleRef"].update(name="admin", kind="ClusterRole"))
    assert messages(RBAC, "rolebindings", rebound, old=old) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"admin"}: cannot change roleRef'
    ]


# --- reviews (authorization.k8s.io/v1, authentication.k8s.io/v1) -------------------------------------

SAR = ("authorization.k8s.io/v1", "subjectaccessreviews")
SSAR = ("authorization.k8s.io/v1", "selfsubjectaccessreviews")
LSAR = ("authorization.k8s.io/v1", "localsubjectaccessreviews")
EXACTLY_ONE = (
    'spec.resourceAttributes: Invalid value: "null": '
    "exactly one of nonResourceAttributes or resourceAttributes must be specified"
)
BOTH = (
    'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/api", Verb:"get"}: '
    "cannot be specified in combination with resourceAttributes"
)


def set_spec(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj["spec"].update(values)


def drop_spec(*keys: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: [obj["spec"].pop(key, None) for key in keys]


REVIEW_CASES = [
    ("a self review needs one of the attributes", SSAR, drop_spec("resourceAttributes"), [EXACTLY_ONE]),
    (
        "a self review may not ask both",
        SSAR,
        set_spec(nonResourceAttributes={"path": "/api", "verb": "get"}),
        [BOTH],
    ),
    (
        "a subject review needs an attribute and a subject",
        SAR,
        drop_spec("nonResourceAttributes", "user", "groups"),
        [EXACTLY_ONE, 'spec.user: Invalid value: "": at least one of user or group must be specified'],
    ),
    ("groups alone are a subject", SAR, drop_spec("user"), []),
    (
        "an empty group list is no subject",
        SAR,
        lambda obj: obj["spec"].update(user="", groups=[]),
        ['spec.user: Invalid value: "": at least one of user or group must be specified'],
    ),
    (
        "a subject review may not ask both",
        SAR,
        set_spec(
            resourceAttributes={"verb": "get", "resource": "pods"},
            nonResourceAttributes={"path": "/api", "verb": "get"},
        ),
        [BOTH],
    ),
    (
        "review metadata must be empty",
        SAR,
        lambda obj: obj.update(metadata={"name": "x"}),
        ['metadata: Invalid value: {"name":"x"}: must be empty'],
    ),
    (
        "managedFields and zero values count as empty",
        SSAR,
        lambda obj: obj.update(
            metadata={"creationTimestamp": None, "labels": {}, "managedFields": [{"manager": "kubectl"}]}
        ),
        [],
    ),
    (
        "a local review names its namespace only",
        LSAR,
        set_meta(name="x"),
        ['metadata: Invalid value: {"name":"x","namespace":"team-a"}: must be empty except for namespace'],
    ),
    (
        "a local review asks about its own namespace",
        LSAR,
        lambda obj: obj["spec"]["resourceAttributes"].update(namespace="team-b"),
        ['spec.resourceAttributes.namespace: Invalid value: "team-b": must match metadata.namespace'],
    ),
    (
        "a local review asks about resources only",
        LSAR,
        lambda obj: (
            obj["spec"].pop("resourceAttributes"),
            obj["spec"].update(nonResourceAttributes={"path": "/api", "verb": "get"}),
        ),
        [
            'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/api", '
            'Verb:"get"}: disallowed on this kind of request'
        ],
    ),
    (
        "a selector gives a raw selector or requirements, not both",
        LSAR,
        lambda obj: obj["spec"]["resourceAttributes"].update(
            labelSelector={"rawSelector": "a=b", "requirements": [{"key": "a", "operator": "Exists"}]}
        ),
        [
            'spec.resourceAttributes.labelSelector.rawSelector: Invalid value: "a=b": '
            "may not specified at the same time as requirements"
        ],
    ),
    (
        "a selector is not empty",
        SSAR,
        lambda obj: obj["spec"]["resourceAttributes"].update(fieldSelector={}),
        [
            "spec.resourceAttributes.fieldSelector.requirements: Required value: "
            "when spec.resourceAttributes.fieldSelector is specified, requirements or rawSelector is required"
        ],
    ),
]


@pytest.mark.parametrize(("case", "key", "edit", "expected"), REVIEW_CASES, ids=[c[0] for c in REVIEW_CASES])
def test_review_rules(case: str, key: tuple[str, str], edit: Callable, expected: list[str]) -> None:
    assert messages(*key, changed(VALID[key], edit)) == expected


@pytest.mark.parametrize(
    "key",
    [
        ("authentication.k8s.io/v1", "tokenreviews"),
        ("authentication.k8s.io/v1", "selfsubjectreviews"),
        ("authorization.k8s.io/v1", "selfsubjectrulesreviews"),
    ],
)
def test_reviews_without_field_rules_need_not_even_a_name(key: tuple[str, str]) -> None:
    assert messages(*key, {"metadata": {"name": "Not_A_Name"}}) == []
    assert messages(*key, {}) == []


# --- cluster configuration kinds ------------------------------------------------------------------------


def test_lease_rules() -> None:
    key = ("coordination.k8s.io/v1", "leases")
    obj = changed(VALID[key], spec(leaseDurationSeconds=0, leaseTransitions=-1))
    assert messages(*key, obj) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_api_service_rules() -> None:
    key = ("apiregistration.k8s.io/v1", "apiservices")
    obj = changed(
        VALID[key], lambda o: o["spec"].update(groupPriorityMinimum=0, caBundle="eA==", service={"name": "m"})
    )
    assert messages(*key, obj) == [
        "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
        "spec.service.namespace: Required value",
        "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present",
    ]
    misnamed = changed(VALID[key], set_meta(name="v1.metrics.k8s.io"))
    assert messages(*key, misnamed) == [
        'metadata.name: Invalid value: "v1.metrics.k8s.io": must be `spec.version+"."+spec.group`: "v1beta1.metrics.k8s.io"'
    ]
    local = {
        "metadata": meta("v1.", None),
        "spec": {"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1},
    }
    assert messages(*key, local) == []


def test_pod_disruption_budget_rules() -> None:
    key = ("policy/v1", "poddisruptionbudgets")
    obj = changed(VALID[key], spec(minAvailable="150%", maxUnavailable=-1))
    assert messages(*key, obj) == [
        'spec: Invalid value: {"maxUnavailable":-1,"minAvailable":"150%","selector":{"matchLabels":{"app":"web"}}}: '
        "minAvailable and maxUnavailable cannot be both set",
        'spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%',
        "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
    ]
    old = stored(*key, VALID[key])
    status = changed(old, lambda o: o.update(status={"disruptionsAllowed": -1}))
    assert [e.message() for e in validate_status_update(rt(*key), status, old=old)] == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
    ]


CRD = ("apiextensions.k8s.io/v1", "customresourcedefinitions")


def test_crd_rules() -> None:
    obj = changed(
        VALID[CRD],
        lambda o: o["spec"].update(
            group="example",
            scope="Global",
            versions=[{"name": "V1", "served": True, "storage": False}],
        ),
    )
    assert messages(*CRD, obj) == [
        'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        f'spec.versions[0].name: Invalid value: "V1": {DNS1035}',
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        'spec.versions: Invalid value: [{"name":"V1","served":true,"storage":false}]: must have exactly one version marked as storage version',
        "status.storedVersions: Invalid value: []string{}: must have at least one stored version",
    ]
    protected = changed(
        VALID[CRD],
        lambda o: [
            o["metadata"].update(name="widgets.example.k8s.io"),
            o["spec"].update(group="example.k8s.io"),
        ],
    )
    assert messages(*CRD, protected) == [
        'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]
    non_object = changed(
        VALID[CRD], lambda o: o["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(type="string")
    )
    assert messages(*CRD, non_object) == [
        'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root'
    ]
    old = stored(*CRD, VALID[CRD])
    assert messages(*CRD, changed(old, lambda o: o["spec"].update(scope="Cluster")), old=old) == [
        'spec.scope: Invalid value: "Cluster": field is immutable'
    ]


def test_storage_class_rules() -> None:
    key = ("storage.k8s.io/v1", "storageclasses")
    obj = changed(
        VALID[key], lambda o: o.update(provisioner="", reclaimPolicy="Recycle", volumeBindingMode="Later")
    )
    assert messages(*key, obj) == [
        "provisioner: Required value",
        'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
        'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"',
    ]
    old = stored(*key, VALID[key])
    assert messages(*key, changed(old, lambda o: o.update(parameters={"type": "slow"})), old=old) == [
        "parameters: Forbidden: updates to parameters are forbidden."
    ]


def test_priority_class_rules() -> None:
    key = ("scheduling.k8s.io/v1", "priorityclasses")
    assert messages(*key, changed(VALID[key], lambda o: o.update(value=2_000_000_000))) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
    ]
    assert messages(*key, changed(VALID[key], set_meta(name="system-custom"))) == [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
        "error: system-custom is not a known system priority class"
    ]
    critical = {"metadata": meta("system-node-critical", None), "value": 2_000_001_000}
    assert messages(*key, critical) == []
    old = stored(*key, VALID[key])
    assert messages(*key, changed(old, lambda o: o.update(value=5)), old=old) == [
        "value: Forbidden: may not be changed in an update."
    ]


def test_horizontal_pod_autoscaler_rules() -> None:
    key = ("autoscaling/v2", "horizontalpodautoscalers")
    obj = changed(
        VALID[key],
        spec(minReplicas=5, maxReplicas=2, scaleTargetRef={"kind": "Deployment"}, metrics=[{"type": "Pods"}]),
    )
    assert messages(*key, obj) == [
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        "spec.scaleTargetRef.name: Required value",
        "spec.metrics[0].pods: Required value: must populate information for the given metric source",
    ]


# --- the generic path and helpers ------------------------------------------------------------------------


def test_custom_resources_get_object_meta_validation_only() -> None:
    widget = ResourceType(
        group="example.com",
        version="v1",
        kind="Widget",
        plural="widgets",
        singular="widget",
        namespaced=False,
    )
    assert [
        e.message()
        for e in validate(widget, {"metadata": {"name": "w", "namespace": "x"}, "spec": {"anything": 1}})
    ] == ["metadata.namespace: Forbidden: not allowed on this type"]
    old = {"metadata": {"name": "w", "uid": "1", "resourceVersion": "3"}}
    new = {"metadata": {"name": "w", "uid": "2", "resourceVersion": "3"}}
    assert [e.message() for e in validate(widget, new, old=old)] == [
        'metadata.uid: Invalid value: "2": field is immutable'
    ]
    assert validate_status_update(widget, old, old=old) == []


def test_malformed_values_are_reported_not_raised() -> None:
    for key, obj in VALID.items():
        broken = changed(obj, lambda o: o.update(spec=[1, 2], metadata={"name": 5, "labels": "x"}))
        validate(rt(*key), broken)
        validate(rt(*key), broken, old=stored(*key, obj))


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0.5", "500m"),
        ("100m", "100m"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1.5Gi", "1536Mi"),
        ("1024Mi", "1Gi"),
        ("512", "512"),
        ("1e3", "1e3"),
        (2, "2"),
        (0.25, "250m"),
        ("-1", "-1"),
        ("0", "0"),
    ],
)
def test_quantities_print_in_canonical_form(raw: Any, canonical: str) -> None:
    assert str(Quantity.parse(raw)) == canonical


def test_quantities_compare_by_value() -> None:
    assert Quantity.parse("1").compare(Quantity.parse("1000m")) == 0
    assert Quantity.parse("1Gi").compare(Quantity.parse("1G")) == 1
    assert Quantity.parse("1Ki").add(Quantity.parse("1Ki")).compare(Quantity.parse("2048")) == 0
    for bad in ("", "1.2.3", "abc", "1Zi", True, None):
        with pytest.raises(InvalidQuantityError):
            Quantity.parse(bad)


def test_go_value_rendering() -> None:
    assert str(go_string_map({"b": "2", "a": "1"})) == 'map[string]string{"a":"1", "b":"2"}'
    assert str(go_string_map(None)) == "map[string]string(nil)"
    assert str(go_int_or_string("25%")) == 'intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}'
    assert str(go_int_or_string(3)) == 'intstr.IntOrString{Type:0, IntVal:3, StrVal:""}'
    assert str(go_label_selector({"matchExpressions": [{"key": "a", "operator": "Exists"}]})) == (
        "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement"
        '{v1.LabelSelectorRequirement{Key:"a", Operator:"Exists", Values:[]string(nil)}}}'
    )


def test_regex_error_and_qualified_names_word_for_word() -> None:
    assert regex_error("msg", "re") == "msg (regex used for validation is 're')"
    assert regex_error("msg", "re", "a", "b") == "msg (e.g. 'a',  or 'b', regex used for validation is 're')"
    assert is_qualified_name("example.com/") == ["name part must be non-empty", f"{NAME_PART}"]
    assert is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    obj = orjson.loads(orjson.dumps(obj))
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return obj


def _value_at(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _wrong_values(original: Any) -> list[Any]:
    """None plus one value of every JSON type the original is not."""
    candidates = (7, "x", [None], {"": None}, True)
    return [None, *(c for c in candidates if type(c) is not type(original))]


@pytest.mark.parametrize("key", sorted(VALID), ids=lambda key: f"{key[0]}/{key[1]}")
def test_wrongly_typed_values_anywhere_never_crash(key: tuple[str, str]) -> None:
    """The schema layer rejects wrong types, but neither defaulting nor validation may
    raise if one slips through (e.g. fieldValidation=Ignore on a nested value)."""
    kind = rt(*key)
    base = stored(*key, VALID[key])
    for path in _paths(base):
        for wrong in (None, 7, "x", [], {}, True, [None], {"": None}):
            obj = _replaced(base, path, wrong)
            apply_defaults(kind, obj)
            validate(kind, obj)
            validate(kind, obj, old=base)
            validate_status_update(kind, obj, old=base)


RICH_POD_SPEC = {
    "containers": [
        {
            "name": "web",
            "image": "nginx:1.27",
            "ports": [{"containerPort": 80, "name": "http", "hostPort": 8080}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
            ],
            "envFrom": [{"secretRef": {"name": "sec"}, "prefix": "S_"}],
            "volumeMounts": [
                {"name": "data", "mountPath": "/data", "subPath": "x", "mountPropagation": "None"}
            ],
            "volumeDevices": [{"name": "block", "devicePath": "/dev/xvda"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
            "livenessProbe": {"httpGet": {"port": "http", "httpHeaders": [{"name": "X-A", "value": "b"}]}},
            "readinessProbe": {"grpc": {"port": 9000}},
            "startupProbe": {"tcpSocket": {"port": 80}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}, "postStart": {"exec": {"command": ["true"]}}},
            "securityContext": {
                "runAsUser": 1000,
                "allowPrivilegeEscalation": False,
                "capabilities": {"add": ["NET_ADMIN"]},
                "seccompProfile": {"type": "RuntimeDefault"},
                "appArmorProfile": {"type": "Localhost", "localhostProfile": "p"},
            },
        }
    ],
    "initContainers": [
        {
            "name": "init",
            "image": "busybox",
            "restartPolicy": "Always",
            "readinessProbe": {"exec": {"command": ["true"]}},
        }
    ],
    "volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "block", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a", "mode": 420}]}},
        {
            "name": "proj",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                        }
                    },
                    {"secret": {"name": "s", "items": [{"key": "k", "path": "k"}]}},
                ]
            },
        },
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "git", "gitRepo": {"repository": "https://example.com/r.git", "directory": "."}},
        {"name": "nfs", "nfs": {"server": "nfs", "path": "/export"}},
        {"name": "csi", "csi": {"driver": "example.com/csi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ],
    "serviceAccountName": "bot",
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
                        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}],
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}
            ],
        },
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 5,
                    "podAffinityTerm": {
                        "topologyKey": "zone",
                        "labelSelector": {"matchLabels": {"a": "b"}},
                        "matchLabelKeys": ["app"],
                    },
                }
            ]
        },
    },
    "tolerations": [
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30}
    ],
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "minDomains": 2,
            "labelSelector": {"matchLabels": {"app": "web"}},
            "matchLabelKeys": ["pod-template-hash"],
            "nodeAffinityPolicy": "Honor",
        }
    ],
    "dnsPolicy": "None",
    "dnsConfig": {
        "nameservers": ["127.96.0.10"],
        "searches": ["svc.cluster.local", "_tcp.example.com."],
        "options": [{"name": "ndots", "value": "2"}],
    },
    "securityContext": {
        "fsGroup": 2000,
        "supplementalGroups": [3000],
        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
        "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"},
    },
    "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["local.test"]}],
    "readinessGates": [{"conditionType": "example.com/ready"}],
    "schedulingGates": [{"name": "example.com/gate"}],
    "os": {"name": "linux"},
    "hostname": "web-0",
    "subdomain": "web",
    "priorityClassName": "high",
    "preemptionPolicy": "Never",
    "runtimeClassName": "runc",
    "activeDeadlineSeconds": 600,
    "imagePullSecrets": [{"name": "regcred"}],
}
RICH_TEMPLATE_SPEC = {k: v for k, v in RICH_POD_SPEC.items() if k != "activeDeadlineSeconds"}

RICH: list[tuple[tuple[str, str], dict[str, Any]]] = [
    (
        POD,
        {
            "metadata": meta(),
            "spec": RICH_POD_SPEC,
            "status": {
                "podIPs": [{"ip": "127.244.1.5"}],
                "hostIPs": [{"ip": "127.100.0.1"}],
                "hostIP": "127.100.0.1",
                "containerStatuses": [{"name": "web", "state": {"terminated": {"exitCode": 1}}}],
                "conditions": [{"type": "example.com/x", "status": "True"}],
            },
        },
    ),
    (
        DEPLOY,
        {
            "metadata": meta(),
            "spec": {
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
                },
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": RICH_TEMPLATE_SPEC},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"},
                },
            },
        },
    ),
    (
        ("apps/v1", "statefulsets"),
        {
            "metadata": meta(),
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template(),
                "ordinals": {"start": 1},
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"partition": 1, "maxUnavailable": 2},
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
                ],
            },
        },
    ),
    (
        ("apps/v1", "daemonsets"),
        {
            "metadata": meta(),
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template(),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}},
            },
        },
    ),
    (
        JOB,
        {
            "metadata": meta("pi"),
            "spec": {
                "completionMode": "Indexed",
                "completions": 3,
                "backoffLimitPerIndex": 1,
                "maxFailedIndexes": 1,
                "managedBy": "example.com/ctl",
                "podFailurePolicy": {
                    "rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}}]
                },
                "successPolicy": {"rules": [{"succeededCount": 1}]},
                "template": pod_template(restartPolicy="Never"),
            },
        },
    ),
    (
        CRON,
        {
            "metadata": meta("nightly"),
            "spec": {
                "schedule": "@daily",
                "timeZone": "Europe/Paris",
                "startingDeadlineSeconds": 30,
                "jobTemplate": {"spec": {"template": pod_template(restartPolicy="Never")}},
            },
        },
    ),
    (
        SVC,
        {
            "metadata": meta(),
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": 31000,
                "loadBalancerClass": "example.com/lb",
                "loadBalancerSourceRanges": ["10.0.0.0/8"],
                "sessionAffinity": "ClientIP",
                "externalIPs": ["192.0.2.10"],
                "ports": [
                    {"name": "http", "port": 80, "nodePort": 30080, "appProtocol": "http"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
                "clusterIP": "127.96.0.5",
                "clusterIPs": ["127.96.0.5"],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "hostname": "lb.example.com"}]}},
        },
    ),
    (
        ING,
        {
            "metadata": meta(annotations={"kubernetes.io/ingress.class": "nginx"}),
            "spec": {
                "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}},
                "rules": [
                    {
                        "host": "*.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/x",
                                    "pathType": "ImplementationSpecific",
                                    "backend": {"service": {"name": "web", "port": {"name": "http"}}},
                                }
                            ]
                        },
                    }
                ],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
        },
    ),
    (
        ("networking.k8s.io/v1", "networkpolicies"),
        {
            "metadata": meta(),
            "spec": {
                "podSelector": {"matchLabels": {"a": "b"}},
                "egress": [
                    {
                        "to": [{"namespaceSelector": {}}],
                        "ports": [{"port": "dns", "protocol": "UDP"}, {"port": 1000, "endPort": 2000}],
                    }
                ],
            },
        },
    ),
    (
        SLICE,
        {
            "metadata": meta("s"),
            "addressType": "FQDN",
            "endpoints": [
                {
                    "addresses": ["db.example.com"],
                    "nodeName": "node-1",
                    "hostname": "db",
                    "deprecatedTopology": {"a": "b"},
                    "hints": {"forZones": [{"name": "a"}]},
                }
            ],
            "ports": [{"port": 5432, "appProtocol": "postgres"}],
        },
    ),
    (
        CRD,
        {
            "metadata": meta("widgets.example.com", None),
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"kind": "Widget", "plural": "widgets", "categories": ["all"], "shortNames": ["w"]},
                "conversion": {
                    "strategy": "Webhook",
                    "webhook": {
                        "clientConfig": {"service": {"name": "conv", "namespace": "x"}},
                        "conversionReviewVersions": ["v1"],
                    },
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    },
                    {
                        "name": "v2",
                        "served": True,
                        "storage": False,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    },
                ],
            },
            "status": {"storedVersions": ["v1"]},
        },
    ),
    (
        ("autoscaling/v2", "horizontalpodautoscalers"),
        {
            "metadata": meta(),
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "memory",
                            "target": {"type": "AverageValue", "averageValue": "100Mi"},
                        },
                    },
                    {
                        "type": "Pods",
                        "pods": {"metric": {"name": "qps"}, "target": {"type": "Value", "value": "10"}},
                    },
                ],
                "behavior": {"scaleUp": {"selectPolicy": "Disabled"}},
            },
            "status": {"currentReplicas": 1, "desiredReplicas": 1},
        },
    ),
    (
        ("v1", "nodes"),
        {
            "metadata": meta("n", None),
            "spec": {"podCIDRs": ["127.244.1.0/24", "fd00::/64"], "providerID": "lab://n"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.100.0.1"}],
                "allocatable": {"cpu": "2"},
            },
        },
    ),
    (
        ("policy/v1", "poddisruptionbudgets"),
        {
            "metadata": meta(),
            "spec": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
            "status": {
                "disruptionsAllowed": 1,
                "conditions": [
                    {
                        "type": "DisruptionAllowed",
                        "status": "True",
                        "reason": "SufficientPods",
                        "lastTransitionTime": "2025-01-01T00:00:00Z",
                    }
                ],
            },
        },
    ),
    (
        ("storage.k8s.io/v1", "storageclasses"),
        {
            "metadata": meta("sc", None),
            "provisioner": "example.com/p",
            "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b"]}]}],
        },
    ),
    (
        ("apiregistration.k8s.io/v1", "apiservices"),
        {
            "metadata": meta("v1.", None),
            "spec": {"version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1},
            "status": {"conditions": [{"type": "Available", "status": "True"}]},
        },
    ),
    (
        ("rbac.authorization.k8s.io/v1", "clusterroles"),
        {
            "metadata": meta("agg", None),
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
            "rules": [],
        },
    ),
]


@pytest.mark.parametrize(("key", "obj"), RICH, ids=[f"{k[0]}/{k[1]}" for k, _ in RICH])
def test_rich_objects_are_valid(key: tuple[str, str], obj: dict[str, Any]) -> None:
    assert messages(*key, obj) == []


@pytest.mark.parametrize(("key", "obj"), RICH, ids=[f"{k[0]}/{k[1]}" for k, _ in RICH])
def test_rich_objects_survive_wrong_types_anywhere(key: tuple[str, str], obj: dict[str, Any]) -> None:
    kind = rt(*key)
    base = stored(*key, obj)
    for path in _paths(base):
        original = _replaced(base, path, None)
        for wrong in _wrong_values(_value_at(base, path)):
            broken = _replaced(base, path, wrong) if wrong is not None else original
            apply_defaults(kind, broken)
            validate(kind, broken)
            validate(kind, broken, old=base)
            validate_status_update(kind, broken, old=base)
