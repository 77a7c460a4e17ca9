"""exec, attach and port-forward on the kubelet API, frame by frame: WebSocket (v5, v4,
base64, unversioned), SPDY/3.1, and SPDY tunnelled in WebSocket, against a real
KubeletServer whose fake runtime runs real processes."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.control.kubelet.fakes import RunningKubelet, free_port, make_pod, running_kubelet
from tests.control.kubelet.spdy_client import SPDYClient

EXEC = "/exec/default/web/main"


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[RunningKubelet]:
    async with running_kubelet(tmp_path / "pki") as running:
        running.pods.add(make_pod("web", containers=("main", "sidecar"), running={"main": "main-id"}))
        running.runtime.add_container("main-id")
        yield running


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP server on the pod IP (127.0.0.1) answering b"echo:" + what it reads, closing at EOF."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def exec_url(kubelet: RunningKubelet, command: list[str], path: str = EXEC, **flags: str) -> str:
    query = "&".join(
        [f"command={part}" for part in command] + [f"{key}={value}" for key, value in flags.items()]
    )
    return f"{kubelet.url}{path}?{query}"


async def collect(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[int, bytes], list[bytes]]:
    """Channel -> bytes until the server closes; also every frame as received."""
    channels: dict[int, bytes] = {}
    frames = []
    async with asyncio.timeout(10):
        async for message in ws:
            assert message.type is aiohttp.WSMsgType.BINARY
            frames.append(message.data)
            channels[message.data[0]] = channels.get(message.data[0], b"") + message.data[1:]
    return channels, frames


# --- WebSocket exec ------------------------------------------------------------------------------


async def test_v5_exec_streams_output_then_reports_success(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["sh", "-c", "echo%20out;%20echo%20err%20>%262"], output="1", error="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        channels, frames = await collect(ws)
        assert ws.close_code == aiohttp.WSCloseCode.OK
    assert frames[0] == b"\x01"  # the empty "connected" frame on stdout comes first
    assert channels[1] == b"out\n" and channels[2] == b"err\n"
    assert json.loads(channels[3]) == {"metadata": {}, "status": "Success"}
    assert kubelet.runtime.exec_calls == [("main-id", ["sh", "-c", "echo out; echo err >&2"], False, False)]


async def test_nonzero_exit_is_reported_with_the_exit_code_cause(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["sh", "-c", "exit%2042"], output="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        channels, _ = await collect(ws)
    status = json.loads(channels[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "42"}]
    assert "exit code 42" in status["message"]


async def test_v5_close_signal_ends_stdin(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["cat"], input="1", output="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x00hello ")
        await ws.send_bytes(b"\x00world")
        await ws.send_bytes(bytes((255, 0)))
        channels, _ = await collect(ws)
    assert channels[1] == b"hello world"
    assert json.loads(channels[3])["status"] == "Success"


async def test_stdin_sent_as_text_frames_is_read_like_binary_frames(kubelet: RunningKubelet) -> None:
    # The Python client's write_stdin(str) sends text frames on v4/v5; upstream reads
    # any frame's payload as bytes, so the command gets its input either way.
    url = exec_url(kubelet, ["cat"], input="1", output="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_str("\x00hello ")
        await ws.send_bytes(b"\x00world")
        await ws.send_str("\xff\x00")  # chr(255) is two bytes in UTF-8: not the close signal
        await ws.send_bytes(bytes((255, 0)))
        channels, _ = await collect(ws)
    assert channels[1] == b"hello world"
    assert json.loads(channels[3])["status"] == "Success"

    # base64 protocols: the digit-prefixed base64 payload, in a binary frame or a text one.
    url = exec_url(kubelet, ["head", "-c", "34"], input="1", output="1")
    texts = []
    async with kubelet.session.ws_connect(url, protocols=("v4.base64.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"0" + base64.b64encode(b"from a binary frame"))
        await ws.send_str("0" + base64.b64encode(b" and a text one").decode())
        async with asyncio.timeout(10):
            async for message in ws:
                texts.append(message.data)
    stdout = b"".join(base64.b64decode(text[1:]) for text in texts if text[:1] == "1")
    assert stdout == b"from a binary frame and a text one"


async def test_v4_binary_and_base64_protocols(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["sh", "-c", "echo%20hi"], output="1", error="1")
    async with kubelet.session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        channels, _ = await collect(ws)
    assert channels[1] == b"hi\n" and json.loads(channels[3])["status"] == "Success"

    texts = []
    async with kubelet.session.ws_connect(url, protocols=("v4.base64.channel.k8s.io",)) as ws:
        async for message in ws:
            assert message.type is aiohttp.WSMsgType.TEXT
            texts.append(message.data)
    decoded = {text[0]: base64.b64decode(text[1:]) for text in texts if len(text) > 1}
    assert decoded["1"] == b"hi\n"
    assert json.loads(decoded["3"])["status"] == "Success"


async def test_unversioned_protocol_reports_only_failures_as_text(kubelet: RunningKubelet) -> None:
    ok = exec_url(kubelet, ["true"], output="1")
    async with kubelet.session.ws_connect(ok, protocols=("channel.k8s.io",)) as ws:
        channels, _ = await collect(ws)
    assert channels.get(3, b"") == b""
    failing = exec_url(kubelet, ["false"], output="1")
    async with kubelet.session.ws_connect(failing) as ws:  # no subprotocol at all: channel.k8s.io
        channels, _ = await collect(ws)
    assert channels[3].startswith(b"command terminated with non-zero exit code")


async def test_tty_exec_applies_resizes(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["sh", "-c", "read%20line;%20stty%20size"], input="1", output="1", tty="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b'\x04{"Width":100,"Height":40}\n')
        await ws.send_bytes(b"\x00go\n")
        channels, _ = await collect(ws)
    assert b"40 100" in channels[1]
    assert 2 not in channels  # a TTY has no separate stderr
    assert kubelet.runtime.exec_calls[-1][3] is True


async def test_command_that_cannot_start_is_an_internal_error(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["/no/such/binary"], output="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        channels, _ = await collect(ws)
    status = json.loads(channels[3])
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert status["message"].startswith("Internal error occurred: error executing command in container:")


async def test_client_going_away_closes_the_commands_stdin(kubelet: RunningKubelet) -> None:
    url = exec_url(kubelet, ["cat"], input="1", output="1")
    async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x00ping")
        async with asyncio.timeout(5):
            async for message in ws:
                if message.data[1:] == b"ping":
                    break
    process = kubelet.runtime._processes[-1]
    assert await asyncio.wait_for(process.wait(), 5) == 0  # cat saw EOF and exited


async def test_unsupported_subprotocols_are_refused(kubelet: RunningKubelet) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await kubelet.session.ws_connect(
            exec_url(kubelet, ["true"], output="1"), protocols=("v9.channel.k8s.io",)
        )
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("url_path", "query", "status", "message"),
    [
        (EXEC, "command=true", 400, "you must specify at least 1 of stdin, stdout, stderr"),
        ("/exec/default/nope/main", "command=true&output=1", 404, "pod does not exist"),
        ("/exec/default/web/other-uid/main", "command=true&output=1", 404, "pod does not exist"),
        ("/exec/default/web/sidecar", "command=true&output=1", 500, 'container not found ("sidecar")'),
        (EXEC, "output=1", 400, "you must specify at least one command for the container"),
        (EXEC, "command=true&output=1", 400, "Upgrade request required"),
    ],
    ids=["no streams", "no pod", "wrong uid", "not running", "no command", "not an upgrade"],
)
async def test_requests_refused_before_any_upgrade(
    kubelet: RunningKubelet, url_path: str, query: str, status: int, message: str
) -> None:
    async with kubelet.session.post(f"{kubelet.url}{url_path}?{query}") as response:
        assert (response.status, await response.text()) == (status, message)


# --- WebSocket attach -----------------------------------------------------------------------------


async def test_attach_joins_the_main_process_and_leaves_it_running(kubelet: RunningKubelet) -> None:
    await kubelet.runtime.start_main_process("main-id", ["sh", "-c", "while read l; do echo got:$l; done"])
    url = f"{kubelet.url}/attach/default/web/main?input=1&output=1"
    for word in ("x", "y"):  # the second attach finds the process alive, its stdin still open
        async with kubelet.session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
            await ws.send_bytes(b"\x00" + word.encode() + b"\n")
            async with asyncio.timeout(5):
                async for message in ws:
                    if message.data == b"\x01got:" + word.encode() + b"\n":
                        break
    assert kubelet.runtime._main["main-id"].process.returncode is None


async def test_attach_reports_success_when_the_container_exits(kubelet: RunningKubelet) -> None:
    await kubelet.runtime.start_main_process("main-id", ["sh", "-c", "read l; echo bye; exit 7"])
    async with kubelet.session.ws_connect(
        f"{kubelet.url}/attach/default/web/main?input=1&output=1", protocols=("v5.channel.k8s.io",)
    ) as ws:
        await ws.send_bytes(b"\x00go\n")
        channels, _ = await collect(ws)
    assert channels[1] == b"bye\n"
    assert json.loads(channels[3]) == {"metadata": {}, "status": "Success"}


async def test_attach_without_a_main_process_is_an_internal_error(kubelet: RunningKubelet) -> None:
    async with kubelet.session.ws_connect(
        f"{kubelet.url}/attach/default/web/main?output=1", protocols=("v5.channel.k8s.io",)
    ) as ws:
        channels, _ = await collect(ws)
    assert json.loads(channels[3])["message"].startswith(
        "Internal error occurred: error attaching to container:"
    )


# --- SPDY exec ------------------------------------------------------------------------------------


async def spdy_exec(
    kubelet: RunningKubelet, target: str, *, protocols: list[str]
) -> tuple[int, dict[str, str], SPDYClient | bytes]:
    config = kubelet.server.config
    return await SPDYClient.connect(
        host=config.address,
        port=config.port,
        context=kubelet.client_context,
        target=target,
        protocols=protocols,
    )


async def test_spdy_v4_exec_with_stdin(kubelet: RunningKubelet) -> None:
    target = "/exec/default/web/main?command=sh&command=-c&command=cat%3Becho%20e%3E%262%3Bexit%203&input=1&output=1&error=1"
    status, headers, client = await spdy_exec(
        kubelet, target, protocols=["v4.channel.k8s.io", "v3.channel.k8s.io"]
    )
    assert (status, headers["upgrade"], headers["x-stream-protocol-version"]) == (
        101,
        "SPDY/3.1",
        "v4.channel.k8s.io",
    )
    assert isinstance(client, SPDYClient)
    try:
        error = await client.open({"streamType": "error"})
        stdin = await client.open({"streamType": "stdin"})
        stdout = await client.open({"streamType": "stdout"})
        stderr = await client.open({"streamType": "stderr"})
        await client.send(stdin, b"typed", fin=True)
        await asyncio.wait_for(client.goaway.wait(), 10)
        assert (bytes(stdout.data), bytes(stderr.data)) == (b"typed", b"e\n")
        assert json.loads(error.data)["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        assert all(stream.finished.is_set() for stream in (error, stdout, stderr))
    finally:
        await client.close()


async def test_spdy_v2_reports_failures_as_text(kubelet: RunningKubelet) -> None:
    status, _, client = await spdy_exec(
        kubelet, "/exec/default/web/main?command=false&output=1", protocols=["v2.channel.k8s.io"]
    )
    assert status == 101 and isinstance(client, SPDYClient)
    try:
        error = await client.open({"streamType": "error"})
        await client.open({"streamType": "stdout"})
        await asyncio.wait_for(client.goaway.wait(), 10)
        assert bytes(error.data).startswith(b"command terminated with non-zero exit code")
    finally:
        await client.close()


async def test_spdy_handshake_errors(kubelet: RunningKubelet) -> None:
    status, _, body = await spdy_exec(kubelet, f"{EXEC}?command=true&output=1", protocols=[])
    assert (status, body) == (
        400,
        b"unable to upgrade: header X-Stream-Protocol-Version does not exist in request",
    )
    status, headers, body = await spdy_exec(
        kubelet, f"{EXEC}?command=true&output=1", protocols=["v9.channel.k8s.io"]
    )
    assert status == 403 and b"unable to negotiate protocol" in body
    assert headers["x-accepted-stream-protocol-versions"].startswith("v4.channel.k8s.io")


# --- port-forward ---------------------------------------------------------------------------------


async def forward_once(
    client: SPDYClient, *, port: int, request_id: str, payload: bytes
) -> tuple[bytes, bytes]:
    """One forwarded connection: send, half-close, and return (data, error) as received."""
    headers = {"streamType": "error", "port": str(port), "requestID": request_id}
    error = await client.open(headers)
    await client.send(error, b"", fin=True)
    data = await client.open({**headers, "streamType": "data"})
    await client.send(data, payload, fin=True)
    await asyncio.wait_for(asyncio.gather(data.finished.wait(), error.finished.wait()), 10)
    return bytes(data.data), bytes(error.data)


async def test_spdy_port_forward_carries_connections(kubelet: RunningKubelet, echo_port: int) -> None:
    status, headers, client = await spdy_exec(
        kubelet, "/portForward/default/web", protocols=["portforward.k8s.io"]
    )
    assert (status, headers["x-stream-protocol-version"]) == (101, "portforward.k8s.io")
    assert isinstance(client, SPDYClient)
    try:
        assert await forward_once(client, port=echo_port, request_id="0", payload=b"one") == (
            b"echo:one",
            b"",
        )
        assert await forward_once(client, port=echo_port, request_id="1", payload=b"two") == (
            b"echo:two",
            b"",
        )
        closed = free_port()
        data, error = await forward_once(client, port=closed, request_id="2", payload=b"x")
        assert data == b""
        assert error.decode() == (
            f"error forwarding port {closed} to pod web, uid uid-1: dial tcp 127.0.0.1:{closed}: connect: "
            "connection refused"
        )
        await client.ping(1)
        await asyncio.wait_for(client.pinged.wait(), 5)
        assert client.pings == [1]
    finally:
        await client.close()


async def test_port_forward_streams_with_bad_headers_are_reset(kubelet: RunningKubelet) -> None:
    _, _, client = await spdy_exec(kubelet, "/portforward/default/web", protocols=["portforward.k8s.io"])
    assert isinstance(client, SPDYClient)
    try:
        for headers in (
            {"streamType": "data"},
            {"streamType": "data", "port": "0"},
            {"streamType": "x", "port": "80"},
        ):
            stream = await client.open(headers)
            assert not await stream.replied and stream.was_reset
    finally:
        await client.close()


class _WebSocketPipe:
    """Lets SPDYClient run over a WebSocket: the kubectl 1.31+ tunnel."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._sends: list[asyncio.Task[None]] = []

    async def read(self, _size: int) -> bytes:
        message = await self.ws.receive()
        return message.data if message.type is aiohttp.WSMsgType.BINARY else b""

    def write(self, data: bytes) -> None:
        self._sends.append(asyncio.create_task(self.ws.send_bytes(data)))

    async def drain(self) -> None:
        await asyncio.gather(*self._sends)

    def is_closing(self) -> bool:
        return self.ws.closed

    def close(self) -> None:
        self._sends.append(asyncio.create_task(self.ws.close()))


