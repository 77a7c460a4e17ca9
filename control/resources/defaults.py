"""Defaulting for built-in kinds: what kube-apiserver fills in before validating a write.

Upstream defaults in two places, and users see both in ``kubectl get -o yaml``:

- the scheme's ``SetDefaults_*`` functions (pkg/apis/*/v1/defaults.go and the generated
  zz_generated.defaults.go), which run on every decode, create and update alike;
- the registry strategies' ``PrepareForCreate``/``PrepareForUpdate`` and the Service IP
  allocator, which fill a few fields only on create or compare with the stored object
  (a Namespace's ``kubernetes`` finalizer, a Job's generated selector and labels, a
  Service's ``clusterIPs``/``ipFamilies`` and the fields a type change leaves behind).

:func:`apply_defaults` does both, in upstream's order (scheme first, strategy second),
mutating the decoded object in place. The strategy half needs to know whether the write
is a create: pass ``old`` (the stored object) on update. The server's generic handler
still owns uid, timestamps, resourceVersion, generation, initial status and IP/port
allocation.

Defaulters are plain functions looked up by (group, kind); kinds without one (custom
resources, ConfigMaps, Leases...) are left untouched. Nested types are defaulted wherever
they appear, as upstream's generated code does: a Container gets the same defaults in a
Pod, a Deployment's template or a CronJob's job template.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from control.resources import certificates
from control.resources.registry import ResourceType

Obj = dict[str, Any]
# (object, stored object on update, whether this write creates the object)
Defaulter = Callable[[Obj, "Obj | None", bool], None]

RBAC_GROUP = "rbac.authorization.k8s.io"
# batch/v1 labels the Job strategy puts on generated pod templates (and selects on).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def apply_defaults(rt: ResourceType, obj: Obj, *, old: Obj | None = None) -> None:
    """Fill in upstream's defaults on ``obj`` (mutated in place).

    ``old`` is the stored object on update. Create-only strategy defaults (a Job's
    generated selector, a Namespace's finalizer) apply when the write is a create: no
    ``old`` and no ``metadata.resourceVersion`` (a create never carries one; an update
    always does, so callers that cannot pass ``old`` still get create-only behaviour right).
    Comparisons with the stored object (a Service changing type) need ``old``.
    """
    defaulter = _VERSION_DEFAULTERS.get((rt.group, rt.version, rt.kind)) or _DEFAULTERS.get(
        (rt.group, rt.kind)
    )
    if defaulter is not None:
        metadata = obj.get("metadata")
        has_version = isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))
        defaulter(obj, old, old is None and not has_version)


# --- small helpers -------------------------------------------------------------


def _dict(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created (and stored) when missing or null."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def _dicts(parent: Any, key: str) -> list[Obj]:
    """The dict items of the list ``parent[key]`` (nothing when absent or malformed)."""
    if not isinstance(parent, dict):
        return []
    items = parent.get(key)
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]


def _child(parent: Any, key: str) -> Obj | None:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else None


def _set_default(parent: Obj, key: str, value: Any) -> None:
    """Set ``parent[key]`` when it is absent or null (Go's "if nil" / "if empty")."""
    if parent.get(key) in (None, ""):
        parent[key] = value


# --- core: containers and pod specs ----------------------------------------------


def _image_tag(image: str) -> str:
    """The tag of an image reference ("latest" when none), as upstream's ParseImageName."""
    if "@" in image:
        return ""  # pinned by digest: never "latest"
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "latest"


def _default_http_get(action: Obj | None) -> None:
    if action is not None:
        _set_default(action, "path", "/")
        _set_default(action, "scheme", "HTTP")


def _default_handler(handler: Obj | None) -> None:
    if handler is not None:
        _default_http_get(_child(handler, "httpGet"))


def _default_probe(probe: Obj | None) -> None:
    if probe is None:
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1)):
        if not probe.get(key):
            probe[key] = value
    if not probe.get("failureThreshold"):
        probe["failureThreshold"] = 3
    _default_handler(probe)


