"""Usage numbers shaped as the kubelet serves them: ``/stats/summary`` and ``/metrics/resource``.

The numbers come from a :class:`UsageSource` (the kubelet's stats: cgroups when writable,
else the container's process tree); the pods and their containers come from the pods the
kubelet runs, so a container is reported under the pod, name and start time its status
names. Both shapes are upstream's, because real consumers parse them: the Summary JSON is
``stats/v1alpha1`` (``kubectl get --raw .../proxy/stats/summary``, dashboards), and
``/metrics/resource`` is what metrics-server scrapes — the stable metric names with
explicit millisecond timestamps, container series labelled ``container``, ``namespace``,
``pod``; ``resource_scrape_error`` (and its deprecated twin ``scrape_error``) says whether
the node's numbers could be read. metrics-server drops a container whose CPU or memory
reads 0, exactly as it does against a real kubelet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """One sample of a container's (or the node's) consumption."""

    timestamp: float  # epoch seconds when sampled
    cpu_core_nanoseconds: int  # cumulative CPU time
    memory_working_set_bytes: int
    cpu_nano_cores: int | None = None  # recent rate; None until there are two samples
    memory_usage_bytes: int | None = None
    memory_rss_bytes: int | None = None
    memory_available_bytes: int | None = None  # the node's only
    page_faults: int | None = None
    major_page_faults: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FsUsage:
    timestamp: float
    capacity_bytes: int
    available_bytes: int
    used_bytes: int
    inodes: int | None = None
    inodes_free: int | None = None
    inodes_used: int | None = None


class UsageSource(Protocol):
    def node_usage(self) -> Usage | None: ...

    def node_fs(self) -> FsUsage | None: ...

    def container_usage(self, container_id: str) -> Usage | None:
        """None for a container the source has no numbers for (not running, just started)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunningContainer:
    namespace: str
    pod: str
    pod_uid: str
    name: str
    container_id: str
    started_at: str  # RFC 3339, from the container status


def running_containers(pods: Iterable[Mapping[str, Any]]) -> list[RunningContainer]:
    """The running containers the pods' statuses name (init containers included while they run)."""
    found = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
            for container in status.get(key) or ():
                running = (container.get("state") or {}).get("running")
                container_id = runtime_container_id(container.get("containerID", ""))
                if running is None or not container_id:
                    continue
                found.append(
                    RunningContainer(
                        namespace=metadata.get("namespace", ""),
                        pod=metadata.get("name", ""),
                        pod_uid=metadata.get("uid", ""),
                        name=container.get("name", ""),
                        container_id=container_id,
                        started_at=running.get("startedAt", ""),
                    )
                )
    return found


def runtime_container_id(status_id: str) -> str:
    """``kubelab://abc`` (a status's ``<runtime>://<id>``) -> ``abc``."""
    return status_id.partition("://")[2] or status_id


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu(usage: Usage) -> dict[str, Any]:
    cpu: dict[str, Any] = {"time": _time(usage.timestamp), "usageCoreNanoSeconds": usage.cpu_core_nanoseconds}
    if usage.cpu_nano_cores is not None:
        cpu["usageNanoCores"] = usage.cpu_nano_cores
    return cpu


def _memory(usage: Usage) -> dict[str, Any]:
    memory: dict[str, Any] = {
        "time": _time(usage.timestamp),
        "workingSetBytes": usage.memory_working_set_bytes,
    }
    for key, value in (
        ("availableBytes", usage.memory_available_bytes),
        ("usageBytes", usage.memory_usage_bytes),
        ("rssBytes", usage.memory_rss_bytes),
        ("pageFaults", usage.page_faults),
        ("majorPageFaults", usage.major_page_faults),
    ):
        if value is not None:
            memory[key] = value
    return memory


def _fs(fs: FsUsage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time": _time(fs.timestamp),
        "availableBytes": fs.available_bytes,
        "capacityBytes": fs.capacity_bytes,
        "usedBytes": fs.used_bytes,
    }
    for key, value in (("inodesFree", fs.inodes_free), ("inodes", fs.inodes), ("inodesUsed", fs.inodes_used)):
        if value is not None:
            out[key] = value
    return out


def boot_time(proc_stat: Path = Path("/proc/stat")) -> float:
    """The machine's boot time (``btime``): the node's start time, as cAdvisor's root cgroup."""
    for line in proc_stat.read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError(f"no btime line in {proc_stat}")


