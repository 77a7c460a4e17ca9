"""Fixtures for the scheduler tests: no leaked tasks, and for integration tests a real API server
(the API server tests' fixture), an admin client, and a running ``run_scheduler``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from control.client.config import load_kubeconfig
from control.client.rest import Resource, RESTClient
from control.scheduler import run_scheduler
from control.scheduler.scheduler import NODES, PODS
from tests.control.apiserver.conftest import RunningServer, apiserver  # noqa: F401  (shared fixture)
from tests.control.client.conftest import no_leaks  # noqa: F401  (autouse: fail on leaked tasks)

EVENTS = Resource(group="", version="v1", plural="events", kind="Event")


@pytest.fixture
async def client(apiserver: RunningServer) -> AsyncIterator[RESTClient]:  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


@pytest.fixture
async def scheduler(apiserver: RunningServer) -> AsyncIterator[CollectorRegistry]:  # noqa: F811
    """``run_scheduler`` against the test's API server; yields the registry holding its metrics."""
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_scheduler(config=load_kubeconfig(apiserver.data_dir / "kubeconfig"), stop=stop, registry=registry)
    )
    yield registry
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def wait_for_pods(
    client: RESTClient,
    condition: Callable[[dict[str, dict[str, Any]]], bool],
    *,
    namespace: str = "default",
    within: float = 20.0,
) -> dict[str, dict[str, Any]]:
    """Watch the namespace's pods until ``condition(pods by name)`` holds; returns that state."""
    listed = await client.list(PODS, namespace=namespace)
    pods = {p["metadata"]["name"]: p for p in listed["items"]}
    if condition(pods):
        return pods
    async with asyncio.timeout(within):
        async with await client.watch(
            PODS, namespace=namespace, resource_version=listed["metadata"]["resourceVersion"]
        ) as events:
            async for event in events:
                name = event.object["metadata"]["name"]
                if event.type == "DELETED":
                    pods.pop(name, None)
                else:
                    pods[name] = event.object
                if condition(pods):
                    return pods
    raise AssertionError(f"pods never reached the expected state: {sorted(pods)}")


async def wait_for_events(
    client: RESTClient,
    condition: Callable[[list[dict[str, Any]]], bool],
    *,
    namespace: str = "default",
    within: float = 20.0,
) -> list[dict[str, Any]]:
    """Watch Events until ``condition(all events)`` holds; returns them."""
    listed = await client.list(EVENTS, namespace=namespace)
    seen = {e["metadata"]["name"]: e for e in listed["items"]}
    if condition(list(seen.values())):
        return list(seen.values())
    async with asyncio.timeout(within):
        async with await client.watch(
            EVENTS, namespace=namespace, resource_version=listed["metadata"]["resourceVersion"]
        ) as stream:
            async for event in stream:
                seen[event.object["metadata"]["name"]] = event.object
                if condition(list(seen.values())):
                    return list(seen.values())
    raise AssertionError("the expected events never came")


async def create_nodes(client: RESTClient, *nodes: dict[str, Any]) -> None:
    for body in nodes:
        await client.create(NODES, body)
