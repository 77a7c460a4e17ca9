"""The PodSecurity admission plugin: enforce refuses, warn warns, audit logs; workloads are only
warned about; namespace labels are validated and a stricter enforce level warns about the
existing pods it would refuse; nothing is exempt unless configured. Most tests call the plugin
on a real store; the last ones go through HTTP (403 Status bodies, Warning headers)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from control.apiserver.admission import CREATE, DELETE, UPDATE, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.errors import StatusError
from control.apiserver.pod_security_admission import Exemptions, PodSecurityAdmission
from control.apiserver.pod_security_policy import LATEST, Level, LevelVersion
from control.apiserver.resource_store import ResourceStore
from control.apiserver.warning import record_into
from control.resources.registry import ResourceType
from tests.control.apiserver.conftest import RunningServer

ALICE = UserInfo(name="alice", groups=("system:authenticated",))
RESTRICTED_MESSAGE = (
    'privileged (container "c" must not set securityContext.privileged=true), '
    'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
    'or "Localhost")'
)
BASELINE = LevelVersion(Level.BASELINE, LATEST)
PRIVILEGED_DETAIL = 'privileged (container "c" must not set securityContext.privileged=true)'


def privileged_pod(name: str = "priv", *, image: str = "busybox") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": image, "securityContext": {"privileged": True}}]},
    }


def plain_pod(name: str = "plain") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def restricted_pod(name: str = "good") -> dict[str, Any]:
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "app", "securityContext": security}]},
    }


def labels(**modes: str) -> dict[str, str]:
    """``labels(enforce="restricted", warn_version="v1.25")`` -> the pod-security labels."""
    return {f"pod-security.kubernetes.io/{mode.replace('_', '-')}": value for mode, value in modes.items()}


@pytest.fixture
def plugin(objects: ResourceStore) -> PodSecurityAdmission:
    return PodSecurityAdmission(objects=objects)


def kind(objects: ResourceStore, plural: str, group: str = "") -> ResourceType:
    rt = objects.registry.lookup(group=group, version="v1", plural=plural)
    assert rt is not None
    return rt


async def namespace(objects: ResourceStore, name: str, **modes: str) -> None:
    """Store a namespace (not admitted) with pod-security labels."""
    await objects.create(
        kind(objects, "namespaces"), {"metadata": {"name": name, "labels": labels(**modes)}}, namespace=""
    )


async def admit(
    plugin: PodSecurityAdmission,
    rt: ResourceType,
    obj: dict[str, Any] | None,
    *,
    namespace: str,
    operation: str = CREATE,
    old: dict[str, Any] | None = None,
    subresource: str = "",
    user: UserInfo = ALICE,
) -> list[str]:
    """Run the plugin's validate step as the API server would; the warnings it added."""
    warnings: list[str] = []
    record_into(warnings)
    metadata = (obj or old or {}).get("metadata") or {}
    await plugin.validate(
        AdmissionRequest(
            operation=operation,
            rt=rt,
            namespace=namespace,
            name=str(metadata.get("name") or ""),
            subresource=subresource,
            user=user,
            obj=obj,
            old=old,
        )
    )
    return warnings


# ---------------------------------------------------------------- pods: enforce, warn, audit


async def test_enforce_refuses_a_violating_pod_with_upstreams_message(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "locked", enforce="restricted")
    with pytest.raises(StatusError) as refused:
        await admit(plugin, kind(objects, "pods"), privileged_pod(), namespace="locked")
    error = refused.value
    assert (error.code, error.reason) == (403, "Forbidden")
    assert (
        error.message
        == f'pods "priv" is forbidden: violates PodSecurity "restricted:latest": {RESTRICTED_MESSAGE}'
    )
    assert error.details == {"kind": "pods", "name": "priv"}


async def test_enforce_admits_a_conforming_pod_without_warnings(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "locked", enforce="restricted")
    assert await admit(plugin, kind(objects, "pods"), restricted_pod(), namespace="locked") == []


async def test_warn_admits_a_violating_pod_with_a_warning(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "watched", warn="baseline")
    warnings = await admit(plugin, kind(objects, "pods"), privileged_pod(), namespace="watched")
    assert warnings == [f'would violate PodSecurity "baseline:latest": {PRIVILEGED_DETAIL}']


