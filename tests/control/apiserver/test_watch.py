"""WATCH over real HTTPS: initial events, resourceVersion semantics, selectors,
bookmarks, sendInitialEvents, Table events, timeouts and 410 Gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson

from tests.control.apiserver.conftest import RunningServer, running_apiserver

CM = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, labels: dict | None = None, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


class EventStream:
    def __init__(self, response) -> None:
        self.response = response

    async def next(self, within: float = 10.0) -> dict:
        line = await asyncio.wait_for(self.response.content.readline(), within)
        assert line, "the watch ended"
        return orjson.loads(line)

    async def until(self, predicate, within: float = 10.0) -> dict:
        while True:
            event = await self.next(within)
            if predicate(event):
                return event


@asynccontextmanager
async def watching(
    server: RunningServer, path: str = CM, headers: dict | None = None, **params: str
) -> AsyncIterator[EventStream]:
    query = {"watch": "true", **params}
    async with server.session.get(server.url + path, params=query, headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/json")
        yield EventStream(response)


async def test_from_zero_replays_current_objects_then_follows(apiserver: RunningServer):
    await apiserver.request("POST", CM, body=configmap("w0"))
    async with watching(apiserver, resourceVersion="0") as events:
        first = await events.until(lambda e: e["object"]["metadata"]["name"] == "w0")
        assert first["type"] == "ADDED"
        assert first["object"]["kind"] == "ConfigMap" and first["object"]["apiVersion"] == "v1"
        await apiserver.request(
            "PATCH", f"{CM}/w0", body={"data": {"a": "b"}}, content_type="application/merge-patch+json"
        )
        modified = await events.next()
        assert modified["type"] == "MODIFIED" and modified["object"]["data"] == {"a": "b"}
        await apiserver.request("DELETE", f"{CM}/w0")
        deleted = await events.next()
        assert deleted["type"] == "DELETED" and deleted["object"]["metadata"]["name"] == "w0"
        assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(
            modified["object"]["metadata"]["resourceVersion"]
        )


async def test_from_a_resource_version_delivers_exactly_the_later_changes(apiserver: RunningServer):
    _, one = await apiserver.request("POST", CM, body=configmap("rv1"))
    _, two = await apiserver.request("POST", CM, body=configmap("rv2"))
    async with watching(apiserver, resourceVersion=one["metadata"]["resourceVersion"]) as events:
        event = await events.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "rv2")
        assert event["object"]["metadata"]["resourceVersion"] == two["metadata"]["resourceVersion"]


async def test_selector_transitions_become_added_and_deleted(apiserver: RunningServer):
    await apiserver.request("POST", CM, body=configmap("sel", labels={"tier": "back"}))
    _, listing = await apiserver.request("GET", CM)
    async with watching(
        apiserver, labelSelector="tier=front", resourceVersion=listing["metadata"]["resourceVersion"]
    ) as events:
        patch = {"metadata": {"labels": {"tier": "front"}}}
        await apiserver.request("PATCH", f"{CM}/sel", body=patch, content_type="application/merge-patch+json")
        assert (await events.next())["type"] == "ADDED"
        await apiserver.request(
            "PATCH", f"{CM}/sel", body={"data": {"x": "1"}}, content_type="application/merge-patch+json"
        )
        assert (await events.next())["type"] == "MODIFIED"
        patch = {"metadata": {"labels": {"tier": "back"}}}
        await apiserver.request("PATCH", f"{CM}/sel", body=patch, content_type="application/merge-patch+json")
        left = await events.next()
        assert left["type"] == "DELETED" and left["object"]["metadata"]["labels"] == {"tier": "back"}


async def test_send_initial_events_ends_with_the_annotated_bookmark(apiserver: RunningServer):
    await apiserver.request("POST", CM, body=configmap("init"))
    async with watching(
        apiserver, sendInitialEvents="true", resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true"
    ) as events:
        seen = []
        while True:
            event = await events.next()
            if event["type"] == "BOOKMARK":
                break
            seen.append(event)
        assert all(e["type"] == "ADDED" for e in seen) and "init" in {
            e["object"]["metadata"]["name"] for e in seen
        }
        assert event["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert event["object"]["kind"] == "ConfigMap"
    status, _ = await apiserver.request("GET", CM, params={"watch": "true", "sendInitialEvents": "true"})
    assert status == 422


async def test_timeout_ends_the_stream_with_a_bookmark(apiserver: RunningServer):
    _, listing = await apiserver.request("GET", CM)
    async with watching(
        apiserver,
        resourceVersion=listing["metadata"]["resourceVersion"],
        timeoutSeconds="1",
        allowWatchBookmarks="true",
    ) as events:
        bookmark = await events.next(within=10)
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["resourceVersion"] == listing["metadata"]["resourceVersion"]
        assert await asyncio.wait_for(events.response.content.readline(), 10) == b""


async def test_table_watch_events(apiserver: RunningServer):
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    _, listing = await apiserver.request("GET", CM)
    async with watching(
        apiserver, headers=headers, resourceVersion=listing["metadata"]["resourceVersion"]
    ) as events:
        await apiserver.request("POST", CM, body=configmap("tw", a="1"))
        event = await events.next()
        assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
        assert event["object"]["rows"][0]["cells"][:2] == ["tw", 1]


async def test_a_compacted_resource_version_gets_410_in_the_stream(tmp_path):
    async with running_apiserver(
        tmp_path, compaction_interval_seconds=0.05, compaction_keep_revisions=1
    ) as server:
        _, first = await server.request("POST", CM, body=configmap("old"))
        old_rv = first["metadata"]["resourceVersion"]
        while True:  # write until the server's own compaction has passed the first revision
            await server.request(
                "PATCH",
                f"{CM}/old",
                body={"data": {"t": str(time.monotonic())}},
                content_type="application/merge-patch+json",
            )
            async with watching(server, resourceVersion=old_rv) as events:
                event = await events.next()
            if event["type"] == "ERROR":
                break
            await asyncio.sleep(0.05)
        status = event["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        assert status["message"].startswith(f"too old resource version: {old_rv} (")
        code, body = await server.request("GET", CM, params={"resourceVersion": old_rv, "limit": "1"})
        assert (code, body["reason"]) == (410, "Expired")
