"""Pod volumes, materialized under the pod's sandbox directory and kept up to date.

Each volume lives in ``<sandbox>/volumes/kubernetes.io~<plugin>/<name>/`` (hostPath
volumes are the host path itself), and the runtime binds it at each container's
``mountPath``. Supported sources:

- ``emptyDir`` — a directory; with ``medium: Memory`` and as root, a tmpfs (``sizeLimit``
  as its size) mounted on the host until the pod goes;
- ``hostPath`` — with upstream's ``type`` checks (``DirectoryOrCreate``, ``Directory``,
  ``FileOrCreate``, ``File``, ``Socket``, ``CharDevice``, ``BlockDevice``);
- ``configMap``, ``secret``, ``downwardAPI`` and ``projected`` (``configMap``, ``secret``,
  ``downwardAPI``, ``serviceAccountToken``) — files written the way the kubelet's
  AtomicWriter does: a timestamped ``..<time>`` directory, a ``..data`` symlink swapped
  atomically to it, and one symlink per top-level entry pointing into ``..data``, so a
  reader never sees half an update. They are rewritten when the ConfigMap or Secret changes
  (through :mod:`control.kubelet.objectcache`), when the pod's labels or annotations
  change, and before a token expires. Files keep ``items[].mode``/``defaultMode`` — except
  Secret files, which are also restricted to their owner (``0644`` becomes ``0600``), as
  they sit on the host's disk when the node agent cannot mount. As root, ``secret`` and
  ``projected`` volumes are each a tmpfs, as upstream wraps them in a memory-backed
  ``emptyDir``: secrets and tokens stay off the disk, and writing them costs no disk
  metadata (a dozen inodes per pod start, expensive on some file systems).

``persistentVolumeClaim`` — the claim's bound PersistentVolume, read from the API server at each
set-up as upstream's volume manager does (claim, then volume: the Node authorizer lets a node
get both once one of its pods names the claim), mounted like a ``hostPath`` volume of its
``hostPath`` (``DirectoryOrCreate``, as the local-path provisioner writes it) or ``local`` path;
``readOnly: true`` on the source makes every mount of it read-only. A claim that is missing, being
deleted or not bound yet, or a volume not (yet) bound back to the claim, fails the mount with
upstream's "error processing PVC" reasons, and the pod waits and is retried.

``serviceAccountToken``: the token comes from the TokenRequest API
(``serviceaccounts/<name>/token``, bound to the pod, refreshed at 80% of its lifetime or
after 24 h, as upstream). A refused request (say, the pod's ServiceAccount does not exist
yet) fails the mount and is retried, as upstream. The ``kube-root-ca.crt`` ConfigMap falls
back to the kubelet's own CA bundle while the root CA publisher has not written it yet.

Any failure is a :class:`VolumeError` worded as upstream's FailedMount
(``MountVolume.SetUp failed for volume "config" : configmap "app" not found``); the pod
stays ``ContainerCreating`` and is retried.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import posixpath
import secrets
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from control.client import errors
from control.client.rest import Resource, RESTClient
from control.controllers.kinds import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES
from control.kubelet.env import EnvError, field_value, resource_value
from control.kubelet.objectcache import CONFIG_MAPS, SECRETS, ObjectSource, ObjectUnavailableError
from control.kubelet.runtime import mountns
from control.resources.validation import InvalidQuantityError, Quantity

Obj = dict[str, Any]
SERVICE_ACCOUNTS = Resource(group="", version="v1", plural="serviceaccounts", kind="ServiceAccount")
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
DEFAULT_MODE = 0o644
TOKEN_REFRESH_FRACTION = 0.8
TOKEN_MAX_AGE = 24 * 3600
# The plugins whose volumes are memory-backed (a tmpfs each, when the agent may mount).
MEMORY_BACKED_PLUGINS = ("empty-dir", "secret", "projected")


# The PersistentVolumeSource members (for naming one kubelab's kubelet cannot mount).
_PV_SOURCES = frozenset(
    (
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "cephfs",
        "cinder",
        "csi",
        "fc",
        "flexVolume",
        "flocker",
        "gcePersistentDisk",
        "glusterfs",
        "hostPath",
        "iscsi",
        "local",
        "nfs",
        "photonPersistentDisk",
        "portworxVolume",
        "quobyte",
        "rbd",
        "scaleIO",
        "storageos",
        "vsphereVolume",
    )
)


class VolumeError(Exception):
    """A volume cannot be set up; the message is what FailedMount reports."""


class ClaimNotReadyError(VolumeError):
    """A ``persistentVolumeClaim`` volume's claim or volume is not usable (yet): upstream's
    desired-state populator fails to process the volume, reported as such in FailedMount."""


Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


# ---------------------------------------------------------------------------- atomic writer


def _same_payload(directory: Path, payload: Payload) -> bool:
    found: dict[str, tuple[bytes, int]] = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            relative = str(path.relative_to(directory))
            found[relative] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found == payload


def write_atomically(target: Path, payload: Payload) -> bool:
    """Make ``target`` hold exactly ``payload`` (AtomicWriter's layout); False if unchanged.

    The first write into a new ``target`` (every pod start) skips what only an update needs —
    comparing with the old payload, the temporary link swapped over ``..data``, looking for
    stale entries — as nothing can be there yet; the layout is the same either way."""
    for relative in payload:
        parts = relative.split("/")
        if not relative or relative.startswith(("/", "..")) or ".." in parts:
            raise VolumeError(f"invalid path {relative!r}: must be relative and may not contain '..'")
    data_link = target / "..data"
    new_target = False
    try:
        current: str | None = os.readlink(data_link)
    except FileNotFoundError:
        current = None
        try:
            target.mkdir(parents=True)
            new_target = True
        except FileExistsError:
            pass
    except OSError:  # ..data is not a symlink: replace it
        current = None
    if current is not None and _same_payload(target / current, payload):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbelow(10**9))
    fresh = target / stamp
    fresh.mkdir(mode=0o755)
    for relative, (content, mode) in payload.items():
        path = fresh / relative
        if "/" in relative:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            os.fchmod(fd, mode)  # the umask may have taken bits away
    if new_target:
        os.symlink(stamp, data_link)
    else:
        temporary = target / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(stamp)
        os.rename(temporary, data_link)
    visible = {relative.split("/", 1)[0] for relative in payload}
    for name in visible:
        try:
            os.symlink(f"..data/{name}", target / name)
        except FileExistsError:
            if not (target / name).is_symlink():
                raise
    if not new_target:
        for entry in os.scandir(target):
            if entry.name.startswith(".."):
                continue
            if entry.name not in visible:
                os.unlink(entry.path)
    if current is not None and current != stamp:
        shutil.rmtree(target / current, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------- the manager


@dataclass
class _Token:
    token: bytes
    issued: float
    expires: float


@dataclass(kw_only=True)
class PodVolumes:
    """What setting up a pod's volumes produced."""

    paths: dict[str, Path] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)  # volumes every mount of which is read-only
    next_refresh: float | None = None  # epoch seconds when a token needs renewing


