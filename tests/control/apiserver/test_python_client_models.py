"""Every kind kubelab serves round-trips through the official Python client's typed models.

The ``kubernetes`` package deserializes each answer into generated (pydantic) models whose
required fields (those upstream serializes without ``omitempty``) refuse a missing value with a
``ValidationError`` (a ``ValueError``); an answer that leaves such a field out breaks every
Python controller that touches the kind. So each served kind the client has a typed API for
is created, read, listed (in its namespace and across all of them), patched, replaced, read
through its ``status``/``scale`` subresources and deleted with the typed client, and a few
are watched. Deletes are also checked for answering what upstream answers: the object for
kinds whose registry returns the deleted object (pods, services, storage classes...) or that
are only marked for deletion (namespaces, CRDs, orphaning ReplicationControllers, PVs held by
their protection finalizer, foreground deletes), a ``Status`` otherwise, and the deleted list
for a delete-collection.

The client is synchronous (urllib3), so the API server runs on an event loop in a thread of
its own, one server for the whole module; the objects read, patched and replaced are created
once, raw, when the module starts, and the typed create/delete round trip uses objects of its
own. Checks that fail today are marked ``xfail(strict=True)`` naming the audit finding.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.control.apiserver.conftest import RunningServer, running_apiserver

NAMESPACE = "audit"
LABELS = {"app": "audit"}
TEMPLATE = {
    "metadata": {"labels": LABELS},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}
JOB_TEMPLATE = {
    "metadata": {"labels": LABELS},
    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
}


def _csr_request() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit")]))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


@dataclass(frozen=True)
class Kind:
    """One served resource: the typed API class, the snake-case name its methods use, a minimal
    body (without metadata.name), its served subresources and what upstream's DELETE answers."""

    resource: str
    api: str
    snake: str
    namespaced: bool
    body: Callable[[], dict[str, Any]]
    status: bool = False
    scale: bool = False
    delete_answers: str = "Status"
    name: str = "audit"
    xfail: dict[str, str] = field(default_factory=dict)

    def method(self, verb: str, suffix: str = "") -> Callable[..., Any]:
        api = getattr(client, self.api)()
        scoped = f"{verb}_namespaced_{self.snake}" if self.namespaced else f"{verb}_{self.snake}"
        return getattr(api, scoped + suffix)

    def scope(self) -> dict[str, str]:
        return {"namespace": NAMESPACE} if self.namespaced else {}

    def manifest(self, name: str) -> dict[str, Any]:
        body = self.body()
        body["metadata"] = {"name": name, **body.get("metadata", {})}
        return body


# Audit findings (see the report): checks that fail today, by verb.
EVENTS_V1_NULL_EVENT_TIME = (
    "upstream-identical, not a kubelab bug: a core/v1 Event created without eventTime reads through "
    "events.k8s.io/v1 with eventTime null upstream too, and the client's EventsV1Event requires it"
)


