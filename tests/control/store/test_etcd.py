"""What only the etcd store does: endpoint fail-over, unreachable clusters, compaction done
behind its back, and the ``compact_rev_key`` it shares with kube-apiserver. The shared
contract is in ``test_contract.py``."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import aiohttp
import pytest

from control.store import CompactedError, EtcdStore, StoreUnavailableError, open_store
from control.store.etcd import COMPACT_REV_KEY

from .conftest import EtcdServer


def dead_endpoint() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_unreachable_cluster_fails_start_with_unavailable() -> None:
    store = EtcdStore([dead_endpoint(), dead_endpoint()], request_timeout=2)

    with pytest.raises(StoreUnavailableError, match="no etcd endpoint answered"):
        await store.start()
    await store.close()


async def test_use_before_start_and_after_close_is_refused() -> None:
    store = EtcdStore([dead_endpoint()])
    with pytest.raises(StoreUnavailableError, match="not started"):
        await store.get("/k")
    await store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await store.get("/k")
    with pytest.raises(StoreUnavailableError, match="closed"):
        await store.start()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        EtcdStore([])
    with pytest.raises(ValueError, match="timeout"):
        EtcdStore(["http://127.0.0.1:2379"], request_timeout=0)


@pytest.mark.etcd
async def test_requests_fail_over_to_the_next_endpoint(etcd_server: EtcdServer, prefix: str) -> None:
    host_port = etcd_server.endpoint.removeprefix("http://")
    dead = dead_endpoint().removeprefix("http://")
    store = open_store(f"etcd://{dead},{host_port}", data_dir=Path("/unused"))
    await store.start()
    try:
        created = await store.create(prefix + "a", b"1")
        assert await store.get(prefix + "a") == created
        watcher = store.watch(prefix, start_revision=created.mod_revision)
        assert [event.kv for event in await anext(watcher)] == [created]
        await watcher.aclose()
    finally:
        await store.close()


@pytest.mark.etcd
async def test_compacted_revision_is_kept_in_compact_rev_key(etcd_server: EtcdServer, prefix: str) -> None:
    store = EtcdStore([etcd_server.endpoint])
    await store.start()
    try:
        created = await store.create(prefix + "a", b"1")
        await store.compact(created.mod_revision)
        recorded = await store.get(COMPACT_REV_KEY)
    finally:
        await store.close()

    assert recorded is not None
    assert int(recorded.value) == created.mod_revision


@pytest.mark.etcd
async def test_compaction_by_someone_else_still_reports_compacted(
    etcd_server: EtcdServer, prefix: str
) -> None:
    store = EtcdStore([etcd_server.endpoint])
    await store.start()
    try:
        first = await store.create(prefix + "a", b"1")
        second = await store.create(prefix + "b", b"2")
        # Compact straight through etcd's API, as `etcdctl compact` would: no compact_rev_key.
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{etcd_server.endpoint}/v3/kv/compaction", json={"revision": str(second.mod_revision)}
            ) as reply,
        ):
            assert reply.status == 200

        with pytest.raises(CompactedError) as caught:
            await store.get(prefix + "a", revision=first.mod_revision)
        assert caught.value.requested == first.mod_revision
        assert caught.value.compacted > first.mod_revision
        with pytest.raises(CompactedError) as watch_caught:
            await anext(store.watch(prefix, start_revision=first.mod_revision))
        assert watch_caught.value.compacted == second.mod_revision  # etcd's watch says exactly
    finally:
        await store.close()


@pytest.mark.etcd
async def test_keys_and_values_are_base64_on_the_wire(etcd_server: EtcdServer, prefix: str) -> None:
    store = EtcdStore([etcd_server.endpoint])
    await store.start()
    try:
        created = await store.create(prefix + "ключ", bytes(range(256)))
    finally:
        await store.close()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{etcd_server.endpoint}/v3/kv/range",
            json={"key": base64.b64encode((prefix + "ключ").encode()).decode()},
        ) as reply,
    ):
        raw = await reply.json()

    assert base64.b64decode(raw["kvs"][0]["value"]) == bytes(range(256))
    assert int(raw["kvs"][0]["mod_revision"]) == created.mod_revision
