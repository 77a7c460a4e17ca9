"""Where the API server is and who we are: kubeconfig files and in-cluster configuration.

The result is a :class:`ClientConfig` (client-go's ``rest.Config``), built one of two ways:

- **kubeconfig**, loaded exactly as client-go's ``clientcmd`` does: an explicit file (which must
  exist), else every file named in ``KUBECONFIG`` (missing ones skipped), else
  ``~/.kube/config``. Several files are merged entry by entry: for clusters, users and contexts
  the *first* file to define a name wins (its entry is taken whole); ``current-context`` comes
  from the first file that sets one. Relative paths inside a file (``certificate-authority``,
  ``client-certificate``, ``client-key``, ``tokenFile``, an exec ``command`` containing a ``/``)
  are resolved against that file's directory. ``proxy-url`` is read and kept but not used: the
  client always connects directly (and ignores ``HTTPS_PROXY``).
- **in-cluster**: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the service
  account's ``ca.crt``, its ``token`` (re-read as the kubelet rotates it) and ``namespace``.

:func:`load_config` chooses like ``clientcmd.BuildConfigFromFlags("", kubeconfig)``, which
sample-controller and most controllers use: an explicit kubeconfig if given; otherwise in-cluster
when ``KUBERNETES_SERVICE_HOST`` is set; otherwise the kubeconfig loading rules above.

File contents (certificates, keys) are read when the configuration is loaded, so a bad path is
reported at start-up as a :class:`ConfigError` naming the file, not at the first request.
Bearer token files are the exception: they are re-read while running (see ``auth``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from control.client.tokensource import TokenSource

if TYPE_CHECKING:
    from control.client.rest import RequestMetrics

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


class ConfigError(Exception):
    """The client configuration is missing or wrong; the message names the file and the entry."""


@dataclass(frozen=True, kw_only=True)
class ExecConfig:
    """A ``client.authentication.k8s.io`` exec credential plugin, as written in a kubeconfig user."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    install_hint: str = ""
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"
    # The cluster's ``extensions`` entry named ``client.authentication.k8s.io/exec``, passed to
    # the plugin as ``spec.cluster.config`` when provide_cluster_info is set.
    cluster_config: Any = None


