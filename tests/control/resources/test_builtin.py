"""The built-in kinds, checked against what kube-apiserver 1.33 serves.

The expected table is ``kubectl api-resources -o wide`` plus subresources, transcribed
from upstream's checked-in discovery documents (kubernetes/kubernetes
api/discovery/api__v1.json, apis__apps__v1.json, ...), restricted to the subresources
kubelab serves.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import control.resources
from control.resources.builtin import BUILTIN_TYPES, builtin_registry
from control.resources.registry import ALL_VERBS, NameRule, ResourceType

ALL = ALL_VERBS
NO_DELETECOLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")

# (apiVersion, plural): (kind, singular, namespaced, shortNames, categories, verbs, subresources)
EXPECTED: dict[
    tuple[str, str], tuple[str, str, bool, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
] = {
    ("v1", "bindings"): ("Binding", "binding", True, (), (), ("create",), ()),
    ("v1", "componentstatuses"): (
        "ComponentStatus",
        "componentstatus",
        False,
        ("cs",),
        (),
        ("get", "list"),
        (),
    ),
    ("authentication.k8s.io/v1", "tokenreviews"): (
        "TokenReview",
        "tokenreview",
        False,
        (),
        (),
        ("create",),
        (),
    ),
    ("authentication.k8s.io/v1", "selfsubjectreviews"): (
        "SelfSubjectReview",
        "selfsubjectreview",
        False,
        (),
        (),
        ("create",),
        (),
    ),
    ("authorization.k8s.io/v1", "localsubjectaccessreviews"): (
        "LocalSubjectAccessReview",
        "localsubjectaccessreview",
        True,
        (),
        (),
        ("create",),
        (),
    ),
    ("authorization.k8s.io/v1", "selfsubjectaccessreviews"): (
        "SelfSubjectAccessReview",
        "selfsubjectaccessreview",
        False,
        (),
        (),
        ("create",),
        (),
    ),
    ("authorization.k8s.io/v1", "selfsubjectrulesreviews"): (
        "SelfSubjectRulesReview",
        "selfsubjectrulesreview",
        False,
        (),
        (),
        ("create",),
        (),
    ),
    ("authorization.k8s.io/v1", "subjectaccessreviews"): (
        "SubjectAccessReview",
        "subjectaccessreview",
        False,
        (),
        (),
        ("create",),
        (),
    ),
    ("v1", "configmaps"): ("ConfigMap", "configmap", True, ("cm",), (), ALL, ()),
    ("v1", "endpoints"): ("Endpoints", "endpoints", True, ("ep",), (), ALL, ()),
    ("v1", "events"): ("Event", "event", True, ("ev",), (), ALL, ()),
    ("v1", "namespaces"): (
        "Namespace",
        "namespace",
        False,
        ("ns",),
        (),
        NO_DELETECOLLECTION,
        ("status", "finalize"),
    ),
    ("v1", "nodes"): ("Node", "node", False, ("no",), (), ALL, ("status", "proxy")),
    ("v1", "persistentvolumeclaims"): (
        "PersistentVolumeClaim",
        "persistentvolumeclaim",
        True,
        ("pvc",),
        (),
        ALL,
        ("status",),
    ),
    ("v1", "persistentvolumes"): (
        "PersistentVolume",
        "persistentvolume",
        False,
        ("pv",),
        (),
        ALL,
        ("status",),
    ),
    ("v1", "pods"): (
        "Pod",
        "pod",
        True,
        ("po",),
        ("all",),
        ALL,
        (
            "status",
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
        ),
    ),
    ("v1", "limitranges"): ("LimitRange", "limitrange", True, ("limits",), (), ALL, ()),
    ("v1", "replicationcontrollers"): (
        "ReplicationController",
        "replicationcontroller",
        True,
        ("rc",),
        ("all",),
        ALL,
        ("status", "scale"),
    ),
    ("v1", "resourcequotas"): ("ResourceQuota", "resourcequota", True, ("quota",), (), ALL, ("status",)),
    ("v1", "secrets"): ("Secret", "secret", True, (), (), ALL, ()),
    ("v1", "serviceaccounts"): ("ServiceAccount", "serviceaccount", True, ("sa",), (), ALL, ("token",)),
    ("v1", "services"): ("Service", "service", True, ("svc",), ("all",), ALL, ("status", "proxy")),
    ("apiregistration.k8s.io/v1", "apiservices"): (
        "APIService",
        "apiservice",
        False,
        (),
        ("api-extensions",),
        ALL,
        ("status",),
    ),
    ("apps/v1", "controllerrevisions"): ("ControllerRevision", "controllerrevision", True, (), (), ALL, ()),
    ("apps/v1", "daemonsets"): ("DaemonSet", "daemonset", True, ("ds",), ("all",), ALL, ("status",)),
    ("apps/v1", "deployments"): (
        "Deployment",
        "deployment",
        True,
        ("deploy",),
        ("all",),
        ALL,
        ("status", "scale"),
    ),
    ("apps/v1", "replicasets"): (
        "ReplicaSet",
        "replicaset",
        True,
        ("rs",),
        ("all",),
        ALL,
        ("status", "scale"),
    ),
    ("apps/v1", "statefulsets"): (
        "StatefulSet",
        "statefulset",
        True,
        ("sts",),
        ("all",),
        ALL,
        ("status", "scale"),
    ),
    ("events.k8s.io/v1", "events"): ("Event", "event", True, ("ev",), (), ALL, ()),
    ("autoscaling/v2", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler",
        "horizontalpodautoscaler",
        True,
        ("hpa",),
        ("all",),
        ALL,
        ("status",),
    ),
    ("autoscaling/v1", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler",
        "horizontalpodautoscaler",
        True,
        ("hpa",),
        ("all",),
        ALL,
        ("status",),
    ),
    ("batch/v1", "cronjobs"): ("CronJob", "cronjob", True, ("cj",), ("all",), ALL, ("status",)),
    ("batch/v1", "jobs"): ("Job", "job", True, (), ("all",), ALL, ("status",)),
    ("networking.k8s.io/v1", "ingressclasses"): ("IngressClass", "ingressclass", False, (), (), ALL, ()),
    ("networking.k8s.io/v1", "ingresses"): ("Ingress", "ingress", True, ("ing",), (), ALL, ("status",)),
    ("networking.k8s.io/v1", "networkpolicies"): (
        "NetworkPolicy",
        "networkpolicy",
        True,
        ("netpol",),
        (),
        ALL,
        (),
    ),
    ("policy/v1", "poddisruptionbudgets"): (
        "PodDisruptionBudget",
        "poddisruptionbudget",
        True,
        ("pdb",),
        (),
        ALL,
        ("status",),
    ),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"): (
        "ClusterRoleBinding",
        "clusterrolebinding",
        False,
        (),
        (),
        ALL,
        (),
    ),
    ("rbac.authorization.k8s.io/v1", "clusterroles"): ("ClusterRole", "clusterrole", False, (), (), ALL, ()),
    ("rbac.authorization.k8s.io/v1", "rolebindings"): ("RoleBinding", "rolebinding", True, (), (), ALL, ()),
    ("rbac.authorization.k8s.io/v1", "roles"): ("Role", "role", True, (), (), ALL, ()),
    ("storage.k8s.io/v1", "storageclasses"): ("StorageClass", "storageclass", False, ("sc",), (), ALL, ()),
    ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations"): (
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfiguration",
        False,
        (),
        ("api-extensions",),
        ALL,
        (),
    ),
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies"): (
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicy",
        False,
        (),
        ("api-extensions",),
        ALL,
        ("status",),
    ),
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings"): (
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybinding",
        False,
        (),
        ("api-extensions",),
        ALL,
        (),
    ),
    ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations"): (
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfiguration",
        False,
        (),
        ("api-extensions",),
        ALL,
        (),
    ),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"): (
        "CustomResourceDefinition",
        "customresourcedefinition",
        False,
        ("crd", "crds"),
        ("api-extensions",),
        ALL,
        ("status",),
    ),
    ("scheduling.k8s.io/v1", "priorityclasses"): (
        "PriorityClass",
        "priorityclass",
        False,
        ("pc",),
        (),
        ALL,
        (),
    ),
    ("coordination.k8s.io/v1", "leases"): ("Lease", "lease", True, (), (), ALL, ()),
    ("v1", "podtemplates"): ("PodTemplate", "podtemplate", True, (), (), ALL, ()),
    ("node.k8s.io/v1", "runtimeclasses"): ("RuntimeClass", "runtimeclass", False, (), (), ALL, ()),
    ("certificates.k8s.io/v1", "certificatesigningrequests"): (
        "CertificateSigningRequest",
        "certificatesigningrequest",
        False,
        ("csr",),
        (),
        ALL,
        ("status", "approval"),
    ),
    ("discovery.k8s.io/v1", "endpointslices"): ("EndpointSlice", "endpointslice", True, (), (), ALL, ()),
}

# The order upstream lists groups in /apis (kubernetes api/discovery/apis.json).
UPSTREAM_GROUP_ORDER = [
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
]


def _declared() -> dict[tuple[str, str], ResourceType]:
    return {(rt.api_version, rt.plural): rt for rt in BUILTIN_TYPES}


def test_exactly_the_expected_resources_are_declared() -> None:
    assert sorted(_declared()) == sorted(EXPECTED)
    assert len(BUILTIN_TYPES) == len(EXPECTED), "a resource is declared twice"


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda key: f"{key[0]}/{key[1]}")
def test_declaration_matches_upstream_discovery(key: tuple[str, str]) -> None:
    rt = _declared()[key]
    kind, singular, namespaced, short_names, categories, verbs, subresources = EXPECTED[key]
    assert (rt.kind, rt.singular, rt.namespaced) == (kind, singular, namespaced)
    assert rt.short_names == short_names
    assert rt.categories == categories
    assert rt.verbs == verbs
    assert rt.subresources == subresources


def _definitions() -> dict[str, dict]:
    path = Path(control.resources.__file__).parent / "schemas" / "kubernetes-v1.33-definitions.json.gz"
    with gzip.open(path) as handle:
        return json.load(handle)["$defs"]


def test_every_definition_names_the_kind_in_the_vendored_openapi() -> None:
    definitions = _definitions()
    for rt in BUILTIN_TYPES:
        assert rt.definition in definitions, rt.definition
        gvks = definitions[rt.definition]["x-kubernetes-group-version-kind"]
        assert {"group": rt.group, "version": rt.version, "kind": rt.kind} in gvks


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        (("v1", "namespaces"), NameRule.DNS1123_LABEL),
        (("v1", "services"), NameRule.DNS1123_LABEL),
        (("apps/v1", "statefulsets"), NameRule.DNS1123_LABEL),
        (("v1", "events"), NameRule.PATH_SEGMENT),
        (("apiregistration.k8s.io/v1", "apiservices"), NameRule.PATH_SEGMENT),
        (("rbac.authorization.k8s.io/v1", "roles"), NameRule.PATH_SEGMENT),
        (("rbac.authorization.k8s.io/v1", "clusterroles"), NameRule.PATH_SEGMENT),
        (("rbac.authorization.k8s.io/v1", "rolebindings"), NameRule.PATH_SEGMENT),
        (("rbac.authorization.k8s.io/v1", "clusterrolebindings"), NameRule.PATH_SEGMENT),
        (("v1", "pods"), NameRule.DNS1123_SUBDOMAIN),
        (("apps/v1", "deployments"), NameRule.DNS1123_SUBDOMAIN),
        (("v1", "configmaps"), NameRule.DNS1123_SUBDOMAIN),
    ],
)
def test_name_rules_follow_upstream(key: tuple[str, str], rule: NameRule) -> None:
    assert _declared()[key].name_rule is rule


@pytest.mark.parametrize(
    "key",
    [
        ("apps/v1", "deployments"),
        ("apps/v1", "replicasets"),
        ("apps/v1", "statefulsets"),
        ("v1", "replicationcontrollers"),
    ],
)
def test_scale_reads_replicas_and_renders_the_spec_selector(key: tuple[str, str]) -> None:
    scale = _declared()[key].scale
    assert scale is not None
    assert (scale.spec_replicas_path, scale.status_replicas_path, scale.label_selector_path) == (
        "spec.replicas",
        "status.replicas",
        "spec.selector",
    )


def test_only_bindings_and_reviews_are_virtual() -> None:
    assert sorted(rt.plural for rt in BUILTIN_TYPES if rt.virtual) == [
        "bindings",
        "localsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "tokenreviews",
    ]
    assert all(rt.schema is None and rt.printer_columns == () for rt in BUILTIN_TYPES)


def test_builtin_registry_is_fresh_each_call() -> None:
    first, second = builtin_registry(), builtin_registry()
    assert first is not second
    first.remove(group="apps", version="v1", plural="deployments")
    assert first.lookup(group="apps", version="v1", plural="deployments") is None
    assert second.lookup(group="apps", version="v1", plural="deployments") is not None


def test_registry_finds_every_kind_by_resource_and_by_kind() -> None:
    registry = builtin_registry()
    for rt in BUILTIN_TYPES:
        assert registry.lookup(group=rt.group, version=rt.version, plural=rt.plural) is rt
        assert registry.lookup_kind(group=rt.group, version=rt.version, kind=rt.kind) is rt


def test_group_versions_follow_upstream_group_order() -> None:
    group_versions = builtin_registry().group_versions()
    groups = list(dict.fromkeys(group for group, _ in group_versions))
    assert groups == UPSTREAM_GROUP_ORDER
    # Within a group, the preferred version first: upstream 1.33 lists autoscaling v2, then v1.
    assert [version for group, version in group_versions if group == "autoscaling"] == ["v2", "v1"]
