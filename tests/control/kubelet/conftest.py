"""Fixtures for the kubelet tests: an API server in the test's event loop, node agents on
it, and a check that no container a test started outlives the test.

``cluster`` gives the API server with a client; ``cluster.start_agent()`` runs a node agent
(``node-1``, ``127.100.0.1`` by default) with short back-offs, in a data directory of the
test's temp dir. Every agent is stopped at the end with its containers, and then every
container record the agents left on disk is checked: its shim and its process must be
gone (they are children of the fork server, which the suite-wide child-process guard
does not see).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from control.client import ClientConfig, RESTClient, errors
from control.controllers.kinds import EVENTS, SERVICE_ACCOUNTS
from control.kubelet.agent import NodeAgent, NodeAgentOptions, run_node_agent
from control.kubelet.pods import KubeletOptions
from control.kubelet.runtime import procfs
from control.kubelet.status import PODS
from tests.control.apiserver.conftest import RunningServer, running_apiserver

Obj = dict[str, Any]
FAST = KubeletOptions(
    backoff_initial=1.0, backoff_max=4.0, backoff_reset=600.0, resync_interval=2.0, retry_interval=0.5
)


def leftover_processes(data_dir: Path) -> list[str]:
    """Shims or containers recorded under ``data_dir`` that are still alive."""
    alive = []
    for state_file in data_dir.glob("**/containers/*/state.json"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        for pid_key, start_key in (("shim_pid", "shim_start"), ("pid", "pid_start")):
            pid, start = state.get(pid_key), state.get(start_key)
            if pid and start and procfs.is_alive(pid, start):
                alive.append(f"{pid_key} {pid} of {state_file.parent.name[:12]}")
    return alive


def kill_leftovers(data_dir: Path) -> None:
    """Kill what :func:`leftover_processes` found, so one failing test cannot disturb the next."""
    for state_file in data_dir.glob("**/containers/*/state.json"):
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_file.read_text())
            if procfs.is_alive(state["pid"], state["pid_start"]):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(state["pid"], signal.SIGKILL)
            if procfs.is_alive(state["shim_pid"], state["shim_start"]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state["shim_pid"], signal.SIGKILL)


def unmount_below(root: Path) -> list[str]:
    """Unmount (lazily) whatever is still mounted under ``root`` on the host; returns what was."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point.startswith(str(root) + "/"):
            found.append(mount_point)
    for mount_point in sorted(found, reverse=True):
        subprocess.run(["umount", "--lazy", mount_point], check=False, capture_output=True)
    return found


@dataclass
class RunningAgent:
    agent: NodeAgent
    stop_event: asyncio.Event
    task: asyncio.Task[None]
    data_dir: Path

    async def stop(self) -> None:
        """Stop the agent; one that has not stopped within 45 s fails the test with the stack of
        every task still pending (a hang in CI is then told where it waits)."""
        self.stop_event.set()
        done, _ = await asyncio.wait({self.task}, timeout=45)
        if not done:
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            stacks = []
            for task in pending:
                frames = task.get_stack(limit=12)
                where = " <- ".join(
                    f"{f.f_code.co_name} ({Path(f.f_code.co_filename).name}:{f.f_lineno})"
                    for f in reversed(frames)
                )
                stacks.append(f"{task.get_name()}: {where}")
            raise AssertionError("the node agent did not stop in 45 s; pending tasks:\n" + "\n".join(stacks))
        self.task.result()


