"""The default RBAC policy the API server ensures at start-up: upstream's bootstrap policy
(``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``: ``policy.go`` and ``controller_policy.go``)
and its reconciliation (the ``rbac/bootstrap-roles`` post-start hook).

The ClusterRoles are upstream's — ``cluster-admin``, the aggregated ``admin``/``edit``/``view``
with the ``system:aggregate-to-*`` roles that hold their content, the discovery and self-review
roles every user gets, and the roles of the components (scheduler, controller manager, proxy,
kubelets, DNS) — and one ``system:controller:<sa>`` role per controller kubelab runs, bound to
the ServiceAccount ``kube-system/<sa>`` the controller manager runs it as. Those controller
rules are upstream's plus what kubelab's controllers do beyond them (the deployment controller
patches Deployments; the Job controller deletes finished Jobs past their TTL itself).
``system:node`` carries the Node authorizer's rules (:data:`NODE_RULES`) and, as upstream, no
subjects: kubelets are authorized by the Node authorizer. Upstream's namespaced bootstrap
Roles kubelab needs (``NamespaceRoles``/``NamespaceRoleBindings``) are here too:
``kube-system/extension-apiserver-authentication-reader``, which extension API servers bind to
read the ConfigMap that says how to authenticate the aggregator's requests.

Every object is labelled ``kubernetes.io/bootstrapping: rbac-defaults`` and annotated
``rbac.authorization.kubernetes.io/autoupdate: "true"``. :func:`ensure_bootstrap_policy` creates
what is missing and, on objects whose annotation is not ``"false"``, adds what a user removed —
rules, aggregation selectors, subjects, labels, annotations — never removing what users added;
a binding whose roleRef was changed is recreated (a roleRef cannot be updated). ``admin``,
``edit`` and ``view`` are created with their aggregated rules already filled in (by the
aggregation controller's own function), so a server without a controller manager is consistent
from the start; the controller keeps them current afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from control.apiserver import errors
from control.apiserver.codec import decode
from control.apiserver.node_authorizer import NODE_RULES
from control.apiserver.rbac import RBAC_GROUP, uncovered_rules
from control.apiserver.resource_store import DeleteOptions, ResourceStore
from control.resources.rbac_aggregation import aggregated_rules
from control.resources.registry import ResourceType

AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
ANNOTATIONS = {AUTOUPDATE_ANNOTATION: "true"}
CONTROLLER_ROLE_PREFIX = "system:controller:"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE
READ_UPDATE = ("get", "list", "watch", "update", "patch")

LEGACY = ""
APPS = "apps"
AUTHENTICATION = "authentication.k8s.io"
AUTHORIZATION = "authorization.k8s.io"
AUTOSCALING = "autoscaling"
BATCH = "batch"
CERTIFICATES = "certificates.k8s.io"
COORDINATION = "coordination.k8s.io"
DISCOVERY = "discovery.k8s.io"
EVENTS = "events.k8s.io"
EXTENSIONS = "extensions"
NETWORKING = "networking.k8s.io"
POLICY = "policy"
STORAGE = "storage.k8s.io"

Rule = dict[str, list[str]]


def rule(
    verbs: Iterable[str],
    *,
    groups: Iterable[str] = (),
    resources: Iterable[str] = (),
    names: Iterable[str] = (),
    urls: Iterable[str] = (),
) -> Rule:
    """A PolicyRule as stored (upstream's ``rbacv1helpers.NewRule(...)``), empty fields omitted."""
    built: Rule = {"verbs": list(verbs)}
    for field, values in (
        ("apiGroups", groups),
        ("resources", resources),
        ("resourceNames", names),
        ("nonResourceURLs", urls),
    ):
        values = list(values)
        if values:
            built[field] = values
    return built


def _events_rule() -> Rule:
    return rule(("create", "update", "patch"), groups=(LEGACY, EVENTS), resources=("events",))


def _aggregate_to(role: str) -> dict[str, str]:
    return {f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"}


def _cluster_role(
    name: str,
    rules: Iterable[Rule] = (),
    *,
    labels: Mapping[str, str] | None = None,
    aggregate_from: str = "",
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "metadata": {"name": name, "labels": {**(labels or {}), **LABELS}, "annotations": dict(ANNOTATIONS)},
        "rules": list(rules),
    }
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": _aggregate_to(aggregate_from)}]}
    return role


def _subject(kind: str, name: str, namespace: str = "") -> dict[str, str]:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def _binding(name: str, *subjects: dict[str, str], role: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": dict(LABELS), "annotations": dict(ANNOTATIONS)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role or name},
        "subjects": list(subjects),
    }


def _groups(*names: str) -> list[dict[str, str]]:
    return [_subject("Group", name) for name in names]


# --------------------------------------------------------------------------- policy.go


def _aggregated_content_roles() -> list[dict[str, Any]]:
    """``system:aggregate-to-admin``, ``-edit`` and ``-view``: what admin, edit and view hold."""
    return [
        _cluster_role(
            "system:aggregate-to-admin",
            [
                rule(("create",), groups=(AUTHORIZATION,), resources=("localsubjectaccessreviews",)),
                rule(READ_WRITE, groups=(RBAC_GROUP,), resources=("roles", "rolebindings")),
            ],
            labels=_aggregate_to("admin"),
        ),
        _cluster_role(
            "system:aggregate-to-edit",
            [
                rule(
                    READ,
                    groups=(LEGACY,),
                    resources=(
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                        "secrets",
                        "services/proxy",
                    ),
                ),
                rule(("impersonate",), groups=(LEGACY,), resources=("serviceaccounts",)),
                rule(
                    WRITE,
                    groups=(LEGACY,),
                    resources=("pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
                ),
                rule(("create",), groups=(LEGACY,), resources=("pods/eviction",)),
                rule(
                    WRITE,
                    groups=(LEGACY,),
                    resources=(
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                        "endpoints",
                        "persistentvolumeclaims",
                        "configmaps",
                        "secrets",
                        "events",
                    ),
                ),
                rule(("create",), groups=(LEGACY,), resources=("serviceaccounts/token",)),
                rule(
                    WRITE,
                    groups=(APPS,),
                    resources=(
                        "statefulsets",
                        "statefulsets/scale",
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "replicasets",
                        "replicasets/scale",
                    ),
                ),
                rule(WRITE, groups=(AUTOSCALING,), resources=("horizontalpodautoscalers",)),
                rule(WRITE, groups=(BATCH,), resources=("jobs", "cronjobs")),
                rule(
                    WRITE,
                    groups=(EXTENSIONS,),
                    resources=(
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "ingresses",
                        "replicasets",
                        "replicasets/scale",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ),
                ),
                rule(WRITE, groups=(POLICY,), resources=("poddisruptionbudgets",)),
                rule(WRITE, groups=(NETWORKING,), resources=("networkpolicies", "ingresses")),
                rule(READ_WRITE, groups=(COORDINATION,), resources=("leases",)),
            ],
            labels=_aggregate_to("edit"),
        ),
        _cluster_role(
            "system:aggregate-to-view",
            [
                rule(
                    READ,
                    groups=(LEGACY,),
                    resources=(
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "configmaps",
                    ),
                ),
                rule(
                    READ,
                    groups=(LEGACY,),
                    resources=(
                        "limitranges",
                        "resourcequotas",
                        "bindings",
                        "events",
                        "pods/status",
                        "resourcequotas/status",
                        "namespaces/status",
                        "replicationcontrollers/status",
                        "pods/log",
                    ),
                ),
                rule(READ, groups=(LEGACY,), resources=("namespaces",)),
                rule(READ, groups=(DISCOVERY,), resources=("endpointslices",)),
                rule(
                    READ,
                    groups=(APPS,),
                    resources=(
                        "controllerrevisions",
                        "statefulsets",
                        "statefulsets/status",
                        "statefulsets/scale",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/status",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/status",
                        "replicasets/scale",
                    ),
                ),
                rule(
                    READ,
                    groups=(AUTOSCALING,),
                    resources=("horizontalpodautoscalers", "horizontalpodautoscalers/status"),
                ),
                rule(READ, groups=(BATCH,), resources=("jobs", "cronjobs", "cronjobs/status", "jobs/status")),
                rule(
                    READ,
                    groups=(EXTENSIONS,),
                    resources=(
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "ingresses",
                        "ingresses/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ),
                ),
                rule(
                    READ, groups=(POLICY,), resources=("poddisruptionbudgets", "poddisruptionbudgets/status")
                ),
                rule(
                    READ, groups=(NETWORKING,), resources=("networkpolicies", "ingresses", "ingresses/status")
                ),
            ],
            labels=_aggregate_to("view"),
        ),
    ]


def _component_roles() -> list[dict[str, Any]]:
    signer_approver = "system:certificates.k8s.io:{}-approver"
    return [
        _cluster_role(
            "system:heapster",
            [
                rule(READ, groups=(LEGACY,), resources=("events", "pods", "nodes", "namespaces")),
                rule(READ, groups=(EXTENSIONS,), resources=("deployments",)),
            ],
        ),
        _cluster_role("system:node", [copy.deepcopy(dict(r)) for r in NODE_RULES]),
        _cluster_role(
            "system:node-problem-detector",
            [
                rule(("get",), groups=(LEGACY,), resources=("nodes",)),
                rule(("patch",), groups=(LEGACY,), resources=("nodes/status",)),
                _events_rule(),
            ],
        ),
        _cluster_role(
            "system:kubelet-api-admin",
            [
                rule(("get", "list", "watch"), groups=(LEGACY,), resources=("nodes",)),
                rule(("proxy",), groups=(LEGACY,), resources=("nodes",)),
                rule(
                    ("*",),
                    groups=(LEGACY,),
                    resources=("nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"),
                ),
            ],
        ),
        _cluster_role(
            "system:node-bootstrapper",
            [
                rule(
                    ("create", "get", "list", "watch"),
                    groups=(CERTIFICATES,),
                    resources=("certificatesigningrequests",),
                )
            ],
        ),
        _cluster_role(
            "system:auth-delegator",
            [
                rule(("create",), groups=(AUTHENTICATION,), resources=("tokenreviews",)),
                rule(("create",), groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
            ],
        ),
        _cluster_role(
            "system:kube-aggregator", [rule(READ, groups=(LEGACY,), resources=("services", "endpoints"))]
        ),
        _cluster_role(
            "system:kube-controller-manager",
            [
                _events_rule(),
                rule(("create",), groups=(COORDINATION,), resources=("leases",)),
                rule(
                    ("get", "update"),
                    groups=(COORDINATION,),
                    resources=("leases",),
                    names=("kube-controller-manager",),
                ),
                rule(("create",), groups=(LEGACY,), resources=("secrets", "serviceaccounts")),
                rule(("delete",), groups=(LEGACY,), resources=("secrets",)),
                rule(
                    ("get",),
                    groups=(LEGACY,),
                    resources=("namespaces", "secrets", "serviceaccounts", "configmaps"),
                ),
                rule(("update",), groups=(LEGACY,), resources=("secrets", "serviceaccounts")),
                rule(("create",), groups=(AUTHENTICATION,), resources=("tokenreviews",)),
                rule(("create",), groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
                rule(("list", "watch"), groups=("*",), resources=("*",)),
                rule(("create",), groups=(LEGACY,), resources=("serviceaccounts/token",)),
            ],
        ),
        _cluster_role(
            "system:kube-dns",
            [rule(("list", "watch"), groups=(LEGACY,), resources=("endpoints", "services"))],
        ),
        _cluster_role(
            "system:persistent-volume-provisioner",
            [
                rule(
                    ("get", "list", "watch", "create", "delete"),
                    groups=(LEGACY,),
                    resources=("persistentvolumes",),
                ),
                rule(
                    ("get", "list", "watch", "update"),
                    groups=(LEGACY,),
                    resources=("persistentvolumeclaims",),
                ),
                rule(READ, groups=(STORAGE,), resources=("storageclasses",)),
                rule(("watch",), groups=(LEGACY,), resources=("events",)),
                _events_rule(),
            ],
        ),
        _cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [rule(("create",), groups=(CERTIFICATES,), resources=("certificatesigningrequests/nodeclient",))],
        ),
        _cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [
                rule(
                    ("create",),
                    groups=(CERTIFICATES,),
                    resources=("certificatesigningrequests/selfnodeclient",),
                )
            ],
        ),
        _cluster_role(
            "system:volume-scheduler",
            [
                rule(READ_UPDATE, groups=(LEGACY,), resources=("persistentvolumes",)),
                rule(READ, groups=(STORAGE,), resources=("storageclasses",)),
                rule(READ_UPDATE, groups=(LEGACY,), resources=("persistentvolumeclaims",)),
            ],
        ),
        *(
            _cluster_role(
                signer_approver.format(signer.replace("kubernetes.io/", "")),
                [rule(("approve",), groups=(CERTIFICATES,), resources=("signers",), names=(signer,))],
            )
            for signer in (
                "kubernetes.io/legacy-unknown",
                "kubernetes.io/kubelet-serving",
                "kubernetes.io/kube-apiserver-client",
                "kubernetes.io/kube-apiserver-client-kubelet",
            )
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [
                rule(
                    ("get",),
                    urls=(
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:node-proxier",
            [
                rule(("list", "watch"), groups=(LEGACY,), resources=("services", "endpoints")),
                rule(("get", "list", "watch"), groups=(LEGACY,), resources=("nodes",)),
                _events_rule(),
                rule(("list", "watch"), groups=(DISCOVERY,), resources=("endpointslices",)),
            ],
        ),
        _cluster_role(
            "system:kube-scheduler",
            [
                _events_rule(),
                rule(("create",), groups=(COORDINATION,), resources=("leases",)),
                rule(
                    ("get", "update"),
                    groups=(COORDINATION,),
                    resources=("leases",),
                    names=("kube-scheduler",),
                ),
                rule(READ, groups=(LEGACY,), resources=("nodes",)),
                rule(("get", "list", "watch", "delete"), groups=(LEGACY,), resources=("pods",)),
                rule(("create",), groups=(LEGACY,), resources=("pods/binding", "bindings")),
                rule(("patch", "update"), groups=(LEGACY,), resources=("pods/status",)),
                rule(READ, groups=(LEGACY,), resources=("services", "replicationcontrollers")),
                rule(READ, groups=(APPS, EXTENSIONS), resources=("replicasets",)),
                rule(READ, groups=(APPS,), resources=("statefulsets",)),
                rule(READ, groups=(POLICY,), resources=("poddisruptionbudgets",)),
                rule(READ, groups=(LEGACY,), resources=("persistentvolumeclaims", "persistentvolumes")),
                rule(("create",), groups=(AUTHENTICATION,), resources=("tokenreviews",)),
                rule(("create",), groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
                rule(READ, groups=(STORAGE,), resources=("csinodes",)),
                rule(("get", "list", "watch"), groups=(STORAGE,), resources=("volumeattachments",)),
                rule(READ, groups=(LEGACY,), resources=("namespaces",)),
                rule(READ, groups=(STORAGE,), resources=("csidrivers",)),
                rule(READ, groups=(STORAGE,), resources=("csistoragecapacities",)),
            ],
        ),
    ]


def _policy_roles() -> list[dict[str, Any]]:
    health = ("/livez", "/readyz", "/healthz")
    return [
        _cluster_role(
            "cluster-admin", [rule(("*",), groups=("*",), resources=("*",)), rule(("*",), urls=("*",))]
        ),
        _cluster_role(
            "system:discovery",
            [
                rule(
                    ("get",),
                    urls=(
                        *health,
                        "/version",
                        "/version/",
                        "/openapi",
                        "/openapi/*",
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:monitoring",
            [
                rule(
                    ("get",),
                    urls=("/metrics", "/metrics/slis", *health, "/livez/*", "/readyz/*", "/healthz/*"),
                )
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                rule(
                    ("create",),
                    groups=(AUTHORIZATION,),
                    resources=("selfsubjectaccessreviews", "selfsubjectrulesreviews"),
                ),
                rule(("create",), groups=(AUTHENTICATION,), resources=("selfsubjectreviews",)),
            ],
        ),
        _cluster_role("system:public-info-viewer", [rule(("get",), urls=(*health, "/version", "/version/"))]),
        _cluster_role("admin", aggregate_from="admin"),
        _cluster_role("edit", labels=_aggregate_to("admin"), aggregate_from="edit"),
        _cluster_role("view", labels=_aggregate_to("edit"), aggregate_from="view"),
    ]


# --------------------------------------------------------------------------- controller_policy.go

# service account -> rules, for the controllers kubelab runs (control.controllers.manager)
_CONTROLLER_RULES: dict[str, list[Rule]] = {
    # kubelab runs upstream's csrsigning and csrcleaner controllers as this account (not the approver)
    "certificate-controller": [
        rule(
            ("get", "list", "watch", "delete"),
            groups=(CERTIFICATES,),
            resources=("certificatesigningrequests",),
        ),
        rule(
            ("update",),
            groups=(CERTIFICATES,),
            resources=("certificatesigningrequests/status", "certificatesigningrequests/approval"),
        ),
        rule(
            ("approve",),
            groups=(CERTIFICATES,),
            resources=("signers",),
            names=("kubernetes.io/kube-apiserver-client-kubelet",),
        ),
        rule(
            ("sign",),
            groups=(CERTIFICATES,),
            resources=("signers",),
            names=(
                "kubernetes.io/legacy-unknown",
                "kubernetes.io/kube-apiserver-client",
                "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving",
            ),
        ),
        rule(("create",), groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
        _events_rule(),
    ],
    "clusterrole-aggregation-controller": [
        rule(
            ("escalate", "get", "list", "watch", "update", "patch"),
            groups=(RBAC_GROUP,),
            resources=("clusterroles",),
        )
    ],
    "cronjob-controller": [
        rule(("get", "list", "watch", "update"), groups=(BATCH,), resources=("cronjobs",)),
        rule(
            ("get", "list", "watch", "create", "update", "delete", "patch"),
            groups=(BATCH,),
            resources=("jobs",),
        ),
        rule(("update",), groups=(BATCH,), resources=("cronjobs/status",)),
        rule(("update",), groups=(BATCH,), resources=("cronjobs/finalizers",)),
        rule(("list", "delete"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "daemon-set-controller": [
        rule(("get", "list", "watch"), groups=(EXTENSIONS, APPS), resources=("daemonsets",)),
        rule(("update",), groups=(EXTENSIONS, APPS), resources=("daemonsets/status",)),
        rule(("update",), groups=(EXTENSIONS, APPS), resources=("daemonsets/finalizers",)),
        rule(("list", "watch"), groups=(LEGACY,), resources=("nodes",)),
        rule(("list", "watch", "create", "delete", "patch"), groups=(LEGACY,), resources=("pods",)),
        rule(("create",), groups=(LEGACY,), resources=("pods/binding",)),
        rule(
            ("get", "list", "watch", "create", "delete", "update", "patch"),
            groups=(APPS,),
            resources=("controllerrevisions",),
        ),
        _events_rule(),
    ],
    "deployment-controller": [
        # kubelab's controller also patches a Deployment's annotations (upstream: update only)
        rule(
            ("get", "list", "watch", "update", "patch"), groups=(EXTENSIONS, APPS), resources=("deployments",)
        ),
        rule(("update",), groups=(EXTENSIONS, APPS), resources=("deployments/status",)),
        rule(("update",), groups=(EXTENSIONS, APPS), resources=("deployments/finalizers",)),
        rule(
            ("get", "list", "watch", "create", "update", "patch", "delete"),
            groups=(APPS, EXTENSIONS),
            resources=("replicasets",),
        ),
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "disruption-controller": [
        rule(("get", "list", "watch"), groups=(EXTENSIONS, APPS), resources=("deployments",)),
        rule(("get", "list", "watch"), groups=(APPS, EXTENSIONS), resources=("replicasets",)),
        rule(("get", "list", "watch"), groups=(LEGACY,), resources=("replicationcontrollers",)),
        rule(("get", "list", "watch"), groups=(POLICY,), resources=("poddisruptionbudgets",)),
        rule(("get", "list", "watch"), groups=(APPS,), resources=("statefulsets",)),
        rule(("update",), groups=(POLICY,), resources=("poddisruptionbudgets/status",)),
        rule(("get",), groups=("*",), resources=("*/scale",)),
        rule(("patch", "update"), groups=(LEGACY,), resources=("pods/status",)),
        _events_rule(),
    ],
    "endpoint-controller": [
        rule(("get", "list", "watch"), groups=(LEGACY,), resources=("services", "pods")),
        rule(("get", "list", "create", "update", "delete"), groups=(LEGACY,), resources=("endpoints",)),
        rule(("create",), groups=(LEGACY,), resources=("endpoints/restricted",)),
        _events_rule(),
    ],
    "endpointslice-controller": [
        rule(("get", "list", "watch"), groups=(LEGACY,), resources=("services", "pods", "nodes")),
        rule(("update",), groups=(LEGACY,), resources=("services/finalizers",)),
        rule(
            ("get", "list", "create", "update", "delete"), groups=(DISCOVERY,), resources=("endpointslices",)
        ),
        rule(("create",), groups=(DISCOVERY,), resources=("endpointslices/restricted",)),
        _events_rule(),
    ],
    "generic-garbage-collector": [
        rule(("get", "list", "watch", "patch", "update", "delete"), groups=("*",), resources=("*",)),
        _events_rule(),
    ],
    "horizontal-pod-autoscaler": [
        rule(("get", "list", "watch"), groups=(AUTOSCALING,), resources=("horizontalpodautoscalers",)),
        rule(("update",), groups=(AUTOSCALING,), resources=("horizontalpodautoscalers/status",)),
        rule(("get", "update"), groups=("*",), resources=("*/scale",)),
        rule(("list",), groups=(LEGACY,), resources=("pods",)),
        # allow listing resource, custom, and external metrics
        rule(("list",), groups=("metrics.k8s.io",), resources=("pods",)),
        rule(("get", "list"), groups=("custom.metrics.k8s.io",), resources=("*",)),
        rule(("get", "list"), groups=("external.metrics.k8s.io",), resources=("*",)),
        _events_rule(),
    ],
    "job-controller": [
        # kubelab's controller also deletes finished Jobs past ttlSecondsAfterFinished (upstream:
        # the ttl-after-finished controller)
        rule(("get", "list", "watch", "update", "patch", "delete"), groups=(BATCH,), resources=("jobs",)),
        rule(("update",), groups=(BATCH,), resources=("jobs/status",)),
        rule(("update",), groups=(BATCH,), resources=("jobs/finalizers",)),
        rule(("list", "watch", "create", "delete", "patch"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "namespace-controller": [
        rule(("get", "list", "watch", "delete"), groups=(LEGACY,), resources=("namespaces",)),
        rule(("update",), groups=(LEGACY,), resources=("namespaces/finalize", "namespaces/status")),
        rule(("get", "list", "delete", "deletecollection"), groups=("*",), resources=("*",)),
    ],
    "node-controller": [
        rule(("get", "list", "update", "delete", "patch"), groups=(LEGACY,), resources=("nodes",)),
        rule(("patch", "update"), groups=(LEGACY,), resources=("nodes/status",)),
        rule(("patch", "update"), groups=(LEGACY,), resources=("pods/status",)),
        rule(("list", "get", "delete"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "local-path-provisioner": [
        # kubelab's local-path provisioner runs in the controller manager; its rules are those of
        # upstream's system:persistent-volume-provisioner (rancher's local-path-provisioner-role)
        rule(
            ("get", "list", "watch", "create", "delete"), groups=(LEGACY,), resources=("persistentvolumes",)
        ),
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("persistentvolumeclaims",)),
        rule(READ, groups=(STORAGE,), resources=("storageclasses",)),
        _events_rule(),
    ],
    "persistent-volume-binder": [
        rule(
            ("get", "list", "watch", "update", "create", "delete"),
            groups=(LEGACY,),
            resources=("persistentvolumes",),
        ),
        rule(("update",), groups=(LEGACY,), resources=("persistentvolumes/status",)),
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("persistentvolumeclaims",)),
        rule(("update",), groups=(LEGACY,), resources=("persistentvolumeclaims/status",)),
        rule(("list", "watch", "get", "create", "delete"), groups=(LEGACY,), resources=("pods",)),
        rule(("get", "list", "watch"), groups=(STORAGE,), resources=("storageclasses",)),
        rule(("get", "create", "update", "delete"), groups=(LEGACY,), resources=("endpoints",)),
        rule(("get", "create", "delete"), groups=(LEGACY,), resources=("services",)),
        rule(("get",), groups=(LEGACY,), resources=("secrets",)),
        rule(("get", "list"), groups=(LEGACY,), resources=("nodes",)),
        rule(("watch",), groups=(LEGACY,), resources=("events",)),
        _events_rule(),
    ],
    "pv-protection-controller": [
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("persistentvolumes",)),
        _events_rule(),
    ],
    "pod-garbage-collector": [
        rule(("list", "watch", "delete"), groups=(LEGACY,), resources=("pods",)),
        rule(("get", "list"), groups=(LEGACY,), resources=("nodes",)),
        rule(("patch",), groups=(LEGACY,), resources=("pods/status",)),
    ],
    "pvc-protection-controller": [
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("persistentvolumeclaims",)),
        rule(("list", "watch", "get"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "replicaset-controller": [
        rule(("get", "list", "watch", "update"), groups=(APPS, EXTENSIONS), resources=("replicasets",)),
        rule(("update",), groups=(APPS, EXTENSIONS), resources=("replicasets/status",)),
        rule(("update",), groups=(APPS, EXTENSIONS), resources=("replicasets/finalizers",)),
        rule(("list", "watch", "patch", "create", "delete"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "replication-controller": [
        # 1.0 controllers needed get, update, so without these old controllers break on new servers
        rule(("get", "list", "watch", "update"), groups=(LEGACY,), resources=("replicationcontrollers",)),
        rule(("update",), groups=(LEGACY,), resources=("replicationcontrollers/status",)),
        rule(("update",), groups=(LEGACY,), resources=("replicationcontrollers/finalizers",)),
        rule(("list", "watch", "patch", "create", "delete"), groups=(LEGACY,), resources=("pods",)),
        _events_rule(),
    ],
    "resourcequota-controller": [
        # quota can count quota on anything for reconciliation, so it needs full viewing powers
        rule(("list", "watch"), groups=("*",), resources=("*",)),
        rule(("update",), groups=(LEGACY,), resources=("resourcequotas/status",)),
        _events_rule(),
    ],
    "root-ca-cert-publisher": [
        rule(("create", "update"), groups=(LEGACY,), resources=("configmaps",)),
        _events_rule(),
    ],
    "service-account-controller": [
        rule(("create",), groups=(LEGACY,), resources=("serviceaccounts",)),
        _events_rule(),
    ],
    "statefulset-controller": [
        rule(("list", "watch"), groups=(LEGACY,), resources=("pods",)),
        rule(("get", "list", "watch"), groups=(APPS,), resources=("statefulsets",)),
        rule(("update",), groups=(APPS,), resources=("statefulsets/status",)),
        rule(("update",), groups=(APPS,), resources=("statefulsets/finalizers",)),
        rule(("get", "create", "delete", "update", "patch"), groups=(LEGACY,), resources=("pods",)),
        rule(
            ("get", "create", "delete", "update", "patch", "list", "watch"),
            groups=(APPS,),
            resources=("controllerrevisions",),
        ),
        rule(("get", "create"), groups=(LEGACY,), resources=("persistentvolumeclaims",)),
        _events_rule(),
        rule(("update", "delete"), groups=(LEGACY,), resources=("persistentvolumeclaims",)),
    ],
}


def controller_service_accounts() -> tuple[str, ...]:
    """The kube-system ServiceAccounts the controllers run as, each with its own ClusterRole."""
    return tuple(sorted(_CONTROLLER_RULES))


# --------------------------------------------------------------------------- the whole policy


def cluster_roles() -> list[dict[str, Any]]:
    """Every bootstrap ClusterRole, ``admin``/``edit``/``view`` with their aggregated rules."""
    roles = [*_policy_roles(), *_aggregated_content_roles(), *_component_roles()]
    roles.extend(
        _cluster_role(CONTROLLER_ROLE_PREFIX + account, rules)
        for account, rules in sorted(_CONTROLLER_RULES.items())
    )
    _fill_aggregated(roles)
    return roles


def _fill_aggregated(roles: list[dict[str, Any]]) -> None:
    """Give each aggregated role its rules; repeat until stable, as roles aggregate roles."""
    aggregated = [role for role in roles if role.get("aggregationRule")]
    changed = True
    while changed:
        changed = False
        for role in aggregated:
            rules = aggregated_rules(
                name=role["metadata"]["name"],
                selectors=role["aggregationRule"]["clusterRoleSelectors"],
                cluster_roles=roles,
            )
            if rules != role["rules"]:
                role["rules"] = copy.deepcopy(rules)
                changed = True


def cluster_role_bindings() -> list[dict[str, Any]]:
    bindings = [
        _binding("cluster-admin", *_groups("system:masters")),
        _binding("system:monitoring", *_groups("system:monitoring")),
        _binding("system:discovery", *_groups("system:authenticated")),
        _binding("system:basic-user", *_groups("system:authenticated")),
        _binding("system:public-info-viewer", *_groups("system:authenticated", "system:unauthenticated")),
        _binding("system:node-proxier", _subject("User", "system:kube-proxy")),
        _binding("system:kube-controller-manager", _subject("User", "system:kube-controller-manager")),
        _binding("system:kube-dns", _subject("ServiceAccount", "kube-dns", "kube-system")),
        _binding("system:kube-scheduler", _subject("User", "system:kube-scheduler")),
        _binding("system:volume-scheduler", _subject("User", "system:kube-scheduler")),
        # kubelets are authorized by the Node authorizer: the binding stays, without subjects
        _binding("system:node"),
        _binding("system:service-account-issuer-discovery", *_groups("system:serviceaccounts")),
    ]
    bindings.extend(
        _binding(CONTROLLER_ROLE_PREFIX + account, _subject("ServiceAccount", account, "kube-system"))
        for account in sorted(_CONTROLLER_RULES)
    )
    return bindings


def namespace_roles() -> list[dict[str, Any]]:
    """Upstream's bootstrap Roles that kubelab serves a use for, each with its namespace."""
    reader = _cluster_role(
        "extension-apiserver-authentication-reader",
        # this particular ConfigMap is exposed and holds how to authenticate the front proxy
        [
            rule(
                READ,
                groups=(LEGACY,),
                resources=("configmaps",),
                names=("extension-apiserver-authentication",),
            )
        ],
    )
    reader["metadata"]["namespace"] = "kube-system"
    return [reader]


def namespace_role_bindings() -> list[dict[str, Any]]:
    """Upstream's bootstrap RoleBindings for :func:`namespace_roles`."""
    binding = _binding(
        "system::extension-apiserver-authentication-reader",
        _subject("User", "system:kube-controller-manager"),
        _subject("User", "system:kube-scheduler"),
        role="extension-apiserver-authentication-reader",
    )
    binding["metadata"]["namespace"] = "kube-system"
    binding["roleRef"]["kind"] = "Role"
    return [binding]


# --------------------------------------------------------------------------- reconciliation


async def ensure_bootstrap_policy(objects: ResourceStore) -> None:
    """Create the missing bootstrap ClusterRoles, ClusterRoleBindings, Roles and RoleBindings and
    restore what was removed from the existing ones that allow it (see the module docstring)."""
    for roles, bindings, plurals in (
        (cluster_roles(), cluster_role_bindings(), ("clusterroles", "clusterrolebindings")),
        (namespace_roles(), namespace_role_bindings(), ("roles", "rolebindings")),
    ):
        roles_rt, bindings_rt = _kind(objects, plurals[0]), _kind(objects, plurals[1])
        existing_roles = await _existing(objects, roles_rt)
        for role in roles:
            await _ensure(objects, roles_rt, role, existing_roles.get(_key(role)), _reconciled_role)
        existing_bindings = await _existing(objects, bindings_rt)
        for binding in bindings:
            current = existing_bindings.get(_key(binding))
            if current is not None and _autoupdate(current) and current.get("roleRef") != binding["roleRef"]:
                await _recreate(objects, bindings_rt, binding)
                continue
            await _ensure(objects, bindings_rt, binding, current, _reconciled_binding)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name): "" for the namespace of cluster-scoped objects."""
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _kind(objects: ResourceStore, plural: str) -> ResourceType:
    rt = objects.registry.lookup(group=RBAC_GROUP, version="v1", plural=plural)
    if rt is None:
        raise RuntimeError(f"the registry lacks {plural}.{RBAC_GROUP}; cannot bootstrap RBAC")
    return rt


async def _existing(objects: ResourceStore, rt: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
    listing = await objects.store.list(rt.storage_prefix)
    return {_key(obj): obj for obj in map(decode, listing.items)}


def _autoupdate(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE_ANNOTATION) != "false"


Reconcile = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]]


async def _ensure(
    objects: ResourceStore,
    rt: ResourceType,
    expected: dict[str, Any],
    current: dict[str, Any] | None,
    reconcile: Reconcile,
) -> None:
    """Create ``expected`` when there is no ``current``; else store ``reconcile(current)`` if it
    differs and the object allows updates."""
    namespace, name = _key(expected)
    if current is None:
        try:
            await objects.create(
                rt,
                {"apiVersion": rt.api_version, "kind": rt.kind, **copy.deepcopy(expected)},
                namespace=namespace,
            )
            return
        except errors.StatusError as exc:
            if exc.code != 409:
                raise
    elif not _autoupdate(current) or reconcile(copy.deepcopy(current), expected) == current:
        return

    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        return reconcile(obj, expected) if _autoupdate(obj) else obj

    await objects.update(rt, namespace=namespace, name=name, transform=transform)


def _merge_metadata(obj: dict[str, Any], expected: Mapping[str, Any]) -> None:
    """Add the expected labels and annotations; values a user set win (upstream's merge)."""
    metadata = obj.setdefault("metadata", {})
    for field in ("labels", "annotations"):
        metadata[field] = {**expected["metadata"].get(field, {}), **(metadata.get(field) or {})}


def _reconciled_role(obj: dict[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's ``computeReconciledRole`` without removals: add missing labels, annotations,
    aggregation selectors and (for roles that are not aggregated) the missing rules, broken down."""
    _merge_metadata(obj, expected)
    wanted_aggregation = expected.get("aggregationRule")
    if wanted_aggregation is not None:
        aggregation = obj.setdefault("aggregationRule", {})
        selectors = aggregation.setdefault("clusterRoleSelectors", [])
        selectors.extend(s for s in wanted_aggregation["clusterRoleSelectors"] if s not in selectors)
        return obj
    rules = obj.setdefault("rules", [])
    rules.extend(uncovered_rules(rules, expected["rules"]))
    return obj


def _subject_key(subject: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        str(subject.get("kind") or ""),
        str(subject.get("name") or ""),
        str(subject.get("namespace") or ""),
    )


def _reconciled_binding(obj: dict[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's ``computeReconciledRoleBinding`` without removals: add missing subjects."""
    _merge_metadata(obj, expected)
    subjects = obj.get("subjects") or []
    present = {_subject_key(subject) for subject in subjects}
    missing = [copy.deepcopy(s) for s in expected["subjects"] if _subject_key(s) not in present]
    if missing:
        obj["subjects"] = [*subjects, *missing]
    return obj


async def _recreate(objects: ResourceStore, rt: ResourceType, expected: dict[str, Any]) -> None:
    """A binding whose roleRef changed is replaced by the expected one (roleRef is immutable)."""
    namespace, name = _key(expected)
    try:
        await objects.delete(rt, namespace=namespace, name=name, options=DeleteOptions())
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
    await _ensure(objects, rt, expected, None, _reconciled_binding)
