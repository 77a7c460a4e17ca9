"""The node IPAM controller against a real API server: the address plan's CIDRs, fallbacks,
release on deletion, exhaustion, and bad configuration."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from control.client.config import load_kubeconfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers.kinds import EVENTS, NODES
from control.controllers.manager import ControllerContext, ControllerOptions
from control.controllers.nodeipam import CIDRRangeError, CIDRSet, NodeIPAMController
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)


@pytest.fixture
async def client(apiserver):  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    yield rest
    await rest.close()


@contextlib.asynccontextmanager
async def running(client: RESTClient, **options: Any) -> AsyncIterator[NodeIPAMController]:
    informers = InformerFactory(client)
    ctx = ControllerContext(
        client=client, informers=informers, options=dataclasses.replace(ControllerOptions(), **options)
    )
    controller = NodeIPAMController(ctx, workers=2)
    informers.start()
    task = asyncio.create_task(controller.run())
    try:
        yield controller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await informers.shutdown()


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    async with asyncio.timeout(seconds):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.02)


def node(name: str, ip: str | None = None, *, pod_cidr: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}
    if ip is not None:
        body["status"] = {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
        }
    if pod_cidr is not None:
        body["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return body


async def cidr_of(client: RESTClient, name: str) -> list[str] | None:
    spec = (await client.get(NODES, name)).get("spec") or {}
    if spec.get("podCIDRs"):
        assert spec["podCIDR"] == spec["podCIDRs"][0]
    return spec.get("podCIDRs")


def test_cidr_set_addresses_subnets_by_index():
    cidrs = CIDRSet("127.244.0.0/16", mask_size=24)
    assert cidrs.size == 256
    assert cidrs.subnet(0) == "127.244.0.0/24"
    assert cidrs.subnet(3) == "127.244.3.0/24"
    assert cidrs.index_of("127.244.255.0/24") == 255
    assert cidrs.index_of("127.245.0.0/24") is None  # outside the cluster CIDR
    assert cidrs.index_of("127.244.3.0/25") is None  # another mask size
    assert cidrs.index_of("127.244.3.1/24") is None  # host bits set
    assert cidrs.index_of("not a cidr") is None
    assert cidrs.occupy(3, "a") is None
    assert cidrs.occupy(3, "b") == "a"  # never two nodes on one subnet
    assert cidrs.occupy(4, "a") is None  # moving frees the old one
    assert cidrs.is_free(3) and not cidrs.is_free(4)
    cidrs.release("a")
    assert cidrs.is_free(4) and cidrs.held_by("a") is None


@pytest.mark.parametrize(
    ("cidr", "mask", "words"),
    [
        ("nonsense", 24, "invalid cluster CIDR"),
        ("127.244.0.1/16", 24, "invalid cluster CIDR"),  # host bits set
        ("127.244.0.0/16", 8, "between"),
        ("127.244.0.0/16", 33, "between"),
        ("127.0.0.0/8", 33, "between"),
        ("fd00::/48", 112, r"more than 2\^24"),
    ],
)
def test_bad_ranges_are_refused(cidr, mask, words):
    with pytest.raises(CIDRRangeError, match=words):
        CIDRSet(cidr, mask_size=mask)


async def test_nodes_get_the_cidr_of_the_address_plan(client):
    async with running(client):
        await client.create(NODES, node("node-3", "127.100.0.3"))
        await client.create(NODES, node("node-1", "127.100.0.1"))
        assert await eventually(lambda: cidr_of(client, "node-1")) == ["127.244.1.0/24"]
        assert await eventually(lambda: cidr_of(client, "node-3")) == ["127.244.3.0/24"]


async def test_existing_cidrs_are_kept_and_others_fall_back_to_the_lowest_free(client):
    await client.create(NODES, node("old", "127.100.0.40", pod_cidr="127.244.2.0/24"))
    await client.create(NODES, node("zero", pod_cidr="127.244.0.0/24"))
    async with running(client):
        # Its own subnet (2) is taken by "old": the lowest free one instead.
        await client.create(NODES, node("node-2", "127.100.0.2"))
        assert await eventually(lambda: cidr_of(client, "node-2")) == ["127.244.1.0/24"]
        # No address, or one outside the node network: the lowest free one.
        await client.create(NODES, node("plain"))
        assert await eventually(lambda: cidr_of(client, "plain")) == ["127.244.3.0/24"]
        await client.create(NODES, node("elsewhere", "127.0.0.7"))
        assert await eventually(lambda: cidr_of(client, "elsewhere")) == ["127.244.4.0/24"]
        assert await cidr_of(client, "old") == ["127.244.2.0/24"]
        every = [(n.get("spec") or {}).get("podCIDR") for n in (await client.list(NODES))["items"]]
        assert len(every) == len(set(every)) == 5


async def test_a_deleted_nodes_cidr_is_given_again(client):
    async with running(client):
        await client.create(NODES, node("first", "127.100.0.5"))
        assert await eventually(lambda: cidr_of(client, "first")) == ["127.244.5.0/24"]
        await client.delete(NODES, "first")
        await client.create(NODES, node("second", "127.100.0.5"))
        assert await eventually(lambda: cidr_of(client, "second")) == ["127.244.5.0/24"]


async def test_exhausted_range_reports_cidr_not_available_then_recovers(client):
    async with running(client, cluster_cidr="127.244.0.0/23"):
        await client.create(NODES, node("a", "127.100.0.1"))
        await client.create(NODES, node("b", "127.100.0.2"))  # index 2 is outside a /23 of /24s
        assert await eventually(lambda: cidr_of(client, "a")) == ["127.244.1.0/24"]
        assert await eventually(lambda: cidr_of(client, "b")) == ["127.244.0.0/24"]
        await client.create(NODES, node("c"))

        async def not_available() -> bool:
            events = (await client.list(EVENTS, namespace="default"))["items"]
            return any(
                e["reason"] == "CIDRNotAvailable"
                and e["involvedObject"]["name"] == "c"
                and e["message"] == "Node c status is now: CIDRNotAvailable"
                for e in events
            )

        await eventually(not_available)
        assert await cidr_of(client, "c") is None
        await client.delete(NODES, "a")
        assert await eventually(lambda: cidr_of(client, "c")) == ["127.244.1.0/24"]


async def test_bad_options_fail_at_construction(client):
    informers = InformerFactory(client)
    with pytest.raises(CIDRRangeError):
        NodeIPAMController(
            ControllerContext(
                client=client, informers=informers, options=ControllerOptions(cluster_cidr="bad")
            )
        )
    with pytest.raises(CIDRRangeError, match="node network"):
        NodeIPAMController(
            ControllerContext(client=client, informers=informers), node_network="127.100.0.1/24"
        )


async def test_a_restarted_controller_rebuilds_what_is_used(client):
    """``run`` called again (the manager restarts a crashed controller) starts from the cache."""
    informers = InformerFactory(client)
    controller = NodeIPAMController(ControllerContext(client=client, informers=informers), workers=1)
    informers.start()
    try:
        for name, ip in (("first", "127.100.0.1"), ("second", "127.100.0.1")):
            task = asyncio.create_task(controller.run())
            try:
                await client.create(NODES, node(name, ip))
                await eventually(lambda name=name: cidr_of(client, name))
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # The second run knew subnet 1 was taken by "first".
        assert await cidr_of(client, "first") == ["127.244.1.0/24"]
        assert await cidr_of(client, "second") == ["127.244.0.0/24"]
    finally:
        await informers.shutdown()
