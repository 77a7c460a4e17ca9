"""The HTTPS POST of a review to a webhook, as kube-apiserver makes it: an AdmissionReview to an
admission webhook (``webhook_admission``), a ConversionReview to a CustomResourceDefinition's
conversion webhook (``conversion_webhook``).

Upstream builds one REST client per webhook (k8s.io/apiserver/pkg/util/webhook ``ClientManager``,
shared by both); here one aiohttp session per :class:`WebhookClient` carries every call, so
connections to a webhook are reused across requests, and what differs per webhook is passed per
call:

- where: ``clientConfig.url``, or ``clientConfig.service`` (port 443 and path "" unless given)
  reached through one ready endpoint of the Service (:mod:`control.apiserver.service_endpoints`,
  kube-apiserver's endpoint routing, which webhooks always use), TLS checked for
  ``<service>.<namespace>.svc``;
- trust: the ``caBundle`` (the system's roots without one); contexts are cached per bundle;
- time: the webhook's ``timeoutSeconds`` bounds the whole call and is sent as the
  ``?timeout=<n>s`` query parameter, as client-go's ``Request.Timeout`` does;
- the ``kube-apiserver-admission`` user agent.

A client that cannot be made (a bad ``caBundle``) raises :class:`WebhookClientError`
(``could not get REST client: ...``); every way the call itself can fail raises
:class:`WebhookCallError` with client-go's error (``Post "https://...?timeout=10s": context
deadline exceeded``). Each caller words them as upstream's does around that: ``failed calling
webhook "x": failed to call webhook: ...`` for admission, ``conversion webhook for <kind> failed:
...`` for conversion.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from control.apiserver.service_endpoints import ServiceUnreachableError, trusting_ca_bundle

USER_AGENT = "kube-apiserver-admission"


class WebhookClientError(Exception):
    """No client for the webhook's configuration (``could not get REST client: ...``)."""


class WebhookCallError(Exception):
    """The webhook could not be called or did not answer with JSON; the message is client-go's."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out  # the timeout ended the call (conversion words that apart)


class Resolve(Protocol):
    """A Service port -> (address, port) of one of its endpoints (``ServiceEndpoints``);
    ServiceUnreachableError if none."""

    async def __call__(self, *, namespace: str, name: str, port: int) -> tuple[str, int]: ...


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """A webhook's ``clientConfig`` (admission webhooks' and CRD conversion webhooks' alike)."""

    url: str = ""
    service_namespace: str = ""
    service_name: str = ""
    service_path: str = ""
    service_port: int = 443
    ca_bundle: str = ""  # base64 of PEM, as in the object

    @classmethod
    def from_object(cls, client_config: dict[str, Any]) -> ClientConfig:
        service = client_config.get("service") or {}
        return cls(
            url=str(client_config.get("url") or ""),
            service_namespace=str(service.get("namespace") or ""),
            service_name=str(service.get("name") or ""),
            service_path=str(service.get("path") or ""),
            service_port=int(service.get("port") or 443),
            ca_bundle=str(client_config.get("caBundle") or ""),
        )


class WebhookClient:
    """Posts reviews to webhooks over one shared session (see the module doc)."""

    def __init__(self, *, resolve: Resolve | None) -> None:
        self._resolve = resolve
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _context(self, ca_bundle: str) -> ssl.SSLContext:
        context = self._contexts.get(ca_bundle)
        if context is None:
            context = self._contexts[ca_bundle] = trusting_ca_bundle(ca_bundle)
        return context

    async def post(self, config: ClientConfig, review: dict[str, Any], *, timeout_seconds: float) -> Any:
        """POST ``review`` and return the decoded answer (WebhookClientError or WebhookCallError)."""
        query = f"?timeout={_go_duration(timeout_seconds)}"
        server_hostname: str | None = None
        if config.service_name:
            host = f"{config.service_name}.{config.service_namespace}.svc"
            shown = f"https://{host}:{config.service_port}{config.service_path}{query}"
            if self._resolve is None:
                raise WebhookClientError("no service resolver")
            try:
                address, port = await self._resolve(
                    namespace=config.service_namespace, name=config.service_name, port=config.service_port
                )
            except ServiceUnreachableError as exc:
                raise WebhookCallError(f'Post "{shown}": {exc}') from exc
            target = f"https://{_bracketed(address)}:{port}{config.service_path}{query}"
            server_hostname = host
        elif config.url:
            target = shown = config.url + query
        else:
            raise WebhookClientError("webhook configuration must have either service or URL")
        try:
            context = self._context(config.ca_bundle)
        except ValueError as exc:
            raise WebhookClientError(f"could not get REST client: {exc}") from exc
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                target,
                data=orjson.dumps(review),
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                ssl=context,
                server_hostname=server_hostname,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise WebhookCallError(f'Post "{shown}": context deadline exceeded', timed_out=True) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", "") or str(exc.certificate_error)
            raise WebhookCallError(f'Post "{shown}": tls: failed to verify certificate: {reason}') from exc
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            reason = f"dial tcp {exc.host}:{exc.port}: connect: connection refused" if refused else str(exc)
            raise WebhookCallError(f'Post "{shown}": {reason}') from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise WebhookCallError(f'Post "{shown}": {exc}') from exc
        if not 200 <= status < 300:
            raise WebhookCallError(_unsuccessful(status, body))
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise WebhookCallError(str(exc)) from exc


def _unsuccessful(status: int, body: bytes) -> str:
    """client-go's error for a non-2xx answer: the Status it carries, else a generic sentence."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and answer.get("kind") == "Status" and answer.get("message"):
        return str(answer["message"])
    if status == 500:
        text = body.decode("utf-8", "replace").strip()
        return f'an error on the server ("{text}") has prevented the request from succeeding'
    return f"the server responded with the status code {status} but did not return more information"


def _go_duration(seconds: float) -> str:
    """How client-go writes the timeout query parameter (``10s``, ``500ms``)."""
    return f"{seconds:g}s" if seconds >= 1 else f"{round(seconds * 1000)}ms"


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address