class VolumeManager:
    def __init__(
        self,
        *,
        client: RESTClient,
        objects: ObjectSource,
        ca_bundle: bytes | None,
        use_tmpfs: bool,
    ) -> None:
        self._client = client
        self._objects = objects
        self._ca_bundle = ca_bundle
        self._use_tmpfs = use_tmpfs
        self._tokens: dict[tuple[str, str, str, int], _Token] = {}

    @staticmethod
    def directory(sandbox: Path, plugin: str, name: str) -> Path:
        return sandbox / "volumes" / f"kubernetes.io~{plugin}" / name

    async def setup(
        self,
        pod: Obj,
        sandbox: Path,
        *,
        pod_ips: list[str],
        host_ips: list[str],
        node_allocatable: Mapping[str, Any],
    ) -> PodVolumes:
        """Create or refresh every volume of ``pod``; :class:`VolumeError` on the first failure."""
        result = PodVolumes()
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            name = volume.get("name", "")
            try:
                result.paths[name] = await self._setup_one(
                    pod,
                    volume,
                    sandbox,
                    result,
                    pod_ips=pod_ips,
                    host_ips=host_ips,
                    node_allocatable=node_allocatable,
                )
            except ClaimNotReadyError as exc:
                raise VolumeError(
                    f"Unable to attach or mount volumes: unmounted volumes=[{name}], unattached volumes=[], "
                    f"failed to process volumes=[{name}]: {exc}"
                ) from exc
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from exc
        return result

    async def _setup_one(
        self,
        pod: Obj,
        volume: Obj,
        sandbox: Path,
        result: PodVolumes,
        *,
        pod_ips: list[str],
        host_ips: list[str],
        node_allocatable: Mapping[str, Any],
    ) -> Path:
        name = volume["name"]
        if "hostPath" in volume:
            return _host_path(volume["hostPath"])
        if "persistentVolumeClaim" in volume:
            source = volume["persistentVolumeClaim"] or {}
            if source.get("readOnly"):
                result.read_only.add(name)
            return await self._claim_volume(pod, source.get("claimName") or "")
        if "emptyDir" in volume:
            return self._empty_dir(self.directory(sandbox, "empty-dir", name), volume["emptyDir"] or {})
        if "configMap" in volume:
            source = volume["configMap"]
            payload = await self._object_payload(
                pod, CONFIG_MAPS, source, default_mode=source.get("defaultMode")
            )
            return await self._write(self.directory(sandbox, "configmap", name), payload)
        if "secret" in volume:
            source = {**volume["secret"], "name": volume["secret"].get("secretName", "")}
            payload = await self._object_payload(pod, SECRETS, source, default_mode=source.get("defaultMode"))
            return await self._write(self.directory(sandbox, "secret", name), payload, memory_backed=True)
        if "downwardAPI" in volume:
            source = volume["downwardAPI"]
            payload = self._downward_payload(
                pod,
                source,
                default_mode=source.get("defaultMode"),
                pod_ips=pod_ips,
                host_ips=host_ips,
                node_allocatable=node_allocatable,
            )
            return await self._write(self.directory(sandbox, "downward-api", name), payload)
        if "projected" in volume:
            payload = await self._projected_payload(
                pod,
                volume["projected"] or {},
                result,
                pod_ips=pod_ips,
                host_ips=host_ips,
                node_allocatable=node_allocatable,
            )
            return await self._write(self.directory(sandbox, "projected", name), payload, memory_backed=True)
        kinds = sorted(key for key in volume if key != "name")
        raise VolumeError(f"volume type {', '.join(kinds) or '(none)'} is not supported by kubelab's kubelet")

    async def _claim_volume(self, pod: Obj, claim_name: str) -> Path:
        """The host directory of the PersistentVolume bound to ``claim_name`` (upstream's
        getPVCExtractPV and getPVSpec checks, in their words)."""
        namespace = pod["metadata"]["namespace"]
        where = f"error processing PVC {namespace}/{claim_name}"
        try:
            claim = await self._client.get(PERSISTENT_VOLUME_CLAIMS, claim_name, namespace=namespace)
        except errors.RequestError as exc:
            raise ClaimNotReadyError(
                f"{where}: failed to fetch PVC from API server: {_error_text(exc)}"
            ) from exc
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            raise ClaimNotReadyError(f"{where}: PVC is being deleted")
        volume_name = (claim.get("spec") or {}).get("volumeName") or ""
        if (claim.get("status") or {}).get("phase") != "Bound" or not volume_name:
            raise ClaimNotReadyError(f"{where}: PVC is not bound")
        try:
            volume = await self._client.get(PERSISTENT_VOLUMES, volume_name)
        except errors.RequestError as exc:
            raise ClaimNotReadyError(
                f'{where}: failed to fetch PV "{volume_name}" from API server: {_error_text(exc)}'
            ) from exc
        spec = volume.get("spec") or {}
        ref = spec.get("claimRef")
        claim_uid = claim["metadata"].get("uid", "")
        if not isinstance(ref, dict):
            raise ClaimNotReadyError(
                f"{where}: found PV object {volume_name} but it has a nil pv.Spec.ClaimRef "
                "indicating it is not yet bound to the claim"
            )
        if ref.get("uid") != claim_uid:
            raise ClaimNotReadyError(
                f"{where}: found PV object {volume_name} but its pv.Spec.ClaimRef.UID {ref.get('uid', '')} "
                f"does not point to claim.UID {claim_uid}"
            )
        if spec.get("volumeMode") == "Block":
            raise VolumeError(
                f"PersistentVolume {volume_name}: volumeMode Block is not supported by kubelab's kubelet"
            )
        if isinstance(spec.get("hostPath"), dict):
            return _host_path(spec["hostPath"])
        if isinstance(spec.get("local"), dict):
            return _host_path({"path": spec["local"].get("path", ""), "type": "Directory"})
        kinds = sorted(key for key, value in spec.items() if isinstance(value, dict) and key in _PV_SOURCES)
        raise VolumeError(
            f"PersistentVolume {volume_name}: volume type {', '.join(kinds) or '(none)'} "
            "is not supported by kubelab's kubelet"
        )

    async def _write(self, directory: Path, payload: Payload, *, memory_backed: bool = False) -> Path:
        """Write in a worker thread: a dozen file system calls per volume must not stall the
        node's event loop (every other pod's status and probes) on a slow disk."""
        await asyncio.to_thread(self._write_files, directory, payload, memory_backed)
        return directory

    def _write_files(self, directory: Path, payload: Payload, memory_backed: bool) -> None:
        if memory_backed and self._use_tmpfs:
            _mount_tmpfs(directory)
        write_atomically(directory, payload)

    def _empty_dir(self, directory: Path, source: Obj) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        if source.get("medium") == "Memory" and self._use_tmpfs and not os.path.ismount(directory):
            options = "mode=0777"
            if source.get("sizeLimit"):
                try:
                    size = int(Quantity.parse(source["sizeLimit"]).value)
                except InvalidQuantityError as exc:
                    raise VolumeError(f"invalid sizeLimit {source['sizeLimit']!r}: {exc}") from exc
                options += f",size={size}"
            _run_mount(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)])
        else:
            directory.chmod(0o777)
        return directory

    async def _object(self, pod: Obj, resource: Resource, name: str) -> Obj | None:
        metadata = pod["metadata"]
        try:
            return await self._objects.get(resource, metadata["namespace"], name, holder=metadata["uid"])
        except ObjectUnavailableError as exc:
            raise VolumeError(str(exc)) from exc

    async def _object_payload(
        self, pod: Obj, resource: Resource, source: Obj, *, default_mode: int | None
    ) -> Payload:
        """The files of a configMap or secret source (items selected, modes applied)."""
        name = source.get("name", "")
        kind = "configmap" if resource is CONFIG_MAPS else "secret"
        optional = bool(source.get("optional"))
        obj = await self._object(pod, resource, name)
        if obj is None and resource is CONFIG_MAPS and name == ROOT_CA_CONFIG_MAP and self._ca_bundle:
            obj = {"data": {"ca.crt": self._ca_bundle.decode()}}
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'{kind} "{name}" not found')
        values: dict[str, bytes] = {}
        if resource is CONFIG_MAPS:
            for key, value in (obj.get("data") or {}).items():
                values[key] = value.encode()
            for key, value in (obj.get("binaryData") or {}).items():
                values[key] = base64.b64decode(value)
        else:
            for key, value in (obj.get("data") or {}).items():
                values[key] = base64.b64decode(value)
        mode = DEFAULT_MODE if default_mode is None else int(default_mode)
        payload: Payload = {}
        items = source.get("items")
        if items:
            for item in items:
                key = item.get("key", "")
                if key not in values:
                    if optional:
                        continue
                    raise VolumeError(f"{kind} references non-existent config key: {key}")
                item_mode = int(item["mode"]) if item.get("mode") is not None else mode
                payload[item.get("path") or key] = (values[key], item_mode)
        else:
            payload = {key: (value, mode) for key, value in values.items()}
        if resource is SECRETS:
            payload = {path: (content, file_mode & 0o700) for path, (content, file_mode) in payload.items()}
        return payload

    def _downward_payload(
        self,
        pod: Obj,
        source: Obj,
        *,
        default_mode: int | None,
        pod_ips: list[str],
        host_ips: list[str],
        node_allocatable: Mapping[str, Any],
    ) -> Payload:
        mode = DEFAULT_MODE if default_mode is None else int(default_mode)
        payload: Payload = {}
        for item in source.get("items") or ():
            try:
                if item.get("fieldRef"):
                    value = field_value(
                        pod,
                        item["fieldRef"].get("fieldPath", ""),
                        pod_ips=pod_ips,
                        host_ips=host_ips,
                        allow_maps=True,
                    )
                elif item.get("resourceFieldRef"):
                    ref = item["resourceFieldRef"]
                    container = next(
                        (
                            c
                            for c in (pod["spec"].get("containers") or [])
                            + (pod["spec"].get("initContainers") or [])
                            if c.get("name") == ref.get("containerName")
                        ),
                        None,
                    )
                    if container is None:
                        raise VolumeError(f"container {ref.get('containerName')} not found")
                    value = resource_value(
                        container,
                        ref.get("resource", ""),
                        divisor=ref.get("divisor"),
                        node_allocatable=node_allocatable,
                    )
                else:
                    continue
            except EnvError as exc:
                raise VolumeError(str(exc)) from exc
            item_mode = int(item["mode"]) if item.get("mode") is not None else mode
            payload[item.get("path", "")] = (value.encode(), item_mode)
        return payload

    async def _projected_payload(
        self,
        pod: Obj,
        source: Obj,
        result: PodVolumes,
        *,
        pod_ips: list[str],
        host_ips: list[str],
        node_allocatable: Mapping[str, Any],
    ) -> Payload:
        default_mode = source.get("defaultMode")
        payload: Payload = {}
        for projection in source.get("sources") or ():
            if projection.get("configMap") is not None:
                payload.update(
                    await self._object_payload(
                        pod, CONFIG_MAPS, projection["configMap"], default_mode=default_mode
                    )
                )
            elif projection.get("secret") is not None:
                payload.update(
                    await self._object_payload(pod, SECRETS, projection["secret"], default_mode=default_mode)
                )
            elif projection.get("downwardAPI") is not None:
                payload.update(
                    self._downward_payload(
                        pod,
                        projection["downwardAPI"],
                        default_mode=default_mode,
                        pod_ips=pod_ips,
                        host_ips=host_ips,
                        node_allocatable=node_allocatable,
                    )
                )
            elif projection.get("serviceAccountToken") is not None:
                token = await self._token(pod, projection["serviceAccountToken"], result)
                payload[projection["serviceAccountToken"].get("path", "token")] = (token, 0o600)
            else:
                kinds = ", ".join(sorted(projection)) or "(none)"
                raise VolumeError(f"projected volume source {kinds} is not supported by kubelab's kubelet")
        return payload

    async def _token(self, pod: Obj, source: Obj, result: PodVolumes) -> bytes:
        metadata = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = source.get("audience") or ""
        expiration = int(source.get("expirationSeconds") or 3600)
        key = (metadata["uid"], account, audience, expiration)
        now = time.time()
        cached = self._tokens.get(key)
        if cached is not None:
            lifetime = cached.expires - cached.issued
            refresh_at = min(cached.issued + TOKEN_REFRESH_FRACTION * lifetime, cached.issued + TOKEN_MAX_AGE)
            if now < refresh_at:
                result.next_refresh = min(result.next_refresh or refresh_at, refresh_at)
                return cached.token
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": expiration,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                },
            },
        }
        try:
            answer = await self._client.create(
                SERVICE_ACCOUNTS, body, namespace=metadata["namespace"], name=account, subresource="token"
            )
        except errors.APIError as exc:
            raise VolumeError(f"failed to fetch token: {exc.message or exc}") from exc
        except errors.RequestError as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        status = answer.get("status") or {}
        token = str(status.get("token", "")).encode()
        expires = _parse_time(status.get("expirationTimestamp")) or now + expiration
        self._tokens[key] = _Token(token=token, issued=now, expires=expires)
        refresh_at = min(now + TOKEN_REFRESH_FRACTION * (expires - now), now + TOKEN_MAX_AGE)
        result.next_refresh = min(result.next_refresh or refresh_at, refresh_at)
        return token

    def unmount(self, sandbox: Path) -> None:
        """Unmount the pod's memory-backed volumes (their content is lost, as on a reboot)."""
        for plugin in MEMORY_BACKED_PLUGINS:
            _unmount_below(sandbox / "volumes" / f"kubernetes.io~{plugin}")

    async def teardown(self, pod_uid: str, sandbox: Path) -> None:
        """Unmount what was mounted for the pod and stop watching what it referenced."""
        self.unmount(sandbox)
        for key in [key for key in self._tokens if key[0] == pod_uid]:
            del self._tokens[key]
        await self._objects.release(pod_uid)


