"""Kubeconfig loading (clientcmd's merge rules, relative paths, data fields, auth) and in-cluster config."""

from __future__ import annotations

import base64
import logging
import os
import ssl
from pathlib import Path

import pytest
import yaml

from control.client import config as config_module
from control.client.config import ClientConfig, ConfigError, in_cluster_config, load_config, load_kubeconfig
from tests.control.client.pki import TestCA


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, document: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def kubeconfig(
    *,
    clusters: dict | None = None,
    users: dict | None = None,
    contexts: dict | None = None,
    current: str | None = None,
) -> dict:
    document: dict = {"apiVersion": "v1", "kind": "Config"}
    if clusters is not None:
        document["clusters"] = [{"name": n, "cluster": c} for n, c in clusters.items()]
    if users is not None:
        document["users"] = [{"name": n, "user": u} for n, u in users.items()]
    if contexts is not None:
        document["contexts"] = [{"name": n, "context": c} for n, c in contexts.items()]
    if current is not None:
        document["current-context"] = current
    return document


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def simple(
    tmp_path: Path, *, user: dict | None = None, cluster: dict | None = None, context: dict | None = None
) -> Path:
    return write(
        tmp_path / "config",
        kubeconfig(
            clusters={"lab": cluster or {"server": "https://127.0.0.1:6443"}},
            users={"admin": user or {"token": "t0k"}},
            contexts={"lab": context or {"cluster": "lab", "user": "admin"}},
            current="lab",
        ),
    )


def test_single_file_with_data_fields(tmp_path, ca):
    client = ca.issue("admin", organizations=("system:masters",))
    path = write(
        tmp_path / "config",
        kubeconfig(
            clusters={
                "lab": {"server": "https://127.0.0.1:6443", "certificate-authority-data": b64(ca.cert_pem)}
            },
            users={
                "admin": {
                    "client-certificate-data": b64(client.cert_pem),
                    "client-key-data": b64(client.key_pem),
                }
            },
            contexts={"lab": {"cluster": "lab", "user": "admin", "namespace": "kube-system"}},
            current="lab",
        ),
    )
    config = load_kubeconfig(path)
    assert config.server == "https://127.0.0.1:6443"
    assert config.ca_data == ca.cert_pem
    assert config.client_cert_data == client.cert_pem and config.client_key_data == client.key_pem
    assert config.namespace == "kube-system"
    assert str(path) in config.source and "context lab" in config.source
    context = config.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_namespace_defaults_to_default(tmp_path):
    assert load_kubeconfig(simple(tmp_path)).namespace == "default"


def test_several_files_merge_first_definition_wins(tmp_path):
    first = write(
        tmp_path / "a" / "config",
        kubeconfig(
            clusters={"shared": {"server": "https://first.example:6443"}},
            users={"me": {"token": "from-first"}},
        ),
    )
    second = write(
        tmp_path / "b" / "config",
        kubeconfig(
            clusters={
                "shared": {"server": "https://second.example:6443"},
                "other": {"server": "https://other:1"},
            },
            users={"me": {"token": "from-second", "username": "ignored-entirely"}},
            contexts={"work": {"cluster": "shared", "user": "me", "namespace": "team"}},
            current="work",
        ),
    )
    third = write(
        tmp_path / "c" / "config",
        kubeconfig(contexts={"elsewhere": {"cluster": "other", "user": "me"}}, current="elsewhere"),
    )
    environ = {"KUBECONFIG": os.pathsep.join(map(str, (first, tmp_path / "missing", second, third, first)))}
    config = load_kubeconfig(environ=environ)
    assert config.server == "https://first.example:6443", "the first file to define a cluster name wins"
    assert config.token == "from-first", "the first file's user entry is taken whole, not merged"
    assert config.username is None
    assert config.namespace == "team", "current-context comes from the first file that sets one"
    other = load_kubeconfig(environ=environ, context="elsewhere")
    assert other.server == "https://other:1"


