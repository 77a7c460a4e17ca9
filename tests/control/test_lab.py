"""The lab's life cycle: settings, data-dir preparation, the kubeconfig, pidfiles as
locks, stopping processes, and waiting for /readyz. Processes here are real (small
Python programs holding a pidfile); the API server itself is exercised in tests/e2e."""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import re
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from control import lab
from control.pki import Outcome
from tests.control.lab_processes import gone, holders, wait_for


@pytest.fixture
def layout(tmp_path: Path) -> lab.Layout:
    return lab.Layout(tmp_path / "lab")


@pytest.fixture
def start_holder(layout: lab.Layout) -> Iterator[Callable[..., int]]:
    yield from holders(layout)


# --- settings and layout ------------------------------------------------------------------


def test_layout_resolves_flag_then_env_then_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(lab.DATA_DIR_ENV, raising=False)
    assert lab.Layout.resolve(None).data_dir == tmp_path / ".kubelab"
    monkeypatch.setenv(lab.DATA_DIR_ENV, "from-env")
    assert lab.Layout.resolve(None).data_dir == tmp_path / "from-env"
    assert lab.Layout.resolve("flag").data_dir == tmp_path / "flag"
    layout = lab.Layout.resolve("flag")
    assert layout.pid_file("server") == tmp_path / "flag" / "server.pid"
    assert layout.log_file("node-1") == tmp_path / "flag" / "logs" / "node-1.log"
    assert layout.pki.ca_cert == tmp_path / "flag" / "pki" / "ca.crt"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_port", 0, "out of range"),
        ("api_port", 65536, "out of range"),
        ("bind_address", "localhost", "not an IP address"),
        ("bind_address", "::1", "IPv6"),
        ("log_level", "loud", "not one of"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lab.Settings(**{field: value})


@pytest.mark.parametrize(
    "store",
    [
        "sqlite://",
        "sqlite:///var/lib/lab.db",
        "etcd://127.0.0.1:2379",
        "etcd://127.0.0.1:2379,127.0.0.2:2379",
        "etcd+https://127.0.0.1:2379",
    ],
)
def test_store_urls_the_store_accepts_are_valid(store: str) -> None:
    assert lab.validate_store_url(store) == store


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("postgres://x", "unknown scheme 'postgres'"),
        ("sqlite", "no scheme"),
        ("sqlite://relative.db", "must be absolute"),
        ("etcd://127.0.0.1", "must be host:port"),
        ("etcd://127.0.0.1:2379,127.0.0.1:x", "must be host:port"),
    ],
)
def test_store_urls_the_store_refuses_are_invalid(store: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lab.validate_store_url(store)


def test_prepare_refuses_a_bad_store_before_writing_anything(layout: lab.Layout) -> None:
    with pytest.raises(lab.SettingsError, match=r"unknown scheme 'mysql'.*--store"):
        lab.prepare(layout, lab.Settings(store_url="mysql://db"))
    assert not layout.data_dir.exists()


def test_clients_dial_loopback_when_the_server_binds_every_interface() -> None:
    assert lab.Settings(bind_address="0.0.0.0", api_port=7000).server_url == "https://127.0.0.1:7000"
    assert lab.Settings(bind_address="127.0.0.5").server_url == "https://127.0.0.5:6443"


def test_flags_win_over_remembered_settings_which_win_over_defaults(layout: lab.Layout) -> None:
    assert lab.resolve_settings(layout) == lab.Settings()
    lab.save_settings(layout, lab.Settings(api_port=7001, store_url="etcd://127.0.0.1:2379"))
    assert lab.resolve_settings(layout) == lab.Settings(api_port=7001, store_url="etcd://127.0.0.1:2379")
    assert lab.resolve_settings(layout, api_port=7002, log_level="debug") == lab.Settings(
        api_port=7002, store_url="etcd://127.0.0.1:2379", log_level="debug"
    )


@pytest.mark.parametrize("content", [b"{not json", b'{"api_port": 0}', b'{"colour": "blue"}', b"[]"])
def test_an_unusable_lab_json_is_an_error_naming_the_file(layout: lab.Layout, content: bytes) -> None:
    layout.data_dir.mkdir()
    layout.settings_file.write_bytes(content)
    with pytest.raises(lab.SettingsError, match=r"lab\.json"):
        lab.load_settings(layout)


# --- preparing a data directory -----------------------------------------------------------


def test_serving_addresses_name_loopback_service_ip_and_bind_address(layout: lab.Layout) -> None:
    options = lab.server_options(layout, lab.Settings(bind_address="127.0.0.7"))
    assert lab.serving_addresses(options) == ["127.0.0.1", "127.96.0.1", "127.0.0.7"]
    wildcard = lab.server_options(layout, lab.Settings(bind_address="0.0.0.0"))
    assert lab.serving_addresses(wildcard) == ["127.0.0.1", "127.96.0.1"]


def test_server_options_point_at_the_lab_files(layout: lab.Layout) -> None:
    options = lab.server_options(layout, lab.Settings(api_port=7003, store_url="etcd://127.0.0.1:2379"))
    assert (options.port, options.store_url, options.data_dir) == (
        7003,
        "etcd://127.0.0.1:2379",
        layout.data_dir,
    )
    assert options.tls_cert_file == layout.pki.apiserver_cert
    assert options.tls_key_file == layout.pki.apiserver_key
    assert options.client_ca_file == layout.pki.ca_cert
    # As kubeadm: tokens signed with the lab's SA key, Node then RBAC authorization.
    assert options.service_account_signing_key_file == layout.pki.service_account_key
    assert options.service_account_key_files == (layout.pki.service_account_public_key,)
    assert options.authorization_modes == ("Node", "RBAC")
    # The aggregator's front proxy, as kubeadm: its own CA and client certificate, kubeadm's names.
    assert options.proxy_client_cert_file == layout.pki.front_proxy_client_cert
    assert options.proxy_client_key_file == layout.pki.front_proxy_client_key
    assert options.requestheader_client_ca_file == layout.pki.front_proxy_ca_cert
    assert options.requestheader_allowed_names == ("front-proxy-client",)
    assert options.requestheader_username_headers == ("X-Remote-User",)
    assert options.requestheader_group_headers == ("X-Remote-Group",)
    assert options.requestheader_extra_headers_prefix == ("X-Remote-Extra-",)


def test_prepare_writes_pki_kubeconfig_and_settings_and_resumes(layout: lab.Layout) -> None:
    settings = lab.Settings(api_port=7004)
    first = lab.prepare(layout, settings)
    assert set(first.outcomes.values()) == {Outcome.CREATED}
    assert layout.kubeconfig.stat().st_mode & 0o777 == 0o600
    assert orjson.loads(layout.settings_file.read_bytes())["api_port"] == 7004
    again = lab.prepare(layout, lab.Settings(api_port=7005))
    assert set(again.outcomes.values()) == {Outcome.REUSED}
    assert "https://127.0.0.1:7005" in layout.kubeconfig.read_text()
    assert lab.load_settings(layout) == lab.Settings(api_port=7005)


def subject_of(kubeconfig: bytes) -> tuple[str, list[str]]:
    """(CN, [O...]) of the client certificate a kubeconfig embeds."""
    document = yaml.safe_load(kubeconfig)
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(document["users"][0]["user"]["client-certificate-data"])
    )
    return (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
        [attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)],
    )