KINDS = [
    Kind("configmaps", "CoreV1Api", "config_map", True, lambda: {"data": {"a": "b"}}),
    Kind("endpoints", "CoreV1Api", "endpoints", True, lambda: {"subsets": []}),
    Kind(
        "events",
        "CoreV1Api",
        "event",
        True,
        lambda: {
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": NAMESPACE},
            "reason": "Audit",
            "message": "audit",
            "type": "Normal",
        },
    ),
    Kind(
        "limitranges",
        "CoreV1Api",
        "limit_range",
        True,
        lambda: {"spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}},
    ),
    Kind("namespaces", "CoreV1Api", "namespace", False, dict, status=True, delete_answers="Namespace"),
    Kind("nodes", "CoreV1Api", "node", False, dict, status=True),
    Kind(
        "persistentvolumeclaims",
        "CoreV1Api",
        "persistent_volume_claim",
        True,
        lambda: {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        status=True,
        delete_answers="PersistentVolumeClaim",
    ),
    Kind(
        "persistentvolumes",
        "CoreV1Api",
        "persistent_volume",
        False,
        lambda: {
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/audit"},
            }
        },
        status=True,
        delete_answers="PersistentVolume",
    ),
    Kind(
        "pods",
        "CoreV1Api",
        "pod",
        True,
        lambda: {"spec": TEMPLATE["spec"]},
        status=True,
        delete_answers="Pod",
    ),
    Kind(
        "podtemplates",
        "CoreV1Api",
        "pod_template",
        True,
        lambda: {"template": TEMPLATE},
        delete_answers="PodTemplate",
    ),
    Kind(
        "replicationcontrollers",
        "CoreV1Api",
        "replication_controller",
        True,
        lambda: {"spec": {"replicas": 1, "selector": LABELS, "template": TEMPLATE}},
        status=True,
        scale=True,
        delete_answers="ReplicationController",
    ),
    Kind(
        "resourcequotas",
        "CoreV1Api",
        "resource_quota",
        True,
        lambda: {"spec": {"hard": {"pods": "10"}}},
        status=True,
        delete_answers="ResourceQuota",
    ),
    Kind("secrets", "CoreV1Api", "secret", True, lambda: {"stringData": {"a": "b"}}),
    Kind(
        "serviceaccounts",
        "CoreV1Api",
        "service_account",
        True,
        dict,
        delete_answers="ServiceAccount",
    ),
    Kind(
        "services",
        "CoreV1Api",
        "service",
        True,
        lambda: {"spec": {"selector": LABELS, "ports": [{"port": 80}]}},
        status=True,
        delete_answers="Service",
    ),
    Kind(
        "apiservices",
        "ApiregistrationV1Api",
        "api_service",
        False,
        lambda: {
            "spec": {
                "group": "audit.example.com",
                "version": "v1",
                "groupPriorityMinimum": 100,
                "versionPriority": 10,
            }
        },
        status=True,
    ),
    Kind(
        "controllerrevisions", "AppsV1Api", "controller_revision", True, lambda: {"revision": 1, "data": {}}
    ),
    Kind(
        "daemonsets",
        "AppsV1Api",
        "daemon_set",
        True,
        lambda: {"spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}},
        status=True,
    ),
    Kind(
        "deployments",
        "AppsV1Api",
        "deployment",
        True,
        lambda: {"spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}},
        status=True,
        scale=True,
    ),
    Kind(
        "replicasets",
        "AppsV1Api",
        "replica_set",
        True,
        lambda: {"spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}},
        status=True,
        scale=True,
    ),
    Kind(
        "statefulsets",
        "AppsV1Api",
        "stateful_set",
        True,
        lambda: {
            "spec": {
                "replicas": 1,
                "serviceName": "audit",
                "selector": {"matchLabels": LABELS},
                "template": TEMPLATE,
            }
        },
        status=True,
        scale=True,
    ),
    Kind(
        "events.k8s.io",
        "EventsV1Api",
        "event",
        True,
        lambda: {
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "example.com/audit",
            "reportingInstance": "audit",
            "action": "Audit",
            "reason": "Audit",
            "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": NAMESPACE},
        },
        name="audit-events-v1",
        xfail={"list": EVENTS_V1_NULL_EVENT_TIME, "list_all": EVENTS_V1_NULL_EVENT_TIME},
    ),
    Kind(
        "horizontalpodautoscalers.v2",
        "AutoscalingV2Api",
        "horizontal_pod_autoscaler",
        True,
        lambda: {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "audit"},
                "maxReplicas": 3,
            }
        },
        status=True,
    ),
    Kind(
        "horizontalpodautoscalers.v1",
        "AutoscalingV1Api",
        "horizontal_pod_autoscaler",
        True,
        lambda: {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "audit"},
                "maxReplicas": 3,
            }
        },
        status=True,
        name="audit-autoscaling-v1",
    ),
    Kind(
        "cronjobs",
        "BatchV1Api",
        "cron_job",
        True,
        lambda: {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}}},
        status=True,
    ),
    Kind("jobs", "BatchV1Api", "job", True, lambda: {"spec": {"template": JOB_TEMPLATE}}, status=True),
    Kind(
        "certificatesigningrequests",
        "CertificatesV1Api",
        "certificate_signing_request",
        False,
        lambda: {
            "spec": {
                "request": _csr_request(),
                "signerName": "example.com/audit",
                "usages": ["digital signature"],
            }
        },
        status=True,
    ),
    Kind(
        "ingressclasses",
        "NetworkingV1Api",
        "ingress_class",
        False,
        lambda: {"spec": {"controller": "example.com/audit"}},
    ),
    Kind(
        "ingresses",
        "NetworkingV1Api",
        "ingress",
        True,
        lambda: {"spec": {"defaultBackend": {"service": {"name": "audit", "port": {"number": 80}}}}},
        status=True,
    ),
    Kind("networkpolicies", "NetworkingV1Api", "network_policy", True, lambda: {"spec": {"podSelector": {}}}),
    Kind(
        "poddisruptionbudgets",
        "PolicyV1Api",
        "pod_disruption_budget",
        True,
        lambda: {"spec": {"minAvailable": 1, "selector": {"matchLabels": LABELS}}},
        status=True,
    ),
    Kind("clusterroles", "RbacAuthorizationV1Api", "cluster_role", False, lambda: {"rules": []}),
    Kind(
        "clusterrolebindings",
        "RbacAuthorizationV1Api",
        "cluster_role_binding",
        False,
        lambda: {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "audit", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    ),
    Kind("roles", "RbacAuthorizationV1Api", "role", True, lambda: {"rules": []}),
    Kind(
        "rolebindings",
        "RbacAuthorizationV1Api",
        "role_binding",
        True,
        lambda: {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "audit", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    ),
    Kind(
        "storageclasses",
        "StorageV1Api",
        "storage_class",
        False,
        lambda: {"provisioner": "example.com/audit"},
        delete_answers="StorageClass",
    ),
    Kind(
        "mutatingwebhookconfigurations",
        "AdmissionregistrationV1Api",
        "mutating_webhook_configuration",
        False,
        dict,
    ),
    Kind(
        "validatingwebhookconfigurations",
        "AdmissionregistrationV1Api",
        "validating_webhook_configuration",
        False,
        dict,
    ),
    Kind(
        "validatingadmissionpolicies",
        "AdmissionregistrationV1Api",
        "validating_admission_policy",
        False,
        lambda: {
            "spec": {
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [{"expression": "true"}],
            }
        },
        status=True,
    ),
    Kind(
        "validatingadmissionpolicybindings",
        "AdmissionregistrationV1Api",
        "validating_admission_policy_binding",
        False,
        lambda: {"spec": {"policyName": "audit", "validationActions": ["Deny"]}},
    ),
    Kind(
        "customresourcedefinitions",
        "ApiextensionsV1Api",
        "custom_resource_definition",
        False,
        lambda: {
            "spec": {
                "group": "audit.example.com",
                "scope": "Namespaced",
                "names": {
                    "plural": "widgets",
                    "singular": "widget",
                    "kind": "Widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            }
        },
        status=True,
        delete_answers="CustomResourceDefinition",
    ),
    Kind("priorityclasses", "SchedulingV1Api", "priority_class", False, lambda: {"value": 1000}),
    Kind("leases", "CoordinationV1Api", "lease", True, lambda: {"spec": {"holderIdentity": "audit"}}),
    Kind("runtimeclasses", "NodeV1Api", "runtime_class", False, lambda: {"handler": "runc"}),
    Kind(
        "endpointslices",
        "DiscoveryV1Api",
        "endpoint_slice",
        True,
        lambda: {"addressType": "IPv4", "endpoints": []},
    ),
]


def _name(kind: Kind, *, typed: bool) -> str:
    """The object's name: a CRD's must be <plural>.<group>, a pod's all others may share."""
    if kind.resource == "customresourcedefinitions":
        return "widgets.audit.example.com" if not typed else "gadgets.audit.example.com"
    if kind.resource == "apiservices":
        return "v1.audit.example.com" if not typed else "v2.audit.example.com"
    return f"{kind.name}-typed" if typed else kind.name


def _typed_manifest(kind: Kind) -> dict[str, Any]:
    body = kind.manifest(_name(kind, typed=True))
    if kind.resource == "customresourcedefinitions":
        body["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    if kind.resource == "apiservices":
        body["spec"]["version"] = "v2"
    return body


class ThreadedServer:
    """``running_apiserver`` on an event loop in a thread of its own, so a synchronous client can
    call it from the test thread; ``stop`` ends the block and joins the thread."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.server: RunningServer | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with running_apiserver(self._tmp_path) as server:
                self.server = server
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._ready.set()

    def start(self) -> RunningServer:
        self._thread.start()
        assert self._ready.wait(60), "the API server thread did not start in 60 s"
        if self.server is None:
            raise RuntimeError("the API server did not start") from self._failure
        return self.server

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the API server thread did not stop in 60 s"


@pytest.fixture(scope="module")
def typed_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """One API server for the module, the typed client set as default, every kind created once."""
    threaded = ThreadedServer(tmp_path_factory.mktemp("python-client"))
    server = threaded.start()
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.ssl_ca_cert = str(server.ca_file)
    configuration.cert_file = str(server.cert_file)
    configuration.key_file = str(server.key_file)
    api_client = client.ApiClient(configuration)
    previous = client.Configuration.get_default_copy()
    client.Configuration.set_default(configuration)
    try:
        client.CoreV1Api(api_client).create_namespace(
            {"metadata": {"name": NAMESPACE}}, _preload_content=False
        )
        for kind in KINDS:
            if kind.resource == "namespaces":
                continue
            kind.method("create")(
                body=kind.manifest(_name(kind, typed=False)), **kind.scope(), _preload_content=False
            )
        yield api_client
    finally:
        client.Configuration.set_default(previous)
        api_client.close()
        threaded.stop()


def _existing_name(kind: Kind) -> str:
    return NAMESPACE if kind.resource == "namespaces" else _name(kind, typed=False)


def _marked(verb: str, kinds: list[Kind]) -> list[Any]:
    return [
        pytest.param(
            kind,
            id=kind.resource,
            marks=[
                pytest.mark.xfail(
                    strict=True, raises=(ValueError, AssertionError, ApiException), reason=kind.xfail[verb]
                )
            ]
            if verb in kind.xfail
            else [],
        )
        for kind in kinds
    ]


@pytest.mark.parametrize("kind", _marked("create", KINDS))
def test_typed_create_and_delete_round_trip(typed_client: client.ApiClient, kind: Kind) -> None:
    name = _name(kind, typed=True)
    created = kind.method("create")(body=_typed_manifest(kind), **kind.scope())
    assert created.metadata.name == name
    assert created.metadata.uid
    answer = kind.method("delete")(name=name, **kind.scope())
    # Kinds whose delete the client types as ``object`` come back as plain dicts.
    answered = answer["kind"] if isinstance(answer, dict) else answer.kind
    assert answered == kind.delete_answers


@pytest.mark.parametrize("kind", _marked("read", KINDS))
def test_typed_read(typed_client: client.ApiClient, kind: Kind) -> None:
    read = kind.method("read")(name=_existing_name(kind), **kind.scope())
    assert read.metadata.name == _existing_name(kind)


@pytest.mark.parametrize("kind", _marked("list", KINDS))
def test_typed_list(typed_client: client.ApiClient, kind: Kind) -> None:
    listed = kind.method("list")(**kind.scope())
    assert _existing_name(kind) in [item.metadata.name for item in listed.items]
    assert listed.metadata.resource_version


@pytest.mark.parametrize("kind", _marked("list_all", [kind for kind in KINDS if kind.namespaced]))
def test_typed_list_for_all_namespaces(typed_client: client.ApiClient, kind: Kind) -> None:
    api = getattr(client, kind.api)()
    listed = getattr(api, f"list_{kind.snake}_for_all_namespaces")()
    assert (NAMESPACE, kind.name) in [(item.metadata.namespace, item.metadata.name) for item in listed.items]


@pytest.mark.parametrize("kind", _marked("patch", KINDS))
def test_typed_patch(typed_client: client.ApiClient, kind: Kind) -> None:
    patched = kind.method("patch")(
        name=_existing_name(kind), body={"metadata": {"labels": {"patched": "yes"}}}, **kind.scope()
    )
    assert patched.metadata.labels["patched"] == "yes"


@pytest.mark.parametrize("kind", _marked("replace", KINDS))
def test_typed_replace_of_what_was_read(typed_client: client.ApiClient, kind: Kind) -> None:
    read = kind.method("read")(name=_existing_name(kind), **kind.scope())
    read.metadata.annotations = {**(read.metadata.annotations or {}), "replaced": "yes"}
    replaced = kind.method("replace")(name=_existing_name(kind), body=read, **kind.scope())
    assert replaced.metadata.annotations["replaced"] == "yes"


@pytest.mark.parametrize("kind", _marked("status", [kind for kind in KINDS if kind.status]))
def test_typed_read_status(typed_client: client.ApiClient, kind: Kind) -> None:
    read = kind.method("read", "_status")(name=_existing_name(kind), **kind.scope())
    assert read.metadata.name == _existing_name(kind)


@pytest.mark.parametrize("kind", _marked("scale", [kind for kind in KINDS if kind.scale]))
def test_typed_read_and_patch_scale(typed_client: client.ApiClient, kind: Kind) -> None:
    scale = kind.method("read", "_scale")(name=_existing_name(kind), **kind.scope())
    assert scale.spec.replicas == 1
    patched = kind.method("patch", "_scale")(
        name=_existing_name(kind), body={"spec": {"replicas": 2}}, **kind.scope()
    )
    assert patched.spec.replicas == 2


REVIEWS = [
    pytest.param(
        "AuthorizationV1Api",
        "create_subject_access_review",
        {"spec": {"user": "audit", "resourceAttributes": {"verb": "get", "resource": "pods"}}},
        id="subjectaccessreviews",
    ),
    pytest.param(
        "AuthorizationV1Api",
        "create_self_subject_access_review",
        {"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}},
        id="selfsubjectaccessreviews",
    ),
    pytest.param(
        "AuthorizationV1Api",
        "create_self_subject_rules_review",
        {"spec": {"namespace": NAMESPACE}},
        id="selfsubjectrulesreviews",
    ),
    pytest.param("AuthenticationV1Api", "create_self_subject_review", {}, id="selfsubjectreviews"),
    pytest.param(
        "AuthenticationV1Api", "create_token_review", {"spec": {"token": "not-a-token"}}, id="tokenreviews"
    ),
]


@pytest.mark.parametrize(("api", "method", "body"), REVIEWS)
def test_typed_review_answers_deserialize(
    typed_client: client.ApiClient, api: str, method: str, body: dict[str, Any]
) -> None:
    answer = getattr(getattr(client, api)(), method)(body=body)
    assert answer.status is not None


def test_typed_local_subject_access_review(typed_client: client.ApiClient) -> None:
    answer = client.AuthorizationV1Api().create_namespaced_local_subject_access_review(
        namespace=NAMESPACE,
        body={
            "metadata": {"namespace": NAMESPACE},
            "spec": {
                "user": "nobody",
                "resourceAttributes": {"namespace": NAMESPACE, "verb": "get", "resource": "pods"},
            },
        },
    )
    assert answer.status.allowed is False


def test_typed_service_account_token(typed_client: client.ApiClient) -> None:
    answer = client.CoreV1Api().create_namespaced_service_account_token(
        name="audit", namespace=NAMESPACE, body={"spec": {"audiences": ["audit"]}}
    )
    assert answer.status.token
    assert answer.status.expiration_timestamp is not None


def test_typed_binding_and_eviction(typed_client: client.ApiClient) -> None:
    core = client.CoreV1Api()
    core.create_namespaced_pod(
        namespace=NAMESPACE, body={"metadata": {"name": "bound"}, "spec": TEMPLATE["spec"]}
    )
    # Upstream's BindingREST answers a Success Status, which the client's V1Binding (target
    # required) cannot hold, so the answer is read raw, as it must be against upstream too.
    answer = core.create_namespaced_pod_binding(
        name="bound",
        namespace=NAMESPACE,
        body={"metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "audit"}},
        _preload_content=False,
    )
    assert orjson.loads(answer.data)["kind"] == "Status"
    assert core.read_namespaced_pod(name="bound", namespace=NAMESPACE).spec.node_name == "audit"
    core.create_namespaced_pod_eviction(
        name="bound", namespace=NAMESPACE, body={"metadata": {"name": "bound", "namespace": NAMESPACE}}
    )
    evicted = core.read_namespaced_pod(name="bound", namespace=NAMESPACE)
    assert evicted.metadata.deletion_timestamp is not None


def test_typed_component_statuses(typed_client: client.ApiClient) -> None:
    listed = client.CoreV1Api().list_component_status()
    assert listed.items
    read = client.CoreV1Api().read_component_status(name=listed.items[0].metadata.name)
    assert read.metadata.name == listed.items[0].metadata.name


WATCHED = [
    "configmaps",
    "pods",
    "deployments",
    "services",
    "nodes",
    "events.k8s.io",
    "horizontalpodautoscalers.v2",
]


@pytest.mark.parametrize(
    "kind", [kind for kind in KINDS if kind.resource in WATCHED], ids=lambda kind: kind.resource
)
def test_typed_watch_stream_deserializes_events(typed_client: client.ApiClient, kind: Kind) -> None:
    # Selected by name: an unselected events.k8s.io list also holds the core Event, whose null
    # eventTime the client refuses (upstream-identical, see test_typed_list).
    selector = f"metadata.name={_existing_name(kind)}"
    listed = kind.method("list")(**kind.scope(), field_selector=selector)
    stream = watch.Watch()
    try:
        kind.method("patch")(
            name=_existing_name(kind), body={"metadata": {"labels": {"watched": "yes"}}}, **kind.scope()
        )
        for event in stream.stream(
            kind.method("list"),
            **kind.scope(),
            field_selector=selector,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=10,
        ):
            assert event["type"] == "MODIFIED"
            assert event["object"].metadata.labels["watched"] == "yes"
            assert event["raw_object"]["kind"] == event["object"].kind
            break
        else:
            pytest.fail("the watch ended without the MODIFIED event")
    finally:
        stream.stop()


def test_typed_graceful_pod_delete_answers_the_pod(typed_client: client.ApiClient) -> None:
    core = client.CoreV1Api()
    core.create_namespaced_pod(
        namespace=NAMESPACE,
        body={"metadata": {"name": "graceful"}, "spec": {**TEMPLATE["spec"], "nodeName": "audit"}},
    )
    pending = core.delete_namespaced_pod(name="graceful", namespace=NAMESPACE, grace_period_seconds=30)
    assert pending.kind == "Pod"
    assert pending.metadata.deletion_timestamp is not None
    assert pending.metadata.deletion_grace_period_seconds == 30
    gone = core.delete_namespaced_pod(name="graceful", namespace=NAMESPACE, grace_period_seconds=0)
    assert gone.kind == "Pod"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod(name="graceful", namespace=NAMESPACE)
    assert missing.value.status == 404


def test_typed_foreground_delete_answers_the_object_being_deleted(typed_client: client.ApiClient) -> None:
    apps = client.AppsV1Api()
    deployments = next(kind for kind in KINDS if kind.resource == "deployments")
    apps.create_namespaced_deployment(namespace=NAMESPACE, body=deployments.manifest("foreground"))
    answer = apps.delete_namespaced_deployment(
        name="foreground", namespace=NAMESPACE, propagation_policy="Foreground"
    )
    assert answer["kind"] == "Deployment"
    assert "foregroundDeletion" in answer["metadata"]["finalizers"]
    assert apps.read_namespaced_deployment(name="foreground", namespace=NAMESPACE).metadata.deletion_timestamp


def test_typed_delete_collection_answers_the_deleted_list(typed_client: client.ApiClient) -> None:
    """Upstream's Store.DeleteCollection answers the list of what it deleted (a Status only when
    the storage returns nothing); the client types it as V1Status, which reads the list's kind."""
    core = client.CoreV1Api()
    for name in ("collected-1", "collected-2"):
        core.create_namespaced_config_map(
            namespace=NAMESPACE, body={"metadata": {"name": name, "labels": {"collect": "yes"}}}
        )
    answer = core.delete_collection_namespaced_config_map(namespace=NAMESPACE, label_selector="collect=yes")
    assert answer.kind == "ConfigMapList"
    assert core.list_namespaced_config_map(namespace=NAMESPACE, label_selector="collect=yes").items == []


def test_typed_watch_across_namespaces(typed_client: client.ApiClient) -> None:
    core = client.CoreV1Api()
    listed = core.list_config_map_for_all_namespaces()
    stream = watch.Watch()
    try:
        core.create_namespaced_config_map(namespace=NAMESPACE, body={"metadata": {"name": "watched-all"}})
        for event in stream.stream(
            core.list_config_map_for_all_namespaces,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=10,
        ):
            if event["object"].metadata.name == "watched-all":
                assert event["type"] == "ADDED"
                assert event["object"].metadata.namespace == NAMESPACE
                break
        else:
            pytest.fail("the watch ended without the ADDED event")
    finally:
        stream.stop()