def test_relative_paths_resolve_against_their_own_file(tmp_path, ca):
    client = ca.issue("admin")
    write(tmp_path / "certs" / "ca.crt", ca.cert_pem.decode())
    (tmp_path / "users" / "pki").mkdir(parents=True)
    (tmp_path / "users" / "pki" / "tls.crt").write_bytes(client.cert_pem)
    (tmp_path / "users" / "pki" / "tls.key").write_bytes(client.key_pem)
    (tmp_path / "users" / "token").write_text("file-token\n")
    clusters_file = write(
        tmp_path / "clusters.yaml",
        kubeconfig(
            clusters={"lab": {"server": "https://127.0.0.1:6443", "certificate-authority": "certs/ca.crt"}}
        ),
    )
    users_file = write(
        tmp_path / "users" / "users.yaml",
        kubeconfig(
            users={
                "admin": {
                    "client-certificate": "pki/tls.crt",
                    "client-key": "pki/tls.key",
                    "tokenFile": "token",
                }
            },
            contexts={"lab": {"cluster": "lab", "user": "admin"}},
            current="lab",
        ),
    )
    config = load_kubeconfig(environ={"KUBECONFIG": f"{clusters_file}{os.pathsep}{users_file}"})
    assert config.ca_data == ca.cert_pem
    assert config.client_cert_data == client.cert_pem
    assert config.token_file == tmp_path / "users" / "token"


def test_exec_command_with_a_slash_is_resolved_but_a_bare_name_is_not(tmp_path):
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./bin/plugin",
            "interactiveMode": "Never",
        }
    }
    config = load_kubeconfig(simple(tmp_path, user=user))
    assert config.exec_config is not None
    assert config.exec_config.command == str(tmp_path / "bin" / "plugin")
    user["exec"]["command"] = "gke-gcloud-auth-plugin"
    assert load_kubeconfig(simple(tmp_path, user=user)).exec_config.command == "gke-gcloud-auth-plugin"


def test_exec_settings_are_read(tmp_path):
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "plugin",
            "args": ["get-token", "--cluster", "lab"],
            "env": [{"name": "A", "value": "1"}],
            "provideClusterInfo": True,
            "installHint": "install it",
        }
    }
    cluster = {
        "server": "https://127.0.0.1:6443",
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "lab"}}],
    }
    spec = load_kubeconfig(simple(tmp_path, user=user, cluster=cluster)).exec_config
    assert spec.args == ("get-token", "--cluster", "lab")
    assert spec.env == (("A", "1"),)
    assert spec.interactive_mode == "IfAvailable", "v1beta1 defaults interactiveMode"
    assert spec.provide_cluster_info and spec.install_hint == "install it"
    assert spec.cluster_config == {"audience": "lab"}