def _parse_time(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _mount_tmpfs(directory: Path) -> None:
    """Make ``directory`` a tmpfs (mode 0755, as the directory it covers) unless it is one."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        if os.path.ismount(directory):
            return
    try:
        mountns.mount("tmpfs", str(directory), "tmpfs", mountns.MS_NOSUID | mountns.MS_NODEV, "mode=0755")
    except OSError as exc:
        raise VolumeError(f"mounting a tmpfs at {directory} failed: {exc.strerror or exc}") from exc


def _unmount_below(directory: Path) -> None:
    """Detach (lazily, as ``umount --lazy``) whatever is mounted on ``directory``'s entries."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if os.path.ismount(entry.path):
            try:
                mountns.umount2(entry.path, mountns.MNT_DETACH)
            except OSError as exc:
                raise VolumeError(f"unmounting {entry.path} failed: {exc.strerror or exc}") from exc


def _run_mount(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise VolumeError(
            f"{' '.join(argv)} failed: {detail.decode(errors='replace').strip() or exc}"
        ) from exc


_HOST_PATH_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def _error_text(exc: errors.RequestError) -> str:
    """What the API server said (``persistentvolumeclaims "data" not found``), or the transport failure."""
    return exc.message if isinstance(exc, errors.APIError) else str(exc)


def _host_path(source: Obj) -> Path:
    path = source.get("path", "")
    kind = source.get("type") or ""
    if not posixpath.isabs(path):
        raise VolumeError(f"hostPath {path!r} must be an absolute path")
    if kind == "DirectoryOrCreate":
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise VolumeError(
                f"hostPath type check failed: {path} is not a directory ({exc.strerror})"
            ) from exc
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not os.path.exists(path):
            try:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            except OSError as exc:
                raise VolumeError(
                    f"hostPath type check failed: cannot create {path}: {exc.strerror}"
                ) from exc
        kind = "File"
    check = _HOST_PATH_CHECKS.get(kind)
    if check is not None:
        test, complaint = check
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError as exc:
            raise VolumeError(f"hostPath type check failed: {path} {complaint}") from exc
        if not test(mode):
            raise VolumeError(f"hostPath type check failed: {path} {complaint}")
    elif kind:
        raise VolumeError(f"hostPath type {kind!r} is not known")
    return Path(path)
