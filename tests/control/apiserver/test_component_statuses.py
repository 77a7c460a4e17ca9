"""componentstatuses: the probes on their own, then ``kubectl get cs`` through an API server in this
test's loop whose scheduler port has a healthy HTTPS /healthz (signed by the lab CA, as the lab's
components are) and whose controller-manager port is closed."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from control.apiserver import component_statuses
from control.apiserver.component_statuses import (
    DEPRECATION_WARNING,
    Health,
    HTTPProbe,
    StoreProbe,
    component_status,
)
from control.pki import PKIFiles, ensure_controllers_serving_certificate, load_or_create_ca
from control.resources import printers
from control.resources.builtin import builtin_registry
from control.store import StoreUnavailableError
from control.store.sqlite import SqliteStore
from tests.control.apiserver.conftest import RunningServer, free_port, running_apiserver

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def serve_healthz(
    *, port: int, status: int = 200, text: str = "ok", ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """``/healthz`` answering ``status`` with ``text`` (a 3xx redirects to ``/elsewhere``, which
    answers ``ok``) on 127.0.0.1:``port``."""

    async def healthz(request: web.Request) -> web.Response:
        headers = {"Location": "/elsewhere"} if 300 <= status < 400 else {}
        return web.Response(status=status, text=text, headers=headers)

    async def elsewhere(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    return runner


def serving_context(pki_dir: Path) -> ssl.SSLContext:
    """The controllers' serving certificate from the lab CA, as the lab's components serve."""
    files = PKIFiles(pki_dir)
    ca, _ = load_or_create_ca(cert_file=files.ca_cert, key_file=files.ca_key)
    ensure_controllers_serving_certificate(files=files, ca=ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.controllers_serving_cert), str(files.controllers_serving_key))
    return context


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (200, "ok", Health(status="True", message="ok")),
        (302, "", Health(status="True", message="ok")),  # redirects are followed
        (500, "[-]etcd failed", Health(status="False", message="HTTP probe failed with statuscode: 500")),
    ],
)
async def test_http_probe_judges_the_status_as_upstream(status: int, text: str, expected: Health) -> None:
    port = free_port()
    runner = await serve_healthz(port=port, status=status, text=text)
    try:
        assert await HTTPProbe(host="127.0.0.1", port=port, timeout=5).check() == expected
    finally:
        await runner.cleanup()


async def test_http_probe_of_a_closed_port_is_unknown_in_gos_words() -> None:
    port = free_port()
    health = await HTTPProbe(host="127.0.0.1", port=port, timeout=5).check()
    assert health == Health(
        status="Unknown",
        error=f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused',
    )


async def test_http_probe_verifies_the_certificate(tmp_path: Path) -> None:
    port = free_port()
    runner = await serve_healthz(port=port, ssl_context=serving_context(tmp_path))
    try:
        trusting = ssl.create_default_context(cafile=str(PKIFiles(tmp_path).ca_cert))
        assert (await HTTPProbe(host="127.0.0.1", port=port, ssl_context=trusting).check()).status == "True"
        stranger = await HTTPProbe(
            host="127.0.0.1", port=port, ssl_context=ssl.create_default_context()
        ).check()
    finally:
        await runner.cleanup()
    assert stranger.status == "Unknown"
    assert stranger.error.startswith(f'Get "https://127.0.0.1:{port}/healthz": tls: ')


async def test_store_probe(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        assert await StoreProbe(store).check() == Health(status="True", message="ok")
    finally:
        await store.close()

    class Broken:
        async def current_revision(self) -> int:
            raise StoreUnavailableError("connection refused")

    health = await StoreProbe(Broken()).check()  # type: ignore[arg-type]  # only current_revision is used
    assert health == Health(status="False", error="connection refused")


def test_component_status_leaves_empty_fields_out() -> None:
    assert component_status("etcd-0", Health("True", "ok")) == {
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": "etcd-0"},
        "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
    }


@pytest.fixture
async def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningServer, int]]:
    """An API server whose scheduler port answers ``ok`` over TLS and whose controller-manager
    port is closed; yields the server and the closed port."""
    healthy, closed = free_port(), free_port()
    monkeypatch.setattr(component_statuses, "SCHEDULER_SECURE_PORT", healthy)
    monkeypatch.setattr(component_statuses, "CONTROLLER_MANAGER_SECURE_PORT", closed)
    async with running_apiserver(tmp_path) as api:
        runner = await serve_healthz(port=healthy, ssl_context=serving_context(api.data_dir / "pki"))
        try:
            yield api, closed
        finally:
            await runner.cleanup()


async def test_kubectl_get_cs_table(cluster: tuple[RunningServer, int]) -> None:
    api, closed = cluster
    async with api.session.get(f"{api.url}/api/v1/componentstatuses", headers={"Accept": TABLE}) as response:
        assert response.status == 200
        assert response.headers.getall("Warning") == [f'299 - "{DEPRECATION_WARNING}"']
        body = await response.json()
    assert body["kind"] == "Table"
    assert [column["name"] for column in body["columnDefinitions"]] == ["Name", "Status", "Message", "Error"]
    rows = {row["cells"][0]: row["cells"] for row in body["rows"]}
    assert rows["scheduler"] == ["scheduler", "Healthy", "ok", ""]
    assert rows["etcd-0"] == ["etcd-0", "Healthy", "ok", ""]
    refused = f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
    assert rows["controller-manager"] == [
        "controller-manager",
        "Unhealthy",
        "",
        f'Get "https://127.0.0.1:{closed}/healthz": {refused}',
    ]
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_list_get_and_errors(cluster: tuple[RunningServer, int]) -> None:
    api, _ = cluster
    code, listing = await api.request("GET", "/api/v1/componentstatuses")
    assert code == 200
    assert (listing["kind"], listing["apiVersion"]) == ("ComponentStatusList", "v1")
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == [
        "controller-manager",
        "etcd-0",
        "scheduler",
    ]
    code, one = await api.request("GET", "/api/v1/componentstatuses/scheduler")
    assert (code, one["conditions"]) == (200, [{"type": "Healthy", "status": "True", "message": "ok"}])
    code, selected = await api.request(
        "GET", "/api/v1/componentstatuses", params={"fieldSelector": "metadata.name=etcd-0"}
    )
    assert [item["metadata"]["name"] for item in selected["items"]] == ["etcd-0"]
    code, none = await api.request("GET", "/api/v1/componentstatuses", params={"labelSelector": "a=b"})
    assert (code, none["items"]) == (200, [])
    code, missing = await api.request("GET", "/api/v1/componentstatuses/etcd-1")
    assert (code, missing["message"]) == (500, "Component not found: etcd-1")
    for method, path, expected in (
        ("POST", "/api/v1/componentstatuses", 405),
        ("DELETE", "/api/v1/componentstatuses/etcd-0", 405),
        ("GET", "/api/v1/componentstatuses?watch=true", 405),
        ("GET", "/api/v1/componentstatuses/etcd-0/status", 404),
        ("GET", "/api/v1/namespaces/default/componentstatuses", 404),
    ):
        code, _ = await api.request(method, path, body={} if method == "POST" else None)
        assert code == expected, (method, path)


async def test_discovery_names_it_get_and_list_only(cluster: tuple[RunningServer, int]) -> None:
    api, _ = cluster
    code, document = await api.request("GET", "/api/v1")
    assert code == 200
    (resource,) = [r for r in document["resources"] if r["name"] == "componentstatuses"]
    assert (resource["kind"], resource["namespaced"], sorted(resource["verbs"])) == (
        "ComponentStatus",
        False,
        ["get", "list"],
    )
    assert resource["shortNames"] == ["cs"]


async def test_real_kubectl_get_cs(cluster: tuple[RunningServer, int]) -> None:
    api, closed = cluster
    code, out, err = await api.kubectl("get", "cs")
    assert code == 0, err
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert ["scheduler", "Healthy", "ok"] in lines
    assert ["etcd-0", "Healthy", "ok"] in lines
    (manager,) = [line for line in lines if line[0] == "controller-manager"]
    assert manager[:2] == ["controller-manager", "Unhealthy"]
    assert f"127.0.0.1:{closed}: connect: connection refused" in " ".join(manager)


def test_a_status_without_a_healthy_condition_prints_unknown() -> None:
    rt = builtin_registry().lookup(group="", version="v1", plural="componentstatuses")
    assert rt is not None
    now = datetime.now(UTC)
    assert printers.row_cells(rt, {"metadata": {"name": "x"}, "conditions": []}, now=now) == [
        "x",
        "Unknown",
        "",
        "",
    ]
    failing = component_status("x", Health(status="False", message="HTTP probe failed with statuscode: 500"))
    assert printers.row_cells(rt, failing, now=now) == [
        "x",
        "Unhealthy",
        "HTTP probe failed with statuscode: 500",
        "",
    ]
