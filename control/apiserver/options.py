"""What the API server needs to start: where to listen, where state lives, which certificates.

Kept apart from the server so the CLI can build it from flags and tests can build it
directly, without importing the HTTP machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# kube-controller-manager's and kube-scheduler's --secure-port defaults: where the components
# serve health and metrics, and where the API server probes them for componentstatuses (as
# upstream, which assumes them too).
CONTROLLER_MANAGER_SECURE_PORT = 10257
SCHEDULER_SECURE_PORT = 10259


@dataclass(frozen=True, kw_only=True)
class APIServerOptions:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    # "sqlite://" (the data dir's state.db), "sqlite:///abs/path.db" or
    # "etcd://host:port[,host:port...]".
    store_url: str = "sqlite://"
    # TLS: serving certificate and key, and the CA that signs client certificates.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    # Address other components (and the default/kubernetes Endpoints) use to reach us.
    advertise_address: str = "127.0.0.1"
    service_cidr: str = "127.96.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    # Keep this many revisions of history; older ones are compacted (watch -> 410).
    compaction_interval_seconds: float = 300.0
    compaction_keep_revisions: int = 10_000
    # DefaultTolerationSeconds admission: how long pods tolerate not-ready/unreachable nodes.
    default_toleration_seconds: int = 300
    # Authentication: ServiceAccount tokens are JWTs signed with this private key (TokenRequest)
    # and accepted when one of the public keys verifies them, the issuer matches and an audience
    # is one of ``api_audiences`` (empty: the issuer). No signing key: no token authentication.
    service_account_signing_key_file: Path | None = None
    service_account_key_files: tuple[Path, ...] = ()
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    api_audiences: tuple[str, ...] = ()
    service_account_max_token_expiration_seconds: int = 0  # 0: no maximum beyond upstream's
    # Authorization (--authorization-mode): AlwaysAllow, AlwaysDeny, Node, RBAC, asked in order.
    authorization_modes: tuple[str, ...] = ("AlwaysAllow",)
    # API aggregation (kube-apiserver's names). The front proxy's client certificate, presented
    # to extension API servers; the CA that signs it, and what extension servers are told (in
    # kube-system/extension-apiserver-authentication) to accept from it: the certificate names
    # allowed to assert a user and the headers that carry the user, groups and extra fields.
    proxy_client_cert_file: Path | None = None
    proxy_client_key_file: Path | None = None
    requestheader_client_ca_file: Path | None = None
    requestheader_allowed_names: tuple[str, ...] = ("front-proxy-client",)
    requestheader_username_headers: tuple[str, ...] = ("X-Remote-User",)
    requestheader_group_headers: tuple[str, ...] = ("X-Remote-Group",)
    requestheader_extra_headers_prefix: tuple[str, ...] = ("X-Remote-Extra-",)