def summary(
    *, node_name: str, start_time: float, pods: Iterable[Mapping[str, Any]], usage: UsageSource
) -> dict[str, Any]:
    """The stats/v1alpha1 Summary: the node, then every pod with its running containers."""
    node: dict[str, Any] = {"nodeName": node_name, "startTime": _time(start_time)}
    node_usage = usage.node_usage()
    if node_usage is not None:
        node["cpu"] = _cpu(node_usage)
        node["memory"] = _memory(node_usage)
    node_fs = usage.node_fs()
    if node_fs is not None:
        node["fs"] = _fs(node_fs)

    pod_list = list(pods)
    by_pod: dict[str, list[tuple[RunningContainer, Usage | None]]] = {}
    for container in running_containers(pod_list):
        by_pod.setdefault(container.pod_uid, []).append(
            (container, usage.container_usage(container.container_id))
        )
    pod_stats = []
    for pod in pod_list:
        metadata = pod.get("metadata") or {}
        containers = by_pod.get(metadata.get("uid", ""), [])
        entry: dict[str, Any] = {
            "podRef": {
                "name": metadata.get("name", ""),
                "namespace": metadata.get("namespace", ""),
                "uid": metadata.get("uid", ""),
            },
            "startTime": (pod.get("status") or {}).get("startTime") or metadata.get("creationTimestamp", ""),
            "containers": [],
        }
        sampled = [sample for _, sample in containers if sample is not None]
        for container, sample in containers:
            stats: dict[str, Any] = {"name": container.name, "startTime": container.started_at}
            if sample is not None:
                stats["cpu"] = _cpu(sample)
                stats["memory"] = _memory(sample)
            entry["containers"].append(stats)
        if sampled:
            total = _sum(sampled)
            entry["cpu"] = _cpu(total)
            entry["memory"] = _memory(total)
        pod_stats.append(entry)
    return {"node": node, "pods": pod_stats}


def _sum(samples: list[Usage]) -> Usage:
    def total(values: list[int | None]) -> int | None:
        return None if any(value is None for value in values) else sum(value or 0 for value in values)

    return Usage(
        timestamp=max(sample.timestamp for sample in samples),
        cpu_core_nanoseconds=sum(sample.cpu_core_nanoseconds for sample in samples),
        memory_working_set_bytes=sum(sample.memory_working_set_bytes for sample in samples),
        cpu_nano_cores=total([sample.cpu_nano_cores for sample in samples]),
        memory_usage_bytes=total([sample.memory_usage_bytes for sample in samples]),
        memory_rss_bytes=total([sample.memory_rss_bytes for sample in samples]),
    )


# name -> (type, help text as the kubelet writes it, stability prefix included)
_HELP = {
    "container_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    ),
    "container_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the container in bytes"),
    "container_start_time_seconds": (
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    ),
    "node_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    ),
    "node_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the node in bytes"),
    "pod_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    ),
    "pod_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the pod in bytes"),
    "resource_scrape_error": (
        "gauge",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    ),
    # The older name, still written by the kubelet (deprecated since 1.29).
    "scrape_error": (
        "gauge",
        "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
    ),
}
RESOURCE_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_metrics(*, pods: Iterable[Mapping[str, Any]], usage: UsageSource) -> bytes:
    """The kubelet's ``/metrics/resource`` exposition (what metrics-server scrapes)."""
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    scrape_error = 0
    node = usage.node_usage()
    if node is None:
        scrape_error = 1
    else:
        stamp = int(node.timestamp * 1000)
        series["node_cpu_usage_seconds_total"].append(f" {node.cpu_core_nanoseconds / 1e9!r} {stamp}")
        series["node_memory_working_set_bytes"].append(f" {float(node.memory_working_set_bytes)!r} {stamp}")
    per_pod: dict[tuple[str, str], list[Usage]] = {}
    for container in running_containers(pods):
        sample = usage.container_usage(container.container_id)
        if sample is None:
            continue
        labels = (
            f'{{container="{_label(container.name)}",namespace="{_label(container.namespace)}",'
            f'pod="{_label(container.pod)}"}}'
        )
        stamp = int(sample.timestamp * 1000)
        series["container_cpu_usage_seconds_total"].append(
            f"{labels} {sample.cpu_core_nanoseconds / 1e9!r} {stamp}"
        )
        series["container_memory_working_set_bytes"].append(
            f"{labels} {float(sample.memory_working_set_bytes)!r} {stamp}"
        )
        if container.started_at:
            started = datetime.fromisoformat(container.started_at.replace("Z", "+00:00")).timestamp()
            series["container_start_time_seconds"].append(f"{labels} {started!r} {stamp}")
        per_pod.setdefault((container.namespace, container.pod), []).append(sample)
    for (namespace, pod), samples in per_pod.items():
        labels = f'{{namespace="{_label(namespace)}",pod="{_label(pod)}"}}'
        total = _sum(samples)
        stamp = int(total.timestamp * 1000)
        series["pod_cpu_usage_seconds_total"].append(f"{labels} {total.cpu_core_nanoseconds / 1e9!r} {stamp}")
        series["pod_memory_working_set_bytes"].append(
            f"{labels} {float(total.memory_working_set_bytes)!r} {stamp}"
        )
    series["resource_scrape_error"].append(f" {scrape_error}")
    series["scrape_error"].append(f" {scrape_error}")
    lines = []
    for name, (kind, text) in _HELP.items():
        if not series[name]:
            continue
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(name + sample for sample in series[name])
    return ("\n".join(lines) + "\n").encode()
