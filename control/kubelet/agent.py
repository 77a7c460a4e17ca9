"""The node agent's kubelet: wires the runtime, the Node, the pod workers and the stats
together and runs them until told to stop.

``kubelab node`` calls :func:`run_node_agent` with the node's name and IP (node N:
``127.100.0.N``) and a data directory **of its own** (the lab should pass
``<data-dir>/nodes/<name>``): the directory holds ``pods/`` (sandboxes, volumes, CRI log
files), ``containers/`` (log links) and ``ipam/``, like ``/var/lib/kubelet`` plus
``/var/log/pods`` and ``/var/log/containers`` on a real node.

Start-up order: the runtime (re-adopting containers left by a previous run), the Node
registration (retried until the API server answers), informers for this node's pods, all
Services (for service environment variables) and this Node (for ``spec.podCIDR``), then
the pod workers, then the loops: Node status and Lease, stats housekeeping, and the
*servers*.

**The hook for the kubelet's HTTP API**: pass ``servers=[serve_kubelet_api]`` where each
server is ``async def serve(agent: NodeAgent) -> None`` running until cancelled. A
:class:`NodeAgent` gives it the runtime (exec, attach, port-forward), the pod manager
(``running_pods()``, ``find()``, ``log_source()`` with
:func:`control.kubelet.logs.read_container_log`), the stats (a
:class:`control.kubelet.summary.UsageSource`), the node's name and IP and the API client.

Stopping (``stop`` set): the servers and loops are cancelled, then the pod workers; with
``stop_containers_on_exit`` (the default, for ``kubelab down``) every container is
stopped (SIGTERM, then SIGKILL after ``shutdown_grace_seconds``), otherwise the containers
keep running and the next agent on this directory re-adopts them — as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from control.client import errors
from control.client.config import ClientConfig
from control.client.informer import InformerFactory
from control.client.rest import Resource, RESTClient
from control.controllers.events import EventRecorder
from control.kubelet.node import NODES, NodeOptions, NodeStatus
from control.kubelet.pods import KubeletOptions, PodManager
from control.kubelet.runtime.process import ProcessRuntime, RuntimeOptions
from control.kubelet.stats import StatsProvider
from control.kubelet.status import PODS

log = logging.getLogger("kubelab.kubelet")

SERVICES = Resource(group="", version="v1", plural="services", kind="Service")
RETRY_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class NodeAgentOptions:
    kubelet: KubeletOptions = field(default_factory=KubeletOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    node: NodeOptions = field(default_factory=NodeOptions)
    stop_containers_on_exit: bool = True
    shutdown_grace_seconds: float = 10.0


@dataclass(kw_only=True)
class NodeAgent:
    """What the node agent's servers (the kubelet HTTP API) work with."""

    node_name: str
    node_ip: str
    data_dir: Path
    client: RESTClient
    runtime: ProcessRuntime
    pods: PodManager
    stats: StatsProvider
    node: NodeStatus


AgentServer = Callable[[NodeAgent], Awaitable[None]]


async def _until(stop: asyncio.Event, attempt: Callable[[], Awaitable[bool]], *, what: str) -> bool:
    """Retry ``attempt`` (True = done) every second until it succeeds or ``stop`` is set."""
    while not stop.is_set():
        try:
            if await attempt():
                return True
        except errors.RequestError as exc:
            log.warning("%s failed (%s); retrying", what, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RETRY_SECONDS)
    return False


def _prepare_directory(data_dir: Path) -> Path:
    data_dir = data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


async def run_node_agent(
    *,
    config: ClientConfig,
    node_name: str,
    node_ip: str,
    data_dir: Path,
    stop: asyncio.Event,
    options: NodeAgentOptions | None = None,
    servers: Sequence[AgentServer] = (),
    on_ready: Callable[[NodeAgent], None] | None = None,
) -> None:
    """Run the kubelet of node ``node_name`` until ``stop`` is set (see the module doc)."""
    options = options or NodeAgentOptions()
    data_dir = _prepare_directory(data_dir)
    async with RESTClient(config, user_agent=f"kubelet/v1.33.0-kubelab ({node_name})") as client:
        runtime = ProcessRuntime(data_dir=data_dir, node_name=node_name, options=options.runtime)
        await runtime.start()
        factory = InformerFactory(client)
        manager: PodManager | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            node = NodeStatus(
                client=client, node_name=node_name, node_ip=node_ip, data_dir=data_dir, options=options.node
            )

            async def register() -> bool:
                await node.register()
                return True

            if not await _until(stop, register, what=f"registering node {node_name}"):
                return
            pods = factory.informer(PODS, field_selector=f"spec.nodeName={node_name}")
            services = factory.informer(SERVICES)
            nodes = factory.informer(NODES, field_selector=f"metadata.name={node_name}")
            nodes.add_event_handler(on_add=node.observe, on_update=lambda _old, new: node.observe(new))
            manager = PodManager(
                client=client,
                runtime=runtime,
                node=node,
                pods=pods,
                services=services,
                recorder=EventRecorder(client=client, component="kubelet", host=node_name),
                data_dir=data_dir,
                options=options.kubelet,
                namespaces=runtime.namespaces,
                limitations=runtime.limitations(),
            )
            factory.start()

            async def synced() -> bool:
                return await factory.wait_for_sync(timeout=RETRY_SECONDS)

            if not await _until(stop, synced, what="listing pods, services and the node"):
                return
            await manager.start()
            stats = StatsProvider(runtime=runtime, data_dir=data_dir)
            agent = NodeAgent(
                node_name=node_name,
                node_ip=node_ip,
                data_dir=data_dir,
                client=client,
                runtime=runtime,
                pods=manager,
                stats=stats,
                node=node,
            )
            tasks = [
                asyncio.create_task(node.run(), name="node status and lease"),
                asyncio.create_task(stats.housekeeping(), name="stats housekeeping"),
                *(
                    asyncio.create_task(server(agent), name=f"server {index}")
                    for index, server in enumerate(servers)
                ),
            ]
            log.info("node agent %s (%s) ready: %d pods", node_name, node_ip, len(manager.workers))
            if on_ready is not None:
                on_ready(agent)
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            for task in done:
                if task is not stopping:
                    task.result()  # a loop or server that ended on its own: re-raise its error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if manager is not None:
                await manager.shutdown(
                    stop_containers=options.stop_containers_on_exit,
                    grace_seconds=options.shutdown_grace_seconds,
                )
            await factory.shutdown()
            await runtime.close()
            log.info("node agent %s stopped", node_name)
