"""SKELETON (to be written): access and identity reviews."""

from __future__ import annotations

from aiohttp import web

from control.apiserver.authorization import AuthorizerChain
from control.apiserver.call import Call


class Reviews:
    def __init__(self, *, authorizer: AuthorizerChain) -> None:
        self.authorizer = authorizer

    async def self_subject_access_review(self, call: Call) -> web.Response:
        raise NotImplementedError

    async def subject_access_review(self, call: Call) -> web.Response:
        raise NotImplementedError

    async def local_subject_access_review(self, call: Call) -> web.Response:
        raise NotImplementedError

    async def self_subject_rules_review(self, call: Call) -> web.Response:
        raise NotImplementedError

    async def self_subject_review(self, call: Call) -> web.Response:
        raise NotImplementedError
