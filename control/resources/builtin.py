"""The built-in kinds kubelab serves, declared exactly as kube-apiserver 1.33 serves them.

Discovery (``/api/v1``, ``/apis/<g>/<v>``, aggregated discovery) is generated from these
declarations, and real clients key behaviour off it: ``kubectl get all`` follows the
``all`` category, ``kubectl scale`` looks for ``deployments/scale``, ``kubectl drain`` for
``pods/eviction``, short names resolve ``po``/``svc``/``deploy``. So every value here was
checked against upstream's checked-in discovery documents (kubernetes/kubernetes
``api/discovery/*.json``) and registry strategies, not guessed:

- verbs: every kind has all eight except ``namespaces`` (no ``deletecollection``) and
  ``bindings`` (``create`` only);
- categories: ``all`` for the workload kinds and services, ``api-extensions`` for
  APIServices, CustomResourceDefinitions and the webhook configurations;
- name rules: upstream's per-kind ValidateNameFunc (RBAC kinds accept any path segment,
  namespaces and StatefulSets need DNS-1123 labels, Services DNS-1035 labels);
- subresources: only those kubelab actually serves (``namespaces/finalize``,
  ``pods/proxy`` and ``pods/ephemeralcontainers`` exist upstream but are not listed).

The module holds data only; :func:`builtin_registry` returns a fresh, independent
:class:`Registry` each call so a test or a second server never shares state.
"""

from __future__ import annotations

from control.resources import event_conversion
from control.resources.registry import NameRule, Registry, ResourceType, ScaleSubresource, StoredAs

# Upstream's scale subresource reads .spec.replicas/.status.replicas and renders
# .spec.selector as the Scale's status.selector string (a LabelSelector for the apps/v1
# workloads, a label map for ReplicationControllers).
_SCALE = ScaleSubresource(
    spec_replicas_path="spec.replicas",
    status_replicas_path="status.replicas",
    label_selector_path="spec.selector",
)