@pytest.mark.parametrize(
    ("exec_spec", "message"),
    [
        (
            {"apiVersion": "client.authentication.k8s.io/v1", "command": "p"},
            "interactiveMode must be specified",
        ),
        (
            {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "p"},
            "apiVersion must be one of",
        ),
        (
            {"apiVersion": "client.authentication.k8s.io/v1", "interactiveMode": "Never"},
            "command must be specified",
        ),
        (
            {"apiVersion": "client.authentication.k8s.io/v1", "command": "p", "interactiveMode": "Sometimes"},
            "invalid interactiveMode",
        ),
        (
            {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "p",
                "interactiveMode": "Never",
                "env": [{"value": "x"}],
            },
            "env entry needs a name",
        ),
    ],
)
def test_bad_exec_settings_are_named(tmp_path, exec_spec, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_kubeconfig(simple(tmp_path, user={"exec": exec_spec}))
    assert 'user "admin"' in str(caught.value) and str(tmp_path) in str(caught.value)


def test_basic_auth_and_impersonation(tmp_path):
    user = {
        "username": "u",
        "password": "p",
        "as": "jane",
        "as-groups": ["devs", "ops"],
        "as-uid": "42",
        "as-user-extra": {"scopes": ["a", "b"]},
    }
    config = load_kubeconfig(simple(tmp_path, user=user))
    assert (config.username, config.password) == ("u", "p")
    assert config.impersonate.user == "jane"
    assert config.impersonate.groups == ("devs", "ops")
    assert config.impersonate.uid == "42"
    assert config.impersonate.extra == (("scopes", ("a", "b")),)


def test_secrets_stay_out_of_repr(tmp_path):
    config = load_kubeconfig(simple(tmp_path, user={"token": "super-secret"}))
    assert "super-secret" not in repr(config)


def test_context_without_user_is_anonymous(tmp_path):
    path = simple(tmp_path, context={"cluster": "lab"})
    config = load_kubeconfig(path)
    assert config.token is None and config.exec_config is None


def test_bare_host_port_server_gets_a_scheme(tmp_path, ca):
    tls = load_kubeconfig(
        simple(tmp_path, cluster={"server": "127.0.0.1:6443", "certificate-authority-data": b64(ca.cert_pem)})
    )
    assert tls.server == "https://127.0.0.1:6443"
    plain = load_kubeconfig(simple(tmp_path, cluster={"server": "127.0.0.1:8080"}))
    assert plain.server == "http://127.0.0.1:8080"
    assert plain.ssl_context() is None


def test_proxy_url_is_kept_for_the_record(tmp_path):
    config = load_kubeconfig(
        simple(tmp_path, cluster={"server": "https://x:1", "proxy-url": "http://proxy:3128"})
    )
    assert config.proxy_url == "http://proxy:3128"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("clusters: [unclosed", "error loading config file"),
        ("- just\n- a list\n", "top level is not a mapping"),
        ({"clusters": {"not": "a list"}}, "clusters must be a list"),
        ({"clusters": [{"cluster": {"server": "https://x"}}]}, r"clusters\[0\] has no name"),
        ({"users": [{"name": "u", "user": "oops"}]}, "user must be a mapping"),
        ({"current-context": ["x"]}, "current-context must be a string"),
    ],
)
def test_malformed_files_are_named(tmp_path, document, message):
    path = write(tmp_path / "broken", document)
    with pytest.raises(ConfigError, match=message) as caught:
        load_kubeconfig(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"context": {"cluster": "nope", "user": "admin"}}, 'cluster "nope"'),
        ({"context": {"cluster": "lab", "user": "nobody"}}, 'user "nobody"'),
        ({"context": {"user": "admin"}}, "cluster was not specified"),
        ({"cluster": {"insecure-skip-tls-verify": True}}, "no server found"),
        ({"cluster": {"server": "ftp://x"}}, "is not an http"),
        (
            {
                "cluster": {
                    "server": "https://x",
                    "certificate-authority": "ca.crt",
                    "certificate-authority-data": "eA==",
                }
            },
            "both specified",
        ),
        (
            {"cluster": {"server": "https://x", "certificate-authority": "missing.crt"}},
            "unable to read certificate-authority",
        ),
        ({"cluster": {"server": "https://x", "certificate-authority-data": "%%%"}}, "not valid base64"),
        (
            {
                "cluster": {
                    "server": "https://x",
                    "certificate-authority-data": "eA==",
                    "insecure-skip-tls-verify": True,
                }
            },
            "insecure flag is not allowed",
        ),
        ({"user": {"token": "t", "username": "u"}}, "more than one authentication method"),
        ({"user": {"client-certificate-data": "eA=="}}, "client-key"),
        ({"user": {"tokenFile": "missing-token"}}, "unable to read tokenFile"),
        ({"user": {"auth-provider": {"name": "gcp"}}}, "auth-provider plugins are not supported"),
        ({"user": {"as-groups": ["g"]}}, "need as"),
    ],
)
def test_invalid_entries_are_reported_clearly(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(simple(tmp_path, **change))


def test_unknown_context_and_unset_current_context(tmp_path):
    path = simple(tmp_path)
    with pytest.raises(ConfigError, match='context "other" does not exist'):
        load_kubeconfig(path, context="other")
    bare = write(tmp_path / "bare", kubeconfig(clusters={"c": {"server": "https://x"}}))
    with pytest.raises(ConfigError, match="current-context is not set"):
        load_kubeconfig(bare)


def test_explicit_path_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "nope")


def test_nothing_found_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no configuration has been provided"):
        load_kubeconfig(environ={"KUBECONFIG": str(tmp_path / "missing")})


