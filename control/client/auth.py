"""Per-request credentials: bearer tokens (re-read from file), basic auth, exec plugins, impersonation.

client-go applies authentication as layers of ``http.RoundTripper``s built from ``rest.Config``;
here one :class:`Authenticator` answers, before each request, with the headers to add and the TLS
context to use. It is asked every time because credentials move while a component runs:

- a ``token_file`` (the in-cluster service account token) is re-read at most once a minute,
  as client-go's ``CachedFileTokenSource`` does, keeping the last good token if a read fails;
- an exec plugin (``client.authentication.k8s.io/v1`` or ``v1beta1`` ``ExecCredential``) is run
  when there is no cached credential or it passed its ``expirationTimestamp``, and again after a
  401 answer to a request that used it. It may hand out a token or a client certificate; a new
  certificate means a new TLS context (connections are pooled per context, so the old ones idle out);
- a ``token_source`` (:mod:`control.client.tokensource`) is asked for its token before every
  request; after a 401 to one of its tokens the source is told to drop it and the REST client
  retries the request once with a fresh one (a 401 means the server did nothing with it).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from multidict import CIMultiDict

from control.client.clock import REAL_CLOCK, Clock
from control.client.config import ClientConfig, ConfigError, ExecConfig
from control.client.errors import RequestError

log = logging.getLogger(__name__)

TOKEN_FILE_PERIOD = 60.0  # seconds between re-reads of a bearer token file (client-go: 1 minute)


class CredentialError(ConfigError, RequestError):
    """Credentials could not be obtained for a request (unreadable token file, failing exec plugin).

    Both a configuration problem and a failed request, so ``except RequestError`` sees it too.
    """


@dataclass(frozen=True, slots=True)
class RequestCredentials:
    """What to add to one request. ``exec_credential`` identifies the plugin credential used, if any;
    ``source_token`` the token source's token."""

    headers: CIMultiDict[str]
    ssl: ssl.SSLContext | None
    exec_credential: ExecCredential | None = None
    source_token: str | None = field(default=None, repr=False)

    @property
    def renewable(self) -> bool:
        """Whether a 401 to these credentials is worth one retry: a token source hands out a new token."""
        return self.source_token is not None