@dataclass(frozen=True, kw_only=True)
class Impersonation:
    """``as``/``as-uid``/``as-groups``/``as-user-extra``: act as another user (Impersonate-* headers)."""

    user: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Everything a client needs to reach and authenticate to one API server.

    Authentication precedence is client-go's: a bearer token (``token_file`` re-read, else
    ``token``), else basic auth, else the exec plugin; a client certificate can accompany any of
    them. A ``token_source`` (see :mod:`control.client.tokensource`) is a bearer token asked for
    before every request and replaced after a 401; it excludes the other three. Secrets are left
    out of ``repr``.

    ``request_metrics`` measures the API requests of every client made from this configuration
    (and from those derived from it, such as :meth:`with_token_source`'s): each component gives
    its own configuration its own sink, so two components in one process keep their
    ``rest_client_*`` metrics apart. ``None`` (what a kubeconfig loads as) measures nothing.
    """

    server: str
    namespace: str = "default"
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec_config: ExecConfig | None = None
    impersonate: Impersonation | None = None
    proxy_url: str | None = None
    token_source: TokenSource | None = field(default=None, repr=False, compare=False)
    request_metrics: RequestMetrics | None = field(default=None, repr=False, compare=False)
    # Where this configuration came from, for messages ("kubeconfig /x/config, context lab").
    source: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{self._where()}server {self.server!r} is not an http(s) URL")
        if self.insecure_skip_tls_verify and self.ca_data:
            raise ConfigError(
                f"{self._where()}specifying a root certificates file with the insecure flag is not allowed"
            )
        if (self.client_cert_data is None) != (self.client_key_data is None):
            raise ConfigError(f"{self._where()}a client certificate needs both the certificate and its key")
        if self.token_source is not None:
            others = [
                name
                for name, value in (
                    ("token", self.token),
                    ("token_file", self.token_file),
                    ("username/password", self.username or self.password),
                    ("exec_config", self.exec_config),
                )
                if value
            ]
            if others:
                raise ConfigError(
                    f"{self._where()}a token_source cannot be combined with {', '.join(others)}; give only one"
                )

    def with_token_source(self, token_source: TokenSource, *, source: str = "") -> ClientConfig:
        """The same server and TLS trust, authenticated by ``token_source`` alone; ``source``
        (where the configuration came from, for messages) defaults to this one's.

        Every credential of this configuration — client certificate, token, basic auth, exec
        plugin, impersonation — is dropped first (client-go's ``AnonymousClientConfig``), so the
        server sees only the token; an API server tries client certificates before tokens, and a
        certificate left in would decide who the client is.
        """
        return dataclasses.replace(
            self,
            client_cert_data=None,
            client_key_data=None,
            token=None,
            token_file=None,
            username=None,
            password=None,
            exec_config=None,
            impersonate=None,
            token_source=token_source,
            source=source or self.source,
        )

    def _where(self) -> str:
        return f"{self.source}: " if self.source else ""

    @property
    def uses_tls(self) -> bool:
        return self.server.startswith("https:")

    def ssl_context(self, *, client_cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext | None:
        """The TLS settings for this server (``None`` for plain http).

        ``client_cert`` (PEM certificate, PEM key) overrides the configured client certificate; the
        exec plugin uses it for the certificates it hands out. With a CA configured only that CA is
        trusted, as in client-go; without one, the system's roots are.
        """
        if not self.uses_tls:
            return None
        try:
            if self.insecure_skip_tls_verify:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif self.ca_data:
                context = ssl.create_default_context(cadata=self.ca_data.decode("ascii"))
            else:
                context = ssl.create_default_context()
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{self._where()}invalid certificate authority data: {exc}") from exc
        pair = client_cert
        if pair is None and self.client_cert_data is not None and self.client_key_data is not None:
            pair = (self.client_cert_data, self.client_key_data)
        if pair is not None:
            _load_cert_chain(context, cert=pair[0], key=pair[1], where=self._where())
        return context


def _load_cert_chain(context: ssl.SSLContext, *, cert: bytes, key: bytes, where: str) -> None:
    # The ssl module loads certificates only from files: write them to a private, short-lived
    # directory (mode 0700, removed at once).
    with tempfile.TemporaryDirectory(prefix="kubelab-client-") as tmp:
        cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ConfigError(f"{where}invalid client certificate or key: {exc}") from exc


# --- kubeconfig ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One named cluster, user or context, with the file it came from."""

    body: dict[str, Any]
    origin: Path


@dataclass
class _Merged:
    files: list[Path] = field(default_factory=list)
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str = ""


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """clientcmd's precedence list: the files in ``KUBECONFIG`` (deduplicated), else ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths: list[Path] = []
        for item in listed.split(os.pathsep):
            if item and Path(item) not in paths:
                paths.append(Path(item))
        return paths
    return [DEFAULT_KUBECONFIG.expanduser()]


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Load a kubeconfig: ``path`` if given (it must exist), else the ``KUBECONFIG`` files merged.

    ``context`` overrides ``current-context``. The namespace is the context's, else ``default``.
    """
    if path is not None:
        explicit = Path(path)
        if not explicit.exists():
            raise ConfigError(f"kubeconfig {explicit} does not exist")
        merged = _merge([explicit])
    else:
        merged = _merge(kubeconfig_paths(environ))
    return _client_config(merged, context)


def _merge(paths: Sequence[Path]) -> _Merged:
    merged = _Merged()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f'error loading config file "{path}": {exc}') from exc
        merged.files.append(path)
        document = _parse(path, text)
        origin = path.absolute()
        for section, target in (
            ("clusters", merged.clusters),
            ("users", merged.users),
            ("contexts", merged.contexts),
        ):
            for name, body in _named_entries(path, document, section):
                target.setdefault(name, _Entry(body, origin))
        current = document.get("current-context") or ""
        if not isinstance(current, str):
            raise ConfigError(f'error loading config file "{path}": current-context must be a string')
        if current and not merged.current_context:
            merged.current_context = current
    return merged


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f'error loading config file "{path}": {exc}') from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f'error loading config file "{path}": the top level is not a mapping')
    return document


_SECTION_BODY = {"clusters": "cluster", "users": "user", "contexts": "context"}


def _named_entries(path: Path, document: dict[str, Any], section: str) -> list[tuple[str, dict[str, Any]]]:
    entries = document.get(section) or []
    if not isinstance(entries, list):
        raise ConfigError(f'error loading config file "{path}": {section} must be a list')
    body_key = _SECTION_BODY[section]
    result = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ConfigError(f'error loading config file "{path}": {section}[{index}] has no name')
        body = entry.get(body_key) or {}
        if not isinstance(body, dict):
            raise ConfigError(
                f'error loading config file "{path}": {section}[{index}] ({entry["name"]}): '
                f"{body_key} must be a mapping"
            )
        result.append((entry["name"], body))
    return result