def test_prepare_gives_every_component_its_own_user(layout: lab.Layout) -> None:
    lab.prepare(layout, lab.Settings(nodes=2))
    expected = {
        "controller-manager": ("system:kube-controller-manager", []),
        "scheduler": ("system:kube-scheduler", []),
        "kube-proxy": ("system:kube-proxy", []),
        "node-1": ("system:node:node-1", ["system:nodes"]),
        "node-2": ("system:node:node-2", ["system:nodes"]),
    }
    for name, identity in expected.items():
        path = layout.component_kubeconfig(name)
        assert path.stat().st_mode & 0o777 == 0o600
        assert subject_of(path.read_bytes()) == identity, name


def test_a_user_kubeconfig_names_the_user_and_groups_and_trusts_the_lab(layout: lab.Layout) -> None:
    pki = lab.prepare(layout, lab.Settings(api_port=7010))
    files_before = sorted(path.name for path in layout.pki.directory.iterdir())
    content = lab.user_kubeconfig(layout, user="jane", groups=("dev", "ops"), validity=timedelta(hours=2))
    assert subject_of(content) == ("jane", ["dev", "ops"])
    cert_data = yaml.safe_load(content)["users"][0]["user"]["client-certificate-data"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(cert_data))
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=2, minutes=5)
    document = yaml.safe_load(content)
    assert document["current-context"] == "jane@kubelab"
    assert document["contexts"] == [
        {"name": "jane@kubelab", "context": {"cluster": "kubelab", "user": "jane"}}
    ]
    cluster = document["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:7010"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.files.ca_cert.read_bytes()
    # The lab keeps no copy of the user's key.
    assert sorted(path.name for path in layout.pki.directory.iterdir()) == files_before


def test_a_user_kubeconfig_needs_a_lab_and_usable_names(layout: lab.Layout) -> None:
    with pytest.raises(lab.LabError, match=r"there is no lab in .* run `kubelab up` first"):
        lab.user_kubeconfig(layout, user="jane")
    lab.prepare(layout, lab.Settings())
    for user, groups in (("", ()), (" jane", ()), ("jane", ("",)), ("jane", ("a\nb",))):
        with pytest.raises(ValueError, match="is not a usable user or group name"):
            lab.user_kubeconfig(layout, user=user, groups=groups)


@pytest.mark.parametrize(
    ("text", "validity"),
    [
        ("8760h", timedelta(days=365)),
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
    ],
)
def test_validity_periods_are_spelled_as_kubeadm_does(text: str, validity: timedelta) -> None:
    assert lab.parse_validity(text) == validity


@pytest.mark.parametrize("text", ["", "0h", "1d", "-1h", "24", "h", "1.5h", "1m1h"])
def test_validity_periods_that_are_not_positive_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration|must be valid for some time"):
        lab.parse_validity(text)


def test_kubeconfig_loads_with_the_official_client(layout: lab.Layout) -> None:
    pki = lab.prepare(layout, lab.Settings(api_port=7006))
    contexts, current = k8s_config.list_kube_config_contexts(config_file=str(layout.kubeconfig))
    assert current == {"name": "kubelab", "context": {"cluster": "kubelab", "user": "kubelab-admin"}}
    assert contexts == [current]
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(layout.kubeconfig), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:7006"
    assert Path(configuration.ssl_ca_cert).read_bytes() == pki.files.ca_cert.read_bytes()
    assert Path(configuration.cert_file).read_bytes() == pki.files.admin_cert.read_bytes()
    assert Path(configuration.key_file).read_bytes() == pki.files.admin_key.read_bytes()
    # Self-contained: no file paths, only embedded data.
    document = yaml.safe_load(layout.kubeconfig.read_text())
    assert set(document["clusters"][0]["cluster"]) == {"server", "certificate-authority-data"}
    assert set(document["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}


# --- a real TLS server with the lab's certificates ------------------------------------------


VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class TLSServer:
    def __init__(self) -> None:
        self.readyz_status = 200
        self.clients: list[str] = []
        self.url = ""


@pytest.fixture
async def tls_server(layout: lab.Layout) -> AsyncIterator[TLSServer]:
    """aiohttp over TLS with the lab's serving certificate, asking for client certificates."""
    settings = lab.Settings(api_port=free_port())
    lab.prepare(layout, settings)
    state = TLSServer()
    state.url = settings.server_url

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(
            status=state.readyz_status, text="ok" if state.readyz_status == 200 else "not yet"
        )

    async def version(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") or {}
        state.clients.append(dict(rdn[0] for rdn in peer.get("subject", ())).get("commonName", ""))
        return web.json_response(VERSION)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(layout.pki.apiserver_cert, layout.pki.apiserver_key)
    context.load_verify_locations(cafile=layout.pki.ca_cert)
    context.verify_mode = ssl.CERT_OPTIONAL
    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version/", version)
    app.router.add_get("/version", version)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.api_port, ssl_context=context).start()
    try:
        yield state
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_official_client_talks_to_a_tls_server_with_the_kubeconfig(
    layout: lab.Layout, tls_server: TLSServer
) -> None:
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(layout.kubeconfig), client_configuration=configuration)

    def get_version() -> str:
        with k8s_client.ApiClient(configuration) as api:
            return k8s_client.VersionApi(api).get_code().git_version

    assert await asyncio.to_thread(get_version) == "v1.32.0"
    assert tls_server.clients == ["kubernetes-admin"]


async def test_probe_readyz_reports_ok_and_not_ready(layout: lab.Layout, tls_server: TLSServer) -> None:
    context = lab.lab_ssl_context(layout)
    ready = await asyncio.to_thread(lab.probe_readyz, url=tls_server.url, context=context)
    assert ready == lab.Readiness(ok=True, detail="ok")
    tls_server.readyz_status = 500
    not_ready = await asyncio.to_thread(lab.probe_readyz, url=tls_server.url, context=context)
    assert not_ready == lab.Readiness(ok=False, detail="HTTP 500: not yet")


async def test_probe_readyz_refuses_a_server_the_lab_ca_did_not_sign(
    tls_server: TLSServer, tmp_path: Path
) -> None:
    stranger = lab.Layout(tmp_path / "stranger")
    lab.prepare(stranger, lab.Settings())
    readiness = await asyncio.to_thread(
        lab.probe_readyz, url=tls_server.url, context=lab.lab_ssl_context(stranger)
    )
    assert not readiness.ok
    assert readiness.detail.startswith("TLS error")


def test_probe_readyz_reports_a_closed_port(layout: lab.Layout) -> None:
    readiness = lab.probe_readyz(url=f"https://127.0.0.1:{free_port()}", context=ssl.create_default_context())
    assert readiness == lab.Readiness(ok=False, detail="connection refused")


# --- ports --------------------------------------------------------------------------------


def test_a_port_in_use_is_reported_with_the_flag_to_change_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(
            lab.PortUnavailableError, match=rf"port {port} on 127\.0\.0\.1 is already in use.*--api-port"
        ):
            lab.check_port_free(host="127.0.0.1", port=port)
    lab.check_port_free(host="127.0.0.1", port=port)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EACCES, "needs root .*ip_unprivileged_port_start.*--api-port"),
        (errno.EADDRNOTAVAIL, "not an address of this machine.*--bind-address"),
        (errno.EMFILE, "cannot listen on 127.0.0.1:80.*--bind-address and --api-port"),
    ],
)
def test_other_bind_failures_name_their_fix(code: int, message: str) -> None:
    error = lab.port_unavailable(host="127.0.0.1", port=80, error=OSError(code, os.strerror(code)))
    assert (error.host, error.port) == ("127.0.0.1", 80)
    assert re.search(message, str(error))


