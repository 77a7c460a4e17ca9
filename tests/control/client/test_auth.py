"""Per-request credentials: bearer tokens re-read from file, basic auth, impersonation, exec plugins."""

from __future__ import annotations

import base64
import json
import ssl
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control.client.auth import Authenticator, CredentialError, ExecPlugin, TokenFile
from control.client.config import ClientConfig, ExecConfig, Impersonation
from control.client.errors import RequestError, UnauthorizedError
from control.client.rest import RESTClient
from control.client.testing import FakeClock
from tests.control.client.pki import TestCA
from tests.control.client.wire import FakeWireServer, json_answer, status_answer

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

# A tiny exec plugin: logs each run's KUBERNETES_EXEC_INFO and argv, prints $ANSWER_FILE, exits $EXIT_CODE.
PLUGIN = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["RUN_LOG"], "a") as log:
    log.write(json.dumps({{"info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]), "argv": sys.argv[1:],
                          "extra": os.environ.get("EXTRA")}}) + "\\n")
sys.stdout.write(open(os.environ["ANSWER_FILE"]).read())
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


class PluginFixture:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "plugin"
        self.path.write_text(PLUGIN)
        self.path.chmod(0o755)
        self.answer_file = directory / "answer.json"
        self.run_log = directory / "runs.log"

    def answer(self, status: dict | None, *, api_version: str = V1, raw: str | None = None) -> None:
        document = {"kind": "ExecCredential", "apiVersion": api_version}
        if status is not None:
            document["status"] = status
        self.answer_file.write_text(raw if raw is not None else json.dumps(document))

    def runs(self) -> list[dict]:
        if not self.run_log.exists():
            return []
        return [json.loads(line) for line in self.run_log.read_text().splitlines()]

    def spec(self, *, api_version: str = V1, exit_code: int = 0, **overrides) -> ExecConfig:
        env = (
            ("RUN_LOG", str(self.run_log)),
            ("ANSWER_FILE", str(self.answer_file)),
            ("EXIT_CODE", str(exit_code)),
            ("EXTRA", "from-kubeconfig"),
        )
        settings = {
            "command": str(self.path),
            "api_version": api_version,
            "args": ("get-token",),
            "env": env,
            "interactive_mode": "Never",
        }
        settings.update(overrides)
        return ExecConfig(**settings)


@pytest.fixture
def plugin(tmp_path) -> PluginFixture:
    return PluginFixture(tmp_path)


class Now:
    def __init__(self) -> None:
        self.value = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- static credentials -------------------------------------------------------------------------


async def test_static_token_basic_and_none():
    bearer = await Authenticator(ClientConfig(server="https://x:1", token="abc")).credentials()
    assert bearer.headers["Authorization"] == "Bearer abc"
    basic = await Authenticator(
        ClientConfig(server="https://x:1", username="u", password="p:w")
    ).credentials()
    assert basic.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p:w").decode()
    anonymous = await Authenticator(ClientConfig(server="http://x:1")).credentials()
    assert "Authorization" not in anonymous.headers and anonymous.ssl is None


async def test_impersonation_headers():
    config = ClientConfig(
        server="https://x:1",
        token="abc",
        impersonate=Impersonation(
            user="jane", uid="7", groups=("a", "b"), extra=(("scopes/x", ("s1", "s2")),)
        ),
    )
    headers = (await Authenticator(config).credentials()).headers
    assert headers["Impersonate-User"] == "jane"
    assert headers["Impersonate-Uid"] == "7"
    assert headers.getall("Impersonate-Group") == ["a", "b"]
    assert headers.getall("Impersonate-Extra-scopes%2Fx") == ["s1", "s2"]


async def test_headers_are_fresh_per_request():
    auth = Authenticator(ClientConfig(server="https://x:1", token="abc"))
    first = await auth.credentials()
    first.headers["X-Mine"] = "1"
    assert "X-Mine" not in (await auth.credentials()).headers


