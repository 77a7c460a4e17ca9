"""Calling a CustomResourceDefinition's conversion webhook (``spec.conversion.strategy: Webhook``).

Upstream's apiextensions-apiserver ``webhookConverter`` (pkg/apiserver/conversion/
webhook_converter.go) with its client from k8s.io/apiserver/pkg/util/webhook, re-done:

- one HTTPS POST of an ``apiextensions.k8s.io`` ConversionReview per batch of objects, in the
  first of the CRD's ``conversionReviewVersions`` the server speaks (v1, then v1beta1);
  objects already in the desired version are not sent;
- to ``clientConfig.url``, or to ``clientConfig.service`` (port 443 and path "" unless
  given) reached through the Service's endpoints (kube-apiserver's endpoint routing: the
  lab's API server runs outside the node agents' service proxies), with TLS verified
  against ``caBundle`` (the system's roots without one) for ``<service>.<namespace>.svc``;
- a 30 s timeout and the ``kube-apiserver-admission`` user agent (``setGlobalDefaults``);
- the answer checked as upstream checks it: the review's kind and uid, ``result.status``,
  the number of objects, each object's apiVersion, kind, name, namespace and uid; its
  metadata is then the original's except labels and annotations (``restoreObjectMeta``).

Every failure raises :class:`ConversionError` carrying upstream's message, ``conversion
webhook for <group>/<version>, Kind=<kind> failed: ...``; the API server answers it as a
500 InternalError.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from control.apiserver.conversion import ConversionError
from control.apiserver.service_endpoints import ServiceUnreachableError, trusting_ca_bundle

TIMEOUT_SECONDS = 30.0  # upstream's webhook client default (setGlobalDefaults)
USER_AGENT = "kube-apiserver-admission"
REVIEW_VERSIONS = ("v1", "v1beta1")  # what this server speaks, in upstream's order of support


class Resolve(Protocol):
    """A Service port -> (address, port) of one of its endpoints (``ServiceEndpoints``);
    ServiceUnreachableError if none."""

    async def __call__(self, *, namespace: str, name: str, port: int) -> tuple[str, int]: ...


@dataclass(frozen=True, kw_only=True)
class WebhookClientConfig:
    """``spec.conversion.webhook``: where to call and how to trust it."""

    url: str = ""
    service_namespace: str = ""
    service_name: str = ""
    service_path: str = ""
    service_port: int = 443
    ca_bundle: str = ""  # base64 of PEM, as in the CRD
    review_versions: tuple[str, ...] = ("v1",)

    @classmethod
    def from_crd(cls, crd: dict[str, Any]) -> WebhookClientConfig:
        """The CRD's webhook settings (checked when the webhook is called)."""
        webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("webhook") or {}
        client_config = webhook.get("clientConfig") or {}
        service = client_config.get("service") or {}
        return cls(
            url=str(client_config.get("url") or ""),
            service_namespace=str(service.get("namespace") or ""),
            service_name=str(service.get("name") or ""),
            service_path=str(service.get("path") or ""),
            service_port=int(service.get("port") or 443),
            ca_bundle=str(client_config.get("caBundle") or ""),
            review_versions=tuple(str(v) for v in webhook.get("conversionReviewVersions") or ()),
        )