# --- pidfiles and processes ---------------------------------------------------------------


def test_a_claimed_pidfile_is_running_and_removed_on_release(layout: lab.Layout) -> None:
    pid_file = layout.pid_file("server")
    with lab.claim_pidfile(pid_file):
        assert lab.running_pid(pid_file) == os.getpid()
        assert pid_file.read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(lab.AlreadyRunningError, match=rf"pid {os.getpid()}.*kubelab down") as caught,
            lab.claim_pidfile(pid_file),
        ):
            pass
        assert caught.value.pid == os.getpid()
    assert not pid_file.exists()
    assert lab.running_pid(pid_file) is None


def test_a_stale_pidfile_is_not_a_running_process_and_down_removes_it(layout: lab.Layout) -> None:
    layout.data_dir.mkdir()
    layout.pid_file("server").write_text(f"{os.getpid()}\n")  # a live pid, but nobody holds the lock
    assert lab.running_pid(layout.pid_file("server")) is None
    assert lab.running_processes(layout) == []
    assert lab.stop_processes(layout, timeout=1) == []
    assert not layout.pid_file("server").exists()


def test_down_with_no_data_dir_stops_nothing(tmp_path: Path) -> None:
    assert lab.stop_processes(lab.Layout(tmp_path / "absent"), timeout=1) == []


