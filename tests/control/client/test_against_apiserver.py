"""The client against kubelab's real API server (HTTPS, lab PKI, the lab's own kubeconfig).

The fakes check the client's wire behaviour in detail; these check that it and the server agree.
The server comes from the API server tests' fixture, so both suites start it the same way.
"""

from __future__ import annotations

import asyncio

import pytest

from control.client.config import load_kubeconfig
from control.client.discovery import Discovery
from control.client.errors import AlreadyExistsError, ConflictError, InvalidError, NotFoundError
from control.client.informer import InformerFactory
from control.client.rest import EventType, Resource, RESTClient
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")


def configmap(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": labels}, "data": {"k": name}}


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


async def test_discovery_resolves_kinds_over_mutual_tls(client):
    discovery = Discovery(client)
    assert (await discovery.server_version())["gitVersion"].startswith("v1.")
    assert await discovery.resource_for(api_version="apps/v1", kind="Deployment") == DEPLOYMENTS
    assert (await discovery.resource_for(api_version="v1", kind="Namespace")).namespaced is False


async def test_crud_and_status_errors(client):
    created = await client.create(CONFIGMAPS, configmap("a"))
    assert created["metadata"]["resourceVersion"]
    fetched = await client.get(CONFIGMAPS, "a", namespace="default")
    assert fetched["data"] == {"k": "a"}
    with pytest.raises(AlreadyExistsError):
        await client.create(CONFIGMAPS, configmap("a"))
    changed = {**fetched, "data": {"k": "changed"}}
    replaced = await client.replace(CONFIGMAPS, changed)
    assert replaced["data"] == {"k": "changed"}
    with pytest.raises(ConflictError):
        await client.replace(CONFIGMAPS, changed)  # its resourceVersion is stale now
    await client.delete(CONFIGMAPS, "a", namespace="default")
    with pytest.raises(NotFoundError):
        await client.get(CONFIGMAPS, "a", namespace="default")
    with pytest.raises(InvalidError) as invalid:
        await client.create(
            DEPLOYMENTS, {"metadata": {"name": "bad", "namespace": "default"}, "spec": {"replicas": -1}}
        )
    assert any(cause.get("field") == "spec.replicas" for cause in invalid.value.causes)


async def test_paged_lists_selectors_and_collection_delete(client):
    for index in range(7):
        await client.create(CONFIGMAPS, configmap(f"p{index}", app="paged" if index % 2 else "other"))
    page = await client.list(CONFIGMAPS, namespace="default", limit=3)
    assert len(page["items"]) == 3 and page["metadata"].get("continue")
    assert page["items"][0]["kind"] == "ConfigMap"
    everything = await client.list_all(CONFIGMAPS, namespace="default", page_size=3)
    assert sorted(
        i["metadata"]["name"] for i in everything["items"] if i["metadata"]["name"].startswith("p")
    ) == [f"p{i}" for i in range(7)]
    selected = await client.list(CONFIGMAPS, label_selector="app=paged", field_selector="metadata.name!=p1")
    assert sorted(i["metadata"]["name"] for i in selected["items"]) == ["p3", "p5"]
    await client.delete_collection(CONFIGMAPS, namespace="default", label_selector="app=paged")
    remaining = await client.list(CONFIGMAPS, namespace="default", label_selector="app")
    assert sorted(i["metadata"]["name"] for i in remaining["items"]) == ["p0", "p2", "p4", "p6"]


async def test_watch_delivers_changes_after_a_resource_version(client):
    listed = await client.list(CONFIGMAPS, namespace="default")
    events = await client.watch(
        CONFIGMAPS,
        namespace="default",
        resource_version=listed["metadata"]["resourceVersion"],
        allow_watch_bookmarks=True,
        timeout_seconds=30,
    )
    async with events:
        await client.create(CONFIGMAPS, configmap("w"))
        await client.delete(CONFIGMAPS, "w", namespace="default")
        seen = []
        async with asyncio.timeout(10):
            async for event in events:
                if event.type is not EventType.BOOKMARK:
                    seen.append((event.type, event.object["kind"], event.object["metadata"]["name"]))
                if len(seen) == 2:
                    break
    assert seen == [(EventType.ADDED, "ConfigMap", "w"), (EventType.DELETED, "ConfigMap", "w")]


async def test_watch_list_ends_its_initial_events_with_the_bookmark(client):
    await client.create(CONFIGMAPS, configmap("initial"))
    events = await client.watch(
        CONFIGMAPS,
        namespace="default",
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=30,
    )
    names = []
    async with events:
        async with asyncio.timeout(10):
            async for event in events:
                if event.type is EventType.BOOKMARK:
                    assert event.object["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
                    break
                names.append(event.object["metadata"]["name"])
    assert "initial" in names


@pytest.mark.parametrize("use_watch_list", [False, True])
async def test_informers_sync_and_follow_changes(client, use_watch_list):
    await client.create(CONFIGMAPS, configmap("before"))
    factory = InformerFactory(client, use_watch_list=use_watch_list)
    informer = factory.informer(CONFIGMAPS, namespace="default")
    added, deleted = [], []
    changed = asyncio.Event()

    def record(names: list[str]):
        def handler(obj: dict) -> None:
            names.append(obj["metadata"]["name"])
            changed.set()

        return handler

    informer.add_event_handler(on_add=record(added), on_delete=record(deleted))
    factory.start()
    try:
        assert await factory.wait_for_sync(timeout=10)
        assert "before" in added and informer.cache.get_by_key("default/before") is not None
        await client.create(CONFIGMAPS, configmap("after"))
        await client.delete(CONFIGMAPS, "before", namespace="default")
        async with asyncio.timeout(10):
            while not ("after" in added and "before" in deleted):
                changed.clear()
                await changed.wait()
        assert informer.cache.get_by_key("default/before") is None
    finally:
        await factory.shutdown()
