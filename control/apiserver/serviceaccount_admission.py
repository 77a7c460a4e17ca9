"""The ServiceAccount admission plugin (upstream's plugin/pkg/admission/serviceaccount): every
pod runs as a ServiceAccount and, unless it opts out, gets that account's token mounted.

On pod CREATE, ``mutate`` defaults ``spec.serviceAccountName`` to ``default``, copies the
account's ``imagePullSecrets`` when the pod names none, and — unless
``automountServiceAccountToken`` is false on the pod (which wins) or else on the account —
adds upstream's ``kube-api-access-<5 random>`` projected volume (a bound token of 3607 s at
``token``, ``ca.crt`` from the ``kube-root-ca.crt`` ConfigMap, the ``namespace`` from the
downward API) and mounts it read-only at ``/var/run/secrets/kubernetes.io/serviceaccount``
in every container and init container that mounts nothing there yet. Both steps refuse a
pod whose ServiceAccount does not exist (upstream's Admit ends by calling Validate), with
upstream's 403 (``pods "x" is forbidden: error
looking up service account ns/sa: serviceaccount "sa" not found``).

Mirror pods (annotation ``kubernetes.io/config.mirror``) are never changed — the kubelet
would see a spec that is not its own — and, as upstream, may not name a ServiceAccount or
reference a Secret (pod validation already refuses a token projection without an account).

Lab deviation: upstream retries a missing ``default`` ServiceAccount for about a second and
then refuses the pod. Here a pod naming a ``default`` account that does not exist (yet) is
admitted: the ServiceAccount controller creates it moments after its namespace, and until
then the kubelet's TokenRequest for the pod fails and is retried, so the pod starts as soon
as the account appears instead of its creator having to retry. The volume is mounted by the
pod's own ``automountServiceAccountToken`` alone in that case.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import CREATE, AdmissionRequest
from control.apiserver.resource_store import ResourceStore

DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607  # upstream's WarnOnlyBoundTokenExpirationSeconds
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphanumerics
_RANDOM = random.SystemRandom()


def token_volume_source() -> dict[str, Any]:
    """Upstream's TokenVolumeSource()."""
    return {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    }


class ServiceAccountAdmission:
    resources = frozenset({("", "pods")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        accounts = objects.registry.lookup(group="", version="v1", plural="serviceaccounts")
        if accounts is None:
            raise ValueError("the registry has no core/v1 serviceaccounts")
        self._accounts = accounts

    async def mutate(self, request: AdmissionRequest) -> None:
        pod = _pod_created(request)
        if pod is None or _is_mirror(pod):
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        account = await self._account(request.namespace, spec["serviceAccountName"])
        if account is None and spec["serviceAccountName"] != DEFAULT_SERVICE_ACCOUNT:
            raise _forbidden(request, _lookup_failure(request.namespace, spec["serviceAccountName"]))
        if _should_automount(pod, account):
            _mount_token(spec)
        if not spec.get("imagePullSecrets") and account is not None:
            pulls = [{"name": ref.get("name", "")} for ref in account.get("imagePullSecrets") or ()]
            if pulls:
                spec["imagePullSecrets"] = pulls

    async def validate(self, request: AdmissionRequest) -> None:
        pod = _pod_created(request)
        if pod is None:
            return
        spec = pod.get("spec") or {}
        if _is_mirror(pod):
            _validate_mirror(request, spec)
            return
        name = spec.get("serviceAccountName")
        if not name:
            raise _forbidden(
                request, f"no service account specified for pod {request.namespace}/{request.name}"
            )
        if name == DEFAULT_SERVICE_ACCOUNT:
            return  # see the module docstring: the controller creates it
        if await self._account(request.namespace, name) is None:
            raise _forbidden(request, _lookup_failure(request.namespace, name))

    async def _account(self, namespace: str, name: str) -> dict[str, Any] | None:
        kv = await self.objects.store.get(ResourceStore.key(self._accounts, namespace=namespace, name=name))
        return None if kv is None else orjson.loads(kv.value)


def _pod_created(request: AdmissionRequest) -> dict[str, Any] | None:
    rt = request.rt
    if rt.group or rt.plural != "pods" or request.subresource or request.operation != CREATE:
        return None
    return request.obj


def _is_mirror(pod: dict[str, Any]) -> bool:
    return MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def _should_automount(pod: dict[str, Any], account: dict[str, Any] | None) -> bool:
    """The pod's preference wins, then the account's; true by default."""
    preference = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if preference is None and account is not None:
        preference = account.get("automountServiceAccountToken")
    return preference is not False


def _mount_token(spec: dict[str, Any]) -> None:
    """Upstream's mountServiceAccountToken: reuse a kube-api-access-* volume the pod has, else
    name a new one; mount it wherever nothing sits at the token path yet."""
    volume_name = next(
        (
            volume.get("name")
            for volume in spec.get("volumes") or ()
            if str(volume.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)
        ),
        None,
    )
    has_volume = volume_name is not None
    if volume_name is None:
        volume_name = TOKEN_VOLUME_PREFIX + "".join(_RANDOM.choices(_NAME_ALPHABET, k=5))
    needs_volume = False
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or ():
            mounts = container.setdefault("volumeMounts", [])
            if any(mount.get("mountPath") == TOKEN_MOUNT_PATH for mount in mounts):
                continue
            mounts.append({"name": volume_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
            needs_volume = True
    if needs_volume and not has_volume:
        spec.setdefault("volumes", []).append({"name": volume_name, "projected": token_volume_source()})


def _validate_mirror(request: AdmissionRequest, spec: dict[str, Any]) -> None:
    if spec.get("serviceAccountName"):
        raise _forbidden(request, "a mirror pod may not reference service accounts")
    if _references_secrets(spec):
        raise _forbidden(request, "a mirror pod may not reference secrets")


def _references_secrets(spec: dict[str, Any]) -> bool:
    """Upstream's VisitPodSecretNames, for the sources kubelab's pods can carry."""
    if spec.get("imagePullSecrets"):
        return True
    for volume in spec.get("volumes") or ():
        if volume.get("secret") is not None:
            return True
        if any(
            source.get("secret") is not None
            for source in (volume.get("projected") or {}).get("sources") or ()
        ):
            return True
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or ():
            if any((source.get("secretRef") is not None) for source in container.get("envFrom") or ()):
                return True
            for env in container.get("env") or ():
                if ((env.get("valueFrom") or {}).get("secretKeyRef")) is not None:
                    return True
    return False


def _lookup_failure(namespace: str, name: str) -> str:
    return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'


def _forbidden(request: AdmissionRequest, why: str) -> errors.StatusError:
    """Upstream's admission.NewForbidden: ``pods "x" is forbidden: <why>``."""
    named = f' "{request.name}"' if request.name else ""
    return errors.forbidden(f"{request.rt.plural}{named} is forbidden: {why}")
