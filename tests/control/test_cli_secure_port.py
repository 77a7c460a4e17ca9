"""`kubelab server`'s controllers process serves its health and metrics on the secure port: the
components get the registry and health checks, the port answers, and 0 turns it off."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from control import cli, lab
from control.client import rest, workqueue


@pytest.fixture
def layout(tmp_path: Path) -> lab.Layout:
    return lab.Layout(tmp_path / "lab")


@pytest.fixture
def hooks_reset() -> Iterator[None]:
    yield
    workqueue.set_metrics_provider(None)
    rest.register_request_metrics(None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_components_are_served_on_the_secure_port(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch, hooks_reset: None
) -> None:
    from control.controllers import manager
    from control.scheduler import run

    lab.prepare(layout, lab.Settings())
    received: dict[str, dict[str, Any]] = {}
    stop = asyncio.Event()

    def recorder(component: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def fake_run(**kwargs: Any) -> None:
            received[component] = kwargs
            await stop.wait()

        return fake_run

    monkeypatch.setattr(manager, "run_controller_manager", recorder("controller-manager"))
    monkeypatch.setattr(run, "run_scheduler", recorder("scheduler"))
    port = free_port()
    tasks = cli._start_components(
        layout, components=("controller-manager", "scheduler"), stop=stop, secure_port=port
    )
    try:
        context = ssl.create_default_context(cafile=str(layout.pki.ca_cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            for _ in range(500):
                try:
                    async with session.get(f"https://127.0.0.1:{port}/readyz?verbose") as response:
                        answer = (response.status, await response.text())
                    break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.01)  # not listening yet
            else:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
        # the (fake) manager never syncs informers: not ready
        assert answer == (
            500,
            "[+]ping ok\n[+]shutdown ok\n[-]informer-sync failed: reason withheld\nreadyz check failed\n",
        )
        assert received["controller-manager"]["health"] is not None
        assert received["scheduler"]["registry"] is not None
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert layout.pki.controllers_serving_cert.exists()


def test_port_zero_turns_serving_off_and_other_ports_are_checked() -> None:
    parser = cli._build_parser()
    assert parser.parse_args(["server", "--controllers-secure-port", "0"]).controllers_secure_port == 0
    assert parser.parse_args(["server"]).controllers_secure_port == cli.DEFAULT_CONTROLLERS_SECURE_PORT
    with pytest.raises(SystemExit):
        parser.parse_args(["server", "--controllers-secure-port", "http"])
