"""Bearer tokens that expire: a source the client asks before every request, and its cache.

A :class:`ClientConfig` with a ``token_source`` authenticates each request — watches included —
with whatever token the source hands out *at that moment*, so a component can run for days on
tokens that live an hour. client-go does this with an ``oauth2.TokenSource`` wrapped by
``transport.NewCachedTokenSource`` and ``ResettableTokenSourceWrapTransport``; the pieces here
are the same:

- :class:`TokenSource` is the seam: ``await token()`` before a request, ``invalidate(token)``
  when the server answered 401 to it (the client then retries that request once with a new one);
- :class:`CachedTokenSource` turns a fetch function (one call, one fresh :class:`Token`) into
  a source: it keeps the token until ``refresh_fraction`` (80 %, upstream's 20 % leeway) of its
  lifetime has passed, fetches once for all concurrent callers, and — as client-go — keeps
  serving the old token while a renewal fails (with a ``RequestError``), but only as long as
  that token has not expired.

What the fetch function does is the caller's business; :mod:`control.client.tokenrequest`
provides the one for ServiceAccount tokens (the TokenRequest API).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from control.client.clock import REAL_CLOCK, Clock
from control.client.errors import RequestError

log = logging.getLogger(__name__)

DEFAULT_REFRESH_FRACTION = 0.8  # client-go's clientbuilder: renew with 20 % of the lifetime left


class TokenSource(Protocol):
    """Where a client gets its bearer token, asked before every request."""

    async def token(self) -> str:
        """A token valid now. Raises :class:`control.client.errors.RequestError` when none can be had."""
        ...

    def invalidate(self, token: str) -> None:
        """The server refused ``token`` (401): hand out a new one next time, unless already renewed."""
        ...


@dataclass(frozen=True, slots=True)
class Token:
    """One fetched token and how long it lives from now (seconds; ``None``: it does not expire)."""

    value: str = field(repr=False)
    lifetime: float | None = None

    def __post_init__(self) -> None:
        if not self.value:
            raise ValueError("a token must not be empty")
        if self.lifetime is not None and not self.lifetime > 0:
            raise ValueError(f"a token's lifetime must be positive, got {self.lifetime}")


class CachedTokenSource:
    """A :class:`TokenSource` over ``fetch``, renewing each token after ``refresh_fraction`` of its life.

    ``name`` says whose token this is in log messages. ``clock`` measures the lifetimes.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        name: str = "token",
        refresh_fraction: float = DEFAULT_REFRESH_FRACTION,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if not 0 < refresh_fraction <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1], got {refresh_fraction}")
        self.name = name
        self._fetch = fetch
        self._fraction = refresh_fraction
        self._clock = clock
        self._lock = asyncio.Lock()
        self._value: str | None = None
        self._refresh_at = 0.0
        self._expires_at: float | None = None

    def _fresh(self, now: float) -> str | None:
        """The cached token if it is not yet due for renewal at ``now``."""
        if self._value is not None and (self._expires_at is None or now < self._refresh_at):
            return self._value
        return None

    async def token(self) -> str:
        if (cached := self._fresh(self._clock.now())) is not None:
            return cached
        async with self._lock:
            now = self._clock.now()
            if (cached := self._fresh(now)) is not None:  # renewed by another caller meanwhile
                return cached
            try:
                token = await self._fetch()
            except RequestError as exc:
                if self._value is None or self._expires_at is None or now >= self._expires_at:
                    raise
                log.warning("cannot renew %s (%s); using the current one until it expires", self.name, exc)
                return self._value
            obtained = self._clock.now()
            self._value = token.value
            if token.lifetime is None:
                self._expires_at = None
            else:
                self._refresh_at = obtained + token.lifetime * self._fraction
                self._expires_at = obtained + token.lifetime
            log.debug("obtained %s (lifetime %s s)", self.name, token.lifetime)
            return token.value

    def invalidate(self, token: str) -> None:
        if self._value == token:
            log.debug("%s was refused; fetching a new one for the next request", self.name)
            self._value = None
