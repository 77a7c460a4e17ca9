"""One resource request as the verb handlers see it, and how answers are written.

Handlers (reads, watch, writes) take a :class:`Call` — the parsed request info, the kind,
the query, the shape the client wants — and return an aiohttp response. Decoding the
body, the dry-run flag and the JSON answer live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from control.apiserver import errors
from control.apiserver.authn import ANONYMOUS, UserInfo
from control.apiserver.negotiation import MAX_BODY_BYTES, Wanted, decode_body
from control.apiserver.requestinfo import RequestInfo
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import ResourceType

JSON = "application/json"


@dataclass(kw_only=True)
class Call:
    request: web.Request
    info: RequestInfo
    rt: ResourceType
    wanted: Wanted
    objects: ResourceStore
    now: datetime
    warnings: list[str]
    user: UserInfo = ANONYMOUS  # who asked (after impersonation)

    @property
    def query(self) -> Any:
        return self.request.query

    def param(self, name: str, default: str = "") -> str:
        return self.request.query.get(name, default)

    @property
    def dry_run(self) -> bool:
        values = self.request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    async def raw_body(self) -> bytes:
        length = self.request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise errors.entity_too_large(MAX_BODY_BYTES)
        content = self.request.content
        chunks: list[bytes] = []
        size = 0
        while not content.at_eof():
            # Once all of it has arrived (a small object usually has), take it without an await.
            chunk = content.read_nowait() if content.is_eof() else await content.readany()
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise errors.entity_too_large(MAX_BODY_BYTES)
            chunks.append(chunk)
        return b"".join(chunks)

    async def body(self) -> Any:
        raw = await self.raw_body()
        if not raw.strip():
            raise errors.bad_request("the body of the request was empty")
        return decode_body(raw, content_type=self.request.headers.get("Content-Type", JSON))


def json_response(body: Any, *, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    return bytes_response(orjson.dumps(body), status=status, warnings=warnings)


def bytes_response(raw: bytes, *, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=raw, status=status, content_type=JSON)
    for warning in warnings or ():
        response.headers.add("Warning", f'299 - "{_escape(warning)}"')
    return response


def status_response(error: errors.StatusError) -> web.Response:
    response = json_response(error.status(), status=error.code)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
