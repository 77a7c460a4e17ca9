"""Client configuration for add-ons: explicit kubeconfig, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.kit.client import ClientSetupError, client_config, open_client
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)


def test_a_missing_kubeconfig_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(ClientSetupError, match="cannot configure the Kubernetes client") as failure:
        client_config(kubeconfig=tmp_path / "nope")
    assert failure.value.__cause__ is not None


async def test_a_kubeconfig_gives_a_working_client(apiserver) -> None:  # noqa: F811
    config = client_config(kubeconfig=apiserver.data_dir / "kubeconfig")
    client = open_client(config, component="demo")
    try:
        version = (await client.request("GET", "/version")).json()
        assert version["gitVersion"].startswith("v1.")
    finally:
        await client.close()
