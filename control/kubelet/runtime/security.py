"""A container's securityContext: what the kubelet asks for and how the process runtime applies it.

Two halves, split where upstream splits them at the CRI:

- *the kubelet's half* (``pkg/securitycontext`` and ``kuberuntime/security_context.go``):
  :func:`container_security` merges the pod's and the container's ``securityContext`` into a
  :class:`~control.kubelet.runtime.protocol.SecurityConfig` (CRI's LinuxContainerSecurityContext:
  the container's fields override the pod's; ``fsGroup`` joins the supplemental groups;
  ``allowPrivilegeEscalation: false`` means no_new_privs), :func:`verify_run_as_non_root` is
  ``verifyRunAsNonRoot`` with upstream's messages, :class:`VolumeOwnership` is
  ``SetVolumeOwnership`` (``fsGroup``, ``fsGroupChangePolicy``), and :func:`unapplied` lists
  the fields this runtime does not honour, for the pod's ``ProcessRuntimeLimits`` event;
- *the runtime's half* (containerd's CRI plugin and runc): :func:`resolve_credentials` turns a
  SecurityConfig into the process's :class:`Credentials` — uid, gid and groups looked up as
  containerd looks them up in the image's ``/etc/passwd`` and ``/etc/group`` (here: the
  host's, which is the containers' root file system), capabilities from runc's default set
  tweaked by ``add``/``drop`` as containerd tweaks them. :func:`apply_credentials` applies
  them in the container's process between fork and exec (bounding set, ``setgroups``,
  ``setresgid``, ``setresuid``, ``capset``, ``PR_SET_NO_NEW_PRIVS``), and
  :func:`setpriv_argv` gives ``exec`` and probes the same identity through util-linux's
  ``setpriv``.

Only a root node agent can change identities and capabilities: without root, only
no_new_privs is applied, and :func:`unapplied` says what is not. Credentials travel in the
container's ``config.json`` as a plain record (:meth:`Credentials.to_record`), so the shim,
forked from a process that never imported the kubelet, needs nothing else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.kubelet.runtime.protocol import ImageInfo, SecurityConfig

Obj = dict[str, Any]

# Linux capability numbers (include/uapi/linux/capability.h), by the names Kubernetes uses.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
_CAPABILITY_NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}
# containerd's default set for CRI containers (oci.populateDefaultUnixSpec), which runc applies.
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip
# Volume plugins whose SetUp applies fsGroup (their mounter's SupportsOwnershipManagement).
OWNERSHIP_PLUGINS = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")
_READ_ONLY_PLUGINS = ("configMap", "secret", "downwardAPI", "projected")  # their GetAttributes().ReadOnly
_OWNER_ONLY_PLUGINS = ("secret", "projected")  # files this kubelet writes 0600 (see the README)
_RW_MASK, _RO_MASK, _EXEC_MASK = 0o660, 0o440, 0o110

_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}


class SecurityContextError(Exception):
    """The container's securityContext forbids starting it (upstream: CreateContainerConfigError)."""


class CredentialsError(OSError):
    """Credentials could not be applied in the container's process; the message says which step."""


class VolumeOwnershipError(Exception):
    """fsGroup could not be applied to a volume (upstream fails the volume's SetUp)."""


# ---------------------------------------------------------------------------- the kubelet's half


