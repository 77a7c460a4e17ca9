"""Client configuration for an add-on: a kubeconfig when given, the pod's service account otherwise.

Add-ons run unchanged in the lab and on a real cluster, so the choice is client-go's
``BuildConfigFromFlags`` (``control.client.load_config``): an explicit ``--kubeconfig`` wins; in a
pod (``KUBERNETES_SERVICE_HOST`` set) the in-cluster configuration; else ``KUBECONFIG`` and
``~/.kube/config``. The add-on's flags map to the two arguments here; a configuration that cannot
be loaded is a :class:`ClientSetupError` whose message says which source failed and why.
"""

from __future__ import annotations

import os

from control.client import ClientConfig, ConfigError, RESTClient, load_config


class ClientSetupError(Exception):
    """No usable client configuration (the cause is the ``ConfigError``)."""


def client_config(
    *, kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClientConfig:
    """The configuration to reach the API server with (see the module docstring for the order)."""
    try:
        return load_config(kubeconfig=kubeconfig or None, context=context or None)
    except ConfigError as exc:
        raise ClientSetupError(f"cannot configure the Kubernetes client: {exc}") from exc


def open_client(config: ClientConfig, *, component: str) -> RESTClient:
    """A REST client whose User-Agent names the add-on (``kubelab-<component>``). Call inside the loop."""
    return RESTClient(config, user_agent=f"kubelab-{component}")
