"""Calling a CustomResourceDefinition's conversion webhook (``spec.conversion.strategy: Webhook``).

Upstream's apiextensions-apiserver ``webhookConverter`` (pkg/apiserver/conversion/
webhook_converter.go) with its client from k8s.io/apiserver/pkg/util/webhook, re-done:

- one HTTPS POST of an ``apiextensions.k8s.io`` ConversionReview per batch of objects, in the
  first of the CRD's ``conversionReviewVersions`` the server speaks (v1, then v1beta1);
  objects already in the desired version are not sent;
- posted by the webhook client admission webhooks use too (``webhook_client``: ``clientConfig``
  url or Service reached through its endpoints, TLS against ``caBundle``), with a 30 s timeout
  (``setGlobalDefaults``);
- the answer checked as upstream checks it: the review's kind and uid, ``result.status``,
  the number of objects, each object's apiVersion, kind, name, namespace and uid; its
  metadata is then the original's except labels and annotations (``restoreObjectMeta``).

Every failure raises :class:`ConversionError` carrying upstream's message, ``conversion
webhook for <group>/<version>, Kind=<kind> failed: ...``; the API server answers it as a
500 InternalError.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from control.apiserver.conversion import ConversionError
from control.apiserver.webhook_client import ClientConfig, WebhookCallError, WebhookClient, WebhookClientError

TIMEOUT_SECONDS = 30.0  # upstream's webhook client default (setGlobalDefaults)
REVIEW_VERSIONS = ("v1", "v1beta1")  # what this server speaks, in upstream's order of support


@dataclass(frozen=True, kw_only=True)
class WebhookClientConfig:
    """``spec.conversion.webhook``: where to call and how to trust it, and the review versions."""

    client: ClientConfig
    review_versions: tuple[str, ...] = ("v1",)

    @classmethod
    def from_crd(cls, crd: dict[str, Any]) -> WebhookClientConfig:
        """The CRD's webhook settings (checked when the webhook is called)."""
        webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("webhook") or {}
        return cls(
            client=ClientConfig.from_object(webhook.get("clientConfig") or {}),
            review_versions=tuple(str(v) for v in webhook.get("conversionReviewVersions") or ()),
        )


class WebhookConverter:
    """The Converter of one CRD whose conversion strategy is Webhook."""

    def __init__(
        self,
        *,
        config: WebhookClientConfig,
        client: WebhookClient,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._config = config
        self._client = client
        self._timeout = timeout

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
        try:
            return await self._client.post(self._config.client, review, timeout_seconds=self._timeout)
        except WebhookClientError as exc:
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from exc
        except WebhookCallError as exc:
            # a conversion's deadline is its client's, which Go words apart from a context's
            waited = " (Client.Timeout exceeded while awaiting headers)" if exc.timed_out else ""
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}{waited}") from exc


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