def _context(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = (obj or {}).get("securityContext")
    return value if isinstance(value, Mapping) else {}


def _effective(pod_context: Mapping[str, Any], container_context: Mapping[str, Any], key: str) -> Any:
    """determineEffectiveSecurityContext: the container's value if set, else the pod's."""
    value = container_context.get(key)
    return pod_context.get(key) if value is None else value


def container_security(pod: Obj, container: Obj) -> SecurityConfig:
    """The CRI security context the kubelet sends for ``container`` of ``pod``."""
    pod_context = _context(pod.get("spec"))
    context = _context(container)
    groups = [int(gid) for gid in pod_context.get("supplementalGroups") or ()]
    if pod_context.get("fsGroup") is not None:
        groups.append(int(pod_context["fsGroup"]))
    run_as_user = _effective(pod_context, context, "runAsUser")
    run_as_group = _effective(pod_context, context, "runAsGroup")
    capabilities = context.get("capabilities") or {}
    return SecurityConfig(
        run_as_user=None if run_as_user is None else int(run_as_user),
        run_as_group=None if run_as_group is None else int(run_as_group),
        supplemental_groups=tuple(dict.fromkeys(groups)),
        supplemental_groups_policy=pod_context.get("supplementalGroupsPolicy") or "Merge",
        privileged=context.get("privileged") is True,
        capabilities_add=tuple(str(name) for name in capabilities.get("add") or ()),
        capabilities_drop=tuple(str(name) for name in capabilities.get("drop") or ()),
        no_new_privs=context.get("allowPrivilegeEscalation") is False,
        readonly_rootfs=context.get("readOnlyRootFilesystem") is True,
    )


def _format_pod(pod: Obj) -> str:
    """format.Pod: ``name_namespace(uid)``."""
    metadata = pod.get("metadata") or {}
    return f"{metadata.get('name', '')}_{metadata.get('namespace', '')}({metadata.get('uid', '')})"


def verify_run_as_non_root(pod: Obj, container: Obj, *, image: ImageInfo) -> None:
    """kuberuntime's verifyRunAsNonRoot: :class:`SecurityContextError` when runAsNonRoot is set
    and the container would run as root (or as a user that cannot be checked)."""
    pod_context, context = _context(pod.get("spec")), _context(container)
    if _effective(pod_context, context, "runAsNonRoot") is not True:
        return
    where = f'(pod: "{_format_pod(pod)}", container: {container.get("name", "")})'
    run_as_user = _effective(pod_context, context, "runAsUser")
    if run_as_user is not None:
        if int(run_as_user) == 0:
            raise SecurityContextError(f"container's runAsUser breaks non-root policy {where}")
        return
    if image.uid is not None and image.uid == 0:
        raise SecurityContextError(f"container has runAsNonRoot and image will run as root {where}")
    if image.uid is None and image.username:
        raise SecurityContextError(
            f"container has runAsNonRoot and image has non-numeric user ({image.username}), "
            f"cannot verify user is non-root {where}"
        )


def _all_containers(pod: Obj, *, ephemeral: bool = True) -> list[Obj]:
    spec = pod.get("spec") or {}
    found = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    return [*found, *(spec.get("ephemeralContainers") or ())] if ephemeral else found


def fs_user(pod: Obj) -> int | None:
    """volumeutil.FsUserFrom: the one non-root runAsUser every (init) container of the pod runs
    as, if any; ephemeral containers do not count, as upstream."""
    pod_context = _context(pod.get("spec"))
    users = {
        _effective(pod_context, _context(container), "runAsUser")
        for container in _all_containers(pod, ephemeral=False)
    }
    if len(users) != 1:
        return None
    user = users.pop()
    return int(user) if user is not None and int(user) != 0 else None


def unapplied(pod: Obj, *, root: bool, mount_namespaces: bool) -> list[str]:
    """The securityContext fields of ``pod`` this runtime does not apply, worded for an event.

    Without ``root`` (the node agent's uid 0), identities, capabilities and fsGroup cannot be
    applied; without ``mount_namespaces``, a read-only root cannot."""
    spec = pod.get("spec") or {}
    pod_context = _context(spec)
    found: list[str] = []

    def note(field: str, what: str) -> None:
        text = f"securityContext.{field} {what}"
        if text not in found:
            found.append(text)

    if pod_context.get("sysctls"):
        note("sysctls", "are not applied (containers share the host's kernel namespaces)")
    for owner in (pod_context, *(_context(container) for container in _all_containers(pod))):
        profile = owner.get("seccompProfile") or {}
        if profile.get("type") not in (None, "Unconfined"):
            note("seccompProfile", f"{profile['type']} is not applied (no seccomp filter is installed)")
        armor = owner.get("appArmorProfile") or {}
        if armor.get("type") not in (None, "Unconfined"):
            note("appArmorProfile", f"{armor['type']} is not applied (no AppArmor profile is loaded)")
        if owner.get("seLinuxOptions"):
            note("seLinuxOptions", "are not applied (no SELinux labels)")
        if owner.get("procMount") == "Unmasked":
            note("procMount", "Unmasked is not applied (/proc is the host's)")
        if owner.get("readOnlyRootFilesystem") is True and not mount_namespaces:
            note("readOnlyRootFilesystem", "is not applied (no mount namespaces: the root is the host's)")
        if root:
            continue
        for key in ("runAsUser", "runAsGroup", "supplementalGroups", "fsGroup"):
            if owner.get(key) not in (None, []):
                note(key, "is not applied (the node agent is not root): containers run as its user")
        if owner.get("privileged") is True or (owner.get("capabilities") or {}).get("add"):
            note("capabilities", "cannot be granted (the node agent is not root)")
    return found


@dataclass(frozen=True, slots=True)
class _Volume:
    name: str
    plugin: str
    path: Path


class VolumeOwnership:
    """SetVolumeOwnership for one pod: fsGroup on its volumes, re-applied when a volume's
    content is rewritten (a ConfigMap or Secret update swaps in a new ``..data`` directory).

    Also gives the owner-only files of secret and projected volumes to the pod's single
    non-root user (upstream's FsUser, which it applies to service account tokens): upstream
    writes those files ``0644`` on a tmpfs, this kubelet ``0600`` on the host's disk, so without
    this a pod running as a user could not read its own token."""

    def __init__(self, pod: Obj) -> None:
        pod_context = _context(pod.get("spec"))
        group = pod_context.get("fsGroup")
        self.fs_group = None if group is None else int(group)
        self.fs_user = fs_user(pod)
        self.on_root_mismatch = pod_context.get("fsGroupChangePolicy") == "OnRootMismatch"
        self._plugins = {
            volume.get("name", ""): next((key for key in OWNERSHIP_PLUGINS if key in volume), "")
            for volume in (pod.get("spec") or {}).get("volumes") or ()
        }
        self._applied: dict[str, str] = {}  # volume -> the content generation ownership was applied to

    @property
    def needed(self) -> bool:
        return self.fs_group is not None or self.fs_user is not None

    def apply(self, paths: Mapping[str, Path]) -> None:
        """Apply ownership to every volume that needs it (blocking: run it in a worker thread)."""
        if not self.needed or os.geteuid() != 0:
            return
        for name, path in paths.items():
            plugin = self._plugins.get(name, "")
            if not plugin:
                continue
            generation = _generation(path)
            if self._applied.get(name) == generation:
                continue
            volume = _Volume(name=name, plugin=plugin, path=path)
            try:
                self._apply_one(volume)
            except OSError as exc:
                raise VolumeOwnershipError(
                    f'MountVolume.SetUp failed for volume "{name}" : applying ownership: {exc}'
                ) from exc
            self._applied[name] = generation

    def _apply_one(self, volume: _Volume) -> None:
        if self.fs_user is not None and volume.plugin in _OWNER_ONLY_PLUGINS:
            for path in _walk(volume.path):
                if not stat.S_ISLNK(os.lstat(path).st_mode):
                    os.lchown(path, self.fs_user, -1)
        if self.fs_group is None:
            return
        read_only = volume.plugin in _READ_ONLY_PLUGINS
        if self.on_root_mismatch and not requires_permission_change(
            volume.path, fs_group=self.fs_group, read_only=read_only
        ):
            return
        mask = _RO_MASK if read_only else _RW_MASK
        for path in _walk(volume.path):
            info = os.lstat(path)
            os.lchown(path, -1, self.fs_group)
            if stat.S_ISLNK(info.st_mode):
                continue  # chmod would follow the link and override the target's mode
            extra = mask | stat.S_ISGID | _EXEC_MASK if stat.S_ISDIR(info.st_mode) else mask
            os.chmod(path, stat.S_IMODE(info.st_mode) | extra)


def requires_permission_change(root: Path, *, fs_group: int, read_only: bool) -> bool:
    """OnRootMismatch's test: the volume's root lacks the group, the permissions or setgid."""
    try:
        info = os.stat(root)
    except OSError:
        return True
    if info.st_gid != fs_group or not stat.S_ISDIR(info.st_mode):
        return True
    wanted = (_RO_MASK if read_only else _RW_MASK) | _EXEC_MASK
    return (stat.S_IMODE(info.st_mode) & wanted) != wanted or not info.st_mode & stat.S_ISGID


def _generation(path: Path) -> str:
    """What identifies the volume's current content: the AtomicWriter's ``..data`` target, if any."""
    try:
        return os.readlink(path / "..data")
    except OSError:
        return "-"


def _walk(root: Path) -> Iterable[str]:
    """Every path under ``root`` (itself included), not following symlinks, as filepath.Walk."""
    yield str(root)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            yield os.path.join(directory, name)


# ---------------------------------------------------------------------------- the runtime's half


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What a container's process runs with. ``capabilities`` None: leave them as they are
    (a privileged container, or a node agent without privileges to change them)."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    capabilities: tuple[int, ...] | None
    no_new_privs: bool
    change_identity: bool  # False when the node agent cannot (not root): keep its own

    def to_record(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "capabilities": None if self.capabilities is None else list(self.capabilities),
            "no_new_privs": self.no_new_privs,
            "change_identity": self.change_identity,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Credentials:
        capabilities = record.get("capabilities")
        return cls(
            uid=int(record["uid"]),
            gid=int(record["gid"]),
            groups=tuple(int(gid) for gid in record.get("groups") or ()),
            capabilities=None if capabilities is None else tuple(int(cap) for cap in capabilities),
            no_new_privs=bool(record.get("no_new_privs")),
            change_identity=bool(record.get("change_identity")),
        )


def _capability_number(name: str) -> int | None:
    """The number of a capability named as Kubernetes names it (``NET_ADMIN``) or as Linux does."""
    key = name.upper()
    return _CAPABILITY_NUMBERS.get(key, _CAPABILITY_NUMBERS.get(key.removeprefix("CAP_")))


def effective_capabilities(security: SecurityConfig, *, available: Iterable[int]) -> tuple[int, ...] | None:
    """containerd's WithCapabilities over runc's default set: ``add: [ALL]`` then ``drop: [ALL]``,
    then single adds, then single drops; never more than ``available`` (the node agent's
    bounding set). Unknown names are ignored, as runc ignores them. None for privileged."""
    if security.privileged:
        return None
    usable = set(available)
    adds = [name.upper() for name in security.capabilities_add]
    drops = [name.upper() for name in security.capabilities_drop]
    caps = {_CAPABILITY_NUMBERS[name] for name in DEFAULT_CAPABILITIES}
    if "ALL" in adds:
        caps = set(usable)
    if "ALL" in drops:
        caps = set()
    for name in adds:
        number = _capability_number(name)
        if name != "ALL" and number is not None:
            caps.add(number)
    for name in drops:
        number = _capability_number(name)
        if name != "ALL" and number is not None:
            caps.discard(number)
    return tuple(sorted(caps & usable))


def bounding_set() -> tuple[int, ...]:
    """The capabilities this process may still hold (its bounding set)."""
    libc = _libc()
    found = []
    for number in range(len(CAPABILITIES)):
        if libc.prctl(_PR_CAPBSET_READ, number, 0, 0, 0) == 1:
            found.append(number)
    return tuple(found)


def resolve_credentials(security: SecurityConfig | None) -> Credentials:
    """The credentials a container with ``security`` runs with on this node (runs in the node
    agent: reads the host's user and group databases, as containerd reads the image's)."""
    security = security or SecurityConfig()
    own_uid = os.geteuid()
    if own_uid != 0:
        return Credentials(
            uid=own_uid,
            gid=os.getegid(),
            groups=tuple(os.getgroups()),
            capabilities=None,
            no_new_privs=security.no_new_privs,
            change_identity=False,
        )
    uid = security.run_as_user if security.run_as_user is not None else 0
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        entry = None
    gid = security.run_as_group
    if gid is None:
        gid = entry.pw_gid if entry is not None else 0
    groups = {gid, *security.supplemental_groups}
    if security.supplemental_groups_policy != "Strict" and entry is not None:
        groups.update(group.gr_gid for group in grp.getgrall() if entry.pw_name in group.gr_mem)
    return Credentials(
        uid=uid,
        gid=gid,
        groups=tuple(sorted(groups)),
        capabilities=effective_capabilities(security, available=bounding_set()),
        no_new_privs=security.no_new_privs,
        change_identity=True,
    )


_libc_handle: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _libc_handle
    if _libc_handle is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc_handle = libc
    return _libc_handle


def _prctl(option: int, value: int, what: str) -> None:
    if _libc().prctl(option, value, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise CredentialsError(code, f"{what}: {os.strerror(code)}")


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _capset(capabilities: Iterable[int]) -> None:
    mask = 0
    for number in capabilities:
        mask |= 1 << number
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in range(2):
        word = (mask >> (32 * index)) & 0xFFFFFFFF
        data[index].effective = data[index].permitted = data[index].inheritable = word
    number = _SYS_CAPSET.get(os.uname().machine)
    if number is None:
        raise CredentialsError(errno.ENOSYS, f"capset: unsupported machine {os.uname().machine}")
    if _libc().syscall(number, ctypes.byref(header), data) != 0:
        code = ctypes.get_errno()
        raise CredentialsError(code, f"capset: {os.strerror(code)}")


def apply_credentials(credentials: Credentials) -> None:
    """Become the container's process: in the forked child, after its mounts, before exec.

    runc's order: the bounding set first (dropping needs CAP_SETPCAP), then groups, gid and
    uid (a non-root uid loses every effective and permitted capability here, as under runc a
    non-root container's process ends up with none), then the capability sets of a root
    process, and no_new_privs last."""
    if credentials.change_identity:
        if credentials.capabilities is not None:
            keep = set(credentials.capabilities)
            for number in bounding_set():
                if number not in keep:
                    _prctl(_PR_CAPBSET_DROP, number, f"dropping capability {CAPABILITIES[number]}")
        try:
            os.setgroups(list(credentials.groups))
            os.setresgid(credentials.gid, credentials.gid, credentials.gid)
            os.setresuid(credentials.uid, credentials.uid, credentials.uid)
        except OSError as exc:
            raise CredentialsError(
                exc.errno, f"setting uid {credentials.uid} gid {credentials.gid}: {exc.strerror}"
            ) from exc
        if credentials.capabilities is not None and credentials.uid == 0:
            _capset(credentials.capabilities)
    if credentials.no_new_privs:
        _prctl(_PR_SET_NO_NEW_PRIVS, 1, "setting no_new_privs")


def setpriv_argv(credentials: Credentials, *, setpriv: str) -> list[str]:
    """The ``setpriv`` (util-linux) prefix that gives an exec the container's credentials."""
    argv = [setpriv]
    if credentials.change_identity:
        argv += [f"--reuid={credentials.uid}", f"--regid={credentials.gid}"]
        argv += (
            [f"--groups={','.join(map(str, credentials.groups))}"]
            if credentials.groups
            else ["--clear-groups"]
        )
        if credentials.capabilities is not None:
            names = "".join(f",+{CAPABILITIES[number].lower()}" for number in credentials.capabilities)
            argv.append(f"--bounding-set=-all{names}")
            if credentials.uid == 0:
                argv.append(f"--inh-caps=-all{names}")
    if credentials.no_new_privs:
        argv.append("--no-new-privs")
    return [*argv, "--"]