async def test_a_refused_pod_gets_no_warnings_and_an_admitted_one_is_warned_at_the_warn_level(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "mixed", enforce="baseline", warn="restricted")
    pods = kind(objects, "pods")
    warnings = await admit(plugin, pods, plain_pod(), namespace="mixed")
    assert len(warnings) == 1 and warnings[0].startswith('would violate PodSecurity "restricted:latest": ')
    recorded: list[str] = []
    record_into(recorded)
    with pytest.raises(StatusError, match='violates PodSecurity "baseline:latest"'):
        await plugin.validate(
            AdmissionRequest(
                operation=CREATE,
                rt=pods,
                namespace="mixed",
                name="priv",
                subresource="",
                user=ALICE,
                obj=privileged_pod(),
                old=None,
            )
        )
    assert recorded == []


async def test_warn_follows_a_stricter_enforce_level(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "strict", enforce="baseline", enforce_version="v1.30")
    warnings = await admit(plugin, kind(objects, "pods"), plain_pod(), namespace="strict")
    assert warnings == []  # warn is baseline:v1.30 too, which a plain pod passes


async def test_audit_is_a_structured_log_line_with_upstreams_annotation(
    objects: ResourceStore, plugin: PodSecurityAdmission, caplog: pytest.LogCaptureFixture
) -> None:
    await namespace(objects, "audited", audit="restricted", audit_version="v1.29")
    with caplog.at_level(logging.INFO, logger="kubelab.apiserver.podsecurity"):
        warnings = await admit(plugin, kind(objects, "pods"), privileged_pod(), namespace="audited")
    assert warnings == []
    (record,) = [r for r in caplog.records if r.name == "kubelab.apiserver.podsecurity"]
    assert record.getMessage() == "PodSecurity audit"
    assert record.annotations == {  # type: ignore[attr-defined]
        "pod-security.kubernetes.io/enforce-policy": "privileged:latest",
        "pod-security.kubernetes.io/audit-violations": (
            f'would violate PodSecurity "restricted:v1.29": {RESTRICTED_MESSAGE}'
        ),
    }
    assert record.objectRef == {  # type: ignore[attr-defined]
        "resource": "pods",
        "apiGroup": "",
        "namespace": "audited",
        "name": "priv",
    }
    assert (record.user, record.verb) == ("alice", "create")  # type: ignore[attr-defined]


async def test_a_conforming_pod_is_not_logged(
    objects: ResourceStore, plugin: PodSecurityAdmission, caplog: pytest.LogCaptureFixture
) -> None:
    await namespace(objects, "audited", audit="restricted")
    with caplog.at_level(logging.INFO, logger="kubelab.apiserver.podsecurity"):
        await admit(plugin, kind(objects, "pods"), restricted_pod(), namespace="audited")
    assert [r for r in caplog.records if r.name == "kubelab.apiserver.podsecurity"] == []


