"""The Pod Security Standards checks, one by one, with upstream's exact messages: each baseline and
restricted check refuses a violating pod and passes a conforming one; the levels combine the
checks in upstream's order; versions pick the rules of their time; the namespace labels parse as
upstream's PolicyToEvaluate."""

from __future__ import annotations

from typing import Any

import pytest

from control.apiserver import pod_security_policy as psp
from control.apiserver.pod_security_policy import (
    LATEST,
    CheckResult,
    LabelError,
    Level,
    LevelVersion,
    Policy,
    Version,
    evaluate,
    policy_from_labels,
)

BASELINE = LevelVersion(Level.BASELINE, LATEST)
RESTRICTED = LevelVersion(Level.RESTRICTED, LATEST)


def container(name: str = "c", **security: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "image": "busybox"}
    if security:
        found["securityContext"] = security
    return found


def spec(*containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"containers": list(containers) or [container()], **fields}


def restricted_container(name: str = "c", **security: Any) -> dict[str, Any]:
    """A container that passes every restricted check by itself."""
    conforming: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return container(name, **(conforming | security))


def refused(reason: str, detail: str) -> CheckResult:
    return CheckResult(allowed=False, reason=reason, detail=detail)


# (check, violating metadata, violating spec, expected result, a conforming spec)
CASES: list[tuple[Any, dict[str, Any], dict[str, Any], CheckResult, dict[str, Any]]] = [
    (
        psp.privileged_1_0,
        {},
        spec(container("a", privileged=True), container("b", privileged=True)),
        refused("privileged", 'containers "a", "b" must not set securityContext.privileged=true'),
        spec(container(privileged=False)),
    ),
    (
        psp.host_namespaces_1_0,
        {},
        spec(hostNetwork=True, hostPID=True, hostIPC=True),
        refused("host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true"),
        spec(hostNetwork=False),
    ),
    (
        psp.host_path_volumes_1_0,
        {},
        spec(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        refused("hostPath volumes", 'volume "root"'),
        spec(volumes=[{"name": "scratch", "emptyDir": {}}]),
    ),
    (
        psp.host_ports_1_0,
        {},
        spec(
            container("a")
            | {"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9, "hostPort": 80}]}
        ),
        refused("hostPort", 'container "a" uses hostPorts 80, 8080'),
        spec(container() | {"ports": [{"containerPort": 80, "hostPort": 0}]}),
    ),
    (
        psp.app_armor_profile_1_0,
        {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        spec(
            container(appArmorProfile={"type": "Unconfined"}),
            securityContext={"appArmorProfile": {"type": "Unconfined"}},
        ),
        refused(
            "forbidden AppArmor profiles",
            'pod and container "c" and annotation must not set AppArmor profile type to '
            '"Unconfined", "container.apparmor.security.beta.kubernetes.io/c="unconfined""',
        ),
        spec(container(appArmorProfile={"type": "Localhost", "localhostProfile": "p"})),
    ),
    (
        psp.capabilities_baseline_1_0,
        {},
        spec(container("a", capabilities={"add": ["NET_ADMIN", "CHOWN", "SYS_TIME"]})),
        refused(
            "non-default capabilities",
            'container "a" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add',
        ),
        spec(container(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"]})),
    ),
    (
        psp.proc_mount_1_0,
        {},
        spec(container(procMount="Unmasked")),
        refused("procMount", 'container "c" must not set securityContext.procMount to "Unmasked"'),
        spec(container(procMount="Default")),
    ),
    (
        psp.se_linux_options_1_31,
        {},
        spec(
            container("a", seLinuxOptions={"type": "spc_t"}),
            securityContext={"seLinuxOptions": {"user": "root", "role": "sysadm_r"}},
        ),
        refused(
            "seLinuxOptions",
            'pod and container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; '
            "user may not be set; role may not be set",
        ),
        spec(container(seLinuxOptions={"type": "container_engine_t", "level": "s0:c1"})),
    ),
    (
        psp.seccomp_profile_baseline_1_19,
        {},
        spec(container(seccompProfile={"type": "Unconfined"})),
        refused(
            "seccompProfile", 'container "c" must not set securityContext.seccompProfile.type to "Unconfined"'
        ),
        spec(container()),  # unset is fine at baseline
    ),
    (
        psp.sysctls_1_32,
        {},
        spec(
            securityContext={
                "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "vm.swappiness", "value": "1"}]
            }
        ),
        refused("forbidden sysctls", "kernel.msgmax, vm.swappiness"),
        spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}),
    ),
    (
        psp.windows_host_process_1_0,
        {},
        spec(
            container(windowsOptions={"hostProcess": True}),
            securityContext={"windowsOptions": {"hostProcess": True}},
        ),
        refused(
            "hostProcess",
            'pod and container "c" must not set securityContext.windowsOptions.hostProcess=true',
        ),
        spec(container(windowsOptions={"hostProcess": False})),
    ),
    (
        psp.allow_privilege_escalation_1_25,
        {},
        spec(container("a"), container("b", allowPrivilegeEscalation=True)),
        refused(
            "allowPrivilegeEscalation != false",
            'containers "a", "b" must set securityContext.allowPrivilegeEscalation=false',
        ),
        spec(container(allowPrivilegeEscalation=False)),
    ),
    (
        psp.capabilities_restricted_1_25,
        {},
        spec(container("a"), container("b", capabilities={"drop": ["ALL"], "add": ["NET_RAW", "CHOWN"]})),
        refused(
            "unrestricted capabilities",
            'container "a" must set securityContext.capabilities.drop=["ALL"]; '
            'container "b" must not include "CHOWN", "NET_RAW" in securityContext.capabilities.add',
        ),
        spec(container(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
    ),
    (
        psp.restricted_volumes_1_0,
        {},
        spec(
            volumes=[
                {"name": "a", "nfs": {"server": "s", "path": "/"}},
                {"name": "b", "hostPath": {"path": "/"}},
            ]
        ),
        refused("restricted volume types", 'volumes "a", "b" use restricted volume types "hostPath", "nfs"'),
        spec(
            volumes=[
                {"name": n, source: {}}
                for n, source in (
                    ("cm", "configMap"),
                    ("pvc", "persistentVolumeClaim"),
                    ("token", "projected"),
                )
            ]
        ),
    ),
    (
        psp.run_as_non_root_1_0,
        {},
        spec(container("a", runAsNonRoot=False), securityContext={"runAsNonRoot": False}),
        refused(
            "runAsNonRoot != true", 'pod and container "a" must not set securityContext.runAsNonRoot=false'
        ),
        spec(container(), securityContext={"runAsNonRoot": True}),
    ),
    (
        psp.run_as_user_1_23,
        {},
        spec(container("a", runAsUser=0), securityContext={"runAsUser": 0}),
        refused("runAsUser=0", 'pod and container "a" must not set runAsUser=0'),
        spec(container(runAsUser=1000)),
    ),
    (
        psp.seccomp_profile_restricted_1_25,
        {},
        spec(container("a"), container("b", seccompProfile={"type": "Localhost", "localhostProfile": "p"})),
        refused(
            "seccompProfile",
            'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
        ),
        spec(container(), securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
    ),
]


@pytest.mark.parametrize(
    ("check", "meta", "violating", "expected", "conforming"), CASES, ids=[case[0].__name__ for case in CASES]
)
def test_each_check_refuses_a_violating_pod_and_passes_a_conforming_one(
    check: Any,
    meta: dict[str, Any],
    violating: dict[str, Any],
    expected: CheckResult,
    conforming: dict[str, Any],
) -> None:
    assert check(meta, violating) == expected
    assert check({}, conforming).allowed


def test_a_single_container_is_named_in_the_singular() -> None:
    assert psp.privileged_1_0({}, spec(container("only", privileged=True))).detail == (
        'container "only" must not set securityContext.privileged=true'
    )
    assert psp.host_ports_1_0({}, spec(container("a") | {"ports": [{"hostPort": 80}]})).detail == (
        'container "a" uses hostPort 80'
    )


def test_every_kind_of_container_is_checked_init_first() -> None:
    pod = {
        "initContainers": [container("init", privileged=True)],
        "containers": [container("main", privileged=True)],
        "ephemeralContainers": [container("debug", privileged=True)],
    }
    assert psp.privileged_1_0({}, pod).detail == (
        'containers "init", "main", "debug" must not set securityContext.privileged=true'
    )


def test_explicitly_bad_values_are_reported_before_missing_ones() -> None:
    pod = spec(container("a", runAsNonRoot=False), container("b"))
    assert (
        psp.run_as_non_root_1_0({}, pod).detail
        == 'container "a" must not set securityContext.runAsNonRoot=false'
    )
    pod = spec(container("a", seccompProfile={"type": "Unconfined"}), container("b"))
    assert psp.seccomp_profile_restricted_1_25({}, pod).detail == (
        'container "a" must not set securityContext.seccompProfile.type to "Unconfined"'
    )


def test_container_level_settings_fill_in_for_an_unset_pod_level() -> None:
    pod = spec(container("a", runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"}))
    assert psp.run_as_non_root_1_0({}, pod).allowed
    assert psp.seccomp_profile_restricted_1_25({}, pod).allowed


def test_a_volume_of_an_unknown_type_is_restricted() -> None:
    result = psp.restricted_volumes_1_0({}, spec(volumes=[{"name": "odd", "somethingNew": {}}]))
    assert result.detail == 'volume "odd" uses restricted volume type "unknown"'


def test_apparmor_annotations_allow_runtime_default_and_localhost() -> None:
    meta = {
        "annotations": {
            "container.apparmor.security.beta.kubernetes.io/a": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/b": "localhost/mine",
            "container.apparmor.security.beta.kubernetes.io/c": "",
        }
    }
    assert psp.app_armor_profile_1_0(meta, spec()).allowed


def test_windows_pods_skip_the_linux_only_restricted_checks_from_v1_25() -> None:
    windows = spec(container(runAsNonRoot=True), os={"name": "windows"})
    assert evaluate(RESTRICTED, meta={}, spec=windows).allowed
    old = evaluate(LevelVersion(Level.RESTRICTED, Version(minor=24)), meta={}, spec=windows)
    assert [failure.reason for failure in old.failures] == [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "seccompProfile",
    ]


def test_the_restricted_level_reports_baseline_checks_first_then_restricted_ones() -> None:
    pod = spec(container(privileged=True), hostNetwork=True)
    result = evaluate(RESTRICTED, meta={}, spec=pod)
    assert result.forbidden_detail() == (
        'host namespaces (hostNetwork=true), privileged (container "c" must not set '
        'securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set '
        'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set '
        'securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set '
        'securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert result.forbidden_reason() == (
        "host namespaces, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, "
        "runAsNonRoot != true, seccompProfile"
    )


def test_restricted_checks_replace_their_baseline_counterparts() -> None:
    pod = spec(restricted_container(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}))
    pod["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    reasons = [failure.reason for failure in evaluate(RESTRICTED, meta={}, spec=pod).failures]
    assert reasons == ["unrestricted capabilities", "restricted volume types"]
    baseline = [failure.reason for failure in evaluate(BASELINE, meta={}, spec=pod).failures]
    assert baseline == ["non-default capabilities", "hostPath volumes"]


def test_baseline_ignores_what_only_restricted_forbids_and_privileged_allows_everything() -> None:
    pod = spec(container(), volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}])
    assert evaluate(BASELINE, meta={}, spec=pod).allowed
    assert not evaluate(RESTRICTED, meta={}, spec=pod).allowed
    wild = spec(container(privileged=True), hostPID=True)
    assert evaluate(LevelVersion(Level.PRIVILEGED, LATEST), meta={}, spec=wild).allowed


def test_a_conforming_pod_passes_restricted() -> None:
    assert evaluate(RESTRICTED, meta={}, spec=spec(restricted_container())).allowed


@pytest.mark.parametrize(
    ("minor", "allowed"),
    [(22, True), (23, False), (33, False)],
)
def test_run_as_user_zero_is_refused_from_v1_23(minor: int, allowed: bool) -> None:
    pod = spec(restricted_container(runAsUser=0))
    result = evaluate(LevelVersion(Level.RESTRICTED, Version(minor=minor)), meta={}, spec=pod)
    assert result.allowed is allowed


def test_the_safe_sysctls_grow_with_the_version() -> None:
    def allowed(name: str, minor: int) -> bool:
        pod = spec(securityContext={"sysctls": [{"name": name, "value": "1"}]})
        return evaluate(LevelVersion(Level.BASELINE, Version(minor=minor)), meta={}, spec=pod).allowed

    assert not allowed("net.ipv4.ip_local_reserved_ports", 26) and allowed(
        "net.ipv4.ip_local_reserved_ports", 27
    )
    assert not allowed("net.ipv4.tcp_keepalive_time", 28) and allowed("net.ipv4.tcp_keepalive_time", 29)
    assert not allowed("net.ipv4.tcp_wmem", 31) and allowed("net.ipv4.tcp_wmem", 32)


def test_container_engine_t_is_an_allowed_selinux_type_from_v1_31() -> None:
    pod = spec(container(seLinuxOptions={"type": "container_engine_t"}))
    assert not evaluate(LevelVersion(Level.BASELINE, Version(minor=30)), meta={}, spec=pod).allowed
    assert evaluate(LevelVersion(Level.BASELINE, Version(minor=31)), meta={}, spec=pod).allowed


def test_before_v1_19_seccomp_is_checked_in_annotations() -> None:
    meta = {
        "annotations": {
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/c": "docker/default",
        }
    }
    old = evaluate(
        LevelVersion(Level.RESTRICTED, Version(minor=18)), meta=meta, spec=spec(restricted_container())
    )
    assert old.forbidden_detail() == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")'
    )
    assert evaluate(RESTRICTED, meta=meta, spec=spec(restricted_container())).allowed


def test_versions_past_the_newest_rules_evaluate_as_latest() -> None:
    pod = spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]})
    assert psp.NEWEST_RULES == 32
    for version in (Version(minor=33), Version(minor=40), LATEST):
        assert evaluate(LevelVersion(Level.BASELINE, version), meta={}, spec=pod).allowed


def test_the_level_version_prints_as_upstream() -> None:
    assert str(RESTRICTED) == "restricted:latest"
    assert str(LevelVersion(Level.BASELINE, Version(minor=29))) == "baseline:v1.29"


# ---------------------------------------------------------------- labels


def test_unlabelled_namespaces_are_privileged_in_every_mode() -> None:
    policy, errors = policy_from_labels({})
    assert (policy, errors) == (Policy(), [])
    assert policy.fully_privileged


def test_labels_set_each_mode_and_version() -> None:
    policy, errors = policy_from_labels(
        {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.29",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "latest",
        }
    )
    assert errors == []
    assert policy == Policy(
        enforce=LevelVersion(Level.BASELINE, Version(minor=29)),
        audit=RESTRICTED,
        warn=RESTRICTED,
    )


def test_warn_follows_a_stricter_enforce_unless_warn_is_set() -> None:
    policy, _ = policy_from_labels(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
        }
    )
    assert policy.warn == LevelVersion(Level.RESTRICTED, Version(minor=30))
    policy, _ = policy_from_labels(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn-version": "v1.25",
        }
    )
    assert policy.warn == LevelVersion(Level.RESTRICTED, Version(minor=25))
    policy, _ = policy_from_labels(
        {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "baseline"}
    )
    assert policy.warn == BASELINE


