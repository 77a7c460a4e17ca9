"""SKELETON (to be written): impersonation headers."""

from __future__ import annotations

from collections.abc import Mapping

from control.apiserver.authn import UserInfo
from control.apiserver.authorization import AuthorizerChain


def impersonate(*, headers: Mapping[str, str], user: UserInfo, authorizer: AuthorizerChain) -> UserInfo:
    return user
