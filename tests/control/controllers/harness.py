"""A cluster for controller tests: the real API server (in this loop, over HTTPS), a client
with the lab's admin kubeconfig, a shared informer factory, and the controllers under test
running as the controller manager would run them — until the test leaves the block.

No kubelet exists here: tests play it by creating pods, binding them to a Node object they
created, and writing ``status`` (pod IP, the Ready condition) through ``pods/status``; and
they finish graceful deletions with a zero grace period, as a kubelet does.

Waiting is always for a condition, read from the API server, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from control.client import errors
from control.client.config import load_kubeconfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers.kinds import NAMESPACES, NODES, PODS
from control.controllers.manager import ControllerContext, RunnableController
from tests.control.apiserver.conftest import RunningServer

T = TypeVar("T")
WAIT_TIMEOUT = 10.0
_POLL = 0.02


@dataclass
class Cluster:
    client: RESTClient
    ctx: ControllerContext
    controllers: list[RunnableController]

    # A timeout argument, not asyncio.timeout(): the failure names what was awaited and what was seen.
    async def wait_for(
        self,
        check: Callable[[], Awaitable[T | None]],
        *,
        what: str,
        timeout: float = WAIT_TIMEOUT,  # noqa: ASYNC109
    ) -> T:
        """Poll ``check`` until it returns something other than None, False or an empty list/dict; fail
        after ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = await check()
            except errors.NotFoundError as exc:
                last = exc
            else:
                if last is not None and last is not False and last != [] and last != {}:
                    return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")
            await asyncio.sleep(_POLL)

    async def wait_gone(self, resource: Any, name: str, *, namespace: str | None = None) -> None:
        async def gone() -> bool:
            try:
                await self.client.get(resource, name, namespace=namespace)
            except errors.NotFoundError:
                return True
            return False

        await self.wait_for(gone, what=f"{resource.plural} {namespace or ''}/{name} to be deleted")

    # --- playing the kubelet ----------------------------------------------------------------

    async def create_node(self, name: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.client.create(NODES, {"metadata": {"name": name, "labels": labels or {}}})

    async def create_namespace(self, name: str) -> dict[str, Any]:
        return await self.client.create(NAMESPACES, {"metadata": {"name": name}})

    async def create_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        node: str | None = "node-1",
        ports: Iterable[dict[str, Any]] = (),
        owner: dict[str, Any] | None = None,
        hostname: str | None = None,
        subdomain: str | None = None,
        grace: int | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox", "ports": list(ports)}]}
        if node:
            spec["nodeName"] = node
        if hostname:
            spec["hostname"] = hostname
        if subdomain:
            spec["subdomain"] = subdomain
        if grace is not None:
            spec["terminationGracePeriodSeconds"] = grace
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
        if owner is not None:
            metadata["ownerReferences"] = [owner_reference(owner)]
        return await self.client.create(PODS, {"metadata": metadata, "spec": spec})

    async def set_pod_status(
        self, name: str, *, ip: str | None, ready: bool, namespace: str = "default", phase: str = "Running"
    ) -> dict[str, Any]:
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        return await self.client.patch(
            PODS, name, {"status": status}, namespace=namespace, subresource="status"
        )

    async def finish_pod_deletion(self, name: str, *, namespace: str = "default") -> None:
        """What a kubelet does once the containers stopped: delete with no grace left."""
        with contextlib.suppress(errors.NotFoundError):
            await self.client.delete(PODS, name, namespace=namespace, grace_period_seconds=0)


def _ours(task: asyncio.Task[Any]) -> bool:
    """Tasks of the controllers and the client, not the API server's or pytest's own."""
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return "/control/apiserver/" not in filename and "pytest_asyncio" not in filename


def owner_reference(owner: dict[str, Any], *, controller: bool = True, block: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


@asynccontextmanager
async def running(
    server: RunningServer, *builders: Callable[[ControllerContext], RunnableController]
) -> AsyncIterator[Cluster]:
    """Build the controllers, start the informers, run the controllers; stop all of it after."""
    tasks_before = asyncio.all_tasks()
    client = RESTClient(load_kubeconfig(server.data_dir / "kubeconfig"))
    informers = InformerFactory(client, detect_mutations=True)
    ctx = ControllerContext(client=client, informers=informers)
    controllers = [build(ctx) for build in builders]
    informers.start()
    tasks = [asyncio.create_task(controller.run(), name=controller.name) for controller in controllers]
    try:
        yield Cluster(client=client, ctx=ctx, controllers=controllers)
        for task in tasks:
            if task.done():
                task.result()  # a controller that crashed fails the test
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for informer in informers.informers():
            informer.cache.verify_unmutated()
        await informers.shutdown()
        await client.close()
        for _ in range(10):  # let cancelled tasks finish unwinding
            await asyncio.sleep(0)
        leaked = [task for task in asyncio.all_tasks() - tasks_before if not task.done() and _ours(task)]
        assert not leaked, f"the controllers left tasks running: {leaked}"