async def test_the_version_label_picks_the_rules_of_that_version(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "old", enforce="restricted", enforce_version="v1.22")
    await namespace(objects, "new", enforce="restricted", enforce_version="v1.23")
    root = restricted_pod("root")
    root["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0
    pods = kind(objects, "pods")
    assert await admit(plugin, pods, root, namespace="old") == []
    with pytest.raises(StatusError) as refused:
        await admit(plugin, pods, root, namespace="new")
    assert refused.value.message == (
        'pods "root" is forbidden: violates PodSecurity "restricted:v1.23": '
        'runAsUser=0 (container "c" must not set runAsUser=0)'
    )


async def test_unlabelled_namespaces_admit_anything(
    objects: ResourceStore, plugin: PodSecurityAdmission, caplog: pytest.LogCaptureFixture
) -> None:
    await namespace(objects, "kube-system")
    pod = privileged_pod()
    pod["spec"].update(hostNetwork=True, hostPID=True)
    with caplog.at_level(logging.INFO, logger="kubelab.apiserver.podsecurity"):
        assert await admit(plugin, kind(objects, "pods"), pod, namespace="kube-system") == []
    assert [r for r in caplog.records if r.name == "kubelab.apiserver.podsecurity"] == []


async def test_a_namespace_with_a_bad_label_enforces_restricted_and_logs_the_error(
    objects: ResourceStore, plugin: PodSecurityAdmission, caplog: pytest.LogCaptureFixture
) -> None:
    await namespace(objects, "typo", enforce="strict")  # stored without admission, as by an older server
    with (
        caplog.at_level(logging.INFO, logger="kubelab.apiserver.podsecurity"),
        pytest.raises(StatusError, match='violates PodSecurity "restricted:latest"'),
    ):
        await admit(plugin, kind(objects, "pods"), privileged_pod(), namespace="typo")
    (record,) = [r for r in caplog.records if r.name == "kubelab.apiserver.podsecurity"]
    assert record.annotations["pod-security.kubernetes.io/error"] == (  # type: ignore[attr-defined]
        "Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: "
        'Invalid value: "strict": must be one of privileged, baseline, restricted'
    )


async def test_a_pod_in_a_namespace_that_cannot_be_found_is_an_internal_error(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    with pytest.raises(StatusError) as failed:
        await admit(plugin, kind(objects, "pods"), privileged_pod(), namespace="ghost")
    assert (failed.value.code, failed.value.message) == (
        500,
        'Internal error occurred: failed to lookup namespace "ghost"',
    )


# ---------------------------------------------------------------- pod updates


async def test_only_updates_of_images_or_containers_are_evaluated(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "locked", enforce="baseline")
    pods = kind(objects, "pods")
    old = privileged_pod()  # admitted before the namespace was labelled
    relabelled = privileged_pod()
    relabelled["metadata"]["labels"] = {"tier": "web"}
    assert await admit(plugin, pods, relabelled, old=old, operation=UPDATE, namespace="locked") == []
    reimaged = privileged_pod(image="busybox:2")
    with pytest.raises(StatusError, match='violates PodSecurity "baseline:latest"'):
        await admit(plugin, pods, reimaged, old=old, operation=UPDATE, namespace="locked")
    added = privileged_pod()
    added["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    with pytest.raises(StatusError):
        await admit(plugin, pods, added, old=old, operation=UPDATE, namespace="locked")


async def test_a_new_ephemeral_container_is_evaluated(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "locked", enforce="baseline")
    old = plain_pod("web")
    debugged = plain_pod("web")
    debugged["spec"]["ephemeralContainers"] = [
        {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    with pytest.raises(StatusError) as refused:
        await admit(
            plugin,
            kind(objects, "pods"),
            debugged,
            old=old,
            operation=UPDATE,
            subresource="ephemeralcontainers",
            namespace="locked",
        )
    assert refused.value.message == (
        'pods "web" is forbidden: violates PodSecurity "baseline:latest": '
        'privileged (container "debug" must not set securityContext.privileged=true)'
    )


@pytest.mark.parametrize("subresource", ["status", "binding", "eviction"])
async def test_ignored_pod_subresources_are_not_evaluated(
    objects: ResourceStore, plugin: PodSecurityAdmission, subresource: str
) -> None:
    await namespace(objects, "locked", enforce="restricted")
    pod = privileged_pod(image="other")
    warnings = await admit(
        plugin,
        kind(objects, "pods"),
        pod,
        old=privileged_pod(),
        operation=UPDATE,
        subresource=subresource,
        namespace="locked",
    )
    assert warnings == []


async def test_deletes_are_not_evaluated(objects: ResourceStore, plugin: PodSecurityAdmission) -> None:
    await namespace(objects, "locked", enforce="restricted")
    warnings = await admit(
        plugin, kind(objects, "pods"), None, old=privileged_pod(), operation=DELETE, namespace="locked"
    )
    assert warnings == []


# ---------------------------------------------------------------- workloads


def template_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": pod["spec"]}


WORKLOADS = [
    ("", "replicationcontrollers", lambda t: {"spec": {"template": t}}),
    ("apps", "replicasets", lambda t: {"spec": {"template": t}}),
    ("apps", "deployments", lambda t: {"spec": {"template": t}}),
    ("apps", "statefulsets", lambda t: {"spec": {"template": t}}),
    ("apps", "daemonsets", lambda t: {"spec": {"template": t}}),
    ("batch", "jobs", lambda t: {"spec": {"template": t}}),
    ("batch", "cronjobs", lambda t: {"spec": {"jobTemplate": {"spec": {"template": t}}}}),
]


@pytest.mark.parametrize(("group", "plural", "shape"), WORKLOADS, ids=[w[1] for w in WORKLOADS])
async def test_workloads_are_warned_about_never_refused(
    objects: ResourceStore, plugin: PodSecurityAdmission, group: str, plural: str, shape: Any
) -> None:
    await namespace(objects, "locked", enforce="baseline")
    workload = {"metadata": {"name": "w"}, **shape(template_of(privileged_pod()))}
    rt = kind(objects, plural, group)
    warnings = await admit(plugin, rt, workload, namespace="locked")
    assert warnings == [f'would violate PodSecurity "baseline:latest": {PRIVILEGED_DETAIL}']
    warnings = await admit(plugin, rt, workload, old=workload, operation=UPDATE, namespace="locked")
    assert len(warnings) == 1
    assert (
        await admit(
            plugin, rt, workload, old=workload, operation=UPDATE, subresource="status", namespace="locked"
        )
        == []
    )


async def test_workloads_are_not_evaluated_when_warn_and_audit_are_privileged(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "quiet", enforce="restricted", warn="privileged")
    deployment = {"metadata": {"name": "d"}, "spec": {"template": template_of(privileged_pod())}}
    assert await admit(plugin, kind(objects, "deployments", "apps"), deployment, namespace="quiet") == []


async def test_a_workload_without_a_template_is_admitted(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "locked", enforce="restricted")
    assert (
        await admit(
            plugin, kind(objects, "deployments", "apps"), {"metadata": {"name": "d"}}, namespace="locked"
        )
        == []
    )


async def test_a_workload_in_a_namespace_that_cannot_be_found_is_admitted_and_logged(
    objects: ResourceStore, plugin: PodSecurityAdmission, caplog: pytest.LogCaptureFixture
) -> None:
    deployment = {"metadata": {"name": "d"}, "spec": {"template": template_of(privileged_pod())}}
    with caplog.at_level(logging.INFO, logger="kubelab.apiserver.podsecurity"):
        assert await admit(plugin, kind(objects, "deployments", "apps"), deployment, namespace="ghost") == []
    (record,) = [r for r in caplog.records if r.name == "kubelab.apiserver.podsecurity"]
    assert record.annotations == {  # type: ignore[attr-defined]
        "pod-security.kubernetes.io/error": 'failed to lookup namespace "ghost": namespaces "ghost" not found'
    }


# ---------------------------------------------------------------- namespaces


async def test_a_namespace_with_bad_labels_is_invalid(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    created = {"metadata": {"name": "x", "labels": labels(enforce="strict", warn_version="1.25")}}
    with pytest.raises(StatusError) as invalid:
        await admit(plugin, kind(objects, "namespaces"), created, namespace="")
    error = invalid.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == (
        'Namespace "x" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": '
        "must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/warn-version]: "
        'Invalid value: "1.25": must be "latest" or "v1.x"]'
    )


async def test_an_update_keeping_the_same_bad_labels_is_allowed_a_new_bad_label_is_not(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    namespaces = kind(objects, "namespaces")
    old = {"metadata": {"name": "x", "labels": labels(enforce="strict")}}
    annotated = {"metadata": {"name": "x", "labels": labels(enforce="strict"), "annotations": {"a": "b"}}}
    assert await admit(plugin, namespaces, annotated, old=old, operation=UPDATE, namespace="") == []
    worse = {"metadata": {"name": "x", "labels": labels(enforce="strict", audit="loud")}}
    with pytest.raises(StatusError, match='Invalid value: "loud"'):
        await admit(plugin, namespaces, worse, old=old, operation=UPDATE, namespace="")
    fresh = {"metadata": {"name": "x", "labels": labels(enforce="banana")}}
    with pytest.raises(StatusError, match='Invalid value: "banana"'):
        await admit(
            plugin, namespaces, fresh, old={"metadata": {"name": "x"}}, operation=UPDATE, namespace=""
        )


async def store_pod(objects: ResourceStore, pod: dict[str, Any], *, namespace: str) -> None:
    await objects.create(kind(objects, "pods"), pod, namespace=namespace)


async def test_a_stricter_enforce_level_warns_about_existing_pods(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "apps")
    for name in ("b-priv", "a-priv", "c-priv"):
        await store_pod(objects, privileged_pod(name), namespace="apps")
    host = plain_pod("host")
    host["spec"]["hostNetwork"] = True
    await store_pod(objects, host, namespace="apps")
    await store_pod(objects, plain_pod("fine"), namespace="apps")
    namespaces = kind(objects, "namespaces")
    old = {"metadata": {"name": "apps"}}
    new = {"metadata": {"name": "apps", "labels": labels(enforce="baseline")}}
    warnings = await admit(plugin, namespaces, new, old=old, operation=UPDATE, namespace="")
    assert warnings == [
        'existing pods in namespace "apps" violate the new PodSecurity enforce level "baseline:latest"',
        "a-priv (and 2 other pods): privileged",
        "host: host namespaces",
    ]


async def test_two_pods_with_one_violation_are_counted_as_one_other(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "apps")
    for name in ("x", "y"):
        await store_pod(objects, privileged_pod(name), namespace="apps")
    new = {"metadata": {"name": "apps", "labels": labels(enforce="baseline")}}
    warnings = await admit(
        plugin,
        kind(objects, "namespaces"),
        new,
        old={"metadata": {"name": "apps"}},
        operation=UPDATE,
        namespace="",
    )
    assert warnings[1:] == ["x (and 1 other pod): privileged"]


async def test_no_pods_are_checked_when_enforce_is_unchanged_relaxed_or_privileged(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    await namespace(objects, "apps")
    await store_pod(objects, privileged_pod(), namespace="apps")
    namespaces = kind(objects, "namespaces")

    async def change(old: dict[str, str], new: dict[str, str]) -> list[str]:
        return await admit(
            plugin,
            namespaces,
            {"metadata": {"name": "apps", "labels": new}},
            old={"metadata": {"name": "apps", "labels": old}},
            operation=UPDATE,
            namespace="",
        )

    assert await change(labels(enforce="baseline"), labels(enforce="baseline", warn="restricted")) == []
    assert await change(labels(enforce="restricted"), labels(enforce="baseline")) == []
    assert await change(labels(enforce="restricted"), labels(enforce="privileged")) == []
    changed_version = await change(
        labels(enforce="baseline"), labels(enforce="baseline", enforce_version="v1.30")
    )
    assert changed_version[1:] == ["priv: privileged"]


async def test_a_new_namespace_is_not_checked_for_pods(
    objects: ResourceStore, plugin: PodSecurityAdmission
) -> None:
    created = {"metadata": {"name": "fresh", "labels": labels(enforce="restricted")}}
    assert await admit(plugin, kind(objects, "namespaces"), created, namespace="") == []


async def test_the_existing_pods_check_is_bounded_in_count(objects: ResourceStore) -> None:
    plugin = PodSecurityAdmission(objects=objects, max_pods_to_check=2)
    await namespace(objects, "apps")
    for name in ("a", "b", "c"):
        await store_pod(objects, privileged_pod(name), namespace="apps")
    warnings = await plugin.existing_pod_warnings("apps", enforce=BASELINE)
    assert warnings == [
        "new PodSecurity enforce level only checked against the first 2 of 3 existing pods",
        'existing pods in namespace "apps" violate the new PodSecurity enforce level "baseline:latest"',
        "a (and 1 other pod): privileged",
    ]


async def test_the_existing_pods_check_is_bounded_in_time(objects: ResourceStore) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.6  # every reading is 0.6 s later: the second pod passes the 1 s deadline
        return now[0]

    plugin = PodSecurityAdmission(objects=objects, clock=clock)
    await namespace(objects, "apps")
    for name in ("a", "b", "c"):
        await store_pod(objects, privileged_pod(name), namespace="apps")
    warnings = await plugin.existing_pod_warnings("apps", enforce=BASELINE)
    assert warnings[0] == "new PodSecurity enforce level only checked against the first 2 of 3 existing pods"


async def test_one_pod_per_controller_is_checked_first(objects: ResourceStore) -> None:
    plugin = PodSecurityAdmission(objects=objects, max_pods_to_check=2)
    await namespace(objects, "apps")
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}
    for name in ("a", "b"):
        pod = plain_pod(name)
        pod["metadata"]["ownerReferences"] = [owner]
        await store_pod(objects, pod, namespace="apps")
    await store_pod(objects, privileged_pod("z-loner"), namespace="apps")
    warnings = await plugin.existing_pod_warnings("apps", enforce=BASELINE)
    assert warnings[-1] == "z-loner: privileged"  # checked although two replicas came first by name


# ---------------------------------------------------------------- exemptions


async def test_nothing_is_exempt_by_default(objects: ResourceStore, plugin: PodSecurityAdmission) -> None:
    await namespace(objects, "kube-system", enforce="baseline")
    admin = UserInfo(name="kubernetes-admin", groups=("system:masters",))
    pod = privileged_pod()
    pod["spec"]["runtimeClassName"] = "kata"
    with pytest.raises(StatusError):
        await admit(plugin, kind(objects, "pods"), pod, namespace="kube-system", user=admin)


async def test_configured_exemptions_skip_namespaces_users_and_runtime_classes(
    objects: ResourceStore,
) -> None:
    plugin = PodSecurityAdmission(
        objects=objects,
        exemptions=Exemptions(
            usernames=frozenset({"ci-bot"}),
            runtime_classes=frozenset({"kata"}),
            namespaces=frozenset({"infra"}),
        ),
    )
    pods = kind(objects, "pods")
    await namespace(objects, "infra", enforce="restricted")
    await namespace(objects, "apps", enforce="restricted")
    assert await admit(plugin, pods, privileged_pod(), namespace="infra") == []
    assert await admit(plugin, pods, privileged_pod(), namespace="apps", user=UserInfo(name="ci-bot")) == []
    sandboxed = privileged_pod()
    sandboxed["spec"]["runtimeClassName"] = "kata"
    assert await admit(plugin, pods, sandboxed, namespace="apps") == []
    with pytest.raises(StatusError):
        await admit(plugin, pods, privileged_pod(), namespace="apps")


async def test_labelling_an_exempt_namespace_warns_that_the_policy_is_ignored(objects: ResourceStore) -> None:
    plugin = PodSecurityAdmission(objects=objects, exemptions=Exemptions(namespaces=frozenset({"infra"})))
    created = {"metadata": {"name": "infra", "labels": labels(enforce="restricted", audit="baseline")}}
    warnings = await admit(plugin, kind(objects, "namespaces"), created, namespace="")
    assert warnings == [
        'namespace "infra" is exempt from Pod Security, and the policy '
        "(enforce=restricted:latest, audit=baseline:latest) will be ignored"  # warn is not labelled
    ]


def test_bad_bounds_are_refused_at_construction(objects: ResourceStore) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        PodSecurityAdmission(objects=objects, max_pods_to_check=0)


# ---------------------------------------------------------------- through HTTP


async def request_with_headers(
    server: RunningServer, method: str, path: str, body: Any, content_type: str = "application/json"
) -> tuple[int, Any, list[str]]:
    async with server.session.request(
        method, server.url + path, data=orjson.dumps(body), headers={"Content-Type": content_type}
    ) as response:
        return response.status, orjson.loads(await response.read()), response.headers.getall("Warning", [])


async def test_http_enforce_answers_403_with_a_status(apiserver: RunningServer) -> None:
    server = apiserver
    status, _ = await server.request(
        "POST",
        "/api/v1/namespaces",
        body={"metadata": {"name": "locked", "labels": labels(enforce="restricted")}},
    )
    assert status == 201
    status, body, warnings = await request_with_headers(
        server, "POST", "/api/v1/namespaces/locked/pods", privileged_pod()
    )
    assert (status, warnings) == (403, [])
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'pods "priv" is forbidden: violates PodSecurity "restricted:latest": {RESTRICTED_MESSAGE}',
        "reason": "Forbidden",
        "details": {"name": "priv", "kind": "pods"},
        "code": 403,
    }


async def test_http_warn_and_workloads_answer_warning_headers(
    apiserver: RunningServer,
) -> None:
    server = apiserver
    await server.request(
        "POST",
        "/api/v1/namespaces",
        body={"metadata": {"name": "watched", "labels": labels(warn="baseline")}},
    )
    status, _, warnings = await request_with_headers(
        server, "POST", "/api/v1/namespaces/watched/pods", privileged_pod()
    )
    expected = '299 - "would violate PodSecurity \\"baseline:latest\\": privileged (container \\"c\\" must not set securityContext.privileged=true)"'
    assert (status, warnings) == (201, [expected])
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template_of(privileged_pod())},
    }
    status, _, warnings = await request_with_headers(
        server, "POST", "/apis/apps/v1/namespaces/watched/deployments", deployment
    )
    assert (status, warnings) == (201, [expected])


async def test_http_namespace_labels_are_validated_and_a_label_change_warns(
    apiserver: RunningServer,
) -> None:
    server = apiserver
    status, body = await server.request(
        "POST", "/api/v1/namespaces", body={"metadata": {"name": "bad", "labels": labels(enforce="strict")}}
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'Namespace "bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted'
    )
    await server.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "apps"}})
    status, _ = await server.request("POST", "/api/v1/namespaces/apps/pods", body=privileged_pod())
    assert status == 201
    patch = {"metadata": {"labels": labels(enforce="baseline")}}
    status, _, warnings = await request_with_headers(
        server, "PATCH", "/api/v1/namespaces/apps", patch, content_type="application/merge-patch+json"
    )
    assert status == 200
    assert warnings == [
        '299 - "existing pods in namespace \\"apps\\" violate the new PodSecurity enforce level \\"baseline:latest\\""',
        '299 - "priv: privileged"',
    ]
