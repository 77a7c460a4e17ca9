"""The Pod Security Standards as upstream's k8s.io/pod-security-admission ``policy`` and ``api``
packages (as of Kubernetes 1.33): levels, policy versions, the namespace labels that choose them,
and every baseline and restricted check — pure functions over a pod's metadata and spec (plain
JSON dicts), no HTTP and no store, so the admission plugin and its tests share one evaluator.

Messages are upstream's, word for word, because users (and ``kubectl``) see them verbatim:
``violates PodSecurity "restricted:latest": privileged (container "c" must not set
securityContext.privileged=true), ...``. A check answers a :class:`CheckResult` with a short
*reason* (``privileged``) and a *detail* (``container "c" must not ...``); the caller joins the
failures of one level in the order upstream's registry evaluates them: baseline checks first,
then restricted ones, each group sorted by check id.

Versions: a check has one implementation per Kubernetes minor version in which its rules
changed (``allowPrivilegeEscalation`` exempts Windows pods from v1.25, the safe sysctls grew in
v1.27, v1.29 and v1.32, ...). Evaluating ``v1.X`` picks, for each check, the newest
implementation not newer than v1.X (a check newer than v1.X does not apply); ``latest`` and any
version past the newest rule change (v1.32 for 1.33) evaluate the newest rules. Restricted checks
may replace baseline ones (``restrictedVolumes`` replaces ``hostPathVolumes``,
``capabilities_restricted`` replaces ``capabilities_baseline`` from v1.22,
``seccompProfile_restricted`` replaces ``seccompProfile_baseline`` from v1.19).

Upstream's relaxation for user-namespaced pods (``hostUsers: false``) sits behind the
UserNamespacesPodSecurityStandards feature gate, off by default in 1.33; kubelab has no feature
gates, so it is never applied. The 1.34 check of probes' and lifecycle hooks' ``host`` field is
not part of 1.33 and is not evaluated.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LABEL_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LEVEL_LABEL = LABEL_PREFIX + "enforce"
ENFORCE_VERSION_LABEL = LABEL_PREFIX + "enforce-version"
AUDIT_LEVEL_LABEL = LABEL_PREFIX + "audit"
AUDIT_VERSION_LABEL = LABEL_PREFIX + "audit-version"
WARN_LEVEL_LABEL = LABEL_PREFIX + "warn"
WARN_VERSION_LABEL = LABEL_PREFIX + "warn-version"

# Audit annotation keys (upstream prefixes them with LABEL_PREFIX).
AUDIT_VIOLATIONS_ANNOTATION = LABEL_PREFIX + "audit-violations"
ENFORCED_POLICY_ANNOTATION = LABEL_PREFIX + "enforce-policy"
ERROR_ANNOTATION = LABEL_PREFIX + "error"


class Level(enum.Enum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Level.PRIVILEGED: 0, Level.BASELINE: 1, Level.RESTRICTED: 2}


@dataclass(frozen=True)
class Version:
    """``v1.<minor>``, or ``latest`` (newer than every numbered version)."""

    minor: int = 0
    latest: bool = False

    def __str__(self) -> str:
        return "latest" if self.latest else f"v1.{self.minor}"

    def older_than(self, other: Version) -> bool:
        if self.latest:
            return False
        return other.latest or self.minor < other.minor


LATEST = Version(latest=True)

_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


@dataclass(frozen=True)
class LevelVersion:
    level: Level
    version: Version

    def __str__(self) -> str:
        return f"{self.level.value}:{self.version}"


PRIVILEGED_LATEST = LevelVersion(Level.PRIVILEGED, LATEST)


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = PRIVILEGED_LATEST
    audit: LevelVersion = PRIVILEGED_LATEST
    warn: LevelVersion = PRIVILEGED_LATEST

    @property
    def fully_privileged(self) -> bool:
        return all(lv.level is Level.PRIVILEGED for lv in (self.enforce, self.audit, self.warn))


@dataclass(frozen=True)
class LabelError:
    """One invalid label: ``metadata.labels[<label>]: Invalid value: "<value>": <detail>``."""

    label: str
    value: str
    detail: str

    @property
    def field(self) -> str:
        return f"metadata.labels[{self.label}]"


_LEVEL_DETAIL = "must be one of privileged, baseline, restricted"
_VERSION_DETAIL = 'must be "latest" or "v1.x"'


def parse_level(value: str) -> Level | None:
    try:
        return Level(value)
    except ValueError:
        return None


def parse_version(value: str) -> Version | None:
    if value == "latest":
        return LATEST
    match = _VERSION.match(value)
    return Version(minor=int(match.group(1))) if match else None


def policy_from_labels(labels: Mapping[str, str]) -> tuple[Policy, list[LabelError]]:
    """Upstream's PolicyToEvaluate with the default policy (privileged:latest for every mode).

    A policy is always returned, errors or not: a bad enforce level is evaluated as restricted, a
    bad audit or warn level as privileged (fail open), a bad version as latest. With an enforce
    level set and no warn level, warn follows enforce when enforce is stricter (and its version,
    unless a warn version is set)."""
    errors: list[LabelError] = []

    def mode(level_label: str, version_label: str, *, bad_level: Level) -> LevelVersion:
        level, version = Level.PRIVILEGED, LATEST
        if level_label in labels:
            parsed_level = parse_level(labels[level_label])
            if parsed_level is None:
                errors.append(LabelError(label=level_label, value=labels[level_label], detail=_LEVEL_DETAIL))
            level = parsed_level or bad_level
        if version_label in labels:
            parsed_version = parse_version(labels[version_label])
            if parsed_version is None:
                errors.append(
                    LabelError(label=version_label, value=labels[version_label], detail=_VERSION_DETAIL)
                )
            version = parsed_version or LATEST
        return LevelVersion(level, version)

    enforce = mode(ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL, bad_level=Level.RESTRICTED)
    audit = mode(AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL, bad_level=Level.PRIVILEGED)
    warn = mode(WARN_LEVEL_LABEL, WARN_VERSION_LABEL, bad_level=Level.PRIVILEGED)
    enforce_level_set = parse_level(labels.get(ENFORCE_LEVEL_LABEL, "")) is not None
    if (
        WARN_LEVEL_LABEL not in labels
        and enforce_level_set
        and enforce.level.strictness > warn.level.strictness
    ):
        warn = LevelVersion(enforce.level, warn.version if WARN_VERSION_LABEL in labels else enforce.version)
    return Policy(enforce=enforce, audit=audit, warn=warn), errors


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str = ""
    detail: str = ""


ALLOWED = CheckResult(allowed=True)


@dataclass(frozen=True)
class AggregateResult:
    """The failed checks of one evaluation, in evaluation order."""

    failures: tuple[CheckResult, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.failures

    def forbidden_reason(self) -> str:
        """``privileged, host namespaces`` (for the existing-pods warnings)."""
        return ", ".join(failure.reason or "unknown forbidden reason" for failure in self.failures)

    def forbidden_detail(self) -> str:
        """``privileged (container "c" must not ...), host namespaces (hostNetwork=true)``."""
        parts = []
        for failure in self.failures:
            reason = failure.reason or "unknown forbidden reason"
            parts.append(f"{reason} ({failure.detail})" if failure.detail else reason)
        return ", ".join(parts)


# ---------------------------------------------------------------- helpers

Pod = Mapping[str, Any]  # a pod's (or template's) spec
Meta = Mapping[str, Any]  # its metadata
CheckFn = Callable[[Meta, Pod], CheckResult]


def _quote_all(items: list[str]) -> str:
    """joinQuote: ``"a", "b"``."""
    return ", ".join(f'"{item}"' for item in items)


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _named(noun: str, names: list[str]) -> str:
    """``container "a"`` / ``containers "a", "b"``."""
    return f"{_plural(noun, noun + 's', len(names))} {_quote_all(names)}"


def go_quote(text: str) -> str:
    """Go's ``%q`` for the printable strings labels and annotations hold."""
    return json.dumps(text, ensure_ascii=False)


