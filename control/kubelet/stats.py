"""Resource usage of the node and its containers, for ``/stats/summary`` and ``/metrics/resource``.

:class:`StatsProvider` is the :class:`control.kubelet.summary.UsageSource` the kubelet's
HTTP API renders: cumulative CPU time and memory of each running container (from its
cgroup when the runtime has cgroups, else from its process tree — see
:meth:`control.kubelet.runtime.process.ProcessRuntime.usage`), and of the whole machine
(``/proc/stat``, ``/proc/meminfo``), plus the data directory's filesystem.

``usageNanoCores`` is a rate, so it needs two readings: each reading is compared with the
previous one of the same container (or the node) if that is at least a second old, and
:meth:`housekeeping` takes a reading of everything every 10 s (cAdvisor's housekeeping
interval) so a scrape always has a recent rate. Memory: ``workingSetBytes`` is usage minus
inactive file pages (cgroups) or the resident set (process tree); the node's is
``MemTotal - MemAvailable``.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from control.kubelet.runtime import procfs
from control.kubelet.runtime.protocol import ContainerState, Runtime
from control.kubelet.summary import FsUsage, Usage

HOUSEKEEPING_INTERVAL = 10.0
MIN_RATE_WINDOW = 1.0
NODE = "/"


@dataclass(slots=True)
class _Reading:
    at: float  # monotonic
    cpu_nanoseconds: int
    nano_cores: int | None


class StatsProvider:
    def __init__(self, *, runtime: Runtime, data_dir: Path) -> None:
        self._runtime = runtime
        self._data_dir = data_dir
        self._readings: dict[str, _Reading] = {}

    def _rate(self, key: str, cpu_nanoseconds: int) -> int | None:
        now = time.monotonic()
        previous = self._readings.get(key)
        if previous is None:
            self._readings[key] = _Reading(now, cpu_nanoseconds, None)
            return None
        elapsed = now - previous.at
        if elapsed < MIN_RATE_WINDOW:
            return previous.nano_cores
        rate = max(0, int((cpu_nanoseconds - previous.cpu_nanoseconds) / elapsed))
        self._readings[key] = _Reading(now, cpu_nanoseconds, rate)
        return rate

    def node_usage(self) -> Usage | None:
        try:
            cpu = procfs.machine_cpu_nanoseconds()
            memory = procfs.machine_memory()
        except OSError:
            return None
        return Usage(
            timestamp=time.time(),
            cpu_core_nanoseconds=cpu,
            cpu_nano_cores=self._rate(NODE, cpu),
            memory_working_set_bytes=memory.working_set_bytes,
            memory_usage_bytes=memory.total_bytes - memory.free_bytes,
            memory_available_bytes=memory.available_bytes,
        )

    def node_fs(self) -> FsUsage | None:
        try:
            disk = os.statvfs(self._data_dir)
        except OSError:
            return None
        capacity = disk.f_blocks * disk.f_frsize
        available = disk.f_bavail * disk.f_frsize
        return FsUsage(
            timestamp=time.time(),
            capacity_bytes=capacity,
            available_bytes=available,
            used_bytes=capacity - disk.f_bfree * disk.f_frsize,
            inodes=disk.f_files,
            inodes_free=disk.f_ffree,
            inodes_used=disk.f_files - disk.f_ffree,
        )

    def container_usage(self, container_id: str) -> Usage | None:
        sample = self._runtime.usage(container_id)
        if sample is None:
            self._readings.pop(container_id, None)
            return None
        return Usage(
            timestamp=sample.timestamp,
            cpu_core_nanoseconds=sample.cpu_usage_core_nanoseconds,
            cpu_nano_cores=self._rate(container_id, sample.cpu_usage_core_nanoseconds),
            memory_working_set_bytes=sample.memory_working_set_bytes,
            memory_usage_bytes=sample.memory_usage_bytes,
            memory_rss_bytes=sample.memory_rss_bytes,
        )

    async def housekeeping(self) -> None:
        """Take a reading of the node and every running container now and then, until cancelled."""
        while True:
            self.node_usage()
            running = set()
            for status in await self._runtime.list_containers():
                if status.state is ContainerState.RUNNING:
                    running.add(status.id)
                    self.container_usage(status.id)
                    # A reading is a few cgroup files (memory.stat costs the kernel a walk): let
                    # the pod workers run between containers rather than after a node's worth.
                    await asyncio.sleep(0)
            for key in [key for key in self._readings if key != NODE and key not in running]:
                del self._readings[key]
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
