"""The DefaultIngressClass admission plugin: a new Ingress naming no class gets the default
IngressClass, through the real API server and, for the choice of default, on its own."""

from __future__ import annotations

from typing import Any

from control.apiserver.ingress_admission import default_ingress_class
from tests.control.apiserver.conftest import RunningServer

INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
CLASSES = "/apis/networking.k8s.io/v1/ingressclasses"
DEFAULT = {"ingressclass.kubernetes.io/is-default-class": "true"}


def ingress_class(name: str, *, created: str = "2024-01-01T00:00:00Z", default: bool = True) -> dict:
    annotations = DEFAULT if default else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
        "spec": {"controller": "example.com/ingress"},
    }


def ingress(name: str, *, annotations: dict[str, str] | None = None, **spec: Any) -> dict:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"defaultBackend": backend, **spec},
    }


def test_the_newest_default_class_wins_and_ties_go_to_the_smaller_name() -> None:
    older = ingress_class("older", created="2024-01-01T00:00:00Z")
    newer = ingress_class("newer", created="2024-02-01T00:00:00Z")
    plain = ingress_class("plain", created="2025-01-01T00:00:00Z", default=False)
    assert default_ingress_class([older, newer, plain]) is newer
    twin_b = ingress_class("b", created="2024-03-01T00:00:00Z")
    twin_a = ingress_class("a", created="2024-03-01T00:00:00Z")
    assert default_ingress_class([twin_b, twin_a]) is twin_a
    assert default_ingress_class([plain]) is None


async def test_an_ingress_naming_no_class_gets_the_default_one(apiserver: RunningServer) -> None:
    status, before = await apiserver.request("POST", INGRESSES, body=ingress("before"))
    assert status == 201 and "ingressClassName" not in before["spec"]  # no default class yet
    await apiserver.request("POST", CLASSES, body=ingress_class("nginx"))
    await apiserver.request("POST", CLASSES, body=ingress_class("other", default=False))
    status, defaulted = await apiserver.request("POST", INGRESSES, body=ingress("after"))
    assert status == 201 and defaulted["spec"]["ingressClassName"] == "nginx"
    _, chosen = await apiserver.request("POST", INGRESSES, body=ingress("chosen", ingressClassName="other"))
    assert chosen["spec"]["ingressClassName"] == "other"
    legacy = ingress("legacy", annotations={"kubernetes.io/ingress.class": "traefik"})
    _, kept = await apiserver.request("POST", INGRESSES, body=legacy)
    assert "ingressClassName" not in kept["spec"]
    # an update is not defaulted
    before["metadata"]["labels"] = {"touched": "yes"}
    status, updated = await apiserver.request("PUT", f"{INGRESSES}/before", body=before)
    assert status == 200 and "ingressClassName" not in updated["spec"]
