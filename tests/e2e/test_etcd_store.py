"""A lab whose API server keeps its state in a real etcd (`kubelab up --store etcd://...`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Lab
from tests.etcd_process import running_etcd

pytestmark = pytest.mark.etcd


def test_kubectl_works_on_an_etcd_backed_lab_and_state_survives_a_restart(
    tmp_path: Path, own_lab: Callable[..., Lab]
) -> None:
    with running_etcd(tmp_path / "etcd") as etcd:
        data_dir = tmp_path / "lab"
        lab = own_lab(data_dir=data_dir, store=etcd.endpoint.replace("http://", "etcd://"))
        lab.kubectl(
            "apply",
            "-f",
            "-",
            input=(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: on-etcd\n  namespace: default\ndata:\n  k: v\n"
            ),
        )
        stored = json.loads(lab.kubectl("get", "configmap", "on-etcd", "-o", "json").stdout)
        assert stored["data"] == {"k": "v"}
        lab.kubectl("patch", "configmap", "on-etcd", "--type", "merge", "-p", '{"data":{"k":"w"}}')
        assert lab.kubelab("down").returncode == 0
        again = own_lab(data_dir=data_dir)  # the store choice is remembered in the data dir
        assert json.loads(again.kubectl("get", "configmap", "on-etcd", "-o", "json").stdout)["data"] == {
            "k": "w"
        }
        names = again.kubectl("get", "namespaces", "-o", "name").stdout.split()
        assert "namespace/kube-system" in names
