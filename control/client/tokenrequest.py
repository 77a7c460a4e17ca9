"""ServiceAccount tokens from the TokenRequest API, as a token source for other clients.

A component that holds one identity (the controller manager's certificate, an add-on's own
ServiceAccount) can act as others by asking the API server for their tokens:
``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` with a ``TokenRequest`` whose
``spec.expirationSeconds`` says how long the token should live. :func:`service_account_token_source`
wraps that in a :class:`~control.client.tokensource.CachedTokenSource`, so a client built with
``config.with_token_source(source)`` always carries a live token of that ServiceAccount.

This is upstream's ``clientbuilder`` ``tokenSourceImpl`` (kube-controller-manager
``--use-service-account-credentials``): tokens of 3600 s, renewed with 20 % of their life left;
the lifetime is read from ``status.expirationTimestamp`` and pinned to at least ten minutes (a
shorter one is taken for clock skew); each fetch may first make sure the ServiceAccount exists
(get, else create — a deleted account comes back at the next renewal); a failed fetch is tried
four times, 0.5 s apart and doubling. Only failures that may pass are retried (transport
errors, 429, 5xx; a 503 only with ``Retry-After``): a server that does not serve TokenRequest
(404, 405, 501) or refuses the caller (403) fails at once. Either way the failure is a
:class:`TokenRequestError`, whose ``not_served`` tells "no TokenRequest API here" (404, 405, 501,
503) from "not for you".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from control.client.auth import CredentialError
from control.client.clock import REAL_CLOCK, Clock
from control.client.errors import (
    AlreadyExistsError,
    APIError,
    MethodNotAllowedError,
    NotFoundError,
    RequestError,
    ServiceUnavailableError,
    is_retriable,
)
from control.client.rest import Resource, RESTClient
from control.client.tokensource import DEFAULT_REFRESH_FRACTION, CachedTokenSource, Token

log = logging.getLogger(__name__)

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_LIFETIME = 600.0  # seconds; a shorter lifetime is taken for clock skew (upstream's pin)
FETCH_ATTEMPTS = 4
FIRST_BACKOFF = 0.5  # seconds, doubling


class TokenRequestError(CredentialError):
    """No token could be had for a ServiceAccount. ``not_served``: the API server does not serve
    the TokenRequest API at all (rather than refusing this one request)."""

    def __init__(self, message: str, *, not_served: bool) -> None:
        super().__init__(message)
        self.not_served = not_served


def service_account_username(*, namespace: str, name: str) -> str:
    """The user name a ServiceAccount's token authenticates as."""
    return f"system:serviceaccount:{namespace}:{name}"


async def ensure_service_account(client: RESTClient, *, namespace: str, name: str) -> dict[str, Any]:
    """Get ServiceAccount ``namespace/name``, creating it (and, if it can, its namespace) when missing."""
    try:
        return await client.get(SERVICE_ACCOUNTS, name, namespace=namespace)
    except NotFoundError:
        pass
    try:
        await client.get(NAMESPACES, namespace)
    except NotFoundError:
        # Tolerated: the caller may not be allowed to create namespaces (upstream does the same).
        try:
            await client.create(NAMESPACES, {"metadata": {"name": namespace}})
        except AlreadyExistsError:
            pass
        except APIError as exc:
            log.info("cannot create namespace %s for service account %s: %s", namespace, name, exc)
    try:
        return await client.create(
            SERVICE_ACCOUNTS, {"metadata": {"name": name, "namespace": namespace}}, namespace=namespace
        )
    except AlreadyExistsError:
        return await client.get(SERVICE_ACCOUNTS, name, namespace=namespace)


def _not_served(exc: RequestError, *, account: str) -> bool:
    """Whether ``exc``, the last answer to a TokenRequest, says the API is not there at all."""
    if isinstance(exc, MethodNotAllowedError | ServiceUnavailableError):
        return True
    if isinstance(exc, APIError) and exc.code == 501:  # Not Implemented
        return True
    # A 404 that names the account means the account is missing; any other, that the path is.
    return isinstance(exc, NotFoundError) and exc.details.get("name") != account


