"""The kubelet API on a real node agent: `kubelet_api` as `run_node_agent`'s server, the process
runtime running the pods, the API server proxying, and the real kubectl — the whole path
``kubectl logs/exec/port-forward`` takes in a lab, in one process (no `kubelab up`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from control.client.config import load_kubeconfig
from control.kubelet.agent import NodeAgent, run_node_agent
from control.kubelet.server import kubelet_api
from control.pki import PKIFiles
from tests.control.apiserver.conftest import RunningServer, running_apiserver

# Not a lab node address (node N is 127.100.0.N): a running lab must not collide with this test.
NODE_IP = "127.100.0.251"


@dataclass
class Node:
    api: RunningServer
    agent: NodeAgent

    async def kubectl(self, *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "/usr/bin/kubectl",
            "--kubeconfig",
            str(self.api.data_dir / "kubeconfig"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_apiserver(tmp_path) as api:
        # The ServiceAccount controller's "default" account, whose token the admitted pods mount.
        code, answer = await api.request(
            "POST", "/api/v1/namespaces/default/serviceaccounts", body={"metadata": {"name": "default"}}
        )
        assert code == 201, answer
        stop = asyncio.Event()
        ready: asyncio.Future[NodeAgent] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            run_node_agent(
                config=load_kubeconfig(api.data_dir / "kubeconfig"),
                node_name="node-1",
                node_ip=NODE_IP,
                data_dir=tmp_path / "node-1",
                stop=stop,
                servers=[kubelet_api(pki=PKIFiles(api.data_dir / "pki"))],
                on_ready=ready.set_result,
            )
        )
        try:
            done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
            yield Node(api=api, agent=await ready)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def run_pod(node: Node, name: str, container: dict[str, object]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "node-1", "containers": [container]},
    }
    code, created = await node.api.request("POST", "/api/v1/namespaces/default/pods", body=body)
    assert code == 201, created
    code, _, err = await node.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")
    assert code == 0, err


async def test_logs_exec_and_stats_through_a_node_agent(node: Node) -> None:
    await run_pod(
        node,
        "shell",
        {
            "name": "main",
            "image": "busybox",
            "command": ["sh", "-c", "echo ready; while true; do sleep 3600; done"],
        },
    )
    code, out, err = await node.kubectl("exec", "shell", "--", "sh", "-c", "echo $HOSTNAME; exit 6")
    assert (code, out, err) == (6, "shell\n", "command terminated with exit code 6\n")

    follow = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl",
        "--kubeconfig",
        str(node.api.data_dir / "kubeconfig"),
        "logs",
        "-f",
        "shell",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert follow.stdout is not None
        assert await asyncio.wait_for(follow.stdout.readline(), 20) == b"ready\n"
    finally:
        follow.terminate()
        await follow.communicate()
    code, out, _ = await node.kubectl("get", "--raw", "/api/v1/nodes/node-1/proxy/metrics/resource")
    assert code == 0
    assert re.search(
        r'^container_memory_working_set_bytes\{container="main",namespace="default",pod="shell"\} ', out, re.M
    )
    assert re.search(r"^node_cpu_usage_seconds_total \S+ \d+$", out, re.M)


async def test_port_forward_through_a_node_agent(node: Node) -> None:
    server = "import http.server,os; http.server.HTTPServer((os.environ['POD_IP'], 8080), http.server.SimpleHTTPRequestHandler).serve_forever()"
    await run_pod(
        node,
        "http",
        {
            "name": "web",
            "image": "kubelab",
            "command": ["python3", "-c", server],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        },
    )
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl",
        "--kubeconfig",
        str(node.api.data_dir / "kubeconfig"),
        "port-forward",
        "pod/http",
        ":8080",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        local = int(re.search(r"127\.0\.0\.1:(\d+) -> 8080", line).group(1))  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.0 200 OK")
        writer.close()
    finally:
        process.terminate()
        await process.communicate()