class WebhookConverter:
    """The Converter of one CRD whose conversion strategy is Webhook."""

    def __init__(
        self,
        *,
        config: WebhookClientConfig,
        resolve: Resolve | None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._config = config
        self._resolve = resolve
        self._timeout = timeout
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        """Trust the caBundle (the system's roots without one); built on first use."""
        if self._ssl is None:
            try:
                self._ssl = trusting_ca_bundle(self._config.ca_bundle)
            except ValueError as exc:
                raise ConversionError(str(exc)) from exc
        return self._ssl

    async def convert(self, objects: list[dict[str, Any]], *, api_version: str) -> list[dict[str, Any]]:
        todo = [index for index, obj in enumerate(objects) if obj.get("apiVersion") != api_version]
        if not todo:
            return objects
        sent = [objects[index] for index in todo]
        first = sent[0]
        gvk = f"{first.get('apiVersion', '')}, Kind={first.get('kind', '')}"
        review_version = next((v for v in self._config.review_versions if v in REVIEW_VERSIONS), "")
        if not review_version:
            raise ConversionError("no supported conversion review versions")
        uid = str(uuid.uuid4())
        review = {
            "kind": "ConversionReview",
            "apiVersion": f"apiextensions.k8s.io/{review_version}",
            "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": sent},
        }
        answer = await self._post(review, gvk=gvk)
        try:
            converted = _converted_objects(answer, uid=uid, review_version=review_version)
        except ConversionError as exc:
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from exc
        if len(converted) != len(sent):
            raise ConversionError(
                f"conversion webhook for {gvk} returned {len(converted)} objects, expected {len(sent)}"
            )
        out = list(objects)
        for position, (index, original, obj) in enumerate(zip(todo, sent, converted, strict=True)):
            try:
                out[index] = _checked(original, obj, api_version=api_version)
            except ConversionError as exc:
                raise ConversionError(
                    f"conversion webhook for {gvk} returned invalid converted object at index {position}: {exc}"
                ) from exc
        return out

    async def _post(self, review: dict[str, Any], *, gvk: str) -> Any:
        config = self._config
        query = f"?timeout={_go_duration(self._timeout)}"  # as client-go shows the URL in errors
        server_hostname: str | None = None
        if config.service_name:
            host = f"{config.service_name}.{config.service_namespace}.svc"
            shown = f"https://{host}:{config.service_port}{config.service_path}{query}"
            if self._resolve is None:
                raise ConversionError(f"conversion webhook for {gvk} failed: no service resolver")
            try:
                address, port = await self._resolve(
                    namespace=config.service_namespace, name=config.service_name, port=config.service_port
                )
            except ServiceUnreachableError as exc:
                raise ConversionError(f'conversion webhook for {gvk} failed: Post "{shown}": {exc}') from exc
            target = f"https://{_bracketed(address)}:{port}{config.service_path}"
            server_hostname = host
        elif config.url:
            target = config.url
            shown = config.url + query
        else:
            raise ConversionError(
                f"conversion webhook for {gvk} failed: webhook configuration must have either service or URL"
            )
        try:
            context = self._ssl_context()
        except ConversionError as exc:
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from exc
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    target,
                    data=orjson.dumps(review),
                    headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                    ssl=context,
                    server_hostname=server_hostname,
                ) as response,
            ):
                body = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise ConversionError(
                f'conversion webhook for {gvk} failed: Post "{shown}": context deadline exceeded '
                "(Client.Timeout exceeded while awaiting headers)"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ConversionError(f'conversion webhook for {gvk} failed: Post "{shown}": {exc}') from exc
        if not 200 <= status < 300:
            text = body.decode("utf-8", "replace").strip()
            detail = (
                f'an error on the server ("{text}") has prevented the request from succeeding'
                if status == 500
                else f"the server responded with the status code {status} but did not return more information"
            )
            raise ConversionError(f"conversion webhook for {gvk} failed: {detail}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from exc


def _go_duration(seconds: float) -> str:
    """How client-go writes the timeout query parameter (``30s``, ``500ms``)."""
    return f"{seconds:g}s" if seconds >= 1 else f"{round(seconds * 1000)}ms"


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _converted_objects(answer: Any, *, uid: str, review_version: str) -> list[Any]:
    """``getConvertedObjectsFromResponse``: the response's objects, or why there are none."""
    if not isinstance(answer, dict):
        raise ConversionError("unrecognized response type")
    if review_version == "v1":
        got = f"{answer.get('apiVersion', '')}, Kind={answer.get('kind', '')}"
        if (answer.get("apiVersion"), answer.get("kind")) != ("apiextensions.k8s.io/v1", "ConversionReview"):
            raise ConversionError(
                f"expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {got}"
            )
    response = answer.get("response")
    if not isinstance(response, dict):
        raise ConversionError("no response provided")
    if review_version == "v1" and response.get("uid") != uid:
        raise ConversionError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    result = response.get("result") or {}
    if result.get("status") != "Success":
        if result.get("message"):
            raise ConversionError(str(result["message"]))
        raise ConversionError(f"response.result.status was '{result.get('status', '')}', not 'Success'")
    converted = response.get("convertedObjects") or []
    if not isinstance(converted, list):
        raise ConversionError("response.convertedObjects is not a list")
    return converted


def _checked(original: dict[str, Any], converted: Any, *, api_version: str) -> dict[str, Any]:
    """``validateConvertedObject`` + ``restoreObjectMeta``: the webhook may change labels and
    annotations; the rest of metadata is the original's."""
    if not isinstance(converted, dict):
        raise ConversionError("invalid type, expected=Unstructured")
    if converted.get("apiVersion") != api_version:
        raise ConversionError(
            f"invalid groupVersion (expected {api_version}, received {converted.get('apiVersion', '')})"
        )
    if converted.get("kind") != original.get("kind"):
        raise ConversionError(
            f"invalid kind (expected {original.get('kind', '')}, received {converted.get('kind', '')})"
        )
    meta = converted.get("metadata")
    if not isinstance(meta, dict):
        raise ConversionError("missing metadata in converted object")
    before = original.get("metadata") or {}
    for key, what in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        if (before.get(key) or "") != (meta.get(key) or ""):
            raise ConversionError(f"must have the same {what}: {before.get(key, '')} != {meta.get(key, '')}")
    restored = dict(before)
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            restored.pop(key, None)
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConversionError(f"metadata.{key} must be a map of strings in converted object")
        restored[key] = value
    return {**converted, "metadata": restored}
