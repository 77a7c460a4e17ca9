"""Acting as someone else: the ``Impersonate-*`` headers ``kubectl --as`` sends.

As upstream's impersonation filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go):
``Impersonate-User`` names the user (a ``system:serviceaccount:<ns>:<name>`` name is a
ServiceAccount), ``Impersonate-Group`` (repeated) its groups, ``Impersonate-Uid`` its UID and
``Impersonate-Extra-<key>`` (percent-encoded key, repeated) its extra values. Each requested
piece is authorized separately as verb ``impersonate`` for the authenticated caller — on
``users``, ``groups``, ``serviceaccounts`` (in the account's namespace), ``uids`` and
``userextras/<key>`` (the last two in group authentication.k8s.io) — and the first refusal
is the request's 403. The request then runs as the new user: given groups are the whole
list, a ServiceAccount without given groups gets its fixed ones, and a non-anonymous user
gets ``system:authenticated`` unless told ``system:(un)authenticated`` already.

Requests without these headers (nearly all) pay one scan of the header names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from control.apiserver import errors
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain, Decision, forbidden
from control.resources.validation import is_dns1123_label, is_dns1123_subdomain

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_HEADER_PREFIX = "impersonate-extra-"
_PREFIX = "impersonate-"
_PREFIX_LENGTH = len(_PREFIX)
_EXTRA_PREFIX_LENGTH = len(EXTRA_HEADER_PREFIX)
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_NAME = "system:anonymous"
AUTHENTICATION_GROUP = "authentication.k8s.io"
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class _Requested:
    """One thing to impersonate (upstream builds a v1.ObjectReference per item)."""

    kind: str  # ServiceAccount, User, Group, UserExtra or UID
    name: str
    namespace: str = ""
    extra_key: str = ""

    def go_value(self) -> str:
        """The reference as Go's ``%v`` prints a v1.ObjectReference (for upstream's message)."""
        api_version = "authentication.k8s.io/v1" if self.kind in ("UserExtra", "UID") else ""
        return (
            "{" + " ".join((self.kind, self.namespace, self.name, "", api_version, "", self.extra_key)) + "}"
        )


def impersonate(*, headers: CIMultiDictProxy[str], user: UserInfo, authorizer: AuthorizerChain) -> UserInfo:
    """The user the request runs as: ``user`` itself without impersonation headers, else the
    impersonated user once ``user`` may impersonate every piece of it (403 otherwise; 400 for
    groups, a UID or extras without a user)."""
    if not any(name[:_PREFIX_LENGTH].lower() == _PREFIX for name in headers):
        return user
    requested = _requested(headers)
    if not requested:
        return user
    groups_given = GROUP_HEADER in headers
    name = ""
    uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for item in requested:
        attributes = _attributes(user, item)
        if item.kind == "ServiceAccount":
            name = f"{SERVICE_ACCOUNT_PREFIX}{item.namespace}:{item.name}"
            if not groups_given:
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{item.namespace}"]
        elif item.kind == "User":
            name = item.name
        elif item.kind == "Group":
            groups.append(item.name)
        elif item.kind == "UserExtra":
            extra.setdefault(item.extra_key, []).append(item.name)
        else:
            uid = item.name
        decision, reason = authorizer.authorize(attributes)
        if decision is not Decision.ALLOW:
            raise forbidden(attributes, reason)
    if name != ANONYMOUS_NAME:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(
        name=name,
        groups=tuple(groups),
        uid=uid,
        extra={key: tuple(values) for key, values in extra.items()},
    )


def _requested(headers: CIMultiDictProxy[str]) -> list[_Requested]:
    """upstream's buildImpersonationRequests: user, groups, extras, UID — in that order."""
    requested: list[_Requested] = []
    user = headers.get(USER_HEADER, "")
    if user:
        account = split_service_account_username(user)
        if account is not None:
            requested.append(_Requested(kind="ServiceAccount", namespace=account[0], name=account[1]))
        else:
            requested.append(_Requested(kind="User", name=user))
    requested.extend(_Requested(kind="Group", name=group) for group in headers.getall(GROUP_HEADER, ()))
    requested.extend(_extras(headers.items()))
    uid = headers.get(UID_HEADER, "")
    if uid:
        requested.append(_Requested(kind="UID", name=uid))
    if not user and requested:
        listed = " ".join(item.go_value() for item in requested)
        raise errors.bad_request(f"requested [{listed}] without impersonating a user")
    return requested


def _extras(items: Iterable[tuple[str, str]]) -> list[_Requested]:
    """One request per ``Impersonate-Extra-<key>`` value; keys lowercased, then percent-decoded
    (a malformed escape keeps the key as sent, as Go's url.PathUnescape failing does)."""
    found: list[_Requested] = []
    for header, value in items:
        if header[:_EXTRA_PREFIX_LENGTH].lower() != EXTRA_HEADER_PREFIX:
            continue
        key = header[_EXTRA_PREFIX_LENGTH:].lower()
        if "%" in key and not _MALFORMED_ESCAPE.search(key):
            key = unquote(key)
        found.append(_Requested(kind="UserExtra", name=value, extra_key=key))
    return found


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ``system:serviceaccount:<ns>:<name>`` user, else None
    (upstream's serviceaccount.SplitUsername: a valid namespace and account name)."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if is_dns1123_label(namespace) or is_dns1123_subdomain(name):
        return None
    return namespace, name


def _attributes(user: UserInfo, item: _Requested) -> Attributes:
    """What ``user`` must be allowed: verb ``impersonate`` on the piece."""
    if item.kind == "UserExtra":
        return Attributes(
            user=user,
            verb="impersonate",
            api_group=AUTHENTICATION_GROUP,
            api_version="v1",
            resource="userextras",
            subresource=item.extra_key,
            name=item.name,
        )
    if item.kind == "UID":
        return Attributes(
            user=user,
            verb="impersonate",
            api_group=AUTHENTICATION_GROUP,
            api_version="v1",
            resource="uids",
            name=item.name,
        )
    resource = {"ServiceAccount": "serviceaccounts", "User": "users", "Group": "groups"}[item.kind]
    return Attributes(
        user=user, verb="impersonate", resource=resource, namespace=item.namespace, name=item.name
    )