@dataclass
class Cluster:
    server: RunningServer
    config: ClientConfig
    client: RESTClient
    root: Path
    agents: list[RunningAgent] = field(default_factory=list)

    async def start_agent(
        self,
        *,
        node_name: str = "node-1",
        node_ip: str = "127.100.0.1",
        options: NodeAgentOptions | None = None,
    ) -> RunningAgent:
        stop = asyncio.Event()
        ready: asyncio.Future[NodeAgent] = asyncio.get_running_loop().create_future()
        data_dir = self.root / node_name
        task = asyncio.create_task(
            run_node_agent(
                config=self.config,
                node_name=node_name,
                node_ip=node_ip,
                data_dir=data_dir,
                stop=stop,
                options=options or NodeAgentOptions(kubelet=FAST, shutdown_grace_seconds=2.0),
                on_ready=lambda agent: ready.set_result(agent) if not ready.done() else None,
            )
        )
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready.done(), "the node agent did not become ready in 30 s"
        running = RunningAgent(agent=ready.result(), stop_event=stop, task=task, data_dir=data_dir)
        self.agents.append(running)
        return running

    async def create_pod(self, body: Obj) -> Obj:
        return await self.client.create(PODS, body, namespace=body["metadata"].get("namespace", "default"))

    async def get_pod(self, name: str, namespace: str = "default") -> Obj | None:
        try:
            return await self.client.get(PODS, name, namespace=namespace)
        except errors.NotFoundError:
            return None

    async def wait_pod(
        self, name: str, predicate: Callable[[Obj], bool], *, namespace: str = "default", within: float = 20.0
    ) -> Obj:
        """Poll the pod until ``predicate`` holds; fail with its last status otherwise."""
        deadline = asyncio.get_running_loop().time() + within
        pod = None
        while asyncio.get_running_loop().time() < deadline:
            pod = await self.get_pod(name, namespace)
            if pod is not None and predicate(pod):
                return pod
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"pod {namespace}/{name} never matched; last seen: {json.dumps((pod or {}).get('status'))}"
        )

    async def wait_gone(self, name: str, *, namespace: str = "default", within: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if await self.get_pod(name, namespace) is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"pod {namespace}/{name} was not deleted")

    async def events(self, name: str, namespace: str = "default") -> list[Obj]:
        listing = await self.client.list(EVENTS, namespace=namespace)
        return [event for event in listing["items"] if event["involvedObject"].get("name") == name]

    async def wait_event(self, name: str, reason: str, *, contains: str = "", within: float = 20.0) -> Obj:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for event in await self.events(name):
                if event["reason"] == reason and contains in event["message"]:
                    return event
            await asyncio.sleep(0.05)
        seen = [(event["reason"], event["message"]) for event in await self.events(name)]
        raise AssertionError(f"no {reason} event containing {contains!r} for pod {name}; events: {seen}")


def pod(name: str, *containers: Obj, namespace: str = "default", node: str = "node-1", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "containers": list(containers),
            "terminationGracePeriodSeconds": 5,
            **spec,
        },
    }


def shell(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def container_status(pod_obj: Obj, name: str, *, init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in (pod_obj.get("status") or {}).get(key) or ():
        if status["name"] == name:
            return status
    return {}


def state_of(pod_obj: Obj, name: str, *, init: bool = False) -> Obj:
    return container_status(pod_obj, name, init=init).get("state") or {}


def condition(pod_obj: Obj, kind: str) -> Obj:
    for entry in (pod_obj.get("status") or {}).get("conditions") or ():
        if entry["type"] == kind:
            return entry
    return {}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_apiserver(tmp_path / "api") as server:
        config = ClientConfig(
            server=server.url,
            ca_data=server.ca_file.read_bytes(),
            client_cert_data=server.cert_file.read_bytes(),
            client_key_data=server.key_file.read_bytes(),
        )
        async with RESTClient(config) as client:
            # Pods mount the ServiceAccount admission plugin's token volume (the lab's server options
            # issue tokens); the ServiceAccount controller that makes "default" does not run here.
            await client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default"}}, namespace="default")
            lab = Cluster(server=server, config=config, client=client, root=tmp_path / "nodes")
            try:
                yield lab
            finally:
                try:
                    for agent in lab.agents:
                        if not agent.task.done():
                            await agent.stop()
                finally:  # an agent that would not stop still has its containers and mounts cleared
                    for agent in lab.agents:
                        agent.task.cancel()
                    leftovers = leftover_processes(tmp_path / "nodes")
                    kill_leftovers(tmp_path / "nodes")
                    mounts = unmount_below(tmp_path)
                assert not leftovers, f"containers outlived the test: {leftovers}"
                assert not mounts, f"mounts outlived the test: {mounts}"