def _containers(spec: Pod) -> Iterator[Mapping[str, Any]]:
    """visitContainers: init containers, containers, then ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, Mapping):
                yield container


def _context(holder: Mapping[str, Any]) -> Mapping[str, Any] | None:
    context = holder.get("securityContext")
    return context if isinstance(context, Mapping) else None


def _sub(holder: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if holder is None:
        return None
    value = holder.get(key)
    return value if isinstance(value, Mapping) else None


def _windows(spec: Pod) -> bool:
    return (_sub(spec, "os") or {}).get("name") == "windows"


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "")


def _setters(*, pod: bool, containers: list[str]) -> str:
    """``pod and containers "a", "b"``: who set a forbidden value."""
    setters = ["pod"] if pod else []
    if containers:
        setters.append(_named("container", containers))
    return " and ".join(setters)


# ---------------------------------------------------------------- baseline checks


def privileged_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad = [_name(c) for c in _containers(spec) if (_context(c) or {}).get("privileged") is True]
    if bad:
        return CheckResult(
            allowed=False,
            reason="privileged",
            detail=f"{_named('container', bad)} must not set securityContext.privileged=true",
        )
    return ALLOWED


def host_namespaces_1_0(meta: Meta, spec: Pod) -> CheckResult:
    found = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    if found:
        return CheckResult(allowed=False, reason="host namespaces", detail=", ".join(found))
    return ALLOWED


def host_path_volumes_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad = [
        str(volume.get("name") or "")
        for volume in spec.get("volumes") or ()
        if isinstance(volume, Mapping) and volume.get("hostPath") is not None
    ]
    if bad:
        return CheckResult(allowed=False, reason="hostPath volumes", detail=_named("volume", bad))
    return ALLOWED


def host_ports_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad: list[str] = []
    ports: set[str] = set()
    for container in _containers(spec):
        used = [
            str(port.get("hostPort"))
            for port in container.get("ports") or ()
            if isinstance(port, Mapping) and port.get("hostPort")
        ]
        if used:
            bad.append(_name(container))
            ports.update(used)
    if bad:
        return CheckResult(
            allowed=False,
            reason="hostPort",
            detail=(
                f"{_named('container', bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}"
            ),
        )
    return ALLOWED


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def app_armor_profile_1_0(meta: Meta, spec: Pod) -> CheckResult:
    setters: list[str] = []
    bad_values: set[str] = set()
    profile = _sub(_context(spec), "appArmorProfile")
    if profile is not None and profile.get("type") not in ("RuntimeDefault", "Localhost"):
        setters.append("pod")
        bad_values.add(str(profile.get("type") or ""))
    bad_containers = []
    for container in _containers(spec):
        profile = _sub(_context(container), "appArmorProfile")
        if profile is not None and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            bad_containers.append(_name(container))
            bad_values.add(str(profile.get("type") or ""))
    if bad_containers:
        setters.append(_named("container", bad_containers))
    annotations = meta.get("annotations") or {}
    forbidden = sorted(
        f"{key}={go_quote(str(value))}"
        for key, value in annotations.items()
        if key.startswith(_APPARMOR_ANNOTATION_PREFIX)
        and not (not value or value == "runtime/default" or str(value).startswith("localhost/"))
    )
    values = sorted(bad_values)
    if forbidden:
        values += forbidden
        setters.append(_plural("annotation", "annotations", len(forbidden)))
    if setters:
        return CheckResult(
            allowed=False,
            reason=_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
            detail=f"{' and '.join(setters)} must not set AppArmor profile type to {_quote_all(values)}",
        )
    return ALLOWED


_DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _added_capabilities(container: Mapping[str, Any]) -> list[str] | None:
    capabilities = _sub(_context(container), "capabilities")
    if capabilities is None:
        return None
    return [str(capability) for capability in capabilities.get("add") or ()]


def capabilities_baseline_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad: list[str] = []
    extra: set[str] = set()
    for container in _containers(spec):
        outside = [cap for cap in _added_capabilities(container) or () if cap not in _DEFAULT_CAPABILITIES]
        if outside:
            bad.append(_name(container))
            extra.update(outside)
    if bad:
        return CheckResult(
            allowed=False,
            reason="non-default capabilities",
            detail=(
                f"{_named('container', bad)} must not include {_quote_all(sorted(extra))} "
                "in securityContext.capabilities.add"
            ),
        )
    return ALLOWED


def proc_mount_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad: list[str] = []
    types: set[str] = set()
    for container in _containers(spec):
        context = _context(container)
        if context is None or context.get("procMount") is None:
            continue
        if context["procMount"] != "Default":
            bad.append(_name(container))
            types.add(str(context["procMount"]))
    if bad:
        return CheckResult(
            allowed=False,
            reason="procMount",
            detail=(
                f"{_named('container', bad)} must not set securityContext.procMount to "
                f"{_quote_all(sorted(types))}"
            ),
        )
    return ALLOWED


_SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _se_linux_options(spec: Pod, allowed_types: frozenset[str]) -> CheckResult:
    bad_types: set[str] = set()
    set_user = set_role = False

    def valid(options: Mapping[str, Any]) -> bool:
        nonlocal set_user, set_role
        ok = True
        kind = str(options.get("type") or "")
        if kind not in allowed_types:
            ok = False
            bad_types.add(kind)
        if options.get("user"):
            set_user = True
            ok = False
        if options.get("role"):
            set_role = True
            ok = False
        return ok

    pod_options = _sub(_context(spec), "seLinuxOptions")
    pod_bad = pod_options is not None and not valid(pod_options)
    bad_containers = []
    for container in _containers(spec):
        options = _sub(_context(container), "seLinuxOptions")
        if options is not None and not valid(options):
            bad_containers.append(_name(container))
    if pod_bad or bad_containers:
        data = []
        if bad_types:
            types = sorted(bad_types)
            data.append(f"{_plural('type', 'types', len(types))} {_quote_all(types)}")
        if set_user:
            data.append("user may not be set")
        if set_role:
            data.append("role may not be set")
        return CheckResult(
            allowed=False,
            reason="seLinuxOptions",
            detail=(
                f"{_setters(pod=pod_bad, containers=bad_containers)} set forbidden "
                f"securityContext.seLinuxOptions: {'; '.join(data)}"
            ),
        )
    return ALLOWED


def se_linux_options_1_0(meta: Meta, spec: Pod) -> CheckResult:
    return _se_linux_options(spec, _SELINUX_TYPES_1_0)


def se_linux_options_1_31(meta: Meta, spec: Pod) -> CheckResult:
    return _se_linux_options(spec, _SELINUX_TYPES_1_31)


_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_VALID_SECCOMP = ("RuntimeDefault", "Localhost")


def _valid_seccomp_annotation(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(meta: Meta, spec: Pod) -> CheckResult:
    """Before v1.19 the seccomp profile was set by annotations."""
    annotations = meta.get("annotations") or {}
    forbidden: set[str] = set()
    keys = [_SECCOMP_POD_ANNOTATION]
    keys += [_SECCOMP_CONTAINER_ANNOTATION_PREFIX + _name(c) for c in _containers(spec)]
    for key in keys:
        if key in annotations and not _valid_seccomp_annotation(str(annotations[key])):
            forbidden.add(f"{key}={go_quote(str(annotations[key]))}")
    if forbidden:
        return CheckResult(
            allowed=False,
            reason="seccompProfile",
            detail=(
                f"forbidden {_plural('annotation', 'annotations', len(forbidden))} "
                f"{', '.join(sorted(forbidden))}"
            ),
        )
    return ALLOWED


def _bad_seccomp(*, spec: Pod, require: bool) -> CheckResult:
    """The baseline (``require=False``) and restricted (``require=True``) seccompProfile rules."""
    bad_values: set[str] = set()
    pod_profile = _sub(_context(spec), "seccompProfile")
    pod_bad = pod_profile is not None and pod_profile.get("type") not in _VALID_SECCOMP
    if pod_bad and pod_profile is not None:
        bad_values.add(str(pod_profile.get("type") or ""))
    pod_set = pod_profile is not None and not pod_bad
    explicit: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        profile = _sub(_context(container), "seccompProfile")
        if profile is not None:
            if profile.get("type") not in _VALID_SECCOMP:
                explicit.append(_name(container))
                bad_values.add(str(profile.get("type") or ""))
        elif not pod_set:
            implicit.append(_name(container))
    if pod_bad or explicit:
        return CheckResult(
            allowed=False,
            reason="seccompProfile",
            detail=(
                f"{_setters(pod=pod_bad, containers=explicit)} must not set "
                f"securityContext.seccompProfile.type to {_quote_all(sorted(bad_values))}"
            ),
        )
    if require and implicit:
        return CheckResult(
            allowed=False,
            reason="seccompProfile",
            detail=(
                f"pod or {_named('container', implicit)} must set securityContext.seccompProfile.type "
                'to "RuntimeDefault" or "Localhost"'
            ),
        )
    return ALLOWED


def seccomp_profile_baseline_1_19(meta: Meta, spec: Pod) -> CheckResult:
    return _bad_seccomp(spec=spec, require=False)


_SYSCTLS_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(spec: Pod, allowed: frozenset[str]) -> CheckResult:
    forbidden = [
        str(sysctl.get("name") or "")
        for sysctl in (_context(spec) or {}).get("sysctls") or ()
        if isinstance(sysctl, Mapping) and sysctl.get("name") not in allowed
    ]
    if forbidden:
        return CheckResult(allowed=False, reason="forbidden sysctls", detail=", ".join(forbidden))
    return ALLOWED


def sysctls_1_0(meta: Meta, spec: Pod) -> CheckResult:
    return _sysctls(spec, _SYSCTLS_1_0)


def sysctls_1_27(meta: Meta, spec: Pod) -> CheckResult:
    return _sysctls(spec, _SYSCTLS_1_27)


def sysctls_1_29(meta: Meta, spec: Pod) -> CheckResult:
    return _sysctls(spec, _SYSCTLS_1_29)


def sysctls_1_32(meta: Meta, spec: Pod) -> CheckResult:
    return _sysctls(spec, _SYSCTLS_1_32)


def windows_host_process_1_0(meta: Meta, spec: Pod) -> CheckResult:
    def host_process(holder: Mapping[str, Any]) -> bool:
        return (_sub(_context(holder), "windowsOptions") or {}).get("hostProcess") is True

    bad = [_name(c) for c in _containers(spec) if host_process(c)]
    pod_bad = host_process(spec)
    if pod_bad or bad:
        return CheckResult(
            allowed=False,
            reason="hostProcess",
            detail=(
                f"{_setters(pod=pod_bad, containers=bad)} must not set "
                "securityContext.windowsOptions.hostProcess=true"
            ),
        )
    return ALLOWED


# ---------------------------------------------------------------- restricted checks


def allow_privilege_escalation_1_8(meta: Meta, spec: Pod) -> CheckResult:
    bad = [
        _name(c)
        for c in _containers(spec)
        if (_context(c) or {}).get("allowPrivilegeEscalation") is not False
    ]
    if bad:
        return CheckResult(
            allowed=False,
            reason="allowPrivilegeEscalation != false",
            detail=f"{_named('container', bad)} must set securityContext.allowPrivilegeEscalation=false",
        )
    return ALLOWED


def allow_privilege_escalation_1_25(meta: Meta, spec: Pod) -> CheckResult:
    return ALLOWED if _windows(spec) else allow_privilege_escalation_1_8(meta, spec)


def capabilities_restricted_1_22(meta: Meta, spec: Pod) -> CheckResult:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for container in _containers(spec):
        capabilities = _sub(_context(container), "capabilities")
        if capabilities is None:
            missing_drop.append(_name(container))
            continue
        if "ALL" not in [str(cap) for cap in capabilities.get("drop") or ()]:
            missing_drop.append(_name(container))
        added = [str(cap) for cap in capabilities.get("add") or () if cap != "NET_BIND_SERVICE"]
        if added:
            adding.append(_name(container))
            forbidden.update(added)
    details = []
    if missing_drop:
        details.append(
            f'{_named("container", missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_named('container', adding)} must not include {_quote_all(sorted(forbidden))} "
            "in securityContext.capabilities.add"
        )
    if details:
        return CheckResult(allowed=False, reason="unrestricted capabilities", detail="; ".join(details))
    return ALLOWED


def capabilities_restricted_1_25(meta: Meta, spec: Pod) -> CheckResult:
    return ALLOWED if _windows(spec) else capabilities_restricted_1_22(meta, spec)


_ALLOWED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_RESTRICTED_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def restricted_volumes_1_0(meta: Meta, spec: Pod) -> CheckResult:
    bad: list[str] = []
    types: set[str] = set()
    for volume in spec.get("volumes") or ():
        if not isinstance(volume, Mapping):
            continue
        if any(volume.get(source) is not None for source in _ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(str(volume.get("name") or ""))
        found = next((s for s in _RESTRICTED_VOLUME_SOURCES if volume.get(s) is not None), "unknown")
        types.add(found)
    if bad:
        return CheckResult(
            allowed=False,
            reason="restricted volume types",
            detail=(
                f"{_named('volume', bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('restricted volume type', 'restricted volume types', len(types))} "
                f"{_quote_all(sorted(types))}"
            ),
        )
    return ALLOWED


def run_as_non_root_1_0(meta: Meta, spec: Pod) -> CheckResult:
    pod_value = (_context(spec) or {}).get("runAsNonRoot")
    pod_bad = pod_value is False
    pod_non_root = pod_value is True
    explicit: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        value = (_context(container) or {}).get("runAsNonRoot")
        if value is not None:
            if value is False:
                explicit.append(_name(container))
        elif not pod_non_root:
            implicit.append(_name(container))
    if pod_bad or explicit:
        return CheckResult(
            allowed=False,
            reason="runAsNonRoot != true",
            detail=f"{_setters(pod=pod_bad, containers=explicit)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return CheckResult(
            allowed=False,
            reason="runAsNonRoot != true",
            detail=f"pod or {_named('container', implicit)} must set securityContext.runAsNonRoot=true",
        )
    return ALLOWED


def _is_zero(value: Any) -> bool:
    return type(value) is int and value == 0


def run_as_user_1_23(meta: Meta, spec: Pod) -> CheckResult:
    pod_bad = _is_zero((_context(spec) or {}).get("runAsUser"))
    bad = [_name(c) for c in _containers(spec) if _is_zero((_context(c) or {}).get("runAsUser"))]
    if pod_bad or bad:
        return CheckResult(
            allowed=False,
            reason="runAsUser=0",
            detail=f"{_setters(pod=pod_bad, containers=bad)} must not set runAsUser=0",
        )
    return ALLOWED


def seccomp_profile_restricted_1_19(meta: Meta, spec: Pod) -> CheckResult:
    return _bad_seccomp(spec=spec, require=True)


def seccomp_profile_restricted_1_25(meta: Meta, spec: Pod) -> CheckResult:
    return ALLOWED if _windows(spec) else seccomp_profile_restricted_1_19(meta, spec)


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class VersionedCheck:
    minimum: int  # the minor version of v1.X from which this implementation applies
    check: CheckFn
    overrides: tuple[str, ...] = ()  # baseline check ids this restricted check replaces


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    versions: tuple[VersionedCheck, ...]

    def at(self, minor: int) -> VersionedCheck | None:
        """The implementation in force at v1.<minor>: the newest not newer than it."""
        chosen = None
        for versioned in self.versions:
            if versioned.minimum <= minor:
                chosen = versioned
        return chosen


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", Level.BASELINE, (VersionedCheck(0, app_armor_profile_1_0),)),
    Check("capabilities_baseline", Level.BASELINE, (VersionedCheck(0, capabilities_baseline_1_0),)),
    Check("hostNamespaces", Level.BASELINE, (VersionedCheck(0, host_namespaces_1_0),)),
    Check("hostPathVolumes", Level.BASELINE, (VersionedCheck(0, host_path_volumes_1_0),)),
    Check("hostPorts", Level.BASELINE, (VersionedCheck(0, host_ports_1_0),)),
    Check("privileged", Level.BASELINE, (VersionedCheck(0, privileged_1_0),)),
    Check("procMount", Level.BASELINE, (VersionedCheck(0, proc_mount_1_0),)),
    Check(
        "seLinuxOptions",
        Level.BASELINE,
        (VersionedCheck(0, se_linux_options_1_0), VersionedCheck(31, se_linux_options_1_31)),
    ),
    Check(
        "seccompProfile_baseline",
        Level.BASELINE,
        (VersionedCheck(0, seccomp_profile_baseline_1_0), VersionedCheck(19, seccomp_profile_baseline_1_19)),
    ),
    Check(
        "sysctls",
        Level.BASELINE,
        (
            VersionedCheck(0, sysctls_1_0),
            VersionedCheck(27, sysctls_1_27),
            VersionedCheck(29, sysctls_1_29),
            VersionedCheck(32, sysctls_1_32),
        ),
    ),
    Check("windowsHostProcess", Level.BASELINE, (VersionedCheck(0, windows_host_process_1_0),)),
    Check(
        "allowPrivilegeEscalation",
        Level.RESTRICTED,
        (
            VersionedCheck(8, allow_privilege_escalation_1_8),
            VersionedCheck(25, allow_privilege_escalation_1_25),
        ),
    ),
    Check(
        "capabilities_restricted",
        Level.RESTRICTED,
        (
            VersionedCheck(22, capabilities_restricted_1_22, overrides=("capabilities_baseline",)),
            VersionedCheck(25, capabilities_restricted_1_25, overrides=("capabilities_baseline",)),
        ),
    ),
    Check(
        "restrictedVolumes",
        Level.RESTRICTED,
        (VersionedCheck(0, restricted_volumes_1_0, overrides=("hostPathVolumes",)),),
    ),
    Check("runAsNonRoot", Level.RESTRICTED, (VersionedCheck(0, run_as_non_root_1_0),)),
    Check("runAsUser", Level.RESTRICTED, (VersionedCheck(23, run_as_user_1_23),)),
    Check(
        "seccompProfile_restricted",
        Level.RESTRICTED,
        (
            VersionedCheck(19, seccomp_profile_restricted_1_19, overrides=("seccompProfile_baseline",)),
            VersionedCheck(25, seccomp_profile_restricted_1_25, overrides=("seccompProfile_baseline",)),
        ),
    ),
)

# The newest minor version in which a rule changed: later versions, and latest, evaluate as it.
NEWEST_RULES = max(versioned.minimum for check in CHECKS for versioned in check.versions)


def _checks_at(level: Level, minor: int) -> tuple[CheckFn, ...]:
    """The checks of ``level`` at v1.<minor>, baseline ids first then restricted, each sorted."""
    baseline = sorted((c for c in CHECKS if c.level is Level.BASELINE), key=lambda c: c.id)
    restricted = sorted((c for c in CHECKS if c.level is Level.RESTRICTED), key=lambda c: c.id)
    chosen = [(c, c.at(minor)) for c in (baseline if level is Level.BASELINE else baseline + restricted)]
    overridden = {o for c, v in chosen if v is not None and c.level is Level.RESTRICTED for o in v.overrides}
    return tuple(v.check for c, v in chosen if v is not None and c.id not in overridden)


_CHECKS_BY_LEVEL_AND_MINOR = {
    (level, minor): _checks_at(level, minor)
    for level in (Level.BASELINE, Level.RESTRICTED)
    for minor in range(NEWEST_RULES + 1)
}


def evaluate(level_version: LevelVersion, *, meta: Meta, spec: Pod) -> AggregateResult:
    """Every check of the level at the version, on one pod's (or pod template's) metadata and spec."""
    if level_version.level is Level.PRIVILEGED:
        return AggregateResult()
    version = level_version.version
    minor = NEWEST_RULES if version.latest else min(version.minor, NEWEST_RULES)
    checks = _CHECKS_BY_LEVEL_AND_MINOR[(level_version.level, minor)]
    results = (check(meta, spec) for check in checks)
    return AggregateResult(failures=tuple(result for result in results if not result.allowed))
