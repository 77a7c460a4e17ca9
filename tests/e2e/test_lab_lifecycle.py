"""`kubelab up`, `status`, `kubeconfig` and `down` against the real API server, and the
real kubectl (oldest, default and newest client) reaching it with the lab's kubeconfig."""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
import pytest

from tests.e2e.conftest import KUBECTL_VERSIONS, Lab, process_gone


def test_up_prints_the_kubeconfig_and_the_next_commands(lab: Lab) -> None:
    out = lab.up_output
    for step in ("generating certificates…", "starting API server on", "waiting for /readyz", "ready in"):
        assert step in out
    assert f"kubelab is up on {lab.server_url} (pid {lab.server_pid}, data dir {lab.data_dir})." in out
    assert f"kubeconfig: {lab.kubeconfig}" in out
    assert f"export KUBECONFIG={lab.kubeconfig}\n  kubectl get ns\n" in out
    assert f"kubelab status --data-dir {lab.data_dir}" in out
    assert f"kubelab down --data-dir {lab.data_dir}" in out


def test_status_reports_a_running_ready_lab(lab: Lab) -> None:
    result = lab.kubelab("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^state:\s+running$", result.stdout, re.MULTILINE)
    assert re.search(rf"^pid:\s+{lab.server_pid}$", result.stdout, re.MULTILINE)
    assert re.search(rf"^url:\s+{re.escape(lab.server_url)}$", result.stdout, re.MULTILINE)
    assert re.search(r"^readyz:\s+ok$", result.stdout, re.MULTILINE)


def test_up_on_a_running_lab_changes_nothing(lab: Lab) -> None:
    result = lab.kubelab("up")
    assert result.returncode == 0, result.stderr
    assert f"kubelab is already running on {lab.server_url} (pid {lab.server_pid}" in result.stdout
    assert int((lab.data_dir / "server.pid").read_text()) == lab.server_pid


def test_kubeconfig_command_names_the_file_kubectl_uses(lab: Lab) -> None:
    result = lab.kubelab("kubeconfig")
    assert result.returncode == 0
    assert result.stdout == f"{lab.kubeconfig}\n"


@pytest.mark.parametrize("version", [KUBECTL_VERSIONS[0], None, KUBECTL_VERSIONS[-1]])
def test_kubectl_reaches_the_server_as_the_admin(lab: Lab, version: str | None) -> None:
    info = orjson.loads(lab.kubectl("version", "-o", "json", version=version).stdout)
    assert re.fullmatch(r"v1\.\d+\.\d+.*", info["serverVersion"]["gitVersion"])
    names = lab.kubectl("get", "namespaces", "-o", "name", version=version).stdout.split()
    assert "namespace/default" in names
    assert "namespace/kube-system" in names


def test_two_labs_run_side_by_side(lab: Lab, own_lab: Callable[..., Lab]) -> None:
    second = own_lab()
    assert second.port != lab.port and second.server_pid != lab.server_pid
    for running in (lab, second):
        assert running.kubelab("status").returncode == 0
        assert "namespace/default" in running.kubectl("get", "namespaces", "-o", "name").stdout
    # Different CAs: one lab's kubeconfig does not authenticate the other's server.
    assert (lab.data_dir / "pki" / "ca.crt").read_bytes() != (second.data_dir / "pki" / "ca.crt").read_bytes()


def test_down_then_up_resumes_with_objects_and_credentials_intact(own_lab: Callable[..., Lab]) -> None:
    first = own_lab()
    first.kubectl("create", "namespace", "survives-restart")
    kubeconfig = first.kubeconfig.read_bytes()

    down = first.kubelab("down")
    assert down.returncode == 0
    # the controller manager and scheduler process first, the API server last
    assert down.stdout.startswith("stopped controllers (pid ")
    assert down.stdout.endswith(f"\nstopped server (pid {first.server_pid})\n")
    assert process_gone(first.server_pid)
    assert not (first.data_dir / "server.pid").exists()
    status = first.kubelab("status")
    assert status.returncode == 3
    assert "not running" in status.stdout
    again = first.kubelab("down")
    assert (again.returncode, again.stdout) == (0, f"nothing is running in {first.data_dir}\n")

    resumed = own_lab(data_dir=first.data_dir, port=first.port)
    assert "resuming the lab" in resumed.up_output
    assert "reused ca, apiserver, admin, service-account" in resumed.up_output
    assert resumed.kubeconfig.read_bytes() == kubeconfig
    assert "namespace/survives-restart" in resumed.kubectl("get", "namespaces", "-o", "name").stdout