class TokenFile:
    """A bearer token file, re-read at most every ``period`` seconds (tokens rotate underneath us)."""

    def __init__(
        self, path: os.PathLike[str], *, period: float = TOKEN_FILE_PERIOD, clock: Clock = REAL_CLOCK
    ):
        self._path = path
        self._period = period
        self._clock = clock
        self._token: str | None = None
        self._read_at = 0.0

    def token(self) -> str:
        now = self._clock.now()
        if self._token is not None and now - self._read_at < self._period:
            return self._token
        try:
            with open(self._path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            if self._token is None:
                raise CredentialError(
                    f"cannot read bearer token file {self._path}: {exc.strerror or exc}"
                ) from exc
            log.warning("cannot re-read bearer token file %s (%s); using the previous token", self._path, exc)
            return self._token
        self._token, self._read_at = token, now
        return token


@dataclass(frozen=True, slots=True)
class ExecCredential:
    """The ``status`` an exec plugin returned."""

    token: str
    client_cert: tuple[bytes, bytes] | None
    expires: datetime | None


class ExecPlugin:
    """Runs an exec credential plugin and caches its credential until it expires."""

    def __init__(
        self,
        spec: ExecConfig,
        *,
        cluster: dict[str, Any] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stdin_is_terminal: Callable[[], bool] = lambda: sys.stdin is not None and sys.stdin.isatty(),
    ) -> None:
        self._spec = spec
        self._cluster = cluster
        self._now = now
        self._stdin_is_terminal = stdin_is_terminal
        self._cached: ExecCredential | None = None
        self._lock = asyncio.Lock()

    async def credential(self) -> ExecCredential:
        async with self._lock:
            cached = self._cached
            if cached is not None and (cached.expires is None or self._now() < cached.expires):
                return cached
            self._cached = await self._run()
            return self._cached

    def invalidate(self, used: ExecCredential) -> None:
        """The server refused ``used`` (401): run the plugin again next time, unless already rotated."""
        if self._cached is used:
            self._cached = None

    def _interactive(self) -> bool:
        mode = self._spec.interactive_mode
        if mode == "Never":
            return False
        terminal = self._stdin_is_terminal()
        if mode == "Always" and not terminal:
            raise CredentialError(
                f"exec plugin {self._spec.command} cannot support interactive mode: standard input is not a terminal"
            )
        return terminal

    async def _run(self) -> ExecCredential:
        spec = self._spec
        interactive = self._interactive()
        request: dict[str, Any] = {
            "kind": "ExecCredential",
            "apiVersion": spec.api_version,
            "spec": {"interactive": interactive},
        }
        if spec.provide_cluster_info and self._cluster is not None:
            request["spec"]["cluster"] = self._cluster
        env = dict(os.environ)
        env.update(spec.env)
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(request).decode()
        try:
            process = await asyncio.create_subprocess_exec(
                spec.command,
                *spec.args,
                env=env,
                stdin=None if interactive else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            hint = f"\n\n{spec.install_hint}" if spec.install_hint else ""
            raise CredentialError(f"exec: executable {spec.command} could not be run: {exc}{hint}") from exc
        try:
            stdout, _ = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise CredentialError(
                f"exec: executable {spec.command} failed with exit code {process.returncode}"
            )
        return self._parse(stdout)

    def _parse(self, stdout: bytes) -> ExecCredential:
        command = self._spec.command
        try:
            answer = orjson.loads(stdout)
        except orjson.JSONDecodeError as exc:
            raise CredentialError(f"exec plugin {command}: decoding stdout: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise CredentialError(f"exec plugin {command}: stdout is not an ExecCredential")
        if answer.get("apiVersion") != self._spec.api_version:
            raise CredentialError(
                f"exec plugin {command} is configured to use API version {self._spec.api_version}, "
                f"plugin returned version {answer.get('apiVersion')}"
            )
        status = answer.get("status")
        if not isinstance(status, dict):
            raise CredentialError(f"exec plugin {command} didn't return a status field")
        token = status.get("token") or ""
        cert, key = status.get("clientCertificateData") or "", status.get("clientKeyData") or ""
        if not token and not cert and not key:
            raise CredentialError(f"exec plugin {command} didn't return a token or cert/key pair")
        if bool(cert) != bool(key):
            raise CredentialError(f"exec plugin {command} returned only certificate or key, not both")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = datetime.fromisoformat(str(status["expirationTimestamp"]))
            except ValueError as exc:
                raise CredentialError(f"exec plugin {command}: bad expirationTimestamp: {exc}") from exc
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        return ExecCredential(
            token=str(token),
            client_cert=(cert.encode(), key.encode()) if cert else None,
            expires=expires,
        )


class Authenticator:
    """Turns a :class:`ClientConfig` into per-request headers and TLS context."""

    def __init__(self, config: ClientConfig, *, clock: Clock = REAL_CLOCK) -> None:
        self._static_headers: CIMultiDict[str] = CIMultiDict()
        if config.impersonate is not None:
            imp = config.impersonate
            self._static_headers["Impersonate-User"] = imp.user
            if imp.uid:
                self._static_headers["Impersonate-Uid"] = imp.uid
            for group in imp.groups:
                self._static_headers.add("Impersonate-Group", group)
            for key, values in imp.extra:
                for value in values:
                    self._static_headers.add(f"Impersonate-Extra-{quote(key, safe='')}", value)
        self._config = config
        self._ssl = config.ssl_context()
        self._token_file = TokenFile(config.token_file, clock=clock) if config.token_file else None
        self._exec: ExecPlugin | None = None
        self._exec_ssl: dict[tuple[bytes, bytes], ssl.SSLContext | None] = {}
        self._token_source = config.token_source
        if self._token_source is not None:
            self._scheme = "source"
        elif config.token or config.token_file:
            self._scheme = "bearer"
        elif config.username or config.password:
            self._scheme = "basic"
            basic = f"{config.username or ''}:{config.password or ''}".encode()
            self._static_headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
        elif config.exec_config is not None:
            self._scheme = "exec"
            self._exec = ExecPlugin(config.exec_config, cluster=self._exec_cluster_info())
        else:
            self._scheme = "none"

    def _exec_cluster_info(self) -> dict[str, Any]:
        config = self._config
        cluster: dict[str, Any] = {"server": config.server}
        if config.tls_server_name:
            cluster["tls-server-name"] = config.tls_server_name
        if config.insecure_skip_tls_verify:
            cluster["insecure-skip-tls-verify"] = True
        if config.ca_data:
            cluster["certificate-authority-data"] = base64.b64encode(config.ca_data).decode()
        if config.proxy_url:
            cluster["proxy-url"] = config.proxy_url
        if config.exec_config is not None and config.exec_config.cluster_config is not None:
            cluster["config"] = config.exec_config.cluster_config
        return cluster

    async def credentials(self) -> RequestCredentials:
        headers = self._static_headers.copy()
        if self._token_source is not None:
            token = await self._token_source.token()
            headers["Authorization"] = f"Bearer {token}"
            return RequestCredentials(headers, self._ssl, source_token=token)
        if self._scheme == "bearer":
            token = self._token_file.token() if self._token_file is not None else self._config.token
            headers["Authorization"] = f"Bearer {token}"
        elif self._exec is not None:
            credential = await self._exec.credential()
            if credential.token:
                headers["Authorization"] = f"Bearer {credential.token}"
            context = self._ssl
            if credential.client_cert is not None:
                if credential.client_cert not in self._exec_ssl:
                    self._exec_ssl = {
                        credential.client_cert: self._config.ssl_context(client_cert=credential.client_cert)
                    }
                context = self._exec_ssl[credential.client_cert]
            return RequestCredentials(headers, context, credential)
        return RequestCredentials(headers, self._ssl)

    def unauthorized(self, used: RequestCredentials) -> None:
        """A request with ``used`` got 401: make the exec plugin run again, or the token source
        hand out a new token, for the next one."""
        if self._exec is not None and used.exec_credential is not None:
            self._exec.invalidate(used.exec_credential)
        if self._token_source is not None and used.source_token is not None:
            self._token_source.invalidate(used.source_token)
