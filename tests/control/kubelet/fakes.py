"""Fakes for the kubelet API's seams, and a running kubelet API for tests.

- ``FakeRuntime`` answers the Runtime protocol's streaming calls (all the kubelet API
  uses) with *real* local processes, so exit codes, stdin EOF and TTYs behave as they do
  for real: ``exec`` starts the command (through a pty when a TTY is asked for) in a
  container ``add_container`` made, ``attach`` joins the main process
  ``start_main_process`` gave it. Every process it starts is killed by ``close()``.
- ``FakePods`` holds the pod objects and log sources the pod manager would report.
- ``FakeUsage`` returns fixed usage numbers.

``running_kubelet`` starts a real KubeletServer over TLS with a throw-away lab CA and
yields it with an HTTPS session that presents the API server's kubelet-client
certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import ssl
import struct
import termios
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from control.kubelet.pods import LogSource, LogUnavailableError
from control.kubelet.runtime.protocol import (
    ContainerNotFoundError,
    ContainerState,
    ExecSession,
)
from control.kubelet.server import KubeletServer, KubeletServerConfig
from control.kubelet.summary import FsUsage, Usage
from control.pki import PKIFiles, ensure_apiserver_kubelet_client_certificate, load_or_create_ca


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class _MainProcess:
    process: asyncio.subprocess.Process
    subscribers: list[asyncio.Queue[tuple[int, bytes] | None]] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None


class FakeRuntime:
    """The Runtime protocol's exec and attach, backed by real processes."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerState] = {}
        self.exec_calls: list[tuple[str, list[str], bool, bool]] = []
        self._processes: list[asyncio.subprocess.Process] = []
        self._main: dict[str, _MainProcess] = {}
        self._fds: list[int] = []

    def add_container(self, container_id: str) -> None:
        self.containers[container_id] = ContainerState.RUNNING

    async def start_main_process(self, container_id: str, command: Sequence[str]) -> None:
        """Give a container a main process that ``attach`` can join."""
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._processes.append(process)
        main = _MainProcess(process)
        main.pump = asyncio.create_task(self._fan_out(main))
        self._main[container_id] = main

    async def _fan_out(self, main: _MainProcess) -> None:
        assert main.process.stdout is not None and main.process.stderr is not None
        async for item in _merge(main.process.stdout, main.process.stderr):
            for queue in main.subscribers:
                queue.put_nowait(item)
        for queue in main.subscribers:
            queue.put_nowait(None)

    async def exec(self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool) -> ExecSession:
        if self.containers.get(container_id) is not ContainerState.RUNNING:
            raise ContainerNotFoundError(f"container {container_id} is not running")
        self.exec_calls.append((container_id, list(command), stdin, tty))
        if tty:
            return await self._exec_tty(command)
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._processes.append(process)
        assert process.stdout is not None and process.stderr is not None
        return ExecSession(
            stdin=process.stdin, output=_merge(process.stdout, process.stderr), wait=process.wait
        )

    async def _exec_tty(self, command: Sequence[str]) -> ExecSession:
        controller, terminal = os.openpty()
        self._fds.append(controller)
        process = await asyncio.create_subprocess_exec(
            *command, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True
        )
        os.close(terminal)
        self._processes.append(process)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: _TerminalProtocol(reader), os.fdopen(controller, "rb", 0))
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(os.dup(controller), "wb", 0)
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)

        async def output() -> AsyncIterator[tuple[int, bytes]]:
            with contextlib.suppress(OSError):
                while chunk := await reader.read(65536):
                    yield 1, chunk

        def resize(width: int, height: int) -> None:
            fcntl.ioctl(controller, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

        return ExecSession(stdin=writer, output=output(), wait=process.wait, resize=resize)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        main = self._main.get(container_id)
        if main is None:
            raise ContainerNotFoundError(f"container {container_id} has no main process")
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        main.subscribers.append(queue)

        async def output() -> AsyncIterator[tuple[int, bytes]]:
            while (item := await queue.get()) is not None:
                yield item

        return ExecSession(
            stdin=main.process.stdin if stdin else None, output=output(), wait=main.process.wait
        )

    async def close(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for main in self._main.values():
            if main.pump is not None:
                main.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await main.pump


class _TerminalProtocol(asyncio.StreamReaderProtocol):
    """EIO on a pty's controller means "the terminal's last user left": an end, not an error
    (asyncio would otherwise raise it before the output still buffered)."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(None if isinstance(exc, OSError) and exc.errno == errno.EIO else exc)


async def _merge(
    stdout: asyncio.StreamReader, stderr: asyncio.StreamReader
) -> AsyncIterator[tuple[int, bytes]]:
    """Chunks of both pipes, tagged 1 and 2, until both are closed."""
    queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def pump(fd: int, stream: asyncio.StreamReader) -> None:
        try:
            while chunk := await stream.read(65536):
                queue.put_nowait((fd, chunk))
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(pump(1, stdout)), asyncio.create_task(pump(2, stderr))]
    try:
        open_pipes = 2
        while open_pipes:
            item = await queue.get()
            if item is None:
                open_pipes -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()


@dataclass
class FakeLog:
    """A log source a test controls: ``running`` is what ``still_running()`` answers."""

    path: Path
    running: bool = True


class FakePods:
    """The pod manager's side: pod objects, and the log source of each container (a
    ``FakeLog``, or the ``LogUnavailableError`` message the real manager would raise)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str, str, bool], FakeLog | str] = {}
        self.log_requests: list[tuple[str, str, str, bool]] = []

    def add(self, pod: dict[str, Any]) -> dict[str, Any]:
        metadata = pod["metadata"]
        self.items[(metadata["namespace"], metadata["name"])] = pod
        return pod

    def add_log(
        self,
        pod: str,
        container: str,
        source: Path | str,
        *,
        namespace: str = "default",
        previous: bool = False,
    ) -> FakeLog | str:
        entry: FakeLog | str = FakeLog(source) if isinstance(source, Path) else source
        self.logs[(namespace, pod, container, previous)] = entry
        return entry

    def pods(self) -> list[dict[str, Any]]:
        return list(self.items.values())

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.items.get((namespace, name))

    def log_source(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> LogSource:
        key = (namespace, pod, container, previous)
        self.log_requests.append(key)
        entry = self.logs.get(key, f'previous terminated container "{container}" in pod "{pod}" not found')
        if isinstance(entry, str):
            raise LogUnavailableError(entry)
        return LogSource(path=entry.path, container_id=f"{container}-id", still_running=lambda: entry.running)


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    uid: str = "uid-1",
    containers: Sequence[str] = ("main",),
    running: dict[str, str] | None = None,
    pod_ip: str = "127.0.0.1",
    node_name: str = "node-1",
) -> dict[str, Any]:
    """A pod whose containers in ``running`` (name -> runtime id) are running."""
    running = running if running is not None else {name: f"{name}-id" for name in containers}
    statuses = []
    for container in containers:
        if container in running:
            statuses.append(
                {
                    "name": container,
                    "containerID": f"kubelab://{running[container]}",
                    "state": {"running": {"startedAt": "2026-11-25T10:00:00Z"}},
                    "ready": True,
                    "restartCount": 0,
                }
            )
        else:
            statuses.append({"name": container, "state": {"waiting": {"reason": "ContainerCreating"}}})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": "2026-11-25T09:59:00Z",
        },
        "spec": {"nodeName": node_name, "containers": [{"name": c, "image": "kubelab"} for c in containers]},
        "status": {
            "phase": "Running",
            "podIP": pod_ip,
            "startTime": "2026-11-25T09:59:30Z",
            "containerStatuses": statuses,
        },
    }


