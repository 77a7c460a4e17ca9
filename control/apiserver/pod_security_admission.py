"""The PodSecurity admission plugin (upstream's k8s.io/pod-security-admission ``admission``
package, run in kube-apiserver as plugin/pkg/admission/security/podsecurity, on by default since
1.25): the Pod Security Standards (``pod_security_policy``) applied per namespace, chosen by the
namespace's ``pod-security.kubernetes.io/<mode>[-version]`` labels.

A validating plugin only, as upstream; what it does per kind (CREATE and UPDATE, never DELETE):

- **pods** (not the ``status``, ``binding``, ``eviction``, ``exec``, ``attach``, ``log``,
  ``portforward``, ``proxy`` subresources): ``enforce`` refuses a violating pod with 403
  ``pods "<name>" is forbidden: violates PodSecurity "<level>:<version>": <details>``; ``warn``
  adds ``would violate PodSecurity ...`` as a Warning header of an admitted pod; ``audit`` is
  written as a structured log line (kubelab has no audit log) carrying upstream's audit
  annotation ``pod-security.kubernetes.io/audit-violations``. An update is evaluated only when it
  changes what upstream's isSignificantPodUpdate looks at: the number of containers or init
  containers, a container's image, or an added or re-imaged ephemeral container.
- **workloads with a pod template** (ReplicationControllers, ReplicaSets, Deployments,
  StatefulSets, DaemonSets, Jobs, CronJobs; not their subresources): ``warn`` and ``audit``
  only — the pods they make are enforced when they are created.
- **namespaces** (not their subresources): a bad level or version label is 422 Invalid, on
  create, and on update unless the namespace had the very same errors before; an update that
  makes ``enforce`` stricter lists the namespace's existing pods and warns about those the new
  level would refuse (grouped by violation, at most 3000 pods, one pod per controller first, for
  at most one second — upstream's bounds).

Unlabelled namespaces are privileged in every mode (upstream's default configuration), so
kube-system and the rest of the lab run as before. The exemptions (usernames, runtime class
names, namespaces) of upstream's PodSecurityConfiguration are :class:`Exemptions`, empty by
default: nothing is exempt unless the server is built with some.

The labels of each admitted pod's or workload's namespace come from the API server's namespace
cache (``control.apiserver.namespace_cache``), as upstream reads its namespace informer, and from
the store when the cache does not know the namespace (just created or just written), as upstream
falls back to a GET.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from control.apiserver import errors
from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.conversion import decoded
from control.apiserver.limitrange_admission import aggregate
from control.apiserver.pod_security_policy import (
    AUDIT_LEVEL_LABEL,
    AUDIT_VERSION_LABEL,
    AUDIT_VIOLATIONS_ANNOTATION,
    ENFORCE_LEVEL_LABEL,
    ENFORCE_VERSION_LABEL,
    ENFORCED_POLICY_ANNOTATION,
    ERROR_ANNOTATION,
    WARN_LEVEL_LABEL,
    WARN_VERSION_LABEL,
    AggregateResult,
    LabelError,
    Level,
    LevelVersion,
    Policy,
    evaluate,
    go_quote,
    policy_from_labels,
)
from control.apiserver.resource_store import ResourceStore
from control.apiserver.warning import add_warning
from control.resources.registry import FieldError, ResourceType, field_error
from control.store import StoreError

log = logging.getLogger("kubelab.apiserver.podsecurity")

MAX_PODS_TO_CHECK = 3000  # upstream's defaultNamespaceMaxPodsToCheck
POD_CHECK_TIMEOUT_SECONDS = 1.0  # upstream's defaultNamespacePodCheckTimeout

# Pod subresources whose writes cannot change what the policy looks at (upstream's list).
IGNORED_POD_SUBRESOURCES = frozenset(
    {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
)

# (group, plural) -> the path of the pod template in the object.
POD_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True, kw_only=True)
class Exemptions:
    """Upstream's PodSecurityConfiguration ``exemptions``: requests by these users, pods of these
    runtime classes and everything in these namespaces are not evaluated."""

    usernames: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()


class PodSecurityAdmission:
    """Validates pods, pod-template workloads and namespace labels against the Pod Security Standards."""

    def __init__(
        self,
        *,
        objects: ResourceStore,
        exemptions: Exemptions = Exemptions(),
        max_pods_to_check: int = MAX_PODS_TO_CHECK,
        pod_check_timeout: float = POD_CHECK_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_pods_to_check < 1 or pod_check_timeout <= 0:
            raise ValueError("max_pods_to_check and pod_check_timeout must be positive")
        self.objects = objects
        self.exemptions = exemptions
        self.max_pods_to_check = max_pods_to_check
        self.pod_check_timeout = pod_check_timeout
        self.clock = clock
        self._namespaces = _lookup(objects, plural="namespaces")
        self._pods = _lookup(objects, plural="pods")

    async def validate(self, request: AdmissionRequest) -> None:
        if request.operation not in (CREATE, UPDATE) or request.obj is None:
            return
        kind = (request.rt.group, request.rt.plural)
        if kind == ("", "namespaces"):
            await self._validate_namespace(request)
        elif kind == ("", "pods"):
            await self._validate_pod(request)
        elif kind in POD_TEMPLATE_PATHS:
            await self._validate_workload(request, path=POD_TEMPLATE_PATHS[kind])

    # ------------------------------------------------------------- namespaces
    async def _validate_namespace(self, request: AdmissionRequest) -> None:
        if request.subresource or request.obj is None:
            return
        labels = _labels(request.obj)
        policy, label_errors = policy_from_labels(labels)
        if request.operation == CREATE:
            if label_errors:
                raise _invalid_labels(self._namespaces, request.name, label_errors)
            if request.name in self.exemptions.namespaces:
                add_warning(_exempt_namespace_warning(request.name, policy=policy, labels=labels))
            return
        old_policy, old_errors = policy_from_labels(_labels(request.old or {}))
        if label_errors and (not old_errors or label_errors != old_errors):
            raise _invalid_labels(self._namespaces, request.name, label_errors)
        new, old = policy.enforce, old_policy.enforce
        if new == old or new.level is Level.PRIVILEGED:
            return
        if new.version == old.version and new.level.strictness <= old.level.strictness:
            return  # relaxed at the same version: nothing can newly violate it
        if request.name in self.exemptions.namespaces:
            add_warning(_exempt_namespace_warning(request.name, policy=policy, labels=labels))
            return
        for warning in await self.existing_pod_warnings(request.name, enforce=new):
            add_warning(warning)

    async def existing_pod_warnings(self, namespace: str, *, enforce: LevelVersion) -> list[str]:
        """Upstream's EvaluatePodsInNamespace: which existing pods ``enforce`` would refuse."""
        deadline = self.clock() + self.pod_check_timeout
        try:
            listing = await self.objects.store.list(ResourceStore.prefix(self._pods, namespace=namespace))
        except StoreError as exc:
            log.warning("listing the pods of %s failed: %s", namespace, exc)
            return ["failed to list pods while checking new PodSecurity enforce level"]
        pods = self._prioritized([decoded(self._pods, kv) for kv in listing.items])
        total = len(pods)
        pods = pods[: self.max_pods_to_check]
        checked = len(pods)
        first_pod: dict[str, str] = {}  # violation -> the smallest pod name with it
        counts: dict[str, int] = {}
        for index, pod in enumerate(pods):
            result = evaluate(enforce, meta=pod.get("metadata") or {}, spec=pod.get("spec") or {})
            if not result.allowed:
                violation = result.forbidden_reason()
                name = str(pod["metadata"].get("name") or "")
                if violation not in first_pod or name < first_pod[violation]:
                    first_pod[violation] = name
                counts[violation] = counts.get(violation, 0) + 1
            if self.clock() >= deadline:
                checked = index + 1
                break
        warnings = []
        if checked < total:
            warnings.append(
                f"new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
            )
        if counts:
            warnings.append(
                f"existing pods in namespace {go_quote(namespace)} violate the new PodSecurity "
                f"enforce level {go_quote(str(enforce))}"
            )
        decorated = [
            _pods_with(violation, first=first_pod[violation], count=counts[violation]) for violation in counts
        ]
        return warnings + sorted(decorated)

    def _prioritized(self, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Pods of exempt runtime classes dropped; one pod per controller first, the rest after."""
        first: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []
        controllers: set[str] = set()
        for pod in pods:
            if self._exempt_runtime_class(pod.get("spec") or {}):
                continue
            controller = _controller_uid(pod)
            if controller is None or controller not in controllers:
                first.append(pod)
                if controller is not None:
                    controllers.add(controller)
            else:
                later.append(pod)
        return first + later

    # ------------------------------------------------------------- pods and workloads
    async def _validate_pod(self, request: AdmissionRequest) -> None:
        pod = request.obj
        if request.subresource in IGNORED_POD_SUBRESOURCES or pod is None:
            return
        if self._exempt_request(request):
            return
        if request.operation == UPDATE and not _significant_pod_update(pod, request.old or {}):
            return  # nothing the policy looks at changed
        namespace_labels = await self._namespace_labels(request.namespace)
        if namespace_labels is None:
            raise errors.internal(f"failed to lookup namespace {go_quote(request.namespace)}")
        policy, label_errors = policy_from_labels(namespace_labels)
        if not label_errors and policy.fully_privileged:
            return
        self._evaluate(
            request,
            policy=policy,
            label_errors=label_errors,
            meta=pod.get("metadata") or {},
            spec=pod.get("spec") or {},
            enforce=True,
        )

    async def _validate_workload(self, request: AdmissionRequest, *, path: Sequence[str]) -> None:
        if request.subresource or request.obj is None or self._exempt_request(request):
            return
        namespace_labels = await self._namespace_labels(request.namespace)
        if namespace_labels is None:
            self._audit(
                request,
                {
                    ERROR_ANNOTATION: f"failed to lookup namespace {go_quote(request.namespace)}: "
                    f"namespaces {go_quote(request.namespace)} not found"
                },
            )
            return
        policy, label_errors = policy_from_labels(namespace_labels)
        if (
            not label_errors
            and policy.warn.level is Level.PRIVILEGED
            and policy.audit.level is Level.PRIVILEGED
        ):
            return
        template = _at(request.obj, path)
        if template is None:
            return  # no pod template: nothing to evaluate
        self._evaluate(
            request,
            policy=policy,
            label_errors=label_errors,
            meta=_mapping(template.get("metadata")),
            spec=_mapping(template.get("spec")),
            enforce=False,
        )

    def _evaluate(
        self,
        request: AdmissionRequest,
        *,
        policy: Policy,
        label_errors: list[LabelError],
        meta: Mapping[str, Any],
        spec: Mapping[str, Any],
        enforce: bool,
    ) -> None:
        """Upstream's EvaluatePod: enforce (pods only), then audit, then warn unless refused."""
        if self._exempt_runtime_class(spec):
            return
        annotations: dict[str, str] = {}
        if label_errors:
            reasons = aggregate([_label_field_error(error).message() for error in label_errors])
            annotations[ERROR_ANNOTATION] = f"Failed to parse policy: {reasons}"
        results: dict[LevelVersion, AggregateResult] = {}

        def result(level_version: LevelVersion) -> AggregateResult:
            if level_version not in results:
                results[level_version] = evaluate(level_version, meta=meta, spec=spec)
            return results[level_version]

        refusal = None
        if enforce:
            annotations[ENFORCED_POLICY_ANNOTATION] = str(policy.enforce)
            enforced = result(policy.enforce)
            if not enforced.allowed:
                refusal = forbidden(
                    request,
                    f"violates PodSecurity {go_quote(str(policy.enforce))}: {enforced.forbidden_detail()}",
                )
        audited = result(policy.audit)
        if not audited.allowed:
            annotations[AUDIT_VIOLATIONS_ANNOTATION] = (
                f"would violate PodSecurity {go_quote(str(policy.audit))}: {audited.forbidden_detail()}"
            )
        if refusal is None:
            warned = result(policy.warn)
            if not warned.allowed:
                add_warning(
                    f"would violate PodSecurity {go_quote(str(policy.warn))}: {warned.forbidden_detail()}"
                )
        self._audit(request, annotations)
        if refusal is not None:
            raise refusal

    def _audit(self, request: AdmissionRequest, annotations: dict[str, str]) -> None:
        """kubelab has no audit log: a violation or a policy error is logged with upstream's
        audit annotation keys instead (the enforced policy alone is not worth a line per pod)."""
        if AUDIT_VIOLATIONS_ANNOTATION not in annotations and ERROR_ANNOTATION not in annotations:
            return
        log.info(
            "PodSecurity audit",
            extra={
                "user": request.user.name,
                "verb": request.operation.lower(),
                "objectRef": {
                    "resource": request.rt.plural,
                    "apiGroup": request.rt.group,
                    "namespace": request.namespace,
                    "name": request.name,
                },
                "annotations": annotations,
            },
        )

    # ------------------------------------------------------------- lookups
    def _exempt_request(self, request: AdmissionRequest) -> bool:
        return (
            request.namespace in self.exemptions.namespaces or request.user.name in self.exemptions.usernames
        )

    def _exempt_runtime_class(self, spec: Mapping[str, Any]) -> bool:
        runtime_class = spec.get("runtimeClassName")
        return bool(runtime_class) and runtime_class in self.exemptions.runtime_classes

    async def _namespace_labels(self, name: str) -> dict[str, str] | None:
        """The labels of namespace ``name`` (cached, else stored); None when it does not exist."""
        cache = self.objects.namespace_cache
        cached = cache.labels(name) if cache is not None else None
        if cached is not None:
            return cached
        kv = await self.objects.store.get(ResourceStore.key(self._namespaces, namespace="", name=name))
        return None if kv is None else _labels(decoded(self._namespaces, kv))


# ---------------------------------------------------------------- helpers


def _lookup(objects: ResourceStore, *, plural: str) -> ResourceType:
    rt = objects.registry.lookup(group="", version="v1", plural=plural)
    if rt is None:
        raise ValueError(f"the registry has no core/v1 {plural}")
    return rt


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = _mapping(_mapping(obj.get("metadata")).get("labels"))
    return {str(key): str(value) for key, value in labels.items()}


def _at(obj: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any] | None:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def _controller_uid(pod: Mapping[str, Any]) -> str | None:
    for reference in _mapping(pod.get("metadata")).get("ownerReferences") or ():
        if isinstance(reference, Mapping) and reference.get("controller") is True:
            return str(reference.get("uid") or "")
    return None


def _images(containers: Any) -> list[Any]:
    return [_mapping(container).get("image") for container in containers or ()]


def _significant_pod_update(pod: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Upstream's isSignificantPodUpdate: only a change of the containers' number or images
    (or a new or re-imaged ephemeral container) is re-evaluated; the rest of a pod's spec is
    immutable, and its metadata and status do not matter to the policy."""
    spec, old_spec = _mapping(pod.get("spec")), _mapping(old.get("spec"))
    for key in ("containers", "initContainers"):
        if _images(spec.get(key)) != _images(old_spec.get(key)):
            return True
    old_ephemeral = {
        _mapping(container).get("name"): _mapping(container).get("image")
        for container in old_spec.get("ephemeralContainers") or ()
    }
    for container in spec.get("ephemeralContainers") or ():
        name = _mapping(container).get("name")
        if name not in old_ephemeral or old_ephemeral[name] != _mapping(container).get("image"):
            return True
    return False


def _label_field_error(error: LabelError) -> FieldError:
    return field_error("FieldValueInvalid", error.field, error.detail, value=error.value)


def _invalid_labels(
    namespaces: ResourceType, name: str, label_errors: list[LabelError]
) -> errors.StatusError:
    return errors.invalid(namespaces, name, [_label_field_error(error) for error in label_errors])


def _pods_with(violation: str, *, first: str, count: int) -> str:
    """decoratePodWarnings: ``web (and 2 other pods): privileged, host namespaces``."""
    if count == 1:
        return f"{first}: {violation}"
    if count == 2:
        return f"{first} (and 1 other pod): {violation}"
    return f"{first} (and {count - 1} other pods): {violation}"


def _exempt_namespace_warning(namespace: str, *, policy: Policy, labels: Mapping[str, str]) -> str:
    """Upstream's exemptNamespaceWarning: the labelled non-privileged modes an exemption ignores."""
    if policy.fully_privileged:
        return ""
    modes = []
    for mode, level_version, level_label, version_label in (
        ("enforce", policy.enforce, ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL),
        ("audit", policy.audit, AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL),
        ("warn", policy.warn, WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
    ):
        if level_version.level is not Level.PRIVILEGED and (level_label in labels or version_label in labels):
            modes.append(f"{mode}={level_version}")
    return (
        f"namespace {go_quote(namespace)} is exempt from Pod Security, and the policy "
        f"({', '.join(modes)}) will be ignored"
    )