async def test_tls_context_is_built_once_from_the_config():
    ca = TestCA()
    auth = Authenticator(ClientConfig(server="https://127.0.0.1:1", ca_data=ca.cert_pem))
    first, second = await auth.credentials(), await auth.credentials()
    assert isinstance(first.ssl, ssl.SSLContext) and first.ssl is second.ssl


# --- token files --------------------------------------------------------------------------------


def test_token_file_is_reread_once_the_period_passes(tmp_path):
    clock = FakeClock()
    path = tmp_path / "token"
    path.write_text("one\n")
    tokens = TokenFile(path, period=60.0, clock=clock)
    assert tokens.token() == "one"
    path.write_text("two")
    clock.advance(59.0)
    assert tokens.token() == "one", "cached within the period"
    clock.advance(1.0)
    assert tokens.token() == "two"


def test_token_file_keeps_the_last_token_when_a_reread_fails(tmp_path, caplog):
    clock = FakeClock()
    path = tmp_path / "token"
    path.write_text("one")
    tokens = TokenFile(path, clock=clock)
    tokens.token()
    path.unlink()
    clock.advance(120.0)
    assert tokens.token() == "one"
    assert "previous token" in caplog.text


def test_unreadable_token_file_at_first_use_is_an_error(tmp_path):
    with pytest.raises(CredentialError, match="cannot read bearer token file") as caught:
        TokenFile(tmp_path / "missing", clock=FakeClock()).token()
    assert isinstance(caught.value, RequestError), "a credential failure is also a failed request"


async def test_token_file_wins_over_the_token_read_at_start(tmp_path):
    path = tmp_path / "token"
    path.write_text("rotated")
    auth = Authenticator(ClientConfig(server="https://x:1", token="initial", token_file=path))
    assert (await auth.credentials()).headers["Authorization"] == "Bearer rotated"


# --- exec plugins -------------------------------------------------------------------------------


async def test_exec_plugin_token_is_cached_until_it_expires(plugin):
    now = Now()
    plugin.answer({"token": "t1", "expirationTimestamp": stamp(now.value + timedelta(minutes=10))})
    exec_plugin = ExecPlugin(plugin.spec(), now=now)
    first = await exec_plugin.credential()
    assert first.token == "t1" and first.client_cert is None
    assert await exec_plugin.credential() is first
    assert len(plugin.runs()) == 1
    plugin.answer({"token": "t2", "expirationTimestamp": stamp(now.value + timedelta(hours=1))})
    now.value += timedelta(minutes=11)
    assert (await exec_plugin.credential()).token == "t2"
    assert len(plugin.runs()) == 2


async def test_exec_plugin_without_expiry_is_cached_for_good(plugin):
    plugin.answer({"token": "forever"})
    exec_plugin = ExecPlugin(plugin.spec(), now=Now())
    await exec_plugin.credential()
    await exec_plugin.credential()
    assert len(plugin.runs()) == 1


async def test_exec_plugin_gets_exec_info_args_and_env(plugin):
    plugin.answer({"token": "t"})
    cluster = {"server": "https://127.0.0.1:6443", "config": {"audience": "lab"}}
    await ExecPlugin(plugin.spec(provide_cluster_info=True), cluster=cluster, now=Now()).credential()
    (run,) = plugin.runs()
    assert run["argv"] == ["get-token"]
    assert run["extra"] == "from-kubeconfig"
    assert run["info"] == {
        "kind": "ExecCredential",
        "apiVersion": V1,
        "spec": {"interactive": False, "cluster": cluster},
    }


async def test_exec_plugin_v1beta1(plugin):
    plugin.answer({"token": "beta"}, api_version=V1BETA1)
    credential = await ExecPlugin(plugin.spec(api_version=V1BETA1), now=Now()).credential()
    assert credential.token == "beta"
    assert plugin.runs()[0]["info"]["apiVersion"] == V1BETA1


