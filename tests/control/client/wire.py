"""FakeWireServer: a scripted HTTP server on loopback for checking the REST client's wire behaviour.

It is a fake in the project's sense — it exists to inject what a real API server cannot be made
to produce on cue (a 429 with Retry-After, a watch cut mid-event, a proxy's HTML error page,
events split across TCP chunks) and to record exactly what the client sent. Whether the client
works against kubelab's real API server is for the integration tests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


def json_answer(obj, *, status: int = 200, headers: dict | None = None) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=orjson.dumps(obj), status=status, content_type="application/json", headers=headers
        )

    return answer


def status_answer(
    reason: str, code: int, message: str = "", *, headers: dict | None = None, **details
) -> Answer:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return json_answer(body, status=code, headers=headers)


def raw_answer(
    body: bytes, *, status: int, content_type: str = "text/plain", headers: dict | None = None
) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=body, status=status, headers=headers)
        response.content_type = content_type
        return response

    return answer


def stream_answer(
    chunks: list[bytes], *, hang_up: bool = False, content_type: str = "application/json"
) -> Answer:
    """Send ``chunks`` as separate writes of a chunked 200 answer; ``hang_up`` cuts the connection after."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            await asyncio.sleep(0)
        if hang_up:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    return answer


def hang_up_answer() -> Answer:
    """Close the connection without answering (a server going away under a reused connection)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)

    return answer


class FakeWireServer:
    """Answers each request with the next scripted answer (or ``default``) and records it."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.answers: deque[Answer] = deque()
        self.default: Answer = status_answer(
            "NotFound", 404, "the server could not find the requested resource"
        )
        self.routes: dict[str, Answer] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), request.headers, body)
        )
        if self.answers:
            return await self.answers.popleft()(request)
        if request.path in self.routes:
            return await self.routes[request.path](request)
        return await self.default(request)

    async def start(self, *, ssl_context: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]
