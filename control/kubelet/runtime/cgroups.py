"""Per-container cgroups: memory and CPU limits enforced, usage read, OOM kills detected.

Used only when the machine lets us: the manager is created by :meth:`CgroupManager.detect`,
which returns None when no usable hierarchy is writable (not root, read-only cgroupfs),
and the runtime then falls back to reading usage from the process tree and enforces no
limits (say so in the README and events).

Layout, mirroring the kubelet's cgroupfs driver but kept under a kubelab subtree:

- cgroup v2 (unified): ``/sys/fs/cgroup/kubelab.slice/kubelab-<node>.slice/pod<uid>/<container-id>``
  with ``memory`` and ``cpu`` enabled down the tree; ``memory.max``, ``cpu.max``,
  ``cpu.weight`` and ``memory.oom.group=1`` on the leaf; OOM kills counted in
  ``memory.events``; usage from ``memory.current``/``memory.stat``/``cpu.stat``.
- cgroup v1: under the agent's *own* cgroup of each controller (so limits set on the
  agent still bound its containers) in ``kubelab/<node>/pod<uid>/<container-id>`` of the
  ``memory``, ``cpu`` and ``cpuacct`` hierarchies; ``memory.limit_in_bytes``,
  ``cpu.cfs_quota_us``/``cpu.cfs_period_us``, ``cpu.shares``; OOM kills counted in
  ``memory.oom_control``; usage from ``memory.usage_in_bytes``/``memory.stat``/``cpuacct.usage``.

The container process joins its cgroup itself, between fork and exec (the shim writes its
pid to each ``cgroup.procs`` file listed in :attr:`ContainerCgroup.procs_files`), so no
process of the container ever runs outside it. Working set is computed as cAdvisor does:
usage minus inactive file pages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000
_V1_CONTROLLERS = ("memory", "cpu", "cpuacct")


class CgroupError(Exception):
    """A cgroup could not be created or configured."""


@dataclass(frozen=True, kw_only=True)
class ContainerCgroup:
    """The cgroup directories of one container (one per v1 hierarchy, one in v2)."""

    version: int
    memory_dir: Path
    cpu_dir: Path
    cpuacct_dir: Path

    @property
    def directories(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys((self.memory_dir, self.cpu_dir, self.cpuacct_dir)))

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(directory / "cgroup.procs" for directory in self.directories)

    @property
    def oom_file(self) -> Path:
        return self.memory_dir / ("memory.events" if self.version == 2 else "memory.oom_control")

    def to_record(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "memory": str(self.memory_dir),
            "cpu": str(self.cpu_dir),
            "cpuacct": str(self.cpuacct_dir),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ContainerCgroup:
        return cls(
            version=int(record["version"]),
            memory_dir=Path(record["memory"]),
            cpu_dir=Path(record["cpu"]),
            cpuacct_dir=Path(record["cpuacct"]),
        )


@dataclass(frozen=True, slots=True)
class CgroupUsage:
    cpu_nanoseconds: int
    memory_usage_bytes: int
    memory_working_set_bytes: int
    memory_rss_bytes: int
    processes: int


def read_oom_kills(oom_file: Path) -> int:
    """The ``oom_kill`` counter of ``memory.events`` (v2) or ``memory.oom_control`` (v1)."""
    try:
        text = oom_file.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def _stat_file(path: Path) -> dict[str, int]:
    values = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    except OSError:
        pass
    return values


def _read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from exc


def _procs(directory: Path) -> list[int]:
    try:
        return [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
    except OSError:
        return []


class CgroupManager:
    """Creates, reads and removes container cgroups below one node's subtree."""

    def __init__(self, *, version: int, bases: dict[str, Path]) -> None:
        self.version = version
        self._bases = bases  # controller -> node subtree directory ("unified" for v2)

    # ------------------------------------------------------------------ detection

    @classmethod
    def detect(
        cls, *, node_name: str, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")
    ) -> CgroupManager | None:
        """The manager for this machine, or None when no cgroup hierarchy can be used."""
        try:
            if (root / "cgroup.controllers").exists():
                return cls._detect_v2(node_name=node_name, root=root)
            return cls._detect_v1(node_name=node_name, proc=proc)
        except (OSError, CgroupError):
            return None

    @classmethod
    def _detect_v2(cls, *, node_name: str, root: Path) -> CgroupManager | None:
        available = set((root / "cgroup.controllers").read_text().split())
        if not {"memory", "cpu"} <= available:
            return None
        base = root / "kubelab.slice" / f"kubelab-{node_name}.slice"
        base.mkdir(parents=True, exist_ok=True)
        for directory in (root, root / "kubelab.slice", base):
            _enable_controllers(directory)
        return cls(version=2, bases={"unified": base})

    @classmethod
    def _detect_v1(cls, *, node_name: str, proc: Path) -> CgroupManager | None:
        mounts = _v1_mounts(proc / "self" / "mountinfo")
        own = _own_cgroups(proc / "self" / "cgroup")
        bases = {}
        for controller in _V1_CONTROLLERS:
            mount = mounts.get(controller)
            if mount is None:
                return None
            relative = own.get(controller, "/").lstrip("/")
            base = mount / relative / "kubelab" / node_name
            base.mkdir(parents=True, exist_ok=True)
            bases[controller] = base
        return cls(version=1, bases=bases)

    def describe(self) -> str:
        if self.version == 2:
            return f"cgroup v2 under {self._bases['unified']}"
        return "cgroup v1 (" + ", ".join(f"{name} under {path}" for name, path in self._bases.items()) + ")"

    # ------------------------------------------------------------------ containers

    def create(
        self,
        *,
        pod_uid: str,
        container_id: str,
        memory_limit_bytes: int | None,
        cpu_limit_millis: int | None,
        cpu_request_millis: int | None = None,
    ) -> ContainerCgroup:
        if self.version == 2:
            pod_dir = self._bases["unified"] / f"pod{pod_uid}"
            pod_dir.mkdir(exist_ok=True)
            _enable_controllers(pod_dir)
            leaf = pod_dir / container_id
            leaf.mkdir(exist_ok=True)
            cgroup = ContainerCgroup(version=2, memory_dir=leaf, cpu_dir=leaf, cpuacct_dir=leaf)
            if memory_limit_bytes is not None:
                _write(leaf / "memory.max", str(memory_limit_bytes))
                with contextlib.suppress(CgroupError):
                    _write(leaf / "memory.oom.group", "1")
            if cpu_limit_millis is not None:
                quota = max(MIN_CFS_QUOTA_US, cpu_limit_millis * CFS_PERIOD_US // 1000)
                _write(leaf / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            if cpu_request_millis:
                # cgroup v1 shares (milliCPU * 1024 / 1000) mapped to v2 weight, as runc does.
                shares = max(2, cpu_request_millis * 1024 // 1000)
                weight = 1 + ((shares - 2) * 9999) // 262142
                _write(leaf / "cpu.weight", str(weight))
            return cgroup
        dirs = {}
        for controller, base in self._bases.items():
            pod_dir = base / f"pod{pod_uid}"
            pod_dir.mkdir(exist_ok=True)  # the base exists (detect made it): no parents to try
            leaf = pod_dir / container_id
            leaf.mkdir(exist_ok=True)
            dirs[controller] = leaf
        cgroup = ContainerCgroup(
            version=1, memory_dir=dirs["memory"], cpu_dir=dirs["cpu"], cpuacct_dir=dirs["cpuacct"]
        )
        if memory_limit_bytes is not None:
            _write(cgroup.memory_dir / "memory.limit_in_bytes", str(memory_limit_bytes))
        if cpu_limit_millis is not None:
            quota = max(MIN_CFS_QUOTA_US, cpu_limit_millis * CFS_PERIOD_US // 1000)
            _write(cgroup.cpu_dir / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cgroup.cpu_dir / "cpu.cfs_quota_us", str(quota))
        if cpu_request_millis:
            _write(cgroup.cpu_dir / "cpu.shares", str(max(2, cpu_request_millis * 1024 // 1000)))
        return cgroup

    def pids(self, cgroup: ContainerCgroup) -> list[int]:
        seen: dict[int, None] = {}
        for directory in cgroup.directories:
            for pid in _procs(directory):
                seen[pid] = None
        return list(seen)

    def usage(self, cgroup: ContainerCgroup) -> CgroupUsage | None:
        try:
            if cgroup.version == 2:
                stat = _stat_file(cgroup.memory_dir / "memory.stat")
                usage = _read_int(cgroup.memory_dir / "memory.current")
                cpu = _stat_file(cgroup.cpu_dir / "cpu.stat").get("usage_usec", 0) * 1000
                inactive_file = stat.get("inactive_file", 0)
                rss = stat.get("anon", 0)
            else:
                stat = _stat_file(cgroup.memory_dir / "memory.stat")
                usage = _read_int(cgroup.memory_dir / "memory.usage_in_bytes")
                cpu = _read_int(cgroup.cpuacct_dir / "cpuacct.usage")
                inactive_file = stat.get("total_inactive_file", stat.get("inactive_file", 0))
                rss = stat.get("total_rss", stat.get("rss", 0))
        except (OSError, ValueError, IndexError):
            return None
        return CgroupUsage(
            cpu_nanoseconds=cpu,
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(0, usage - inactive_file),
            memory_rss_bytes=rss,
            processes=len(_procs(cgroup.memory_dir)),
        )

    def remove(self, cgroup: ContainerCgroup, *, timeout: float = 2.0) -> None:
        """Kill what is left in the cgroup, then remove its directories (and the pod's, once empty)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids(cgroup)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        for directory in cgroup.directories:
            for path in (directory, directory.parent):
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror or exc}") from exc
                    break


def _enable_controllers(directory: Path) -> None:
    wanted = {"memory", "cpu"}
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    missing = wanted - enabled
    if missing:
        _write(directory / "cgroup.subtree_control", " ".join(f"+{name}" for name in sorted(missing)))


def _v1_mounts(mountinfo: Path) -> dict[str, Path]:
    """controller -> mount point of its v1 hierarchy, from /proc/self/mountinfo."""
    mounts: dict[str, Path] = {}
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = right.split()
        if len(fields) < 3 or fields[0] != "cgroup":
            continue
        mount_point = Path(left.split()[4].replace("\\040", " "))
        for option in fields[2].split(","):
            if option in _V1_CONTROLLERS:
                mounts.setdefault(option, mount_point)
    return mounts


def _own_cgroups(cgroup_file: Path) -> dict[str, str]:
    """controller -> this process's cgroup path in that hierarchy, from /proc/self/cgroup."""
    own: dict[str, str] = {}
    for line in cgroup_file.read_text().splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            if controller:
                own[controller] = parts[2]
    return own