def test_default_path_is_home_kube_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    simple(tmp_path / ".kube")
    assert load_kubeconfig(environ={}).server == "https://127.0.0.1:6443"


def test_ssl_context_options(ca):
    insecure = ClientConfig(server="https://127.0.0.1:1", insecure_skip_tls_verify=True).ssl_context()
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    system = ClientConfig(server="https://127.0.0.1:1").ssl_context()
    assert system.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ConfigError, match="certificate authority"):
        ClientConfig(server="https://127.0.0.1:1", ca_data=b"not a pem").ssl_context()
    client = ca.issue("admin")
    with pytest.raises(ConfigError, match="client certificate or key"):
        ClientConfig(
            server="https://127.0.0.1:1", client_cert_data=client.cert_pem, client_key_data=b"junk"
        ).ssl_context()
    with pytest.raises(ConfigError, match="both the certificate and its key"):
        ClientConfig(server="https://127.0.0.1:1", client_cert_data=client.cert_pem)


# --- in-cluster ---------------------------------------------------------------------------------


@pytest.fixture
def service_account(tmp_path, ca) -> Path:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("sa-token\n")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    (directory / "namespace").write_text("kube-system")
    return directory


IN_CLUSTER_ENV = {"KUBERNETES_SERVICE_HOST": "127.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_in_cluster(service_account, ca):
    config = in_cluster_config(service_account_dir=service_account, environ=IN_CLUSTER_ENV)
    assert config.server == "https://127.96.0.1:443"
    assert config.token == "sa-token"
    assert config.token_file == service_account / "token"
    assert config.ca_data == ca.cert_pem
    assert config.namespace == "kube-system"


def test_in_cluster_ipv6_host_and_pod_namespace(service_account):
    environ = {
        "KUBERNETES_SERVICE_HOST": "fd00::1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "POD_NAMESPACE": "mine",
    }
    config = in_cluster_config(service_account_dir=service_account, environ=environ)
    assert config.server == "https://[fd00::1]:6443"
    assert config.namespace == "mine"


def test_in_cluster_without_ca_trusts_system_roots(service_account, caplog):
    (service_account / "ca.crt").unlink()
    (service_account / "namespace").unlink()
    with caplog.at_level(logging.WARNING):
        config = in_cluster_config(service_account_dir=service_account, environ=IN_CLUSTER_ENV)
    assert config.ca_data is None and "ca.crt" in caplog.text
    assert config.namespace == "default"


def test_in_cluster_needs_environment_and_token(service_account):
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster_config(service_account_dir=service_account, environ={"KUBERNETES_SERVICE_HOST": "x"})
    (service_account / "token").unlink()
    with pytest.raises(ConfigError, match="service account token"):
        in_cluster_config(service_account_dir=service_account, environ=IN_CLUSTER_ENV)


# --- load_config: which source ------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch, tmp_path, service_account):
    monkeypatch.setattr(config_module, "SERVICE_ACCOUNT_DIR", service_account)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(simple(tmp_path / "kube")))
    return monkeypatch


def test_load_config_uses_kubeconfig_outside_a_cluster(env):
    assert load_config().source.startswith("kubeconfig")


def test_load_config_prefers_in_cluster_inside_a_pod(env):
    for key, value in IN_CLUSTER_ENV.items():
        env.setenv(key, value)
    assert load_config().server == "https://127.96.0.1:443"


def test_load_config_explicit_kubeconfig_or_context_wins_over_in_cluster(env, tmp_path):
    for key, value in IN_CLUSTER_ENV.items():
        env.setenv(key, value)
    explicit = simple(tmp_path / "explicit", cluster={"server": "https://explicit:1"})
    assert load_config(kubeconfig=explicit).server == "https://explicit:1"
    assert load_config(context="lab").server == "https://127.0.0.1:6443"


def test_load_config_falls_back_to_kubeconfig_when_in_cluster_fails(env, service_account):
    (service_account / "token").unlink()
    env.setenv("KUBERNETES_SERVICE_HOST", "127.96.0.1")
    env.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load_config().source.startswith("kubeconfig")
    env.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    with pytest.raises(ConfigError, match=r"service account token.*no configuration has been provided"):
        load_config()
