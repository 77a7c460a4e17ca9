"""An API server running in the test's own event loop, over real HTTPS with the lab PKI.

``apiserver`` gives a started server (SQLite store in a temp dir, free port) and an
aiohttp session authenticated as the admin; ``anonymous`` is a session without a client
certificate. The server is stopped, and its store closed, when the test ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from control.apiserver.allocators import ClusterIPAllocator, NodePortAllocator
from control.apiserver.resource_store import ResourceStore
from control.apiserver.server import serve
from control.lab import Layout, Settings, prepare, server_options
from control.pki import ensure_serving_certificate, load_or_create_ca
from control.resources.builtin import builtin_registry
from control.store.sqlite import SqliteStore


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


KUBECTL = "/usr/bin/kubectl"


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    session: aiohttp.ClientSession
    anonymous: aiohttp.ClientSession
    ca_file: Path
    cert_file: Path
    key_file: Path

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        all_headers = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(
            method, self.url + path, data=data, headers=all_headers, params=params
        ) as response:
            payload = await response.read()
            try:
                return response.status, orjson.loads(payload)
            except orjson.JSONDecodeError:
                return response.status, payload.decode()

    async def kubectl(self, *args: str) -> tuple[int, str, str]:
        """Real kubectl against this server as the admin (exit code, stdout, stderr); its discovery
        cache is the server's own, so tests never share one."""
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            str(self.data_dir / "kubeconfig"),
            "--cache-dir",
            str(self.data_dir / "kubectl-cache"),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return process.returncode or 0, out.decode(), err.decode()


def webhook_tls(tmp_path: Path, *, name: str) -> tuple[ssl.SSLContext, str]:
    """TLS for a webhook server a test runs on 127.0.0.1: the server's context (a certificate for
    127.0.0.1 and ``<name>.default.svc`` from a CA of its own) and that CA as a ``caBundle``."""
    ca, _ = load_or_create_ca(cert_file=tmp_path / f"{name}-ca.crt", key_file=tmp_path / f"{name}-ca.key")
    ensure_serving_certificate(
        ca=ca,
        cert_file=tmp_path / f"{name}.crt",
        key_file=tmp_path / f"{name}.key",
        common_name=name,
        dns_names=[f"{name}.default.svc"],
        ip_addresses=["127.0.0.1"],
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
    return context, base64.b64encode((tmp_path / f"{name}-ca.crt").read_bytes()).decode()


@asynccontextmanager
async def serving(app: web.Application, *, port: int, context: ssl.SSLContext) -> AsyncIterator[None]:
    """``app`` served over HTTPS on 127.0.0.1:``port`` for the block."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        yield
    finally:
        await runner.cleanup()


def client_ssl_context(*, ca_file: Path, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file))
    return context


@asynccontextmanager
async def running_apiserver(tmp_path: Path, **option_overrides: Any) -> AsyncIterator[RunningServer]:
    """Start ``serve`` in this loop with the lab's options (plus overrides); stop it after."""
    layout = Layout.resolve(tmp_path / "lab")
    settings = Settings(api_port=free_port())
    pki = prepare(layout, settings)
    options = dataclasses.replace(server_options(layout, settings), **option_overrides)
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(options, stop=stop, on_ready=ready.set))
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, ready_wait}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready_wait.cancel()
        task.result()
    assert ready.is_set(), "the API server did not become ready in 30 s"
    files = pki.files
    admin = client_ssl_context(ca_file=files.ca_cert, cert_file=files.admin_cert, key_file=files.admin_key)
    nobody = client_ssl_context(ca_file=files.ca_cert, cert_file=None, key_file=None)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=admin, limit=200))
    anonymous = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=nobody))
    try:
        yield RunningServer(
            url=settings.server_url,
            data_dir=layout.data_dir,
            session=session,
            anonymous=anonymous,
            ca_file=files.ca_cert,
            cert_file=files.admin_cert,
            key_file=files.admin_key,
        )
    finally:
        await session.close()
        await anonymous.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path) as server:
        yield server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A started SQLite store in the test's temp dir, for the API server's store followers."""
    opened = SqliteStore(tmp_path / "state.db")
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def objects(store: SqliteStore) -> ResourceStore:
    """The API server's object layer over a started store, for admission plugins tested without HTTP."""
    return ResourceStore(
        store=store,
        registry=builtin_registry(),
        cluster_ips=ClusterIPAllocator("127.96.0.0/16"),
        node_ports=NodePortAllocator(30000, 32767),
    )