def _client_config(merged: _Merged, context_name: str | None) -> ClientConfig:
    files = ", ".join(str(p) for p in merged.files) or "(no kubeconfig file found)"
    if not merged.files:
        raise ConfigError(
            f"invalid configuration: no configuration has been provided (looked for {files}); "
            "set KUBECONFIG or pass a kubeconfig"
        )
    name = context_name or merged.current_context
    if not name:
        raise ConfigError(f"kubeconfig {files}: current-context is not set and no context was given")
    context_entry = merged.contexts.get(name)
    if context_entry is None:
        raise ConfigError(f'kubeconfig {files}: context "{name}" does not exist')
    ctx = context_entry.body
    cluster_name = ctx.get("cluster") or ""
    if not cluster_name:
        raise ConfigError(
            f'kubeconfig {context_entry.origin}: cluster was not specified for context "{name}"'
        )
    cluster_entry = merged.clusters.get(cluster_name)
    if cluster_entry is None:
        raise ConfigError(f'kubeconfig {files}: cluster "{cluster_name}" (of context "{name}") was not found')
    user_name = ctx.get("user") or ""
    user_entry = merged.users.get(user_name) if user_name else None
    if user_name and user_entry is None:
        raise ConfigError(f'kubeconfig {files}: user "{user_name}" (of context "{name}") was not found')

    source = f"kubeconfig {files}, context {name}"
    cluster = _cluster_settings(cluster_name, cluster_entry)
    exec_extension = cluster.pop("exec_extension")
    user = (
        _user_settings(user_name, user_entry, exec_extension=exec_extension) if user_entry is not None else {}
    )
    namespace = ctx.get("namespace") or "default"
    return ClientConfig(namespace=str(namespace), source=source, **cluster, **user)


def _where(kind: str, name: str, entry: _Entry) -> str:
    return f'{kind} "{name}" in {entry.origin}'


