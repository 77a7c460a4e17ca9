"""Who is asking: x509 client certificates signed by the lab CA.

The TLS layer verifies the chain (``CERT_OPTIONAL`` with the client CA loaded), so a
certificate that reaches us is one the CA signed; the user is its Common Name and the
groups its Organizations, as kube-apiserver's x509 authenticator. Requests without a
certificate are anonymous: only ``/healthz``, ``/livez``, ``/readyz`` and ``/version``
(and their sub-paths) serve them; everything else answers 401.
ServiceAccount tokens and RBAC come with the security issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return self.name != "system:anonymous"

    def as_user_info(self) -> dict[str, Any]:
        """The user as authentication.k8s.io's UserInfo object (what reviews report), empty
        fields left out."""
        info: dict[str, Any] = {"username": self.name}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


def user_from_peercert(peercert: dict | None) -> UserInfo:
    """The user a verified peer certificate names (``ssl.SSLSocket.getpeercert()`` shape)."""
    if not peercert:
        return ANONYMOUS
    common_name = ""
    organizations: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and not common_name:
                common_name = value
            elif key == "organizationName":
                organizations.append(value)
    if not common_name:
        return ANONYMOUS
    return UserInfo(name=common_name, groups=(*organizations, "system:authenticated"))


def allows_anonymous(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in ANONYMOUS_PATHS)
