"""``python -m addons.coredns_lite`` as a process: flags, exit codes, SIGTERM, reload, workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import pytest
from prometheus_client.parser import text_string_to_metric_families

from addons.coredns_lite.__main__ import DEFAULT_CONF, parse_args
from control.client import Resource, RESTClient, load_kubeconfig
from tests.addons.coredns_lite.upstreams import free_port
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

HOST = "127.0.53.3"
ROOT = Path(__file__).resolve().parents[3]
SERVICES = Resource("", "v1", "services", "Service")


def corefile(kubeconfig: Path, *, port: int, status: int, ttl: int = 5, extra: str = "") -> str:
    return f""".:{port} {{
    bind {HOST}
    health {HOST}:{status}
    ready {HOST}:{status}
    prometheus {HOST}:{status}
    kubernetes cluster.local {{
        kubeconfig {kubeconfig}
        ttl {ttl}
    }}
    reload 100ms
    {extra}
}}
"""


async def start(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "addons.coredns_lite",
        *argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process, *, terminate: bool = True) -> tuple[int, str]:
    if terminate and process.returncode is None:
        process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    return process.returncode, err.decode()  # type: ignore[return-value]


async def ask(port: int, name: str) -> dns.message.Message:
    async with asyncio.timeout(30):
        while True:
            try:
                return await dns.asyncquery.udp(
                    dns.message.make_query(name, "A"), HOST, port=port, timeout=0.5
                )
            except (dns.exception.Timeout, ConnectionRefusedError):
                await asyncio.sleep(0.05)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def wait_ready(status: int) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                if (await get(f"http://{HOST}:{status}/ready"))[0] == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)


def test_flags_fall_back_to_the_environment() -> None:
    args = parse_args([], environ={})
    assert (args.conf, args.kubeconfig, args.workers, args.log_level) == (DEFAULT_CONF, None, 1, "info")
    env = {
        "COREDNS_LITE_CONF": "/c",
        "COREDNS_LITE_KUBECONFIG": "/k",
        "COREDNS_LITE_WORKERS": "2",
        "COREDNS_LITE_LOG_LEVEL": "debug",
    }
    args = parse_args([], environ=env)
    assert (args.conf, args.kubeconfig, args.workers, args.log_level) == ("/c", "/k", 2, "debug")
    assert parse_args(["-conf", "/x", "--workers", "3"], environ=env).conf == "/x"
    with pytest.raises(SystemExit):
        parse_args(["--workers", "0"], environ={})


async def test_a_bad_corefile_exits_2_naming_the_keyword(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(".:53 {\n kubernetes {\n pods sometimes\n }\n}\n")
    code, err = await stop(await start("--conf", str(conf)), terminate=False)
    assert code == 2 and "kubernetes: pods" in err
    code, err = await stop(await start("--conf", str(tmp_path / "missing")), terminate=False)
    assert code == 2 and "cannot read" in err


async def test_serves_reloads_and_stops_on_sigterm(apiserver, tmp_path: Path) -> None:  # noqa: F811
    kubeconfig = apiserver.data_dir / "kubeconfig"
    async with RESTClient(load_kubeconfig(kubeconfig)) as rest:
        await rest.create(
            SERVICES, {"metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}
        )
    port, status = free_port(HOST), free_port(HOST)
    conf = tmp_path / "Corefile"
    conf.write_text(corefile(kubeconfig, port=port, status=status))
    process = await start("--conf", str(conf), "--log-level", "debug")
    try:
        assert (await ask(port, "web.default.svc.cluster.local.")).answer[0].ttl == 5
        await wait_ready(status)
        # A ConfigMap-style update: a new file swapped in under the same name.
        replacement = tmp_path / "Corefile.new"
        replacement.write_text(corefile(kubeconfig, port=port, status=status, ttl=42))
        os.replace(replacement, conf)
        async with asyncio.timeout(30):
            while True:
                if (await ask(port, "web.default.svc.cluster.local.")).answer[0].ttl == 42:
                    break
                await asyncio.sleep(0.05)
        conf.write_text(corefile(kubeconfig, port=port, status=status, extra="nonsense"))
        async with asyncio.timeout(30):
            while True:
                text = (await get(f"http://{HOST}:{status}/metrics"))[1]
                if "coredns_reload_failed_total 1.0" in text:
                    break
                await asyncio.sleep(0.05)
        assert (await ask(port, "web.default.svc.cluster.local.")).answer[0].ttl == 42, (
            "the running config stays"
        )
    finally:
        code, err = await stop(process)
    assert code == 0, err
    assert '"msg": "configuration reloaded"' in err.replace('":"', '": "') or "configuration reloaded" in err
    assert "nonsense: unknown or unsupported directive" in err


async def test_a_used_port_exits_1_with_the_address(apiserver, tmp_path: Path) -> None:  # noqa: F811
    import socket

    port = free_port(HOST)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((HOST, port))
    try:
        conf = tmp_path / "Corefile"
        conf.write_text(f".:{port} {{\n bind {HOST}\n}}\n")
        code, err = await stop(await start("--conf", str(conf)), terminate=False)
    finally:
        blocker.close()
    assert code == 1 and f"cannot listen on {HOST}:{port}/udp" in err


async def test_workers_share_the_port_and_one_status_endpoint(apiserver, tmp_path: Path) -> None:  # noqa: F811
    kubeconfig = apiserver.data_dir / "kubeconfig"
    async with RESTClient(load_kubeconfig(kubeconfig)) as rest:
        await rest.create(
            SERVICES, {"metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}
        )
    port, status = free_port(HOST), free_port(HOST)
    conf = tmp_path / "Corefile"
    conf.write_text(corefile(kubeconfig, port=port, status=status))
    process = await start("--conf", str(conf), "--workers", "2")
    try:
        await wait_ready(status)
        for _ in range(200):
            assert (await ask(port, "web.default.svc.cluster.local.")).answer
        async with asyncio.timeout(30):
            while True:
                text = (await get(f"http://{HOST}:{status}/metrics"))[1]
                total = sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "coredns_dns_requests_total"
                )
                if total >= 200:
                    break
                await asyncio.sleep(0.1)
        assert (await get(f"http://{HOST}:{status}/health"))[0] == 200
    finally:
        code, err = await stop(process)
    assert code == 0, err
