"""`kubelab server`'s API aggregation flags: kube-apiserver's names, comma lists, the lab's
front-proxy files when left out, and clear errors for a half-given or missing credential."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from control import cli, lab
from control.apiserver.options import APIServerOptions


@pytest.fixture
def layout(tmp_path: Path) -> lab.Layout:
    return lab.Layout.resolve(tmp_path / "lab")


def options_for(layout: lab.Layout, *flags: str) -> APIServerOptions:
    args = cli._build_parser().parse_args(["server", "--data-dir", str(layout.data_dir), *flags])
    return cli._with_aggregation_flags(lab.server_options(layout, lab.Settings()), args)


def test_without_flags_the_server_uses_the_labs_front_proxy_files(layout: lab.Layout) -> None:
    assert options_for(layout) == lab.server_options(layout, lab.Settings())


def test_the_flags_override_the_lab_with_comma_lists(layout: lab.Layout, tmp_path: Path) -> None:
    for name in ("proxy.crt", "proxy.key", "front-ca.crt"):
        (tmp_path / name).write_text("pem")
    options = options_for(
        layout,
        "--proxy-client-cert-file",
        str(tmp_path / "proxy.crt"),
        "--proxy-client-key-file",
        str(tmp_path / "proxy.key"),
        "--requestheader-client-ca-file",
        str(tmp_path / "front-ca.crt"),
        "--requestheader-allowed-names",
        "aggregator, front-proxy-client,,aggregator",
        "--requestheader-username-headers",
        "X-Remote-User,X-User",
        "--requestheader-group-headers",
        "X-Remote-Group",
        "--requestheader-extra-headers-prefix",
        "X-Remote-Extra-,X-Extra-",
    )
    assert options.proxy_client_cert_file == tmp_path / "proxy.crt"
    assert options.proxy_client_key_file == tmp_path / "proxy.key"
    assert options.requestheader_client_ca_file == tmp_path / "front-ca.crt"
    assert options.requestheader_allowed_names == ("aggregator", "front-proxy-client")
    assert options.requestheader_username_headers == ("X-Remote-User", "X-User")
    assert options.requestheader_group_headers == ("X-Remote-Group",)
    assert options.requestheader_extra_headers_prefix == ("X-Remote-Extra-", "X-Extra-")


def test_an_empty_allowed_names_list_allows_any_name(layout: lab.Layout) -> None:
    assert options_for(layout, "--requestheader-allowed-names", "").requestheader_allowed_names == ()


def test_a_missing_file_is_an_error_naming_the_flag(layout: lab.Layout, tmp_path: Path) -> None:
    with pytest.raises(lab.LabError, match="--requestheader-client-ca-file"):
        options_for(layout, "--requestheader-client-ca-file", str(tmp_path / "absent.crt"))


def test_a_certificate_without_its_key_is_an_error(layout: lab.Layout, tmp_path: Path) -> None:
    (tmp_path / "proxy.crt").write_text("pem")
    # Not paired with the lab's key either: a certificate and key come as a pair.
    with pytest.raises(lab.LabError, match="must be given together"):
        options_for(layout, "--proxy-client-cert-file", str(tmp_path / "proxy.crt"))
    args = cli._build_parser().parse_args(["server", "--data-dir", str(layout.data_dir)])
    without_key = dataclasses.replace(lab.server_options(layout, lab.Settings()), proxy_client_key_file=None)
    with pytest.raises(lab.LabError, match="must be given together"):
        cli._with_aggregation_flags(without_key, args)


def test_the_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["server", "--help"])
    help_text = capsys.readouterr().out
    for flag in (
        "--proxy-client-cert-file",
        "--proxy-client-key-file",
        "--requestheader-client-ca-file",
        "--requestheader-allowed-names",
        "--requestheader-username-headers",
        "--requestheader-group-headers",
        "--requestheader-extra-headers-prefix",
    ):
        assert flag in help_text