def _default_field_ref(holder: Obj | None) -> None:
    field_ref = _child(holder, "fieldRef")
    if field_ref is not None:
        _set_default(field_ref, "apiVersion", "v1")


def _default_container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        tag = _image_tag(str(container.get("image") or ""))
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    _set_default(container, "terminationMessagePath", "/dev/termination-log")
    _set_default(container, "terminationMessagePolicy", "File")
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in _dicts(container, "ports"):
        _set_default(port, "protocol", "TCP")
    for env in _dicts(container, "env"):
        _default_field_ref(_child(env, "valueFrom"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(_child(container, key))
    lifecycle = _child(container, "lifecycle")
    if lifecycle is not None:
        _default_handler(_child(lifecycle, "postStart"))
        _default_handler(_child(lifecycle, "preStop"))


def _default_pvc_spec(spec: Obj | None) -> None:
    if spec is not None:
        _set_default(spec, "volumeMode", "Filesystem")


def _default_volume(volume: Obj) -> None:
    sources = [key for key, value in volume.items() if key != "name" and value is not None]
    if not sources:
        volume["emptyDir"] = {}
        return
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _child(volume, key)
        if source is not None and source.get("defaultMode") is None:
            source["defaultMode"] = 420  # 0644
    for item in _dicts(_child(volume, "downwardAPI"), "items"):
        _default_field_ref(item)
    for source in _dicts(_child(volume, "projected"), "sources"):
        for item in _dicts(_child(source, "downwardAPI"), "items"):
            _default_field_ref(item)
        token = _child(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600
    host_path = _child(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    ephemeral = _child(volume, "ephemeral")
    template = _child(ephemeral, "volumeClaimTemplate")
    _default_pvc_spec(_child(template, "spec"))


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus every nested type's defaults (pods and templates alike)."""
    _set_default(spec, "dnsPolicy", "ClusterFirst")
    _set_default(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _set_default(spec, "schedulerName", "default-scheduler")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec, key):
            _default_container(container)
    for volume in _dicts(spec, "volumes"):
        _default_volume(volume)


def _default_pod_template(template: Obj) -> None:
    _default_pod_spec(_dict(template, "spec"))


def _requests_from_limits(containers: list[Obj]) -> None:
    """SetDefaults_Pod: a limit without a request also becomes the request."""
    for container in containers:
        resources = _child(container, "resources")
        limits = _child(resources, "limits")
        if resources is None or not limits:
            continue
        requests = _dict(resources, "requests")
        for name, value in limits.items():
            requests.setdefault(name, value)


def _default_pod(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    _default_pod_spec(spec)
    _requests_from_limits(_dicts(spec, "containers"))
    _requests_from_limits(_dicts(spec, "initContainers"))
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if old is not None:
        # The Priority admission plugin set these on create; an update that leaves them out keeps
        # them (upstream's plugin does it on update, after kubelab has validated, so it is here).
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        for key in ("priority", "preemptionPolicy"):
            if spec.get(key) is None and old_spec.get(key) is not None:
                spec[key] = old_spec[key]
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _dicts(spec, key):
                for port in _dicts(container, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


# --- core: other kinds ------------------------------------------------------------


def _default_namespace(obj: Obj, old: Obj | None, creating: bool) -> None:
    metadata = _dict(obj, "metadata")
    name = metadata.get("name")
    if name:
        _dict(metadata, "labels")[NAMESPACE_NAME_LABEL] = name
    _set_default(_dict(obj, "status"), "phase", "Active")
    if creating:
        # Only on create: the namespace controller removes it later (via /finalize).
        finalizers = _dict(obj, "spec").get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = []
        if "kubernetes" not in finalizers:
            obj["spec"]["finalizers"] = [*finalizers, "kubernetes"]


def _default_persistent_volume(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetDefaults_PersistentVolume: a static volume is kept (Retain) unless it says otherwise."""
    spec = _dict(obj, "spec")
    _set_default(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set_default(spec, "volumeMode", "Filesystem")
    status = _child(obj, "status")
    if status is not None:
        _set_default(status, "phase", "Pending")


def _default_persistent_volume_claim(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetDefaults_PersistentVolumeClaim(Spec)."""
    _default_pvc_spec(_dict(obj, "spec"))
    status = _child(obj, "status")
    if status is not None:
        _set_default(status, "phase", "Pending")


def _default_secret(obj: Obj, old: Obj | None, creating: bool) -> None:
    _set_default(obj, "type", "Opaque")
    # The v1 conversion folds write-only stringData into data (stringData wins).
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_endpoints(obj: Obj, old: Obj | None, creating: bool) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _set_default(port, "protocol", "TCP")


def _default_node(obj: Obj, old: Obj | None, creating: bool) -> None:
    status = _child(obj, "status")
    if status is not None and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])


def _service_type(spec: Obj) -> str:
    return str(spec.get("type") or "")


def _externally_accessible(spec: Obj) -> bool:
    kind = _service_type(spec)
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _needs_cluster_ip(spec: Obj) -> bool:
    return _service_type(spec) in ("ClusterIP", "NodePort", "LoadBalancer")


def _needs_node_port(spec: Obj) -> bool:
    kind = _service_type(spec)
    return kind == "NodePort" or (
        kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False
    )


def _needs_health_check_node_port(spec: Obj) -> bool:
    return _service_type(spec) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _normalize_cluster_ips(spec: Obj, old_spec: Obj | None) -> None:
    """The service strategy's normalizeClusterIPs: keep clusterIP and clusterIPs in step."""
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = spec.get("clusterIPs") or []
    if old_spec is None:
        if cluster_ip and not cluster_ips:
            spec["clusterIPs"] = [cluster_ip]
        return
    old_ip = old_spec.get("clusterIP") or ""
    old_ips = old_spec.get("clusterIPs") or []
    if old_ips and not cluster_ips and old_ip == cluster_ip:
        spec["clusterIPs"] = list(old_ips)
        cluster_ips = spec["clusterIPs"]
    if old_ip != cluster_ip:
        same_ips = list(old_ips) == list(cluster_ips)
        if old_ip and not cluster_ip:
            if same_ips:
                spec.pop("clusterIPs", None)
        elif same_ips:
            spec["clusterIPs"] = [cluster_ip]


def _drop_type_dependent_fields(spec: Obj, old_spec: Obj) -> None:
    """PrepareForUpdate: wipe fields the new type no longer uses, unless the user changed them."""
    if _needs_cluster_ip(old_spec) and not _needs_cluster_ip(spec):
        if spec.get("clusterIPs") == old_spec.get("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old_spec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _needs_node_port(old_spec) and not _needs_node_port(spec):
        new_ports = [port.get("nodePort") for port in _dicts(spec, "ports")]
        old_ports = {port.get("nodePort") for port in _dicts(old_spec, "ports")}
        if all(port in old_ports for port in new_ports if port):
            for port in _dicts(spec, "ports"):
                port.pop("nodePort", None)
    if (
        _needs_health_check_node_port(old_spec)
        and not _needs_health_check_node_port(spec)
        and spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort")
    ):
        spec.pop("healthCheckNodePort", None)
    if _service_type(old_spec) == "LoadBalancer" and _service_type(spec) != "LoadBalancer":
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if spec.get(key) is not None and spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if (
        _externally_accessible(old_spec)
        and not _externally_accessible(spec)
        and spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy")
    ):
        spec.pop("externalTrafficPolicy", None)


def _default_ip_families(spec: Obj, old_spec: Obj | None) -> None:
    """What the allocator's initIPFamilyFields settles on in a single-stack IPv4 cluster."""
    if not _needs_cluster_ip(spec):
        return
    headless = spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]
    if old_spec is not None and _needs_cluster_ip(old_spec):
        old_headless = old_spec.get("clusterIP") == "None"
        if old_headless == headless:
            for key in ("ipFamilies", "ipFamilyPolicy"):
                if spec.get(key) is None and old_spec.get(key) is not None:
                    spec[key] = old_spec[key]
    if spec.get("ipFamilyPolicy") is None:
        selectorless_headless = headless and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if selectorless_headless else "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def _default_service(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    old_spec = _child(old, "spec") if old is not None else None
    # SetDefaults_Service
    _set_default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = _child(spec, "sessionAffinityConfig")
        client_ip = _child(config, "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_default(spec, "type", "ClusterIP")
    for port in _dicts(spec, "ports"):
        _set_default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _set_default(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and _needs_cluster_ip(spec):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # The strategy and the allocator
    if old_spec is not None:
        _drop_type_dependent_fields(spec, old_spec)
    _normalize_cluster_ips(spec, old_spec)
    _default_ip_families(spec, old_spec)
    load_balancer = _dict(_dict(obj, "status"), "loadBalancer")
    if spec["type"] == "LoadBalancer":
        for ingress in _dicts(load_balancer, "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


# --- apps ------------------------------------------------------------------------


def _default_pod_template_kind(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetObjectDefaults_PodTemplate: the template gets every pod spec default (no strategy defaults)."""
    _default_pod_template(_dict(obj, "template"))


def _default_replicas(spec: Obj) -> None:
    if spec.get("replicas") is None:
        spec["replicas"] = 1


def _default_deployment(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    _default_replicas(spec)
    strategy = _dict(spec, "strategy")
    _set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        _set_default(rolling, "maxUnavailable", "25%")
        _set_default(rolling, "maxSurge", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_pod_template(_dict(spec, "template"))


def _default_replica_set(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    _default_replicas(spec)
    _default_pod_template(_dict(spec, "template"))


def _default_replication_controller(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetDefaults_ReplicationController: an empty selector and empty object labels take the
    template's labels; replicas default to 1. The template is optional (a pointer upstream), so
    it is defaulted only when present and never created."""
    spec = _dict(obj, "spec")
    template = _child(spec, "template")
    labels = _child(_child(template, "metadata"), "labels")
    if labels:  # an empty map would only be dropped again: Go's omitempty
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _dict(obj, "metadata")
        if not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    _default_replicas(spec)
    if template is not None:
        _default_pod_template(template)


def _default_daemon_set(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    strategy = _dict(spec, "updateStrategy")
    _set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        _set_default(rolling, "maxUnavailable", 1)
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_pod_template(_dict(spec, "template"))


def _default_stateful_set(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    _set_default(spec, "podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _dict(strategy, "rollingUpdate")
    rolling = _child(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    _set_default(retention, "whenDeleted", "Retain")
    _set_default(retention, "whenScaled", "Retain")
    _default_replicas(spec)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_pod_template(_dict(spec, "template"))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        _default_pvc_spec(_child(claim, "spec"))
        _set_default(_dict(claim, "status"), "phase", "Pending")


# --- autoscaling -------------------------------------------------------------------


def _scaling_rules(rules: Obj | None, *, window: int, policies: list[Obj]) -> Obj:
    rules = dict(rules) if rules is not None else {}
    if rules.get("stabilizationWindowSeconds") is None:
        rules["stabilizationWindowSeconds"] = window
    _set_default(rules, "selectPolicy", "Max")
    if rules.get("policies") is None:
        rules["policies"] = policies
    return rules


# The annotations in which autoscaling/v1 carries what it cannot express (upstream's names;
# control.resources.hpa_conversion writes and reads them, and imports this module, so the
# names are spelled here too), and the two of them that hold status.
HPA_ROUND_TRIP_ANNOTATIONS = (
    "autoscaling.alpha.kubernetes.io/metrics",
    "autoscaling.alpha.kubernetes.io/behavior",
    "autoscaling.alpha.kubernetes.io/scale-down-tolerance",
    "autoscaling.alpha.kubernetes.io/scale-up-tolerance",
    "autoscaling.alpha.kubernetes.io/current-metrics",
    "autoscaling.alpha.kubernetes.io/conditions",
)
_HPA_V1_STATUS_ANNOTATIONS = HPA_ROUND_TRIP_ANNOTATIONS[4:]


def default_horizontal_pod_autoscaler(obj: Obj) -> None:
    """autoscaling/v2's SetDefaults_HorizontalPodAutoscaler, for ``hpa_conversion``: upstream
    applies them to every HPA it decodes from storage, whichever version wrote it."""
    _default_hpa(obj, None, False)


def _default_hpa_v1(obj: Obj, old: Obj | None, creating: bool) -> None:
    """autoscaling/v1's SetDefaults_HorizontalPodAutoscaler: only minReplicas (the implicit
    cpu metric is added by the conversion to the stored version, as upstream).

    On an update the stored status is kept (upstream's PrepareForUpdate copies the old
    internal status), and through v1 part of that status is in two annotations: they are
    the stored object's too, whatever the body carries, so a v1 PUT of an object built
    from scratch keeps the conditions and current metrics v1 cannot express."""
    spec = _dict(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if old is None:
        return
    old_annotations = _child(old.get("metadata"), "annotations") or {}
    annotations = _child(obj.get("metadata"), "annotations") or {}
    kept = {key: value for key, value in annotations.items() if key not in _HPA_V1_STATUS_ANNOTATIONS}
    kept.update({key: old_annotations[key] for key in _HPA_V1_STATUS_ANNOTATIONS if key in old_annotations})
    if kept == annotations:
        return
    metadata = _dict(obj, "metadata")
    if kept:
        metadata["annotations"] = kept
    else:
        metadata.pop("annotations", None)


def _default_hpa(obj: Obj, old: Obj | None, creating: bool) -> None:
    # Not a default but upstream's v2 conversion: "v2 round-trips to internal without any
    # serialized annotations", so a v2 write never stores autoscaling/v1's.
    annotations = _child(obj.get("metadata"), "annotations")
    if annotations is not None and any(key in annotations for key in HPA_ROUND_TRIP_ANNOTATIONS):
        kept = {k: v for k, v in annotations.items() if k not in HPA_ROUND_TRIP_ANNOTATIONS}
        if kept:
            obj["metadata"]["annotations"] = kept
        else:
            del obj["metadata"]["annotations"]
    spec = _dict(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = _child(spec, "behavior")
    if behavior is not None:
        behavior["scaleUp"] = _scaling_rules(
            _child(behavior, "scaleUp"),
            window=0,
            policies=[
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        )
        behavior["scaleDown"] = _scaling_rules(
            _child(behavior, "scaleDown"),
            window=300,
            policies=[{"type": "Percent", "value": 100, "periodSeconds": 15}],
        )


# --- batch -----------------------------------------------------------------------


def _generate_job_selector(obj: Obj) -> None:
    """The Job strategy's generateSelector: label the template and select on the uid."""
    metadata = _dict(obj, "metadata")
    uid = metadata.get("uid")
    if not uid:
        return  # validation reports metadata.uid as required
    spec = _dict(obj, "spec")
    template_labels = _dict(_dict(_dict(spec, "template"), "metadata"), "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        template_labels.setdefault(key, metadata.get("name") or "")
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        template_labels.setdefault(key, uid)
    match_labels = _dict(_dict(spec, "selector"), "matchLabels")
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


def _default_job(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    metadata = _dict(obj, "metadata")
    template = _dict(spec, "template")
    template_labels = _child(_child(template, "metadata"), "labels")
    # Upstream assigns the template's label map itself, so labels the strategy adds to
    # the template later show up on the Job too.
    labels_follow_template = template_labels is not None and not metadata.get("labels")
    if labels_follow_template:
        metadata["labels"] = dict(template_labels)
    _set_default(spec, "completionMode", "NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = _child(spec, "podFailurePolicy")
    for rule in _dicts(policy, "rules"):
        for pattern in _dicts(rule, "onPodConditions"):
            _set_default(pattern, "status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _default_pod_template(template)
    if creating and spec["manualSelector"] is False:
        _generate_job_selector(obj)
        if labels_follow_template:
            metadata["labels"] = dict(obj["spec"]["template"]["metadata"]["labels"])


def _default_cron_job(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    _set_default(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = _dict(_dict(spec, "jobTemplate"), "spec")
    _default_pod_template(_dict(job_spec, "template"))


# --- networking, discovery, rbac ----------------------------------------------------


def _default_network_policy(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec, direction):
            for port in _dicts(rule, "ports"):
                _set_default(port, "protocol", "TCP")


def _default_ingress_class(obj: Obj, old: Obj | None, creating: bool) -> None:
    parameters = _child(_child(obj, "spec"), "parameters")
    if parameters is not None and parameters.get("scope") is None:
        parameters["scope"] = "Cluster"


def _default_endpoint_slice(obj: Obj, old: Obj | None, creating: bool) -> None:
    for port in _dicts(obj, "ports"):
        if port.get("name") is None:
            port["name"] = ""
        _set_default(port, "protocol", "TCP")
    for endpoint in _dicts(obj, "endpoints"):
        if not isinstance(endpoint.get("conditions"), dict):
            endpoint["conditions"] = {}


def _default_role_binding(obj: Obj, old: Obj | None, creating: bool) -> None:
    _set_default(_dict(obj, "roleRef"), "apiGroup", RBAC_GROUP)
    for subject in _dicts(obj, "subjects"):
        if not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = RBAC_GROUP
            elif subject.get("kind") == "ServiceAccount":
                subject.pop("apiGroup", None)  # upstream sets "", which JSON omits


# --- extension and cluster configuration kinds ----------------------------------------


def _default_service_reference(reference: Obj | None) -> None:
    if reference is not None and reference.get("port") is None:
        reference["port"] = 443


def _default_crd(obj: Obj, old: Obj | None, creating: bool) -> None:
    spec = _dict(obj, "spec")
    names = _dict(spec, "names")
    kind = names.get("kind")
    if not names.get("singular") and kind:
        names["singular"] = str(kind).lower()
    if not names.get("listKind") and kind:
        names["listKind"] = f"{kind}List"
    conversion = spec.get("conversion")
    if not isinstance(conversion, dict):
        spec["conversion"] = {"strategy": "None"}
    else:
        webhook = _child(conversion, "webhook")
        _default_service_reference(_child(_child(webhook, "clientConfig"), "service"))
    status = _dict(obj, "status")
    if not status.get("storedVersions"):
        for version in _dicts(spec, "versions"):
            if version.get("storage") is True:
                status["storedVersions"] = [version.get("name")]
                break


def _default_api_service(obj: Obj, old: Obj | None, creating: bool) -> None:
    _default_service_reference(_child(_child(obj, "spec"), "service"))


def _default_limit_range(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit falls back to its max, and
    its default request to its default limit, then to its min (empty lists stay absent)."""
    for item in _dicts(_child(obj, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        default = dict(_child(item, "default") or {})
        for name, value in (_child(item, "max") or {}).items():
            default.setdefault(name, value)
        request = dict(_child(item, "defaultRequest") or {})
        for source in (default, _child(item, "min") or {}):
            for name, value in source.items():
                request.setdefault(name, value)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _default_certificate_signing_request(obj: Obj, old: Obj | None, creating: bool) -> None:
    """certificates/v1 has no defaults; the strategy's PrepareForUpdate keeps the stored spec (a
    CSR's spec never changes after create; the requestor is filled in by admission, which knows
    the user)."""
    if old is not None:
        certificates.keep_spec(obj, old)


def _default_storage_class(obj: Obj, old: Obj | None, creating: bool) -> None:
    _set_default(obj, "reclaimPolicy", "Delete")
    _set_default(obj, "volumeBindingMode", "Immediate")


def _default_priority_class(obj: Obj, old: Obj | None, creating: bool) -> None:
    _set_default(obj, "preemptionPolicy", "PreemptLowerPriority")


def _default_webhooks(obj: Obj, *, mutating: bool) -> None:
    """admissionregistration/v1 SetDefaults_{Validating,Mutating}Webhook, _Rule and
    _ServiceReference. sideEffects and admissionReviewVersions have no default in v1."""
    for webhook in _dicts(obj, "webhooks"):
        _set_default(webhook, "failurePolicy", "Fail")
        _set_default(webhook, "matchPolicy", "Equivalent")
        _set_default(webhook, "namespaceSelector", {})
        _set_default(webhook, "objectSelector", {})
        _set_default(webhook, "timeoutSeconds", 10)
        if mutating:
            _set_default(webhook, "reinvocationPolicy", "Never")
        for rule in _dicts(webhook, "rules"):
            _set_default(rule, "scope", "*")
        service = _child(_child(webhook, "clientConfig"), "service")
        if service is not None:
            _set_default(service, "port", 443)


def _default_mutating_webhooks(obj: Obj, old: Obj | None, creating: bool) -> None:
    _default_webhooks(obj, mutating=True)


def _default_validating_webhooks(obj: Obj, old: Obj | None, creating: bool) -> None:
    _default_webhooks(obj, mutating=False)


def _default_match_resources(match: Obj | None) -> None:
    """admissionregistration/v1 SetDefaults_MatchResources, and SetDefaults_Rule on its rules."""
    if match is None:
        return
    _set_default(match, "matchPolicy", "Equivalent")
    _set_default(match, "namespaceSelector", {})
    _set_default(match, "objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in _dicts(match, key):
            _set_default(rule, "scope", "*")


def _spec(obj: Obj) -> Obj | None:
    """The spec to default: a Go struct, so an absent one is defaulted as an empty one."""
    if obj.get("spec") is None:
        obj["spec"] = {}
    return _child(obj, "spec")


def _default_validating_admission_policy(obj: Obj, old: Obj | None, creating: bool) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec and the MatchResources of spec.matchConstraints."""
    spec = _spec(obj)
    if spec is not None:
        _set_default(spec, "failurePolicy", "Fail")
        _default_match_resources(_child(spec, "matchConstraints"))


def _default_validating_admission_policy_binding(obj: Obj, old: Obj | None, creating: bool) -> None:
    """Only spec.matchResources has defaults; v1 leaves paramRef.parameterNotFoundAction to the user."""
    _default_match_resources(_child(obj.get("spec"), "matchResources"))


# Kinds served in several versions whose defaults differ; the others are looked up by (group, kind).
_VERSION_DEFAULTERS: dict[tuple[str, str, str], Defaulter] = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _default_hpa_v1,
}

_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _default_pod,
    ("", "Namespace"): _default_namespace,
    ("", "LimitRange"): _default_limit_range,
    ("", "Secret"): _default_secret,
    ("", "PersistentVolume"): _default_persistent_volume,
    ("", "PersistentVolumeClaim"): _default_persistent_volume_claim,
    ("", "Endpoints"): _default_endpoints,
    ("", "Node"): _default_node,
    ("", "Service"): _default_service,
    ("", "ReplicationController"): _default_replication_controller,
    ("", "PodTemplate"): _default_pod_template_kind,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replica_set,
    ("apps", "DaemonSet"): _default_daemon_set,
    ("apps", "StatefulSet"): _default_stateful_set,
    ("autoscaling", "HorizontalPodAutoscaler"): _default_hpa,
    ("batch", "Job"): _default_job,
    ("batch", "CronJob"): _default_cron_job,
    ("networking.k8s.io", "NetworkPolicy"): _default_network_policy,
    ("networking.k8s.io", "IngressClass"): _default_ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): _default_endpoint_slice,
    (RBAC_GROUP, "RoleBinding"): _default_role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _default_role_binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _default_crd,
    ("apiregistration.k8s.io", "APIService"): _default_api_service,
    ("storage.k8s.io", "StorageClass"): _default_storage_class,
    (certificates.GROUP, "CertificateSigningRequest"): _default_certificate_signing_request,
    ("scheduling.k8s.io", "PriorityClass"): _default_priority_class,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _default_mutating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _default_validating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _default_validating_admission_policy,
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ): _default_validating_admission_policy_binding,
}
