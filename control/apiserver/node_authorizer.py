"""SKELETON (to be written): the Node authorizer."""

from __future__ import annotations

import asyncio

from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, Decision, SubjectRules
from control.resources.registry import Registry
from control.store import Store


class NodeAuthorizer:
    def __init__(self, *, store: Store, registry: Registry) -> None:
        self.synced = asyncio.Event()

    def start(self) -> None:
        self.synced.set()

    async def stop(self) -> None:
        return None

    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        return Decision.NO_OPINION, ""

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        return SubjectRules()