def _resolve(entry: _Entry, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else entry.origin.parent / path


def _read_file(where: str, what: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: unable to read {what} {path}: {exc.strerror or exc}") from exc


def _decode_data(where: str, what: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: {what} is not valid base64: {exc}") from exc


def _file_or_data(entry: _Entry, *, where: str, file_key: str, data_key: str) -> bytes | None:
    body = entry.body
    if body.get(file_key) and body.get(data_key):
        raise ConfigError(f"{where}: {data_key} and {file_key} are both specified; give only one")
    if body.get(data_key):
        return _decode_data(where, data_key, body[data_key])
    if body.get(file_key):
        return _read_file(where, file_key, _resolve(entry, str(body[file_key])))
    return None


def _cluster_settings(name: str, entry: _Entry) -> dict[str, Any]:
    where = _where("cluster", name, entry)
    body = entry.body
    server = body.get("server")
    if not server or not isinstance(server, str):
        raise ConfigError(f"{where}: no server found")
    ca = _file_or_data(
        entry, where=where, file_key="certificate-authority", data_key="certificate-authority-data"
    )
    insecure = bool(body.get("insecure-skip-tls-verify", False))
    if "://" not in server:
        # clientcmd's DefaultServerURL: a bare host:port is https when TLS is configured.
        server = ("https://" if ca or insecure else "http://") + server
    extensions = body.get("extensions") or []
    exec_extension = None
    if isinstance(extensions, list):
        for item in extensions:
            if isinstance(item, dict) and item.get("name") == "client.authentication.k8s.io/exec":
                exec_extension = item.get("extension")
    return {
        "server": server.rstrip("/"),
        "ca_data": ca,
        "insecure_skip_tls_verify": insecure,
        "tls_server_name": body.get("tls-server-name") or None,
        "proxy_url": body.get("proxy-url") or None,
        "exec_extension": exec_extension,
    }


def _user_settings(name: str, entry: _Entry, *, exec_extension: Any) -> dict[str, Any]:
    where = _where("user", name, entry)
    body = entry.body
    if body.get("auth-provider"):
        raise ConfigError(
            f"{where}: auth-provider plugins are not supported (client-go removed them too); use an exec plugin"
        )
    methods = []
    if body.get("token"):
        methods.append("token")
    if body.get("username") or body.get("password"):
        methods.append("basicAuth")
    if len(methods) > 1:
        raise ConfigError(
            f"{where}: more than one authentication method found ({', '.join(methods)}); only one is allowed"
        )

    cert = _file_or_data(
        entry, where=where, file_key="client-certificate", data_key="client-certificate-data"
    )
    key = _file_or_data(entry, where=where, file_key="client-key", data_key="client-key-data")
    if (cert is None) != (key is None):
        missing = "client-key(-data)" if key is None else "client-certificate(-data)"
        raise ConfigError(f"{where}: {missing} must be specified to use client certificate authentication")

    token_file = None
    if body.get("tokenFile"):
        token_file = _resolve(entry, str(body["tokenFile"]))
        _read_file(where, "tokenFile", token_file)

    settings: dict[str, Any] = {
        "client_cert_data": cert,
        "client_key_data": key,
        "token": body.get("token") or None,
        "token_file": token_file,
        "username": body.get("username") or None,
        "password": body.get("password") or None,
        "exec_config": _exec_config(where, entry, exec_extension),
        "impersonate": _impersonation(where, body),
    }
    return settings


def _exec_config(where: str, entry: _Entry, cluster_extension: Any) -> ExecConfig | None:
    spec = entry.body.get("exec")
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: exec must be a mapping")
    command = spec.get("command")
    if not command or not isinstance(command, str):
        raise ConfigError(f"{where}: exec: command must be specified to use an exec plugin")
    api_version = spec.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(
            f"{where}: exec: apiVersion must be one of {', '.join(EXEC_API_VERSIONS)} (got {api_version!r})"
        )
    mode = spec.get("interactiveMode") or ""
    if not mode:
        if api_version.endswith("/v1"):
            raise ConfigError(
                f"{where}: exec: interactiveMode must be specified for apiVersion {api_version}"
            )
        mode = "IfAvailable"
    if mode not in EXEC_INTERACTIVE_MODES:
        raise ConfigError(f"{where}: exec: invalid interactiveMode {mode!r}")
    env = []
    for item in spec.get("env") or []:
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f"{where}: exec: every env entry needs a name")
        env.append((str(item["name"]), str(item.get("value", ""))))
    if os.sep in command:
        command = str(_resolve(entry, command))
    return ExecConfig(
        command=command,
        api_version=api_version,
        args=tuple(str(arg) for arg in spec.get("args") or ()),
        env=tuple(env),
        install_hint=str(spec.get("installHint") or ""),
        provide_cluster_info=bool(spec.get("provideClusterInfo", False)),
        interactive_mode=mode,
        cluster_config=cluster_extension,
    )


def _impersonation(where: str, body: dict[str, Any]) -> Impersonation | None:
    user = body.get("as") or ""
    uid = body.get("as-uid") or ""
    groups = body.get("as-groups") or []
    extra = body.get("as-user-extra") or {}
    if not user:
        if uid or groups or extra:
            raise ConfigError(f"{where}: as-uid, as-groups or as-user-extra need as (a user to impersonate)")
        return None
    if not isinstance(groups, list) or not isinstance(extra, dict):
        raise ConfigError(f"{where}: as-groups must be a list and as-user-extra a mapping")
    return Impersonation(
        user=str(user),
        uid=str(uid),
        groups=tuple(str(g) for g in groups),
        extra=tuple((str(k), tuple(str(v) for v in (vs or ()))) for k, vs in extra.items()),
    )


# --- in-cluster ---------------------------------------------------------------------------------


def in_cluster_config(
    *, service_account_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """rest.InClusterConfig: the service's address from the environment, credentials from the
    service account directory. The token is kept as a file so rotated tokens are picked up.
    """
    env = os.environ if environ is None else environ
    directory = SERVICE_ACCOUNT_DIR if service_account_dir is None else service_account_dir
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "unable to load in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
        )
    token_file = directory / "token"
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"unable to load in-cluster configuration: cannot read the service account token {token_file}: "
            f"{exc.strerror or exc}"
        ) from exc
    ca_file = directory / "ca.crt"
    try:
        ca_data: bytes | None = ca_file.read_bytes()
    except OSError as exc:
        log.warning("in-cluster: cannot read %s (%s); trusting the system's root certificates", ca_file, exc)
        ca_data = None
    namespace = env.get("POD_NAMESPACE", "")
    if not namespace:
        try:
            namespace = (directory / "namespace").read_text(encoding="utf-8").strip()
        except OSError:
            namespace = ""
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ClientConfig(
        server=f"https://{hostport}",
        namespace=namespace or "default",
        ca_data=ca_data,
        token=token,
        token_file=token_file,
        source=f"in-cluster ({directory})",
    )


def load_config(
    *, kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClientConfig:
    """The configuration a component should use, chosen as ``clientcmd.BuildConfigFromFlags`` does.

    An explicit ``kubeconfig`` wins. Otherwise, inside a pod (``KUBERNETES_SERVICE_HOST`` set) and
    with no ``context`` asked for, the in-cluster configuration; if that cannot be loaded, the
    kubeconfig loading rules (``KUBECONFIG``, then ``~/.kube/config``) are tried before giving up.
    """
    if kubeconfig is not None:
        return load_kubeconfig(kubeconfig, context=context)
    if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            return in_cluster_config()
        except ConfigError as in_cluster_error:
            log.warning("%s; trying the kubeconfig loading rules", in_cluster_error)
            try:
                return load_kubeconfig()
            except ConfigError as kubeconfig_error:
                raise ConfigError(f"{in_cluster_error}; and {kubeconfig_error}") from kubeconfig_error
    return load_kubeconfig(context=context)
