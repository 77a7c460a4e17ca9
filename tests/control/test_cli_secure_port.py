"""`kubelab server`'s secure ports: the controller manager serves its health and metrics on one
(10257), the scheduler on its own (10259), each with its own checks and registry — its REST client
requests counted through its own client configuration, the workqueues on the manager's only — a
scheduler without the manager still serves its port, 0 turns a port off, and `up` says where both
are."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from control import cli, lab
from control.client import workqueue
from control.client.errors import NotFoundError
from control.client.rest import Resource, RESTClient
from control.client.testing import FakeClock
from control.client.workqueue import RateLimitingQueue
from tests.control.apiserver.conftest import running_apiserver

PODS = Resource("", "v1", "pods", "Pod")
WAIT = 10.0


@pytest.fixture
def layout(tmp_path: Path) -> lab.Layout:
    return lab.Layout(tmp_path / "lab")


@pytest.fixture
def hooks_reset() -> Iterator[None]:
    yield
    workqueue.set_metrics_provider(None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def fetch(layout: lab.Layout, port: int, path: str, *, admin: bool = False) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port``, anonymously or as the lab's admin, once it listens."""
    context = ssl.create_default_context(cafile=str(layout.pki.ca_cert))
    if admin:
        context.load_cert_chain(str(layout.pki.admin_cert), str(layout.pki.admin_key))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        while True:
            try:
                async with session.get(f"https://127.0.0.1:{port}{path}") as response:
                    return response.status, await response.text()
            except aiohttp.ClientConnectorError:
                if loop.time() > deadline:
                    raise AssertionError(f"nothing listens on 127.0.0.1:{port}") from None
                await asyncio.sleep(0.01)  # not listening yet


def families(body: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A scrape's samples by name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def request_codes(body: str) -> set[tuple[str, str]]:
    """(code, method) of every ``rest_client_requests_total`` series."""
    return {
        (labels["code"], labels["method"])
        for labels, _ in families(body).get("rest_client_requests_total", [])
    }


async def test_each_component_serves_its_own_health_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hooks_reset: None
) -> None:
    from control.controllers import manager
    from control.scheduler import run
    from control.scheduler.metrics import SchedulerMetrics

    received: dict[str, dict[str, Any]] = {}
    stop = asyncio.Event()
    worked = asyncio.Event()

    # Fakes of the two components that leave a trace of their own in their metrics: the manager
    # lists pods (200) through a workqueue, the scheduler asks for a pod that is not there (404).
    async def fake_manager(**kwargs: Any) -> None:
        received["controller-manager"] = kwargs
        queue: RateLimitingQueue[str] = RateLimitingQueue(name="probe", clock=FakeClock())
        queue.add("default/web")
        async with RESTClient(kwargs["config"]) as client:
            await client.list(PODS, namespace="default")
        queue.shutdown()
        await stop.wait()

    async def fake_scheduler(**kwargs: Any) -> None:
        received["scheduler"] = kwargs
        SchedulerMetrics(registry=kwargs["registry"], pending=lambda: {"active": 0})
        async with RESTClient(kwargs["config"]) as client:
            with pytest.raises(NotFoundError):
                await client.get(PODS, "missing", namespace="default")
        worked.set()
        await stop.wait()

    monkeypatch.setattr(manager, "run_controller_manager", fake_manager)
    monkeypatch.setattr(run, "run_scheduler", fake_scheduler)
    manager_port, scheduler_port = free_port(), free_port()
    async with running_apiserver(tmp_path):
        layout = lab.Layout.resolve(tmp_path / "lab")
        tasks = cli._start_components(
            layout,
            components=("controller-manager", "scheduler"),
            stop=stop,
            secure_ports={"controller-manager": manager_port, "scheduler": scheduler_port},
        )
        try:
            await asyncio.wait_for(worked.wait(), timeout=WAIT)
            # the (fake) components never sync informers: neither is ready, each for its own reason
            assert await fetch(layout, manager_port, "/readyz?verbose") == (
                500,
                "[+]ping ok\n[+]shutdown ok\n[-]informer-sync failed: reason withheld\nreadyz check failed\n",
            )
            assert await fetch(layout, scheduler_port, "/readyz?verbose") == (
                500,
                "[+]ping ok\n[+]shutdown ok\n[-]sched-handler-sync failed: reason withheld\nreadyz check failed\n",
            )
            assert await fetch(layout, manager_port, "/healthz") == (200, "ok")
            assert await fetch(layout, scheduler_port, "/livez") == (200, "ok")
            assert (await fetch(layout, manager_port, "/metrics"))[0] == 401
            assert (await fetch(layout, scheduler_port, "/metrics"))[0] == 401
            manager_status, manager_body = await fetch(layout, manager_port, "/metrics", admin=True)
            scheduler_status, scheduler_body = await fetch(layout, scheduler_port, "/metrics", admin=True)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT)
    assert (manager_status, scheduler_status) == (200, 200)
    on_manager, on_scheduler = families(manager_body), families(scheduler_body)
    assert ({"name": "probe"}, 1.0) in on_manager["workqueue_adds_total"]
    assert not [name for name in on_scheduler if name.startswith("workqueue_")]
    assert "scheduler_pending_pods" in on_scheduler
    assert not [name for name in on_manager if name.startswith("scheduler_")]
    # each port's scrape was authorized by a SubjectAccessReview (POST 201) through that component's
    # own client, so it shows there as well
    assert request_codes(manager_body) >= {("200", "GET"), ("201", "POST")}
    assert ("404", "GET") not in request_codes(manager_body)
    assert request_codes(scheduler_body) >= {("404", "GET"), ("201", "POST")}
    assert ("200", "GET") not in request_codes(scheduler_body)
    assert "process_resident_memory_bytes" in on_manager and "process_resident_memory_bytes" in on_scheduler
    assert received["controller-manager"]["health"] is not received["scheduler"]["health"]
    assert layout.pki.controllers_serving_cert.exists()