def _worth_retrying(exc: RequestError, *, account: str) -> bool:
    """Transient failures are; a 503 only with a Retry-After (without one, nothing will change)."""
    if isinstance(exc, ServiceUnavailableError):
        return exc.retry_after is not None
    return is_retriable(exc) and not _not_served(exc, account=account)


class TokenRequestFetch:
    """One TokenRequest per call: the fetch function of a ServiceAccount's :class:`CachedTokenSource`.

    ``client`` is the requester's own client (it needs ``create`` on ``serviceaccounts/token``, and
    ``get``/``create`` on ``serviceaccounts`` with ``ensure_account``). ``wall`` reads the wall
    clock the server's ``expirationTimestamp`` is compared with; ``clock`` paces the retries.
    """

    def __init__(
        self,
        client: RESTClient,
        *,
        namespace: str,
        name: str,
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        audiences: Sequence[str] = (),
        ensure_account: bool = False,
        attempts: int = FETCH_ATTEMPTS,
        clock: Clock = REAL_CLOCK,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if expiration_seconds <= 0:
            raise ValueError(f"expiration_seconds must be positive, got {expiration_seconds}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self._client = client
        self.namespace = namespace
        self.name = name
        self._expiration_seconds = expiration_seconds
        self._audiences = list(audiences)
        self._ensure_account = ensure_account
        self._attempts = attempts
        self._clock = clock
        self._wall = wall

    @property
    def account(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def __call__(self) -> Token:
        delay = FIRST_BACKOFF
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._request()
            except TokenRequestError:
                raise
            except RequestError as exc:
                not_served = _not_served(exc, account=self.name)
                if attempt == self._attempts or not _worth_retrying(exc, account=self.name):
                    what = (
                        "the API server does not serve TokenRequest" if not_served else "TokenRequest failed"
                    )
                    raise TokenRequestError(
                        f"cannot get a token for service account {self.account}: {what}: {exc}",
                        not_served=not_served,
                    ) from exc
                log.info("token for %s: %s; trying again in %.1f s", self.account, exc, delay)
            await self._clock.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _request(self) -> Token:
        if self._ensure_account:
            await ensure_service_account(self._client, namespace=self.namespace, name=self.name)
        spec: dict[str, Any] = {"expirationSeconds": self._expiration_seconds}
        if self._audiences:
            spec["audiences"] = self._audiences
        answer = await self._client.create(
            SERVICE_ACCOUNTS,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            namespace=self.namespace,
            name=self.name,
            subresource="token",
        )
        status = answer.get("status") or {}
        value = status.get("token")
        if not isinstance(value, str) or not value:
            raise TokenRequestError(
                f"cannot get a token for service account {self.account}: the TokenRequest answer has no token",
                not_served=False,
            )
        return Token(value, self._lifetime(status.get("expirationTimestamp")))

    def _lifetime(self, timestamp: Any) -> float:
        try:
            expires = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
        except ValueError as exc:
            raise TokenRequestError(
                f"cannot get a token for service account {self.account}: "
                f"bad status.expirationTimestamp {timestamp!r}",
                not_served=False,
            ) from exc
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return max((expires - self._wall()).total_seconds(), MIN_LIFETIME)


def service_account_token_source(
    client: RESTClient,
    *,
    namespace: str,
    name: str,
    expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
    audiences: Sequence[str] = (),
    ensure_account: bool = False,
    refresh_fraction: float = DEFAULT_REFRESH_FRACTION,
    clock: Clock = REAL_CLOCK,
) -> CachedTokenSource:
    """A token source for ServiceAccount ``namespace/name``, its tokens requested with ``client``."""
    fetch = TokenRequestFetch(
        client,
        namespace=namespace,
        name=name,
        expiration_seconds=expiration_seconds,
        audiences=audiences,
        ensure_account=ensure_account,
        clock=clock,
    )
    return CachedTokenSource(
        fetch,
        name=f"token of service account {fetch.account}",
        refresh_fraction=refresh_fraction,
        clock=clock,
    )
