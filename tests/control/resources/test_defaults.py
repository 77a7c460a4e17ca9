"""Defaulting, checked against upstream's SetDefaults_* functions and registry strategies.

Expected objects are what ``kubectl get -o yaml`` shows on a 1.33 cluster for the same
input (pkg/apis/*/v1/defaults.go, pkg/registry/*/strategy.go).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.registry import ResourceType

REGISTRY = builtin_registry()

DEFAULTED_CONTAINER = {
    "name": "web",
    "image": "nginx:1.27",
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
}
DEFAULTED_POD_SPEC_FIELDS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler",
}


def rt(api_version: str, plural: str) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    found = REGISTRY.lookup(group=group, version=version, plural=plural)
    assert found is not None
    return found


def defaulted(
    api_version: str, plural: str, obj: dict[str, Any], *, old: dict[str, Any] | None = None
) -> dict:
    obj = copy.deepcopy(obj)
    apply_defaults(rt(api_version, plural), obj, old=old)
    return obj


def template(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec},
    }


# --- pods and containers ---------------------------------------------------------------


def test_pod_gets_pod_spec_and_container_defaults() -> None:
    pod = defaulted("v1", "pods", {"metadata": {"name": "p"}, "spec": template()["spec"]})
    assert pod["spec"] == {
        "containers": [DEFAULTED_CONTAINER],
        **DEFAULTED_POD_SPEC_FIELDS,
        "enableServiceLinks": True,
    }
    assert "status" not in pod  # the server sets the initial status


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("registry.local:5000/team/nginx", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy_depends_on_the_tag(image: str, policy: str) -> None:
    pod = defaulted("v1", "pods", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_container_values_are_kept() -> None:
    container = {
        "name": "c",
        "image": "nginx",
        "imagePullPolicy": "Never",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "terminationMessagePath": "/tmp/msg",
    }
    pod = defaulted("v1", "pods", {"spec": {"containers": [container], "restartPolicy": "Never"}})
    assert {k: pod["spec"]["containers"][0][k] for k in container} == container
    assert pod["spec"]["restartPolicy"] == "Never"


def test_ports_probes_env_and_lifecycle_defaults() -> None:
    container = {
        "name": "c",
        "image": "nginx",
        "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3},
        "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/quit"}}},
    }
    out = defaulted("v1", "pods", {"spec": {"containers": [container]}})["spec"]["containers"][0]
    assert out["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 53, "protocol": "UDP"},
    ]
    assert out["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert out["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert out["readinessProbe"]["periodSeconds"] == 3
    assert out["lifecycle"]["preStop"]["httpGet"] == {"port": 8080, "path": "/quit", "scheme": "HTTP"}


def test_init_and_ephemeral_containers_are_defaulted_too() -> None:
    spec = {
        "containers": [{"name": "c", "image": "nginx"}],
        "initContainers": [{"name": "i", "image": "busybox:1.36"}],
        "ephemeralContainers": [{"name": "e", "image": "busybox"}],
    }
    out = defaulted("v1", "pods", {"spec": spec})["spec"]
    assert out["initContainers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert out["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"


def test_volume_defaults() -> None:
    volumes = [
        {"name": "scratch"},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {
            "name": "info",
            "downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]},
        },
        {
            "name": "proj",
            "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
        },
        {"name": "host", "hostPath": {"path": "/var/log"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory"}},
    ]
    spec = {"containers": [{"name": "c", "image": "nginx"}], "volumes": volumes}
    out = {v["name"]: v for v in defaulted("v1", "pods", {"spec": spec})["spec"]["volumes"]}
    assert out["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert out["cfg"]["configMap"] == {"name": "cfg", "defaultMode": 420}
    assert out["sec"]["secret"]["defaultMode"] == 256
    assert out["info"]["downwardAPI"]["defaultMode"] == 420
    assert out["info"]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert out["proj"]["projected"] == {
        "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
        "defaultMode": 420,
    }
    assert out["host"]["hostPath"] == {"path": "/var/log", "type": ""}
    assert out["tmp"]["emptyDir"] == {"medium": "Memory"}


def test_pod_requests_default_to_limits_but_templates_do_not() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}
    spec = {"containers": [{"name": "c", "image": "nginx", "resources": resources}]}
    pod = defaulted("v1", "pods", {"spec": spec})
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    deploy = defaulted("apps/v1", "deployments", {"spec": {"template": {"spec": copy.deepcopy(spec)}}})
    assert deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m"}
    assert "enableServiceLinks" not in deploy["spec"]["template"]["spec"]


def test_host_network_pods_get_host_ports() -> None:
    spec = {
        "hostNetwork": True,
        "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 9100}]}],
    }
    out = defaulted("v1", "pods", {"spec": spec})
    assert out["spec"]["containers"][0]["ports"][0]["hostPort"] == 9100


# --- workloads -----------------------------------------------------------------------------


def test_deployment_defaults() -> None:
    out = defaulted("apps/v1", "deployments", {"spec": {"template": template()}})
    assert {k: v for k, v in out["spec"].items() if k != "template"} == {
        "replicas": 1,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    assert out["spec"]["template"]["spec"] == {
        "containers": [DEFAULTED_CONTAINER],
        **DEFAULTED_POD_SPEC_FIELDS,
    }


def test_deployment_keeps_zero_replicas_and_recreate_strategy() -> None:
    out = defaulted("apps/v1", "deployments", {"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}})
    assert out["spec"]["replicas"] == 0
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_defaults() -> None:
    out = defaulted("apps/v1", "replicasets", {"spec": {"template": template()}})
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["schedulerName"] == "default-scheduler"


def test_replication_controller_takes_selector_and_labels_from_its_template() -> None:
    out = defaulted(
        "v1", "replicationcontrollers", {"metadata": {"name": "rc"}, "spec": {"template": template()}}
    )
    assert out["spec"]["selector"] == {"app": "web"}
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # The copies are the controller's own: changing one leaves the template alone.
    out["spec"]["selector"]["app"] = "db"
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "web"}


def test_replication_controller_keeps_its_own_selector_labels_and_zero_replicas() -> None:
    obj = {
        "metadata": {"name": "rc", "labels": {"team": "a"}},
        "spec": {"replicas": 0, "selector": {"app": "web", "tier": "x"}, "template": template()},
    }
    out = defaulted("v1", "replicationcontrollers", obj)
    assert out["metadata"]["labels"] == {"team": "a"}
    assert out["spec"]["selector"] == {"app": "web", "tier": "x"}
    assert out["spec"]["replicas"] == 0


def test_replication_controller_without_a_template_gets_none() -> None:
    out = defaulted(
        "v1", "replicationcontrollers", {"metadata": {"name": "rc"}, "spec": {"selector": {"a": "b"}}}
    )
    assert out["spec"] == {"selector": {"a": "b"}, "replicas": 1}
    assert "labels" not in out["metadata"]


def test_daemon_set_defaults() -> None:
    out = defaulted("apps/v1", "daemonsets", {"spec": {"template": template()}})
    assert out["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert out["spec"]["revisionHistoryLimit"] == 10


def test_stateful_set_defaults() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    out = defaulted(
        "apps/v1", "statefulsets", {"spec": {"template": template(), "volumeClaimTemplates": [claim]}}
    )
    spec = out["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["volumeClaimTemplates"][0]["status"] == {"phase": "Pending"}


def test_stateful_set_on_delete_gets_no_rolling_update() -> None:
    out = defaulted("apps/v1", "statefulsets", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    assert out["spec"]["updateStrategy"] == {"type": "OnDelete"}


def job(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"template": template(restartPolicy="Never"), **spec},
    }


def test_job_defaults_and_generated_selector_on_create() -> None:
    out = defaulted("batch/v1", "jobs", job())
    spec = out["spec"]
    assert {k: v for k, v in spec.items() if k not in ("template", "selector")} == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "manualSelector": False,
    }
    generated = {
        "app": "web",
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1",
        "job-name": "pi",
    }
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"] == generated
    # Upstream copies the template's label map to the Job, so the Job shows them too.
    assert out["metadata"]["labels"] == generated


def test_job_without_template_labels_keeps_its_own_labels_empty() -> None:
    obj = job()
    del obj["spec"]["template"]["metadata"]
    out = defaulted("batch/v1", "jobs", obj)
    assert "labels" not in out["metadata"]
    assert out["spec"]["template"]["metadata"]["labels"]["job-name"] == "pi"


def test_job_parallelism_only_and_per_index_backoff() -> None:
    out = defaulted("batch/v1", "jobs", job(parallelism=3))
    assert out["spec"]["parallelism"] == 3
    assert "completions" not in out["spec"]
    out = defaulted("batch/v1", "jobs", job(completionMode="Indexed", completions=4, backoffLimitPerIndex=1))
    assert out["spec"]["backoffLimit"] == 2147483647


def test_job_with_pod_failure_policy_replaces_failed_pods_only() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    out = defaulted("batch/v1", "jobs", job(podFailurePolicy=policy))
    assert out["spec"]["podReplacementPolicy"] == "Failed"
    assert out["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_selector_is_generated_only_on_create() -> None:
    stored = defaulted("batch/v1", "jobs", job())
    update = job()
    update["metadata"]["resourceVersion"] = "7"
    out = defaulted("batch/v1", "jobs", update)
    assert "selector" not in out["spec"]
    out = defaulted("batch/v1", "jobs", job(), old=stored)
    assert "selector" not in out["spec"]


def test_manual_selector_jobs_get_no_generated_labels() -> None:
    out = defaulted("batch/v1", "jobs", job(manualSelector=True, selector={"matchLabels": {"app": "web"}}))
    assert out["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "web"}


def test_cron_job_defaults_default_the_pod_template_only() -> None:
    cron = {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template()}}}}
    out = defaulted("batch/v1", "cronjobs", cron)
    spec = out["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_hpa_defaults() -> None:
    out = defaulted("autoscaling/v2", "horizontalpodautoscalers", {"spec": {"maxReplicas": 5}})
    assert out["spec"]["minReplicas"] == 1
    assert out["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]
    assert "behavior" not in out["spec"]
    behaved = defaulted(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        {"spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
    )
    assert behaved["spec"]["behavior"] == {
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
    }


# --- services ------------------------------------------------------------------------------


def service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def test_cluster_ip_service_defaults() -> None:
    out = defaulted("v1", "services", service(selector={"app": "web"}, ports=[{"port": 80}]))
    assert out["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert out["status"] == {"loadBalancer": {}}


def test_node_port_and_load_balancer_defaults() -> None:
    node_port = defaulted(
        "v1", "services", service(type="NodePort", ports=[{"port": 80, "targetPort": "http"}])
    )
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    assert node_port["spec"]["ports"][0]["targetPort"] == "http"
    assert "allocateLoadBalancerNodePorts" not in node_port["spec"]
    balancer = defaulted("v1", "services", service(type="LoadBalancer", ports=[{"port": 443}]))
    assert balancer["spec"]["allocateLoadBalancerNodePorts"] is True
    assert balancer["spec"]["externalTrafficPolicy"] == "Cluster"


def test_external_name_service_gets_no_cluster_fields() -> None:
    out = defaulted("v1", "services", service(type="ExternalName", externalName="example.com"))
    assert out["spec"] == {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}


def test_headless_services_and_cluster_ip_normalization() -> None:
    headless = defaulted(
        "v1", "services", service(clusterIP="None", selector={"app": "db"}, ports=[{"port": 5432}])
    )
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert (headless["spec"]["ipFamilyPolicy"], headless["spec"]["ipFamilies"]) == ("SingleStack", ["IPv4"])
    selectorless = defaulted("v1", "services", service(clusterIP="None"))
    assert selectorless["spec"]["ipFamilyPolicy"] == "RequireDualStack"


def test_client_ip_affinity_gets_a_timeout_and_none_drops_the_config() -> None:
    sticky = defaulted("v1", "services", service(sessionAffinity="ClientIP", ports=[{"port": 80}]))
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    plain = defaulted(
        "v1",
        "services",
        service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}, ports=[{"port": 80}]),
    )
    assert "sessionAffinityConfig" not in plain["spec"]


def test_switching_node_port_to_cluster_ip_drops_what_no_longer_applies() -> None:
    old = defaulted("v1", "services", service(type="NodePort", ports=[{"port": 80}]))
    old["spec"].update(clusterIP="127.96.0.20", clusterIPs=["127.96.0.20"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    apply_defaults(rt("v1", "services"), new, old=old)
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    assert new["spec"]["clusterIPs"] == ["127.96.0.20"]


def test_update_keeps_cluster_ips_when_an_old_client_omits_them() -> None:
    old = service(
        ports=[{"port": 80}], clusterIP="127.96.0.9", clusterIPs=["127.96.0.9"], ipFamilies=["IPv4"]
    )
    new = service(ports=[{"port": 80}], clusterIP="127.96.0.9")
    out = defaulted("v1", "services", new, old=old)
    assert out["spec"]["clusterIPs"] == ["127.96.0.9"]


def test_load_balancer_status_ingress_gets_vip_mode() -> None:
    obj = service(type="LoadBalancer", ports=[{"port": 80}])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}
    out = defaulted("v1", "services", obj)
    assert out["status"]["loadBalancer"]["ingress"] == [
        {"ip": "192.0.2.1", "ipMode": "VIP"},
        {"hostname": "lb.example.com"},
    ]


# --- other core kinds ------------------------------------------------------------------------


def test_namespace_label_finalizer_and_phase() -> None:
    out = defaulted("v1", "namespaces", {"metadata": {"name": "team-a", "labels": {"x": "y"}}})
    assert out["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team-a"}
    assert out["spec"] == {"finalizers": ["kubernetes"]}
    assert out["status"] == {"phase": "Active"}


def test_namespace_finalizer_is_added_only_on_create() -> None:
    finalized = {"metadata": {"name": "team-a", "resourceVersion": "9"}, "spec": {"finalizers": []}}
    out = defaulted("v1", "namespaces", finalized)
    assert out["spec"]["finalizers"] == []
    out = defaulted("v1", "namespaces", {"metadata": {"name": "team-a"}, "spec": {}}, old=finalized)
    assert out["spec"] == {}
    kept = defaulted(
        "v1", "namespaces", {"metadata": {"name": "b"}, "spec": {"finalizers": ["example.com/x"]}}
    )
    assert kept["spec"]["finalizers"] == ["example.com/x", "kubernetes"]


def test_secret_type_and_string_data() -> None:
    out = defaulted(
        "v1",
        "secrets",
        {"metadata": {"name": "s"}, "data": {"a": "b2xk"}, "stringData": {"a": "new", "b": "ünï"}},
    )
    assert out["type"] == "Opaque"
    assert "stringData" not in out
    assert base64.b64decode(out["data"]["a"]) == b"new"
    assert base64.b64decode(out["data"]["b"]).decode() == "ünï"


def test_endpoints_and_endpoint_slice_ports() -> None:
    endpoints = defaulted("v1", "endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert endpoints["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    slice_ = defaulted(
        "discovery.k8s.io/v1",
        "endpointslices",
        {"addressType": "IPv4", "ports": [{"port": 80}], "endpoints": [{"addresses": ["127.244.1.5"]}]},
    )
    assert slice_["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    assert slice_["endpoints"][0]["conditions"] == {}


def test_node_allocatable_defaults_to_capacity() -> None:
    out = defaulted("v1", "nodes", {"status": {"capacity": {"cpu": "4", "pods": "110"}}})
    assert out["status"]["allocatable"] == {"cpu": "4", "pods": "110"}
    out = defaulted("v1", "nodes", {"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}})
    assert out["status"]["allocatable"] == {"cpu": "3"}


def test_kinds_without_defaults_are_left_alone() -> None:
    for api_version, plural in (
        ("v1", "configmaps"),
        ("coordination.k8s.io/v1", "leases"),
        ("v1", "serviceaccounts"),
    ):
        obj = {"metadata": {"name": "x"}, "data": {"k": "v"}}
        assert defaulted(api_version, plural, obj) == obj


# --- networking, rbac and cluster configuration -------------------------------------------------


def test_network_policy_types_and_port_protocols() -> None:
    ingress_only = defaulted(
        "networking.k8s.io/v1", "networkpolicies", {"spec": {"ingress": [{"ports": [{"port": 80}]}]}}
    )
    assert ingress_only["spec"]["policyTypes"] == ["Ingress"]
    assert ingress_only["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"
    both = defaulted("networking.k8s.io/v1", "networkpolicies", {"spec": {"egress": [{}]}})
    assert both["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_ingress_class_parameters_scope() -> None:
    out = defaulted(
        "networking.k8s.io/v1",
        "ingressclasses",
        {"spec": {"controller": "example.com/ingress", "parameters": {"kind": "Params", "name": "p"}}},
    )
    assert out["spec"]["parameters"]["scope"] == "Cluster"


@pytest.mark.parametrize("plural", ["rolebindings", "clusterrolebindings"])
def test_binding_api_groups(plural: str) -> None:
    obj = {
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
        ],
    }
    out = defaulted("rbac.authorization.k8s.io/v1", plural, obj)
    assert out["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s.get("apiGroup") for s in out["subjects"]] == [
        "rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        None,  # upstream's "" is omitted from JSON
    ]


def test_crd_defaults() -> None:
    crd = {
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1alpha1", "served": True, "storage": False},
                {"name": "v1", "served": True, "storage": True},
            ],
        }
    }
    out = defaulted("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    assert out["spec"]["names"] == {
        "kind": "Widget",
        "plural": "widgets",
        "singular": "widget",
        "listKind": "WidgetList",
    }
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert out["spec"]["scope"] == "Namespaced"
    assert out["status"] == {"storedVersions": ["v1"]}


def test_webhook_conversion_and_api_service_ports_default_to_443() -> None:
    crd = {
        "spec": {
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "w"}}}}
        }
    }
    out = defaulted("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    assert out["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    api = defaulted(
        "apiregistration.k8s.io/v1", "apiservices", {"spec": {"service": {"name": "m", "namespace": "x"}}}
    )
    assert api["spec"]["service"]["port"] == 443
    local = defaulted("apiregistration.k8s.io/v1", "apiservices", {"spec": {"group": "", "version": "v1"}})
    assert "service" not in local["spec"]


def test_storage_and_priority_class_defaults() -> None:
    storage = defaulted("storage.k8s.io/v1", "storageclasses", {"provisioner": "example.com/local"})
    assert (storage["reclaimPolicy"], storage["volumeBindingMode"]) == ("Delete", "Immediate")
    priority = defaulted("scheduling.k8s.io/v1", "priorityclasses", {"value": 1000})
    assert priority["preemptionPolicy"] == "PreemptLowerPriority"
    kept = defaulted("scheduling.k8s.io/v1", "priorityclasses", {"value": 1, "preemptionPolicy": "Never"})
    assert kept["preemptionPolicy"] == "Never"


def test_malformed_nested_values_do_not_crash_defaulting() -> None:
    obj = {"spec": {"containers": "nope", "volumes": [None, 3], "template": None}}
    apply_defaults(rt("v1", "pods"), obj)
    assert obj["spec"]["containers"] == "nope"
    apply_defaults(rt("apps/v1", "deployments"), {"spec": {"template": None, "strategy": None}})
    apply_defaults(rt("v1", "services"), {"spec": {"ports": [None, {"port": 1}]}})


def test_defaulting_twice_changes_nothing() -> None:
    cases = [
        ("v1", "pods", {"metadata": {"name": "p"}, "spec": template()["spec"]}),
        ("apps/v1", "deployments", {"spec": {"template": template()}}),
        ("v1", "services", service(ports=[{"port": 80}])),
        ("batch/v1", "cronjobs", {"spec": {"jobTemplate": {"spec": {"template": template()}}}}),
    ]
    for api_version, plural, obj in cases:
        once = defaulted(api_version, plural, obj)
        assert defaulted(api_version, plural, once) == once