async def test_spdy_tunnelled_in_websocket(kubelet: RunningKubelet, echo_port: int) -> None:
    async with kubelet.session.ws_connect(
        f"{kubelet.url}/portforward/default/web", protocols=("SPDY/3.1+portforward.k8s.io",)
    ) as ws:
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        pipe = _WebSocketPipe(ws)
        client = SPDYClient(pipe, pipe)  # type: ignore[arg-type]
        client._task = asyncio.create_task(client._run())
        try:
            assert await forward_once(client, port=echo_port, request_id="0", payload=b"tunnel") == (
                b"echo:tunnel",
                b"",
            )
        finally:
            await client.close()
            await pipe.drain()


async def test_websocket_channel_port_forward(kubelet: RunningKubelet, echo_port: int) -> None:
    url = f"{kubelet.url}/portforward/default/web?ports={echo_port}"
    port_bytes = struct.pack("<H", echo_port)
    async with kubelet.session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        first = [(await ws.receive()).data for _ in range(2)]
        assert sorted(first) == [b"\x00" + port_bytes, b"\x01" + port_bytes]
        await ws.send_bytes(b"\x00abc")
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message.data == b"\x00echo:abc"


@pytest.mark.parametrize(
    ("query", "message"),
    [("", 'query parameter "port" is required'), ("?ports=0", 'port "0" must be > 0 and < 65536')],
)
async def test_websocket_channel_port_forward_needs_ports(
    kubelet: RunningKubelet, query: str, message: str
) -> None:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
        "Sec-WebSocket-Protocol": "v4.channel.k8s.io",
    }
    async with kubelet.session.get(
        f"{kubelet.url}/portforward/default/web{query}", headers=headers
    ) as response:
        assert (response.status, await response.text()) == (400, message)


async def test_port_forward_to_a_pod_without_ip(kubelet: RunningKubelet) -> None:
    pod: dict[str, Any] = make_pod("new")
    pod["status"].pop("podIP")
    kubelet.pods.add(pod)
    async with kubelet.session.post(f"{kubelet.url}/portForward/default/new") as response:
        assert (response.status, await response.text()) == (500, 'pod "new" has no IP address yet')