def test_stop_processes_terminates_gracefully_server_last(
    layout: lab.Layout, start_holder: Callable[..., int]
) -> None:
    node = start_holder("node-1")
    server = start_holder(lab.SERVER)
    assert lab.running_processes(layout) == [
        lab.RunningProcess(name="server", pid=server),
        lab.RunningProcess(name="node-1", pid=node),
    ]
    assert lab.stop_processes(layout, timeout=10) == [
        lab.StoppedProcess(name="node-1", pid=node, killed=False),
        lab.StoppedProcess(name="server", pid=server, killed=False),
    ]
    assert gone(node) and gone(server)
    assert list(layout.data_dir.glob("*.pid")) == []


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    layout: lab.Layout, start_holder: Callable[..., int]
) -> None:
    pid = start_holder(mode="stubborn")
    assert lab.stop_processes(layout, timeout=0.2) == [
        lab.StoppedProcess(name="server", pid=pid, killed=True)
    ]
    assert gone(pid)
    assert not layout.pid_file("server").exists()


def test_terminate_of_a_finished_process_does_nothing(layout: lab.Layout) -> None:
    spawned = lab.spawn(name="quick", argv=[sys.executable, "-c", "pass"], log_file=layout.log_file("quick"))
    os.waitpid(spawned.pid, 0)
    assert lab.terminate(spawned.pid, timeout=1) is None