_CORE = "io.k8s.api.core.v1."
_APPS = "io.k8s.api.apps.v1."
_BATCH = "io.k8s.api.batch.v1."
_NETWORKING = "io.k8s.api.networking.v1."
_RBAC = "io.k8s.api.rbac.v1."

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    # --- core/v1 ----------------------------------------------------------------
    ResourceType(
        group="",
        version="v1",
        kind="Binding",
        plural="bindings",
        singular="binding",
        namespaced=True,
        verbs=("create",),
        definition=_CORE + "Binding",
        # A Binding is never stored: creating one binds the named pod.
        virtual=True,
    ),
    ResourceType(
        group="",
        version="v1",
        kind="ComponentStatus",
        plural="componentstatuses",
        singular="componentstatus",
        namespaced=False,
        short_names=("cs",),
        # Not stored: every read probes the components (control.apiserver.component_statuses).
        verbs=("get", "list"),
        definition=_CORE + "ComponentStatus",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="ConfigMap",
        plural="configmaps",
        singular="configmap",
        namespaced=True,
        short_names=("cm",),
        definition=_CORE + "ConfigMap",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Endpoints",
        plural="endpoints",
        singular="endpoints",
        namespaced=True,
        short_names=("ep",),
        definition=_CORE + "Endpoints",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Event",
        plural="events",
        singular="event",
        namespaced=True,
        short_names=("ev",),
        # Event names are free-form (pod.17a3...), checked only as path segments.
        name_rule=NameRule.PATH_SEGMENT,
        definition=_CORE + "Event",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="LimitRange",
        plural="limitranges",
        singular="limitrange",
        namespaced=True,
        short_names=("limits",),
        definition=_CORE + "LimitRange",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Namespace",
        plural="namespaces",
        singular="namespace",
        namespaced=False,
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        name_rule=NameRule.DNS1123_LABEL,
        has_status=True,
        extra_subresources=("finalize",),
        definition=_CORE + "Namespace",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Node",
        plural="nodes",
        singular="node",
        namespaced=False,
        short_names=("no",),
        has_status=True,
        extra_subresources=("proxy",),
        definition=_CORE + "Node",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="PersistentVolumeClaim",
        plural="persistentvolumeclaims",
        singular="persistentvolumeclaim",
        namespaced=True,
        short_names=("pvc",),
        has_status=True,
        definition=_CORE + "PersistentVolumeClaim",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="PersistentVolume",
        plural="persistentvolumes",
        singular="persistentvolume",
        namespaced=False,
        short_names=("pv",),
        has_status=True,
        definition=_CORE + "PersistentVolume",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Pod",
        plural="pods",
        singular="pod",
        namespaced=True,
        short_names=("po",),
        categories=("all",),
        has_status=True,
        extra_subresources=(
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
        ),
        definition=_CORE + "Pod",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="ReplicationController",
        plural="replicationcontrollers",
        singular="replicationcontroller",
        namespaced=True,
        short_names=("rc",),
        categories=("all",),
        has_status=True,
        # spec.selector is a plain label map here, rendered as labels.SelectorFromSet does.
        scale=_SCALE,
        definition=_CORE + "ReplicationController",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="ResourceQuota",
        plural="resourcequotas",
        singular="resourcequota",
        namespaced=True,
        short_names=("quota",),
        has_status=True,
        definition=_CORE + "ResourceQuota",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Secret",
        plural="secrets",
        singular="secret",
        namespaced=True,
        definition=_CORE + "Secret",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="ServiceAccount",
        plural="serviceaccounts",
        singular="serviceaccount",
        namespaced=True,
        short_names=("sa",),
        extra_subresources=("token",),
        definition=_CORE + "ServiceAccount",
    ),
    ResourceType(
        group="",
        version="v1",
        kind="Service",
        plural="services",
        singular="service",
        namespaced=True,
        short_names=("svc",),
        categories=("all",),
        # Upstream validates Service names as DNS-1035 labels (must start with a letter);
        # NameRule has no such member, so validation applies the 1035 rule by kind.
        name_rule=NameRule.DNS1123_LABEL,
        has_status=True,
        extra_subresources=("proxy",),
        definition=_CORE + "Service",
    ),
    # --- apiregistration.k8s.io/v1 ----------------------------------------------
    ResourceType(
        group="apiregistration.k8s.io",
        version="v1",
        kind="APIService",
        plural="apiservices",
        singular="apiservice",
        namespaced=False,
        categories=("api-extensions",),
        # Any path segment, and it must equal <spec.version>.<spec.group>.
        name_rule=NameRule.PATH_SEGMENT,
        has_status=True,
        definition="io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
    ),
    # --- apps/v1 ----------------------------------------------------------------
    ResourceType(
        group="apps",
        version="v1",
        kind="ControllerRevision",
        plural="controllerrevisions",
        singular="controllerrevision",
        namespaced=True,
        definition=_APPS + "ControllerRevision",
    ),
    ResourceType(
        group="apps",
        version="v1",
        kind="DaemonSet",
        plural="daemonsets",
        singular="daemonset",
        namespaced=True,
        short_names=("ds",),
        categories=("all",),
        has_status=True,
        definition=_APPS + "DaemonSet",
    ),
    ResourceType(
        group="apps",
        version="v1",
        kind="Deployment",
        plural="deployments",
        singular="deployment",
        namespaced=True,
        short_names=("deploy",),
        categories=("all",),
        has_status=True,
        scale=_SCALE,
        definition=_APPS + "Deployment",
    ),
    ResourceType(
        group="apps",
        version="v1",
        kind="ReplicaSet",
        plural="replicasets",
        singular="replicaset",
        namespaced=True,
        short_names=("rs",),
        categories=("all",),
        has_status=True,
        scale=_SCALE,
        definition=_APPS + "ReplicaSet",
    ),
    ResourceType(
        group="apps",
        version="v1",
        kind="StatefulSet",
        plural="statefulsets",
        singular="statefulset",
        namespaced=True,
        short_names=("sts",),
        categories=("all",),
        name_rule=NameRule.DNS1123_LABEL,
        has_status=True,
        scale=_SCALE,
        definition=_APPS + "StatefulSet",
    ),
    # --- events.k8s.io/v1 -------------------------------------------------------
    ResourceType(
        group="events.k8s.io",
        version="v1",
        kind="Event",
        plural="events",
        singular="event",
        namespaced=True,
        short_names=("ev",),
        definition="io.k8s.api.events.v1.Event",
        # One Event served in two versions: stored at core/v1's keys in its shape, as upstream.
        stored_as=StoredAs(
            group="",
            plural="events",
            to_storage=event_conversion.to_core,
            from_storage=event_conversion.to_events_v1,
        ),
    ),
    # --- authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews ----------
    # Never stored: creating one answers a question (who am I, is this token valid, may I ...).
    ResourceType(
        group="authentication.k8s.io",
        version="v1",
        kind="TokenReview",
        plural="tokenreviews",
        singular="tokenreview",
        namespaced=False,
        verbs=("create",),
        definition="io.k8s.api.authentication.v1.TokenReview",
        virtual=True,
    ),
    ResourceType(
        group="authentication.k8s.io",
        version="v1",
        kind="SelfSubjectReview",
        plural="selfsubjectreviews",
        singular="selfsubjectreview",
        namespaced=False,
        verbs=("create",),
        definition="io.k8s.api.authentication.v1.SelfSubjectReview",
        virtual=True,
    ),
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="LocalSubjectAccessReview",
        plural="localsubjectaccessreviews",
        singular="localsubjectaccessreview",
        namespaced=True,
        verbs=("create",),
        definition="io.k8s.api.authorization.v1.LocalSubjectAccessReview",
        virtual=True,
    ),
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectAccessReview",
        plural="selfsubjectaccessreviews",
        singular="selfsubjectaccessreview",
        namespaced=False,
        verbs=("create",),
        definition="io.k8s.api.authorization.v1.SelfSubjectAccessReview",
        virtual=True,
    ),
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectRulesReview",
        plural="selfsubjectrulesreviews",
        singular="selfsubjectrulesreview",
        namespaced=False,
        verbs=("create",),
        definition="io.k8s.api.authorization.v1.SelfSubjectRulesReview",
        virtual=True,
    ),
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="SubjectAccessReview",
        plural="subjectaccessreviews",
        singular="subjectaccessreview",
        namespaced=False,
        verbs=("create",),
        definition="io.k8s.api.authorization.v1.SubjectAccessReview",
        virtual=True,
    ),
    # --- autoscaling/v2 ---------------------------------------------------------
    ResourceType(
        group="autoscaling",
        version="v2",
        kind="HorizontalPodAutoscaler",
        plural="horizontalpodautoscalers",
        singular="horizontalpodautoscaler",
        namespaced=True,
        short_names=("hpa",),
        categories=("all",),
        has_status=True,
        definition="io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    ),
    # --- batch/v1 ---------------------------------------------------------------
    ResourceType(
        group="batch",
        version="v1",
        kind="CronJob",
        plural="cronjobs",
        singular="cronjob",
        namespaced=True,
        short_names=("cj",),
        categories=("all",),
        has_status=True,
        definition=_BATCH + "CronJob",
    ),
    ResourceType(
        group="batch",
        version="v1",
        kind="Job",
        plural="jobs",
        singular="job",
        namespaced=True,
        categories=("all",),
        has_status=True,
        definition=_BATCH + "Job",
    ),
    # --- certificates.k8s.io/v1 -------------------------------------------------
    ResourceType(
        group="certificates.k8s.io",
        version="v1",
        kind="CertificateSigningRequest",
        plural="certificatesigningrequests",
        singular="certificatesigningrequest",
        namespaced=False,
        short_names=("csr",),
        # Any name (upstream's ValidateCertificateRequestName accepts all; the path segment rule stays).
        name_rule=NameRule.PATH_SEGMENT,
        has_status=True,
        # ``approval``: conditions only, for approvers (kubectl certificate approve/deny).
        extra_subresources=("approval",),
        definition="io.k8s.api.certificates.v1.CertificateSigningRequest",
    ),
    # --- networking.k8s.io/v1 ---------------------------------------------------
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        kind="IngressClass",
        plural="ingressclasses",
        singular="ingressclass",
        namespaced=False,
        definition=_NETWORKING + "IngressClass",
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        kind="Ingress",
        plural="ingresses",
        singular="ingress",
        namespaced=True,
        short_names=("ing",),
        has_status=True,
        definition=_NETWORKING + "Ingress",
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        kind="NetworkPolicy",
        plural="networkpolicies",
        singular="networkpolicy",
        namespaced=True,
        short_names=("netpol",),
        definition=_NETWORKING + "NetworkPolicy",
    ),
    # --- policy/v1 --------------------------------------------------------------
    ResourceType(
        group="policy",
        version="v1",
        kind="PodDisruptionBudget",
        plural="poddisruptionbudgets",
        singular="poddisruptionbudget",
        namespaced=True,
        short_names=("pdb",),
        has_status=True,
        definition="io.k8s.api.policy.v1.PodDisruptionBudget",
    ),
    # --- rbac.authorization.k8s.io/v1 -------------------------------------------
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="ClusterRoleBinding",
        plural="clusterrolebindings",
        singular="clusterrolebinding",
        namespaced=False,
        name_rule=NameRule.PATH_SEGMENT,
        definition=_RBAC + "ClusterRoleBinding",
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="ClusterRole",
        plural="clusterroles",
        singular="clusterrole",
        namespaced=False,
        name_rule=NameRule.PATH_SEGMENT,
        definition=_RBAC + "ClusterRole",
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="RoleBinding",
        plural="rolebindings",
        singular="rolebinding",
        namespaced=True,
        name_rule=NameRule.PATH_SEGMENT,
        definition=_RBAC + "RoleBinding",
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="Role",
        plural="roles",
        singular="role",
        namespaced=True,
        name_rule=NameRule.PATH_SEGMENT,
        definition=_RBAC + "Role",
    ),
    # --- storage.k8s.io/v1 ------------------------------------------------------
    ResourceType(
        group="storage.k8s.io",
        version="v1",
        kind="StorageClass",
        plural="storageclasses",
        singular="storageclass",
        namespaced=False,
        short_names=("sc",),
        definition="io.k8s.api.storage.v1.StorageClass",
    ),
    # --- admissionregistration.k8s.io/v1 -----------------------------------------
    ResourceType(
        group="admissionregistration.k8s.io",
        version="v1",
        kind="MutatingWebhookConfiguration",
        plural="mutatingwebhookconfigurations",
        singular="mutatingwebhookconfiguration",
        namespaced=False,
        categories=("api-extensions",),
        definition="io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
    ),
    ResourceType(
        group="admissionregistration.k8s.io",
        version="v1",
        kind="ValidatingWebhookConfiguration",
        plural="validatingwebhookconfigurations",
        singular="validatingwebhookconfiguration",
        namespaced=False,
        categories=("api-extensions",),
        definition="io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    ),
    # --- apiextensions.k8s.io/v1 ------------------------------------------------
    ResourceType(
        group="apiextensions.k8s.io",
        version="v1",
        kind="CustomResourceDefinition",
        plural="customresourcedefinitions",
        singular="customresourcedefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        has_status=True,
        definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ),
    # --- scheduling.k8s.io/v1 ---------------------------------------------------
    ResourceType(
        group="scheduling.k8s.io",
        version="v1",
        kind="PriorityClass",
        plural="priorityclasses",
        singular="priorityclass",
        namespaced=False,
        short_names=("pc",),
        definition="io.k8s.api.scheduling.v1.PriorityClass",
    ),
    # --- coordination.k8s.io/v1 -------------------------------------------------
    ResourceType(
        group="coordination.k8s.io",
        version="v1",
        kind="Lease",
        plural="leases",
        singular="lease",
        namespaced=True,
        definition="io.k8s.api.coordination.v1.Lease",
    ),
    # --- discovery.k8s.io/v1 ----------------------------------------------------
    ResourceType(
        group="discovery.k8s.io",
        version="v1",
        kind="EndpointSlice",
        plural="endpointslices",
        singular="endpointslice",
        namespaced=True,
        definition="io.k8s.api.discovery.v1.EndpointSlice",
    ),
)


def builtin_registry() -> Registry:
    """A fresh registry holding every built-in kind (one per call, never shared)."""
    registry = Registry()
    for rt in BUILTIN_TYPES:
        registry.add(rt)
    return registry
