"""SIGKILL the API server in the middle of a burst of creates, then bring the lab back.

Nothing acknowledged is lost: every create answered 201 is there after the restart, and a
watch resumed from a resourceVersion taken before the crash delivers every later create
exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from tests.e2e.conftest import Lab, process_gone

NS_PATH = "/api/v1/namespaces/default/configmaps"


def admin_session(data_dir: Path) -> aiohttp.ClientSession:
    pki = data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=64))


async def burst_until_killed(lab: Lab) -> tuple[str, set[str]]:
    """Create ConfigMaps from 16 writers; SIGKILL the server after 150 acknowledgements."""
    acknowledged: set[str] = set()
    async with admin_session(lab.data_dir) as session:
        async with session.get(lab.server_url + NS_PATH) as response:
            before_rv = (await response.json())["metadata"]["resourceVersion"]
        killed = asyncio.Event()

        async def writer(index: int) -> None:
            serial = 0
            while not killed.is_set() or serial < 3:
                name = f"burst-{index}-{serial}"
                serial += 1
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": {"i": name},
                }
                try:
                    async with session.post(
                        lab.server_url + NS_PATH,
                        data=orjson.dumps(body),
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        if response.status == 201:
                            acknowledged.add(name)
                except (TimeoutError, aiohttp.ClientError, ConnectionError):
                    return
                if len(acknowledged) >= 150 and not killed.is_set():
                    os.kill(lab.server_pid, signal.SIGKILL)
                    killed.set()

        await asyncio.gather(*(writer(i) for i in range(16)))
    return before_rv, acknowledged


async def names_and_watch(lab: Lab, *, since: str, expected: set[str]) -> tuple[set[str], list[str]]:
    async with admin_session(lab.data_dir) as session:
        async with session.get(lab.server_url + NS_PATH) as response:
            listing = await response.json()
        stored = {item["metadata"]["name"] for item in listing["items"]}
        burst = {name for name in stored if name.startswith("burst-")}
        added: list[str] = []
        params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "10"}
        async with session.get(lab.server_url + NS_PATH, params=params) as response:
            while set(added) < burst:
                line = await asyncio.wait_for(response.content.readline(), 10)
                assert line, f"watch ended after {len(added)} of {len(burst)} events"
                event = orjson.loads(line)
                assert event["type"] in ("ADDED", "ERROR"), event
                if event["type"] == "ERROR":
                    assert event["object"]["code"] == 410
                    return stored, ["<410>"]
                added.append(event["object"]["metadata"]["name"])
    assert expected <= stored
    return stored, added


def test_acknowledged_creates_survive_sigkill(own_lab: Callable[..., Lab], tmp_path: Path) -> None:
    data_dir = tmp_path / "crash"
    lab = own_lab(data_dir=data_dir)
    before_rv, acknowledged = asyncio.run(burst_until_killed(lab))
    assert len(acknowledged) >= 150
    # SIGKILL is delivered when the process next runs (it may be inside an fsync): wait for it.
    deadline = time.monotonic() + 10
    while not process_gone(lab.server_pid):
        assert time.monotonic() < deadline, f"server pid {lab.server_pid} survived SIGKILL for 10 s"
        time.sleep(0.02)
    again = own_lab(data_dir=data_dir)
    stored, added = asyncio.run(names_and_watch(again, since=before_rv, expected=acknowledged))
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged creates lost: {sorted(missing)[:5]}"
    if added != ["<410>"]:
        assert len(added) == len(set(added)), "a create was delivered twice"
        assert set(added) == {name for name in stored if name.startswith("burst-")}
