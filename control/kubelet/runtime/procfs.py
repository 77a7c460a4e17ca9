"""Facts about processes and the machine, read from ``/proc``.

The process runtime identifies a process by its pid *and* its start time (field 22 of
``/proc/<pid>/stat``, in clock ticks since boot): pids are recycled, and a container
record that outlived a reboot or a crash must never make the kubelet signal a stranger.
When cgroups are not available, a container's usage is the sum over its process tree —
the processes of its session, since each container is started as a session leader — and
this module reads that in one pass over ``/proc`` for all containers at once.

Everything here is synchronous and cheap (small pseudo-files); callers on the event loop
may use it directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_NANOS_PER_TICK = 1_000_000_000 // CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class ProcessStat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    cpu_ticks: int  # utime + stime
    start_ticks: int
    rss_pages: int


def _parse_stat(pid: int, raw: bytes) -> ProcessStat:
    # The command name (field 2) is in parentheses and may contain spaces and ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return ProcessStat(
        pid=pid,
        state=rest[0].decode(),
        ppid=int(rest[1]),
        pgrp=int(rest[2]),
        session=int(rest[3]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        start_ticks=int(rest[19]),
        rss_pages=int(rest[21]),
    )


def process_stat(pid: int, *, proc: Path = PROC) -> ProcessStat | None:
    """The process's stat line, or None if there is no such (live or zombie) process."""
    try:
        raw = (proc / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return _parse_stat(pid, raw)


def start_ticks(pid: int, *, proc: Path = PROC) -> int | None:
    stat = process_stat(pid, proc=proc)
    return None if stat is None else stat.start_ticks


def is_alive(pid: int, expected_start_ticks: int, *, proc: Path = PROC) -> bool:
    """Whether ``pid`` is still the process that started at ``expected_start_ticks`` (and not a zombie)."""
    stat = process_stat(pid, proc=proc)
    return stat is not None and stat.start_ticks == expected_start_ticks and stat.state not in ("Z", "X")


def boot_time(*, proc: Path = PROC) -> float:
    """Epoch seconds of the machine's boot (``btime`` in /proc/stat)."""
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError(f"no btime line in {proc / 'stat'}")


@dataclass(frozen=True, slots=True)
class TreeUsage:
    cpu_nanoseconds: int
    rss_bytes: int
    processes: int


def session_usage(sessions: Iterable[int], *, proc: Path = PROC) -> dict[int, TreeUsage]:
    """CPU time and RSS summed over the live processes of each session, in one /proc pass."""
    wanted = set(sessions)
    totals: dict[int, list[int]] = {sid: [0, 0, 0] for sid in wanted}
    if not wanted:
        return {}
    for entry in os.scandir(proc):
        name = entry.name
        if not name.isdigit():
            continue
        try:
            raw = (proc / name / "stat").read_bytes()
        except OSError:
            continue
        stat = _parse_stat(int(name), raw)
        bucket = totals.get(stat.session)
        if bucket is None or stat.state in ("Z", "X"):
            continue
        bucket[0] += stat.cpu_ticks * _NANOS_PER_TICK
        bucket[1] += stat.rss_pages * PAGE_SIZE
        bucket[2] += 1
    return {sid: TreeUsage(cpu_nanoseconds=c, rss_bytes=r, processes=n) for sid, (c, r, n) in totals.items()}


def session_members(session: int, *, proc: Path = PROC) -> list[int]:
    """Pids of the live processes in ``session``."""
    members = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        stat = process_stat(int(entry.name), proc=proc)
        if stat is not None and stat.session == session and stat.state not in ("Z", "X"):
            members.append(stat.pid)
    return members


@dataclass(frozen=True, slots=True)
class MachineMemory:
    total_bytes: int
    available_bytes: int
    free_bytes: int

    @property
    def working_set_bytes(self) -> int:
        return self.total_bytes - self.available_bytes


def machine_memory(*, proc: Path = PROC) -> MachineMemory:
    values: dict[str, int] = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree"):
            values[key] = int(rest.split()[0]) * 1024
    return MachineMemory(
        total_bytes=values["MemTotal"],
        available_bytes=values.get("MemAvailable", values.get("MemFree", 0)),
        free_bytes=values.get("MemFree", 0),
    )


def machine_cpu_nanoseconds(*, proc: Path = PROC) -> int:
    """Busy CPU time of the whole machine since boot (all CPUs, idle and iowait excluded)."""
    with (proc / "stat").open("rb") as stat:
        fields = stat.readline().split()
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice
    busy = sum(int(value) for index, value in enumerate(fields[1:9]) if index not in (3, 4))
    return busy * _NANOS_PER_TICK


def process_count(*, proc: Path = PROC) -> int:
    return sum(1 for entry in os.scandir(proc) if entry.name.isdigit())


def pid_max(*, proc: Path = PROC) -> int:
    return int((proc / "sys" / "kernel" / "pid_max").read_text())
