"""Usage numbers for /stats/summary and /metrics/resource from real containers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from control.kubelet.runtime import procfs
from control.kubelet.runtime.protocol import ContainerConfig
from control.kubelet.stats import MIN_RATE_WINDOW, StatsProvider
from control.kubelet.summary import summary
from tests.control.kubelet.runtime.test_process import UID, add_sandbox, open_runtime


async def test_container_and_node_usage(tmp_path: Path) -> None:
    root = tmp_path / "node"
    runtime = await open_runtime(root)
    try:
        sandbox = await add_sandbox(runtime, root)
        busy = await runtime.create_and_start(
            UID,
            ContainerConfig(
                name="busy",
                image="busybox",
                command=["sh", "-c", "while true; do :; done"],
                env={},
                log_path=sandbox / "busy" / "0.log",
            ),
        )
        stats = StatsProvider(runtime=runtime, data_dir=root)
        first = stats.container_usage(busy)
        assert first is not None and first.cpu_nano_cores is None, "a rate needs two readings"
        node_first = stats.node_usage()
        assert node_first is not None and node_first.cpu_nano_cores is None
        await asyncio.sleep(MIN_RATE_WINDOW + 0.1)
        second = stats.container_usage(busy)
        assert second is not None and second.cpu_nano_cores is not None
        assert second.cpu_core_nanoseconds > first.cpu_core_nanoseconds
        assert 200_000_000 < second.cpu_nano_cores < 1_200_000_000, "a spinning shell uses about one core"
        assert second.memory_working_set_bytes > 0
        assert stats.container_usage(busy).cpu_nano_cores == second.cpu_nano_cores, "too soon: the last rate"

        node = stats.node_usage()
        memory = procfs.machine_memory()
        assert node is not None and node.cpu_nano_cores is not None and node.cpu_nano_cores > 0
        assert (
            node.memory_available_bytes is not None and 0 < node.memory_working_set_bytes < memory.total_bytes
        )
        fs = stats.node_fs()
        assert (
            fs is not None
            and 0 < fs.used_bytes < fs.capacity_bytes
            and fs.available_bytes <= fs.capacity_bytes
        )

        pods = [
            {
                "metadata": {"name": "demo", "namespace": "default", "uid": UID},
                "status": {
                    "containerStatuses": [
                        {
                            "name": "busy",
                            "containerID": f"kubelab://{busy}",
                            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
                        }
                    ]
                },
            }
        ]
        report = summary(node_name="node-1", start_time=time.time(), pods=pods, usage=stats)
        container = report["pods"][0]["containers"][0]
        assert container["name"] == "busy" and container["cpu"]["usageCoreNanoSeconds"] > 0
        assert report["node"]["memory"]["availableBytes"] > 0

        await runtime.stop(busy, grace_seconds=1)
        assert stats.container_usage(busy) is None
    finally:
        await runtime.close()
