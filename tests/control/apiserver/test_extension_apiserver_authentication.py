"""kube-system/extension-apiserver-authentication: what upstream's ClientCARegistrationHook
writes for extension API servers, and the bootstrap Role that lets them read it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from control.apiserver.bootstrap import BootstrapError, extension_apiserver_authentication
from control.apiserver.options import APIServerOptions
from tests.control.apiserver.conftest import RunningServer, running_apiserver

CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


def pki(server: RunningServer) -> Path:
    return server.data_dir / "pki"


async def test_the_configmap_holds_the_client_ca_and_the_front_proxy_settings(
    apiserver: RunningServer,
) -> None:
    status, configmap = await apiserver.request("GET", CONFIGMAP)
    assert status == 200
    assert configmap["data"] == {
        "client-ca-file": (pki(apiserver) / "ca.crt").read_text(),
        "requestheader-client-ca-file": (pki(apiserver) / "front-proxy-ca.crt").read_text(),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    assert configmap["data"]["client-ca-file"] != configmap["data"]["requestheader-client-ca-file"]


async def test_without_a_front_proxy_ca_only_the_client_ca_is_published(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path, requestheader_client_ca_file=None) as server:
        _, configmap = await server.request("GET", CONFIGMAP)
        assert configmap["data"] == {"client-ca-file": (pki(server) / "ca.crt").read_text()}


async def test_a_changed_configmap_is_corrected_on_the_next_start(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path) as server:
        status, configmap = await server.request("GET", CONFIGMAP)
        expected = configmap["data"]
        configmap["data"] = {"requestheader-allowed-names": '["mallory"]', "extra": "x"}
        status, _ = await server.request("PUT", CONFIGMAP, body=configmap)
        assert status == 200
    async with running_apiserver(
        tmp_path, requestheader_allowed_names=("front-proxy-client", "other")
    ) as server:
        _, configmap = await server.request("GET", CONFIGMAP)
        assert configmap["data"] == {
            **expected,
            "requestheader-allowed-names": '["front-proxy-client","other"]',
        }


async def test_the_reader_role_lets_its_subjects_read_only_that_configmap(apiserver: RunningServer) -> None:
    status, role = await apiserver.request(
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/extension-apiserver-authentication-reader",
    )
    assert status == 200
    assert role["rules"] == [
        {
            "verbs": ["get", "list", "watch"],
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["extension-apiserver-authentication"],
        }
    ]
    assert role["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    status, binding = await apiserver.request(
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/"
        "system::extension-apiserver-authentication-reader",
    )
    assert status == 200
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }
    assert {s["name"] for s in binding["subjects"]} == {
        "system:kube-controller-manager",
        "system:kube-scheduler",
    }

    as_scheduler = {"Impersonate-User": "system:kube-scheduler"}
    status, _ = await apiserver.request("GET", CONFIGMAP, headers=as_scheduler)
    assert status == 200
    status, _ = await apiserver.request(
        "GET", "/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt", headers=as_scheduler
    )
    assert status == 403
    status, _ = await apiserver.request("GET", CONFIGMAP, headers={"Impersonate-User": "jane"})
    assert status == 403


async def test_a_deleted_reader_role_is_restored_on_the_next_start(tmp_path: Path) -> None:
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/extension-apiserver-authentication-reader"
    async with running_apiserver(tmp_path) as server:
        status, _ = await server.request("DELETE", path)
        assert status == 200
    async with running_apiserver(tmp_path) as server:
        status, _ = await server.request("GET", path)
        assert status == 200


def test_the_lists_are_json_arrays_as_upstream_writes_them(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    options = APIServerOptions(
        data_dir=tmp_path,
        client_ca_file=ca,
        requestheader_client_ca_file=ca,
        requestheader_allowed_names=(),
        requestheader_group_headers=("X-Remote-Group", "X-Other-Group"),
    )
    data = extension_apiserver_authentication(options)
    assert data["requestheader-allowed-names"] == "[]"  # empty: any name the CA signs
    assert orjson.loads(data["requestheader-group-headers"]) == ["X-Remote-Group", "X-Other-Group"]
    assert extension_apiserver_authentication(APIServerOptions(data_dir=tmp_path)) == {}


def test_an_unreadable_ca_file_is_an_error_naming_the_flag(tmp_path: Path) -> None:
    options = APIServerOptions(data_dir=tmp_path, requestheader_client_ca_file=tmp_path / "missing.crt")
    with pytest.raises(BootstrapError, match=r"--requestheader-client-ca-file .*missing\.crt"):
        extension_apiserver_authentication(options)
    with pytest.raises(BootstrapError, match="--client-ca-file"):
        extension_apiserver_authentication(dataclasses.replace(options, client_ca_file=tmp_path))
