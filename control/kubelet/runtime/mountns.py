"""A container's own filesystem view: a private mount namespace with the pod's volumes
at their mountPath and the pod's ``/etc/resolv.conf``, ``/etc/hosts`` and ``/etc/hostname``.

This runs in the container's process after ``fork`` and before ``exec`` (see
``control.kubelet.runtime.shim``), as root, and is built from plain syscalls through
ctypes (Python 3.11 has no ``os.unshare``):

1. ``unshare(CLONE_NEWNS | CLONE_NEWUTS)``, the pod's hostname, and every mount made
   private so nothing propagates back to the host;
2. a tmpfs as the new root, holding a bind mount of each entry of the host's ``/`` —
   the container sees the host's programs and libraries (there are no image layers);
   ``/tmp`` is a fresh tmpfs of its own, as a container's writable layer would be;
3. each mount (volumes, resolv.conf, hosts, hostname) bound at its target. A target whose
   directory does not exist is created without touching the host: the nearest host
   directory above it is *shadowed* — replaced, in this namespace only, by a tmpfs holding
   bind mounts of all its entries — and the missing directories are made in that tmpfs.
   Inside a volume (or a tmpfs) missing directories are simply created, as runc does.
   Every target is made to exist before anything is bound, so that shadowing a directory
   never hides a mount already made below it: the termination-message file the kubelet
   binds at ``/dev/termination-log`` shadows the host's ``/dev``, and a volume at
   ``/dev/shm`` then still lands on top. A shadowed ``/dev`` holds what runc gives an
   unprivileged container (``null``, ``zero``, ``full``, ``random``, ``urandom``, ``tty``,
   ``ptmx`` -> ``pts/ptmx``, ``pts``, ``shm``, ``mqueue`` and the ``fd``/``stdin``/``stdout``/
   ``stderr`` links), not the host's disks and consoles; a privileged container gets every
   host entry, as under runc (binding ten entries rather than a hundred also keeps a
   container's start cheap);
4. with ``readOnlyRootFilesystem``, everything but the volumes made read-only: each bind of
   a host directory with ``mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)`` (so the host's
   submounts below it too; Linux 5.12 or later, else the container does not start), and
   the tmpfs mounts of our own (the root, ``/tmp``, shadows) once everything is bound in them.
   ``/dev``, ``/proc`` and ``/sys`` stay as they are: under runc they are not part of the
   root file system either. A container then fails to write ``/``, ``/tmp`` or ``/etc``,
   as under runc, while its volumes stay writable (unless mounted ``readOnly``);
5. ``pivot_root`` into the new root and detach the old one.

``nsenter --target <pid> --mount --uts`` then enters the same view for exec and probes.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import errno
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
_SYS_PIVOT_ROOT = 155  # x86_64; aarch64 uses 41
_SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
# runc's default devices (libcontainer/specconv AllowedDevices) and /dev symlinks.
_DEFAULT_DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue")
_DEFAULT_DEV_LINKS = (
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)
_KEEP_WRITABLE = ("/dev", "/proc", "/sys")  # not part of a container's root file system under runc
_MAX_SYMLINK_HOPS = 40

_HOST = "host"  # a bind of a host path: shadow it before creating anything inside
_WRITABLE = "writable"  # a tmpfs of ours or a volume: create inside freely


class MountError(OSError):
    """A mount step failed; the message says which source and target."""


@dataclass(frozen=True, kw_only=True)
class MountSpec:
    source: str  # host path
    target: str  # absolute path in the container
    read_only: bool = False


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.unshare.argtypes = [ctypes.c_int]
        libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        _libc = libc
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise MountError(code, f"{what}: {os.strerror(code)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _c().mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data is not None else None,
        ),
        f'error mounting "{source or fstype}" to rootfs at "{target}"',
    )


def unshare(flags: int) -> None:
    _check(_c().unshare(flags), "unshare")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_c().sethostname(raw, len(raw)), f"sethostname {name!r}")


def pivot_root(new_root: str, put_old: str) -> None:
    number = 41 if os.uname().machine == "aarch64" else _SYS_PIVOT_ROOT
    _check(_c().syscall(number, new_root.encode(), put_old.encode()), "pivot_root")


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def make_read_only_recursively(target: str) -> None:
    """``target``'s mount and every mount below it read-only (mount_setattr, Linux 5.12+)."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    result = _c().syscall(
        _SYS_MOUNT_SETATTR,
        ctypes.c_int(_AT_FDCWD),
        target.encode(),
        ctypes.c_uint(_AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result != 0:
        code = ctypes.get_errno()
        hint = " (readOnlyRootFilesystem needs Linux 5.12 or later)" if code == errno.ENOSYS else ""
        raise MountError(code, f'error making "{target}" read-only: {os.strerror(code)}{hint}')


def umount2(target: str, flags: int) -> None:
    _check(_c().umount2(target.encode(), flags), f"umount {target}")


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


class RootBuilder:
    """Builds the new root under ``rootfs`` (a host directory) and pivots into it."""

    def __init__(self, rootfs: str, *, read_only: bool = False, host_devices: bool = False) -> None:
        self.rootfs = rootfs.rstrip("/")
        self.read_only = read_only
        self.host_devices = host_devices  # a shadowed /dev keeps every host entry (privileged)
        self._kinds: dict[str, str] = {}  # container path -> _HOST or _WRITABLE
        self._tmpfs: list[str] = []  # our own tmpfs mounts (container paths), made read-only last

    def host(self, container_path: str) -> str:
        return self.rootfs + container_path

    def prepare(self, *, private_tmp: bool, keep_in_tmp: Sequence[str] = ()) -> None:
        """``keep_in_tmp``: host directories under /tmp that stay visible in the private
        /tmp (kubelab's own installation, when it lives there)."""
        mount("tmpfs", self.rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        self._tmpfs.append("/")
        self._kinds["/"] = _WRITABLE
        self._replicate("/")
        if private_tmp and os.path.isdir(self.host("/tmp")) and not os.path.islink(self.host("/tmp")):
            mount("tmpfs", self.host("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
            self._tmpfs.append("/tmp")
            self._kinds["/tmp"] = _WRITABLE
            for path in keep_in_tmp:
                if os.path.isdir(path):
                    target = self.ensure(path, is_dir=True)
                    mount(path, target, None, MS_BIND | MS_REC)
                    if self.read_only:
                        make_read_only_recursively(target)
                    self._kinds[path] = _HOST

    def _replicate(self, directory: str) -> None:
        """Fill the (empty, writable) ``directory`` of the new root with binds of the host's
        entries (for ``/dev`` of an unprivileged container: runc's default set only)."""
        only: frozenset[str] | None = None
        if directory == "/dev" and not self.host_devices:
            only = frozenset(_DEFAULT_DEVICES)
            for name, link in _DEFAULT_DEV_LINKS:
                os.symlink(link, self.host(posixpath.join(directory, name)))
        for entry in os.scandir(directory):
            if only is not None and entry.name not in only:
                continue
            container_path = posixpath.join(directory, entry.name)
            target = self.host(container_path)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
                continue
            if entry.is_dir(follow_symlinks=False):
                os.mkdir(target, 0o755)
                mount(entry.path, target, None, MS_BIND | MS_REC)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
                mount(entry.path, target, None, MS_BIND)
            if self._seals(container_path):
                make_read_only_recursively(target)
            self._kinds[container_path] = _HOST

    def _seals(self, container_path: str) -> bool:
        """Whether a read-only root makes ``container_path`` read-only (not /dev, /proc, /sys)."""
        return self.read_only and not any(
            container_path == kept or container_path.startswith(kept + "/") for kept in _KEEP_WRITABLE
        )

    def _kind_of(self, container_path: str) -> str:
        path = container_path
        while True:
            kind = self._kinds.get(path)
            if kind is not None:
                return kind
            if path == "/":
                return _WRITABLE
            path = posixpath.dirname(path)

    def _make_writable(self, directory: str) -> None:
        """Make it possible to create entries in ``directory`` without writing to the host."""
        if self._kind_of(directory) != _HOST:
            return
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        mount("tmpfs", self.host(directory), "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o}")
        self._tmpfs.append(directory)
        self._kinds[directory] = _WRITABLE
        self._replicate(directory)

    def ensure(self, container_path: str, *, is_dir: bool) -> str:
        """The new root's host path for ``container_path``, created (as a directory or an
        empty file) if missing. Symlinks on the way are followed inside the new root."""
        parts = collections.deque(_components(container_path))
        if not parts or ".." in parts:
            raise MountError(errno.EINVAL, f"invalid mount target {container_path!r}")
        resolved = "/"
        hops = 0
        while parts:
            part = parts.popleft()
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            on_host = self.host(candidate)
            if os.path.islink(on_host):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise MountError(errno.ELOOP, f"too many symlinks resolving {container_path!r}")
                link = os.readlink(on_host)
                if link.startswith("/"):
                    resolved = "/"
                parts.extendleft(reversed([p for p in link.split("/") if p and p != "."]))
                continue
            if not os.path.lexists(on_host):
                self._make_writable(resolved)
                if parts or is_dir:
                    os.mkdir(on_host, 0o755)
                else:
                    os.close(os.open(on_host, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            resolved = candidate
        return self.host(resolved)

    def bind(self, spec: MountSpec) -> None:
        is_dir = os.path.isdir(spec.source)
        target = self.ensure(spec.target, is_dir=is_dir)
        mount(spec.source, target, None, MS_BIND | MS_REC)
        if spec.read_only:
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        self._kinds[target[len(self.rootfs) :] or "/"] = _WRITABLE

    def seal(self) -> None:
        """With a read-only root, our tmpfs mounts become read-only once everything is in place
        (the host binds already are; the volumes keep their own mode)."""
        if not self.read_only:
            return
        for container_path in self._tmpfs:
            if self._seals(container_path):
                flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
                mount(None, self.host(container_path), None, flags)

    def pivot(self) -> None:
        os.chdir(self.rootfs)
        pivot_root(".", ".")
        umount2(".", MNT_DETACH)
        os.chdir("/")


def enter_container_root(
    *,
    rootfs: str,
    hostname: str,
    mounts: Sequence[MountSpec],
    private_tmp: bool = True,
    keep_in_tmp: Sequence[str] = (),
    read_only_root: bool = False,
    host_devices: bool = False,
) -> None:
    """Give the calling process its container filesystem view (see the module doc). Root only.
    ``host_devices``: a privileged container, which sees every entry of the host's ``/dev``."""
    unshare(CLONE_NEWNS | CLONE_NEWUTS)
    if hostname:
        sethostname(hostname)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    builder = RootBuilder(rootfs, read_only=read_only_root, host_devices=host_devices)
    builder.prepare(private_tmp=private_tmp, keep_in_tmp=keep_in_tmp)
    # Parents before children, so a volume inside another volume lands inside it.
    ordered = sorted(mounts, key=lambda spec: len(_components(spec.target)))
    for spec in ordered:
        builder.ensure(spec.target, is_dir=os.path.isdir(spec.source))
    for spec in ordered:
        builder.bind(spec)
    builder.seal()
    builder.pivot()