# --- starting in the background -----------------------------------------------------------


def test_server_command_spells_out_every_setting(layout: lab.Layout) -> None:
    settings = lab.Settings(api_port=7007, bind_address="0.0.0.0", store_url="etcd://127.0.0.1:2379")
    argv = lab.server_command(layout, settings)
    assert argv[:4] == [sys.executable, "-m", "control.cli", "server"]
    flags = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert flags == {
        "--data-dir": str(layout.data_dir),
        "--api-port": "7007",
        "--bind-address": "0.0.0.0",
        "--store": "etcd://127.0.0.1:2379",
        "--log-level": "info",
        "--components": "apiserver",
    }
    controllers = lab.controllers_command(layout, settings)
    assert controllers[:4] == [sys.executable, "-m", "control.cli", "server"]
    assert dict(zip(controllers[4::2], controllers[5::2], strict=True)) == {
        "--data-dir": str(layout.data_dir),
        "--log-level": "info",
        "--components": "controller-manager,scheduler",
    }


def test_a_process_that_exits_early_is_reported_with_its_own_log_lines(layout: lab.Layout) -> None:
    log_file = layout.log_file("server")
    log_file.parent.mkdir(parents=True)
    log_file.write_text("from an earlier run\n")
    spawned = lab.spawn(
        name="server",
        argv=[sys.executable, "-c", "import sys; print('boom', flush=True); sys.exit(3)"],
        log_file=log_file,
    )
    with pytest.raises(lab.StartError, match=r"pid \d+\) exited with code 3 before it was ready") as caught:
        lab.wait_until_ready(
            spawned=spawned,
            url=f"https://127.0.0.1:{free_port()}",
            context=ssl.create_default_context(),
            timeout=30,
        )
    assert caught.value.log_lines == ["boom"]
    assert caught.value.log_file == log_file


def test_a_process_that_never_gets_ready_is_stopped_at_the_timeout(layout: lab.Layout) -> None:
    spawned = lab.spawn(
        name="server",
        argv=[sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"],
        log_file=layout.log_file("server"),
    )
    wait_for(lambda: lab.log_tail(spawned.log_file) == ["starting"])
    with pytest.raises(
        lab.StartError, match=r"did not answer /readyz with 200 within 0.2s .*has been stopped"
    ):
        lab.wait_until_ready(
            spawned=spawned,
            url=f"https://127.0.0.1:{free_port()}",
            context=ssl.create_default_context(),
            timeout=0.2,
        )
    assert gone(spawned.pid)


def test_log_tail_reads_after_the_offset_and_keeps_the_last_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "x.log"
    log_file.write_text("old\n" + "".join(f"line {n}\n" for n in range(30)))
    assert lab.log_tail(log_file, offset=4, lines=3) == ["line 27", "line 28", "line 29"]
    assert lab.log_tail(log_file, offset=4)[0] == "line 10"
    assert lab.log_tail(tmp_path / "missing.log") == []
