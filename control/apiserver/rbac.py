"""SKELETON (to be written): the RBAC authorizer and its escalation checks."""

from __future__ import annotations

import asyncio

from control.apiserver.admission import AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain, Decision, SubjectRules
from control.resources.registry import Registry
from control.store import Store


class RBACAuthorizer:
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


class RBACEscalationCheck:
    def __init__(self, *, rbac: RBACAuthorizer, authorizer: AuthorizerChain) -> None:
        self.rbac = rbac
        self.authorizer = authorizer

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        return None