async def test_unauthorized_makes_the_plugin_run_again_once(plugin):
    plugin.answer({"token": "t1"})
    auth = Authenticator(ClientConfig(server="https://127.0.0.1:1", exec_config=plugin.spec()))
    used = await auth.credentials()
    assert used.headers["Authorization"] == "Bearer t1"
    plugin.answer({"token": "t2"})
    auth.unauthorized(used)
    auth.unauthorized(used)  # a second 401 for the same credential must not force another run
    assert (await auth.credentials()).headers["Authorization"] == "Bearer t2"
    assert len(plugin.runs()) == 2


async def test_a_401_answer_makes_the_next_request_use_a_fresh_plugin_credential(plugin):
    server = FakeWireServer()
    await server.start()
    server.answer(status_answer("Unauthorized", 401, "Unauthorized"), json_answer({"items": []}))
    plugin.answer({"token": "stale"})
    try:
        async with RESTClient(ClientConfig(server=server.url, exec_config=plugin.spec())) as client:
            with pytest.raises(UnauthorizedError):
                await client.request("GET", "/api/v1/nodes")
            plugin.answer({"token": "fresh"})
            await client.request("GET", "/api/v1/nodes")
    finally:
        await server.stop()
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer stale", "Bearer fresh"]


async def test_exec_plugin_client_certificate_becomes_the_tls_identity(plugin):
    ca = TestCA()
    pair = ca.issue("plugin-user")
    plugin.answer({"clientCertificateData": pair.cert_pem.decode(), "clientKeyData": pair.key_pem.decode()})
    auth = Authenticator(
        ClientConfig(server="https://127.0.0.1:1", ca_data=ca.cert_pem, exec_config=plugin.spec())
    )
    credentials = await auth.credentials()
    assert "Authorization" not in credentials.headers
    assert isinstance(credentials.ssl, ssl.SSLContext)
    assert (await auth.credentials()).ssl is credentials.ssl, "one TLS context per certificate"


@pytest.mark.parametrize(
    ("status", "raw", "api_version", "message"),
    [
        (None, None, V1, "didn't return a status"),
        ({}, None, V1, "didn't return a token or cert/key pair"),
        ({"clientCertificateData": "x"}, None, V1, "only certificate or key"),
        ({"token": "t"}, None, V1BETA1, "configured to use API version"),
        (None, "not json", V1, "decoding stdout"),
        (None, '{"kind": "Other"}', V1, "not an ExecCredential"),
        ({"token": "t", "expirationTimestamp": "soon"}, None, V1, "bad expirationTimestamp"),
    ],
)
async def test_bad_plugin_answers_are_errors(plugin, status, raw, api_version, message):
    plugin.answer(status, api_version=api_version, raw=raw)
    with pytest.raises(CredentialError, match=message):
        await ExecPlugin(plugin.spec(), now=Now()).credential()


async def test_failing_plugin_reports_its_exit_code(plugin):
    plugin.answer({"token": "t"})
    with pytest.raises(CredentialError, match="failed with exit code 3"):
        await ExecPlugin(plugin.spec(exit_code=3), now=Now()).credential()


async def test_missing_plugin_shows_the_install_hint(tmp_path):
    spec = ExecConfig(
        command=str(tmp_path / "nope"), api_version=V1, interactive_mode="Never", install_hint="brew it"
    )
    with pytest.raises(CredentialError, match=r"(?s)could not be run.*brew it"):
        await ExecPlugin(spec, now=Now()).credential()


async def test_interactive_always_needs_a_terminal(plugin):
    plugin.answer({"token": "t"})
    exec_plugin = ExecPlugin(
        plugin.spec(interactive_mode="Always"), now=Now(), stdin_is_terminal=lambda: False
    )
    with pytest.raises(CredentialError, match="standard input is not a terminal"):
        await exec_plugin.credential()
    assert plugin.runs() == []


async def test_if_available_runs_non_interactively_without_a_terminal(plugin):
    plugin.answer({"token": "t"})
    spec = plugin.spec(interactive_mode="IfAvailable")
    await ExecPlugin(spec, now=Now(), stdin_is_terminal=lambda: False).credential()
    assert plugin.runs()[0]["info"]["spec"]["interactive"] is False