class FakeUsage:
    def __init__(
        self, *, node: Usage | None, containers: dict[str, Usage], fs: FsUsage | None = None
    ) -> None:
        self.node = node
        self.containers = containers
        self.fs = fs

    def node_usage(self) -> Usage | None:
        return self.node

    def node_fs(self) -> FsUsage | None:
        return self.fs

    def container_usage(self, container_id: str) -> Usage | None:
        return self.containers.get(container_id)


@dataclass
class RunningKubelet:
    server: KubeletServer
    runtime: FakeRuntime
    pods: FakePods
    usage: FakeUsage
    session: aiohttp.ClientSession  # presents the API server's kubelet-client certificate
    client_context: ssl.SSLContext
    pki: PKIFiles

    @property
    def url(self) -> str:
        return self.server.url


def client_context(pki: PKIFiles, *, with_certificate: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if with_certificate:
        context.load_cert_chain(str(pki.apiserver_kubelet_client_cert), str(pki.apiserver_kubelet_client_key))
    return context


@asynccontextmanager
async def running_kubelet(
    pki_dir: Path, *, node_name: str = "node-1", address: str = "127.0.0.1", port: int | None = None
) -> AsyncIterator[RunningKubelet]:
    pki = PKIFiles(pki_dir)
    ca, _ = load_or_create_ca(cert_file=pki.ca_cert, key_file=pki.ca_key)
    ensure_apiserver_kubelet_client_certificate(files=pki, ca=ca)
    config = KubeletServerConfig.for_node(
        pki=pki, node_name=node_name, address=address, port=port or free_port()
    )
    runtime, pods = FakeRuntime(), FakePods()
    usage = FakeUsage(node=None, containers={})
    server = KubeletServer(config=config, pods=pods, runtime=runtime, usage=usage)  # type: ignore[arg-type]
    await server.start()
    context = client_context(pki)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    try:
        yield RunningKubelet(
            server=server,
            runtime=runtime,
            pods=pods,
            usage=usage,
            session=session,
            client_context=context,
            pki=pki,
        )
    finally:
        await session.close()
        await server.stop()
        await runtime.close()