def test_bad_labels_are_errors_and_evaluate_safely() -> None:
    policy, errors = policy_from_labels(
        {
            "pod-security.kubernetes.io/enforce": "strict",
            "pod-security.kubernetes.io/enforce-version": "1.25",
            "pod-security.kubernetes.io/audit": "none",
            "pod-security.kubernetes.io/warn-version": "v2.0",
        }
    )
    assert errors == [
        LabelError(
            "pod-security.kubernetes.io/enforce", "strict", "must be one of privileged, baseline, restricted"
        ),
        LabelError("pod-security.kubernetes.io/enforce-version", "1.25", 'must be "latest" or "v1.x"'),
        LabelError(
            "pod-security.kubernetes.io/audit", "none", "must be one of privileged, baseline, restricted"
        ),
        LabelError("pod-security.kubernetes.io/warn-version", "v2.0", 'must be "latest" or "v1.x"'),
    ]
    assert policy.enforce == RESTRICTED  # a bad enforce level fails closed
    assert policy.audit.level is Level.PRIVILEGED  # bad audit and warn levels fail open
    assert policy.warn == LevelVersion(Level.PRIVILEGED, LATEST)
    assert errors[0].field == "metadata.labels[pod-security.kubernetes.io/enforce]"


@pytest.mark.parametrize("value", ["v1.0", "v1.9", "v1.33", "v1.100", "latest"])
def test_good_versions_parse(value: str) -> None:
    assert psp.parse_version(value) is not None


@pytest.mark.parametrize("value", ["v1.01", "1.25", "v2.1", "v1.", "Latest", "v1.2.3", ""])
def test_bad_versions_do_not_parse(value: str) -> None:
    assert psp.parse_version(value) is None