async def test_a_scheduler_without_the_manager_serves_its_port_alone(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch, hooks_reset: None
) -> None:
    from control.scheduler import run

    lab.prepare(layout, lab.Settings())
    received: dict[str, Any] = {}
    stop = asyncio.Event()

    async def fake_scheduler(**kwargs: Any) -> None:
        received.update(kwargs)
        await stop.wait()

    monkeypatch.setattr(run, "run_scheduler", fake_scheduler)
    manager_port, scheduler_port = free_port(), free_port()
    tasks = cli._start_components(
        layout,
        components=("scheduler",),
        stop=stop,
        secure_ports={"controller-manager": manager_port, "scheduler": scheduler_port},
    )
    try:
        assert len(tasks) == 2  # the scheduler and its port
        assert await fetch(layout, scheduler_port, "/healthz") == (200, "ok")
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", manager_port)) != 0  # no manager, no manager's port
        assert received["config"].request_metrics is not None
        assert set(received) == {"config", "stop", "registry", "health"}
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT)


async def test_a_taken_port_is_logged_naming_its_flag_and_the_component_runs_on(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from control.scheduler import run

    lab.prepare(layout, lab.Settings())
    stop = asyncio.Event()
    running = asyncio.Event()

    async def fake_scheduler(**kwargs: Any) -> None:
        running.set()
        await stop.wait()

    monkeypatch.setattr(run, "run_scheduler", fake_scheduler)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tasks = cli._start_components(
            layout, components=("scheduler",), stop=stop, secure_ports={"scheduler": port}
        )
        try:
            serving, scheduler = tasks
            await asyncio.wait_for(serving, timeout=WAIT)  # gave up on the port, without raising
            await asyncio.wait_for(running.wait(), timeout=WAIT)
            assert not scheduler.done()
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT)
    [record] = [record for record in caplog.records if record.levelname == "ERROR"]
    message = record.getMessage()
    assert f"cannot serve on 127.0.0.1:{port}" in message
    assert "the scheduler runs on without health and metrics serving" in message
    assert "--scheduler-secure-port" in message


async def test_without_secure_ports_the_components_get_no_serving_extras(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    from control.controllers import manager
    from control.scheduler import run

    lab.prepare(layout, lab.Settings())
    received: dict[str, dict[str, Any]] = {}
    stop = asyncio.Event()

    def recorder(component: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def fake_run(**kwargs: Any) -> None:
            received[component] = kwargs
            if len(received) == 2:
                stop.set()
            await stop.wait()

        return fake_run

    monkeypatch.setattr(manager, "run_controller_manager", recorder("controller-manager"))
    monkeypatch.setattr(run, "run_scheduler", recorder("scheduler"))
    tasks = cli._start_components(layout, components=("controller-manager", "scheduler"), stop=stop)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=WAIT)
    assert len(tasks) == 2
    assert set(received["controller-manager"]) == {"config", "stop", "options"}
    assert set(received["scheduler"]) == {"config", "stop"}
    assert received["scheduler"]["config"].request_metrics is None


def test_the_ports_default_to_upstream_s_and_0_turns_one_off() -> None:
    parser = cli._build_parser()
    defaults = parser.parse_args(["server"])
    assert (defaults.controllers_secure_port, defaults.scheduler_secure_port) == (10257, 10259)
    both = ("controller-manager", "scheduler")
    assert cli._secure_ports(defaults, components=both) == {"controller-manager": 10257, "scheduler": 10259}
    off = parser.parse_args(["server", "--scheduler-secure-port", "0"])
    assert cli._secure_ports(off, components=both) == {"controller-manager": 10257}
    off = parser.parse_args(["server", "--controllers-secure-port", "0"])
    assert cli._secure_ports(off, components=both) == {"scheduler": 10259}
    assert cli._secure_ports(defaults, components=("apiserver", "scheduler")) == {"scheduler": 10259}
    assert cli._secure_ports(defaults, components=("apiserver",)) == {}


@pytest.mark.parametrize("flag", ["--controllers-secure-port", "--scheduler-secure-port"])
@pytest.mark.parametrize("value", ["http", "-1", "65536"])
def test_a_port_that_is_not_one_is_a_usage_error(flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._build_parser().parse_args(["server", flag, value])
    assert exited.value.code == cli.EXIT_USAGE


def test_two_components_on_one_port_is_refused_naming_both_flags() -> None:
    args = cli._build_parser().parse_args(
        ["server", "--controllers-secure-port", "10300", "--scheduler-secure-port", "10300"]
    )
    with pytest.raises(
        lab.SettingsError, match="--controllers-secure-port and --scheduler-secure-port are both 10300"
    ):
        cli._secure_ports(args, components=("controller-manager", "scheduler"))
    # apart, in two processes, they do not collide
    assert cli._secure_ports(args, components=("scheduler",)) == {"scheduler": 10300}


def test_up_says_where_both_components_serve(
    layout: lab.Layout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spawned: list[str] = []
    monkeypatch.setattr(lab, "running_pid", lambda pid_file: None)
    monkeypatch.setattr(lab, "spawn", lambda *, name, argv, log_file: spawned.append(name))
    cli._start_controllers(layout, lab.Settings())
    assert spawned == [lab.CONTROLLERS]
    err = capsys.readouterr().err
    assert (
        "health and metrics on https://127.0.0.1:10257 for the controller manager, "
        "https://127.0.0.1:10259 for the scheduler" in err
    )
