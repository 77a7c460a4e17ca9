"""SKELETON (to be written): ServiceAccount tokens — TokenRequest, TokenReview, the bearer-token authenticator."""

from __future__ import annotations

from aiohttp import web

from control.apiserver.authn import UserInfo
from control.apiserver.call import Call
from control.apiserver.options import APIServerOptions
from control.apiserver.resource_store import ResourceStore


class ServiceAccountTokens:
    @classmethod
    def from_options(cls, options: APIServerOptions, *, objects: ResourceStore) -> ServiceAccountTokens | None:
        if options.service_account_signing_key_file is None:
            return None
        raise NotImplementedError

    async def authenticate(self, token: str) -> UserInfo | None:
        raise NotImplementedError

    async def token_request(self, call: Call) -> web.Response:
        raise NotImplementedError

    async def token_review(self, call: Call) -> web.Response:
        raise NotImplementedError

    def openid_configuration(self) -> bytes:
        raise NotImplementedError

    def jwks(self) -> bytes:
        raise NotImplementedError
