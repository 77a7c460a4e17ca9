"""pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy: the API server in this
test's loop proxies to a real kubelet API server (fake runtime, real processes), driven by
the real kubectl (WebSocket from 1.30/1.31, SPDY before) and the official Python client."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from control.apiserver.errors import StatusError
from control.apiserver.proxy import container_for, kubelet_address
from control.kubelet.logs import CRILogWriter
from tests.control.apiserver.conftest import RunningServer, running_apiserver
from tests.control.kubelet.fakes import RunningKubelet, free_port, make_pod, running_kubelet

KUBECTL_VERSIONS_DIR = Path("/usr/lib/google-cloud-sdk/bin")
WEBSOCKET_KUBECTL = None  # /usr/bin/kubectl (1.32): WebSocket exec and port-forward
SPDY_KUBECTL = "1.27"  # SPDY/3.1 only


@dataclass
class Cluster:
    api: RunningServer
    kubelet: RunningKubelet
    cache_dir: Path

    async def kubectl(
        self, *args: str, version: str | None = WEBSOCKET_KUBECTL, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        binary = "/usr/bin/kubectl" if version is None else str(KUBECTL_VERSIONS_DIR / f"kubectl.{version}")
        process = await asyncio.create_subprocess_exec(
            binary,
            "--kubeconfig",
            str(self.api.data_dir / "kubeconfig"),
            "--cache-dir",
            str(self.cache_dir / (version or "default")),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return process.returncode or 0, out.decode(), err.decode()

    async def pod_status(self, name: str, **status: Any) -> None:
        code, pod = await self.api.request("GET", f"/api/v1/namespaces/default/pods/{name}")
        pod["status"].update(status)
        code, body = await self.api.request("PUT", f"/api/v1/namespaces/default/pods/{name}/status", body=pod)
        assert code == 200, body


async def create_node(api: RunningServer, name: str, *, address: str | None, port: int) -> None:
    code, node = await api.request(
        "POST", "/api/v1/nodes", body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    )
    assert code == 201, node
    node["status"] = {
        "addresses": [{"type": "InternalIP", "address": address}] if address else [],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }
    code, body = await api.request("PUT", f"/api/v1/nodes/{name}/status", body=node)
    assert code == 200, body


async def create_pod(
    api: RunningServer, name: str, *, containers: tuple[str, ...] = ("main",), node: str = "node-1"
) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "kubelab"} for c in containers]}
    if node:
        spec["nodeName"] = node
    code, body = await api.request(
        "POST",
        "/api/v1/namespaces/default/pods",
        body={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
    )
    assert code == 201, body


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """An API server, node-1 pointing at a kubelet, and pod "web" (container "main" running,
    "side" not started) known to both."""
    async with running_apiserver(tmp_path) as api, running_kubelet(api.data_dir / "pki") as kubelet:
        await create_node(api, "node-1", address="127.0.0.1", port=kubelet.server.config.port)
        await create_pod(api, "web", containers=("main", "side"))
        running = Cluster(api=api, kubelet=kubelet, cache_dir=tmp_path / "kubectl-cache")
        await running.pod_status("web", phase="Running", podIP="127.0.0.1")
        kubelet.pods.add(make_pod("web", containers=("main", "side"), running={"main": "main-id"}))
        log = tmp_path / "main.log"
        writer = CRILogWriter(log)
        writer.write("stdout", b"hello\nworld\n")
        writer.close()
        kubelet.runtime.add_container("main-id")
        kubelet.pods.add_log("web", "main", log)
        kubelet.pods.add_log(
            "web", "side", 'container "side" in pod "web" is waiting to start: ContainerCreating'
        )
        yield running


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


# --- kubectl exec / attach ---------------------------------------------------------------------


@pytest.mark.parametrize("version", [WEBSOCKET_KUBECTL, SPDY_KUBECTL], ids=["websocket", "spdy"])
async def test_kubectl_exec_passes_output_and_exit_code(cluster: Cluster, version: str | None) -> None:
    code, out, err = await cluster.kubectl(
        "exec", "web", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; exit 3", version=version
    )
    assert (code, out) == (3, "out\n")
    assert err == "err\ncommand terminated with exit code 3\n"
    code, out, _ = await cluster.kubectl(
        "exec", "-i", "web", "-c", "main", "--", "cat", version=version, stdin=b"in\n"
    )
    assert (code, out) == (0, "in\n")


async def test_kubectl_exec_with_a_terminal(cluster: Cluster) -> None:
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl",
        "--kubeconfig",
        str(cluster.api.data_dir / "kubeconfig"),
        "exec",
        "-it",
        "web",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        # The size arrives just after the shell starts: wait for it, then report it.
        'until [ "$(stty size)" != "0 0" ]; do sleep 0.01; done; stty size; exit 4',
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    chunk = await loop.run_in_executor(None, os.read, controller, 4096)
                except OSError:  # EIO: kubectl closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
        assert await process.wait() == 4
    finally:
        os.close(controller)
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"30 90" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("exec", "web", "-c", "nope", "--", "true"), "container nope is not valid for pod web"),
        (("exec", "missing", "--", "true"), 'pods "missing" not found'),
        (
            ("exec", "web", "-c", "side", "--", "true"),
            'unable to upgrade connection: container not found ("side")',
        ),
    ],
    ids=["invalid container", "no such pod", "container not running"],
)
async def test_kubectl_exec_errors(cluster: Cluster, args: tuple[str, ...], message: str) -> None:
    code, _, err = await cluster.kubectl(*args)
    assert code == 1 and message in err


async def test_kubectl_attach(cluster: Cluster) -> None:
    await cluster.kubelet.runtime.start_main_process("main-id", ["sh", "-c", "read l; echo attached:$l"])
    code, out, _ = await cluster.kubectl("attach", "-i", "web", "-c", "main", stdin=b"hi\n")
    assert (code, out) == (0, "attached:hi\n")


# --- kubectl logs --------------------------------------------------------------------------------


async def test_kubectl_logs(cluster: Cluster) -> None:
    assert await cluster.kubectl("logs", "web", "-c", "main") == (0, "hello\nworld\n", "")
    assert await cluster.kubectl("logs", "web", "-c", "main", "--tail=1") == (0, "world\n", "")
    code, out, _ = await cluster.kubectl("logs", "web", "-c", "main", "--timestamps", "--limit-bytes=40")
    assert code == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello\n\d{3}", out)


async def test_kubectl_logs_follow_ends_with_the_container(cluster: Cluster, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl",
        "--kubeconfig",
        str(cluster.api.data_dir / "kubeconfig"),
        "logs",
        "-f",
        "web",
        "-c",
        "main",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        assert await asyncio.wait_for(process.stdout.readuntil(b"world\n"), 20) == b"hello\nworld\n"
        writer = CRILogWriter(tmp_path / "main.log")
        writer.write("stdout", b"more\n")
        assert await asyncio.wait_for(process.stdout.readline(), 20) == b"more\n"
        source = cluster.kubelet.pods.logs[("default", "web", "main", False)]
        assert not isinstance(source, str)
        source.running = False  # the container stopped: the kubelet ends the stream at EOF
        writer.write("stdout", b"last\n")
        writer.close()
        assert await asyncio.wait_for(process.stdout.read(), 20) == b"last\n"
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_kubectl_logs_previous_and_errors(cluster: Cluster, tmp_path: Path) -> None:
    code, _, err = await cluster.kubectl("logs", "web", "-c", "main", "--previous")
    assert (code, err) == (
        1,
        'Error from server (BadRequest): previous terminated container "main" in pod "web" not found\n',
    )
    old = tmp_path / "old.log"
    writer = CRILogWriter(old)
    writer.write("stdout", b"crashed\n")
    writer.close()
    cluster.kubelet.pods.add_log("web", "main", old, previous=True)
    assert await cluster.kubectl("logs", "web", "-c", "main", "-p") == (0, "crashed\n", "")
    code, _, err = await cluster.kubectl("logs", "web", "-c", "side")
    assert (code, err) == (
        1,
        'Error from server (BadRequest): container "side" in pod "web" is waiting to start: ContainerCreating\n',
    )
    code, _, err = await cluster.kubectl("logs", "web", "-c", "nope")
    assert code == 1 and "container nope is not valid for pod web" in err


# --- kubectl port-forward ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [WEBSOCKET_KUBECTL, SPDY_KUBECTL], ids=["websocket-tunnel", "spdy"])
async def test_kubectl_port_forward(cluster: Cluster, echo_port: int, version: str | None) -> None:
    binary = "/usr/bin/kubectl" if version is None else str(KUBECTL_VERSIONS_DIR / f"kubectl.{version}")
    process = await asyncio.create_subprocess_exec(
        binary,
        "--kubeconfig",
        str(cluster.api.data_dir / "kubeconfig"),
        "port-forward",
        "pod/web",
        f":{echo_port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        local = int(re.search(r"127\.0\.0\.1:(\d+) -> ", line).group(1))  # type: ignore[union-attr]
        for word in (b"one", b"two"):  # two connections over the same session
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(word)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 10) == b"echo:" + word
            writer.close()
    finally:
        process.terminate()
        await process.communicate()


# --- the Python client ---------------------------------------------------------------------------


def python_client(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(
        config.new_client_from_config(config_file=str(cluster.api.data_dir / "kubeconfig"))
    )


async def test_python_client_exec_and_port_forward(cluster: Cluster, echo_port: int) -> None:
    core = python_client(cluster)

    def run() -> tuple[str, int | None, bytes]:
        session = stream(
            core.connect_get_namespaced_pod_exec,
            "web",
            "default",
            container="main",
            command=["sh", "-c", "echo py; exit 5"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        session.run_forever(timeout=10)
        out = session.read_stdout()
        code = session.returncode
        session.close()
        forward = portforward(
            core.connect_get_namespaced_pod_portforward, "web", "default", ports=str(echo_port)
        )
        sock = forward.socket(echo_port)
        sock.settimeout(10)
        sock.sendall(b"py")
        echoed = sock.recv(100)
        sock.close()
        forward.close()
        return out, code, echoed

    try:
        out, code, echoed = await asyncio.to_thread(run)
    finally:
        core.api_client.close()
    assert (out, code, echoed) == ("py\n", 5, b"echo:py")


# --- the API server's own answers ----------------------------------------------------------------


async def test_logs_of_an_unscheduled_pod_are_empty(cluster: Cluster) -> None:
    await create_pod(cluster.api, "pending", node="")
    assert await cluster.api.request("GET", "/api/v1/namespaces/default/pods/pending/log") == (200, "")


async def test_exec_needs_an_upgrade_and_a_node(cluster: Cluster) -> None:
    status, body = await cluster.api.request(
        "POST", "/api/v1/namespaces/default/pods/web/exec?container=main&command=true&stdout=true"
    )
    assert (status, body["message"]) == (400, "Upgrade request required")
    await create_pod(cluster.api, "pending", node="")
    status, body = await cluster.api.request(
        "POST", "/api/v1/namespaces/default/pods/pending/exec?command=true&stdout=true"
    )
    assert (status, body["message"]) == (400, "pod pending does not have a host assigned")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (
            "container=main&tailLines=-1",
            422,
            'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0',
        ),
        (
            "container=main&limitBytes=0",
            422,
            'PodLogOptions "web" is invalid: limitBytes: Invalid value: 0: must be greater than 0',
        ),
        (
            "container=main&sinceSeconds=0",
            422,
            'PodLogOptions "web" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0',
        ),
        (
            "container=main&sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z",
            422,
            'PodLogOptions "web" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified',
        ),
        ("container=main&tailLines=x", 400, 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("container=main&follow=maybe", 400, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
        ("", 400, "a container name must be specified for pod web, choose one of: [main side]"),
    ],
)
async def test_log_options_are_validated_as_upstream(
    cluster: Cluster, query: str, status: int, message: str
) -> None:
    code, body = await cluster.api.request("GET", f"/api/v1/namespaces/default/pods/web/log?{query}")
    assert (code, body["message"]) == (status, message)


async def test_an_unreachable_kubelet(cluster: Cluster) -> None:
    port = free_port()
    await create_node(cluster.api, "node-2", address="127.0.0.1", port=port)
    await create_pod(cluster.api, "far", node="node-2")
    refused = f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    code, body = await cluster.api.request("GET", "/api/v1/namespaces/default/pods/far/log")
    assert (code, body["reason"], body["message"]) == (
        500,
        "",
        f'Get "https://127.0.0.1:{port}/containerLogs/default/far/main": {refused}',
    )
    code, _, err = await cluster.kubectl("exec", "far", "--", "true")
    assert (code, err) == (1, f"Error from server: error dialing backend: {refused}\n")


async def test_node_proxy_reaches_the_kubelet(cluster: Cluster) -> None:
    assert await cluster.api.request("GET", "/api/v1/nodes/node-1/proxy/healthz") == (200, "ok")
    code, pods = await cluster.api.request("GET", "/api/v1/nodes/node-1/proxy/pods")
    assert code == 200 and [item["metadata"]["name"] for item in pods["items"]] == ["web"]
    code, out, _ = await cluster.kubectl("get", "--raw", "/api/v1/nodes/node-1/proxy/stats/summary")
    assert code == 0 and '"nodeName":"node-1"' in out
    # the query goes along
    logs = "/api/v1/nodes/node-1/proxy/containerLogs/default/web/main"
    assert await cluster.api.request("GET", logs, params={"tailLines": "1"}) == (200, "world\n")
    code, body = await cluster.api.request("GET", "/api/v1/nodes/nope/proxy/healthz")
    assert (code, body["message"]) == (404, 'nodes "nope" not found')
    # services/proxy is served too (test_pod_service_proxy.py); this Service's only port is named https
    code, body = await cluster.api.request("GET", "/api/v1/namespaces/default/services/kubernetes/proxy/")
    assert (code, body["message"]) == (503, 'no endpoints available for service "kubernetes"')


def test_container_choice_and_kubelet_address() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "only"}], "initContainers": [{"name": "init"}]},
    }
    assert container_for(pod, "") == "only"
    assert container_for(pod, "init") == "init"
    with pytest.raises(StatusError, match="container x is not valid for pod p"):
        container_for(pod, "x")
    with pytest.raises(StatusError, match=r"a container name must be specified for pod p$"):
        container_for({"metadata": {"name": "p"}, "spec": {}}, "")
    node = {
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "127.100.0.1"},
            ]
        }
    }
    assert kubelet_address(node) == ("127.100.0.1", 10250)
    with pytest.raises(StatusError, match="no preferred addresses found"):
        kubelet_address({"status": {}})
