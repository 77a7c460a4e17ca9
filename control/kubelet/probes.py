"""Container probes (liveness, readiness, startup) and lifecycle hook actions.

Both run the same actions, as upstream's prober and lifecycle handlers do:

- ``exec``: the command in the container (:meth:`Runtime.exec_sync`); exit code 0 passes;
  the output (at most 10 KiB) is the message; running past ``timeoutSeconds`` fails with
  ``command "..." timed out``;
- ``httpGet``: a GET to ``<scheme>://<host or pod IP>:<port><path>`` with
  ``User-Agent: kube-probe/1.33`` and the probe's headers; 200 to 399 passes (a redirect
  to another host ends the chain and passes with a warning, redirects to the same host
  are followed); errors are worded as Go's client words them
  (``Get "http://127.244.1.2:8080/": dial tcp 127.244.1.2:8080: connect: connection refused``);
  HTTPS is not verified, as upstream;
- ``tcpSocket``: a TCP connection opens within the timeout;
- ``grpc``: the standard health protocol (``grpc.health.v1.Health/Check`` with the probe's
  ``service``) on the pod IP and ``port``, in plaintext, as upstream's prober; ``SERVING``
  passes, any other status, an unreachable server, an error or a deadline fails, with
  upstream's messages (``service unhealthy (responded with "NOT_SERVING")``);
- ``sleep`` (hooks only): waits the given seconds.

A :class:`ContainerProbes` runs one worker per probe the container defines, with
upstream's semantics: defaults ``periodSeconds 10``, ``timeoutSeconds 1``,
``successThreshold 1``, ``failureThreshold 3``, ``initialDelaySeconds 0``; nothing is
probed before ``initialDelaySeconds`` have passed since the container started; liveness and
readiness wait until the startup probe has passed; a result changes only after
``failureThreshold`` consecutive failures (``successThreshold`` successes); readiness
starts false, liveness true; a failed liveness or startup probe asks the pod worker to
restart the container and stops probing it. Every failed probe is reported
(``Unhealthy``, ``Liveness probe failed: <output>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from control.kubelet.runtime.protocol import ExecTimeoutError, Runtime, RuntimeError_

USER_AGENT = "kube-probe/1.33"
MAX_OUTPUT = 10 * 1024
MAX_REDIRECTS = 10
Obj = dict[str, Any]


class Result(enum.Enum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    WARNING = "Warning"  # passes, with something worth an event


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.result is not Result.FAILURE


# ---------------------------------------------------------------------------- actions


async def run_exec(runtime: Runtime, container_id: str, command: Sequence[str], *, timeout: float) -> Outcome:  # noqa: ASYNC109
    try:
        result = await runtime.exec_sync(container_id, command, timeout=timeout)
    except ExecTimeoutError:
        return Outcome(Result.FAILURE, f'command "{" ".join(command)}" timed out')
    except RuntimeError_ as exc:
        return Outcome(Result.FAILURE, str(exc))
    output = (result.stdout + result.stderr)[:MAX_OUTPUT].decode(errors="replace")
    if result.exit_code == 0:
        return Outcome(Result.SUCCESS, output)
    return Outcome(Result.FAILURE, output)


def _dial_error(host: str, port: int, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return f"dial tcp {host}:{port}: connect: {exc.strerror.lower()}"
    return f"dial tcp {host}:{port}: {exc}"


async def run_tcp(*, host: str, port: int, timeout: float) -> Outcome:  # noqa: ASYNC109
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=timeout)
    except (OSError, TimeoutError) as exc:
        return Outcome(Result.FAILURE, _dial_error(host, port, exc))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Outcome(Result.SUCCESS)


HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
_SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def health_check_request(service: str) -> bytes:
    """``grpc.health.v1.HealthCheckRequest{service}`` in protobuf wire format (field 1, a string)."""
    encoded = service.encode()
    return b"\x0a" + _varint(len(encoded)) + encoded if encoded else b""


def serving_status(response: bytes) -> int:
    """``HealthCheckResponse.status`` (field 1, an enum); absent means UNKNOWN (0)."""
    position, status = 0, 0
    while position < len(response):
        key, position = _read_varint(response, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(response, position)
            if field == 1:
                status = value
        elif wire_type == 2:
            length, position = _read_varint(response, position)
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
    return status


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


async def run_grpc(*, host: str, port: int, service: str, timeout: float) -> Outcome:  # noqa: ASYNC109
    """Upstream's gRPC prober: connect within the timeout, then one health Check."""
    import grpc  # only a node that runs gRPC probes pays for loading gRPC

    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    duration = _go_seconds(timeout)
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.primary_user_agent", USER_AGENT), ("grpc.enable_retries", 0)]
    ) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=timeout)
        except TimeoutError:
            return Outcome(
                Result.FAILURE,
                f'timeout: failed to connect service "{address}" within {duration}: context deadline exceeded',
            )
        check = channel.unary_unary(HEALTH_CHECK_METHOD)
        try:
            response = await check(
                health_check_request(service), timeout=max(deadline - time.monotonic(), 0.001)
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return Outcome(
                    Result.FAILURE,
                    "this server does not implement the grpc health protocol (grpc.health.v1.Health): "
                    f"{exc.details()}",
                )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return Outcome(Result.FAILURE, f"timeout: health rpc did not complete within {duration}")
            go_code = code.name.title().replace("_", "")
            return Outcome(
                Result.FAILURE,
                f"error: health rpc probe failed: rpc error: code = {go_code} desc = {exc.details()}",
            )
    try:
        status = serving_status(response)
    except ValueError as exc:
        return Outcome(Result.FAILURE, f"error: health rpc probe failed: {exc}")
    if status != 1:
        return Outcome(
            Result.FAILURE, f'service unhealthy (responded with "{_SERVING_STATUS.get(status, str(status))}")'
        )
    return Outcome(Result.SUCCESS, "service healthy")


def _go_seconds(seconds: float) -> str:
    """A timeout as Go prints a time.Duration of whole or fractional seconds: ``1s``, ``1.5s``."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:g}s"


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


async def _http_once(url: str, *, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    reader, writer = await asyncio.open_connection(
        host,
        port,
        ssl=_INSECURE if parts.scheme == "https" else None,
        server_hostname=host if parts.scheme == "https" else None,
    )
    try:
        request_headers = {
            "Host": parts.netloc,
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Connection": "close",
        }
        request_headers.update(headers)
        head = (
            f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request_headers.items()) + "\r\n"
        )
        writer.write(head.encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/"):
            raise ValueError(f"malformed HTTP response {status_line[:80]!r}")
        status = int(fields[1])
        response_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = response_headers.get("content-length")
        limit = MAX_OUTPUT if length is None else min(MAX_OUTPUT, int(length))
        body = b""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while len(body) < limit:
                chunk = await reader.read(limit - len(body))
                if not chunk:
                    break
                body += chunk
        return status, response_headers, body
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def run_http_get(url: str, *, headers: Mapping[str, str], timeout: float) -> Outcome:  # noqa: ASYNC109
    """One httpGet probe of ``url`` (redirects followed as Go's client does for probes)."""
    deadline = time.monotonic() + timeout
    original = urlsplit(url)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        try:
            status, response_headers, body = await asyncio.wait_for(
                _http_once(current, headers=headers),
                timeout=max(0.001, deadline - time.monotonic()),
            )
        except TimeoutError:
            return Outcome(
                Result.FAILURE,
                f'Get "{current}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
            )
        except (OSError, ValueError) as exc:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            reason = _dial_error(parts.hostname or "", port, exc) if isinstance(exc, OSError) else str(exc)
            return Outcome(Result.FAILURE, f'Get "{current}": {reason}')
        text = body.decode(errors="replace")
        if 300 <= status < 400 and response_headers.get("location"):
            target = urlsplit(response_headers["location"])
            following = target._replace(
                scheme=target.scheme or parts.scheme, netloc=target.netloc or parts.netloc
            ).geturl()
            if urlsplit(following).hostname != original.hostname:
                return Outcome(Result.WARNING, f"Probe terminated redirects, Response body: {text}")
            current = following
            continue
        if 200 <= status < 400:
            return Outcome(Result.SUCCESS, text)
        return Outcome(Result.FAILURE, f"HTTP probe failed with statuscode: {status}")
    return Outcome(Result.FAILURE, f'Get "{current}": stopped after {MAX_REDIRECTS} redirects')


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or ():
        if declared.get("name") == text:
            return int(declared["containerPort"])
    raise ValueError(f"couldn't find port {text!r} in the container's ports")


def http_url(action: Obj, *, pod_ip: str, container: Obj) -> str:
    host = action.get("host") or pod_ip
    port = resolve_port(action.get("port"), container)
    scheme = (action.get("scheme") or "HTTP").lower()
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{host}:{port}{path}"


def http_headers(action: Obj) -> dict[str, str]:
    return {header.get("name", ""): header.get("value", "") for header in action.get("httpHeaders") or ()}


async def run_action(
    action: Obj,
    *,
    runtime: Runtime,
    container_id: str,
    container: Obj,
    pod_ip: str,
    timeout: float,  # noqa: ASYNC109
) -> Outcome:
    """Run a probe or handler action (exec, httpGet, tcpSocket, grpc, sleep)."""
    if action.get("exec") is not None:
        return await run_exec(runtime, container_id, action["exec"].get("command") or [], timeout=timeout)
    try:
        if action.get("httpGet") is not None:
            spec = action["httpGet"]
            return await run_http_get(
                http_url(spec, pod_ip=pod_ip, container=container),
                headers=http_headers(spec),
                timeout=timeout,
            )
        if action.get("tcpSocket") is not None:
            spec = action["tcpSocket"]
            return await run_tcp(
                host=spec.get("host") or pod_ip,
                port=resolve_port(spec.get("port"), container),
                timeout=timeout,
            )
        if action.get("grpc") is not None:
            spec = action["grpc"]
            return await run_grpc(
                host=pod_ip,
                port=int(spec.get("port") or 0),
                service=spec.get("service") or "",
                timeout=timeout,
            )
    except ValueError as exc:
        return Outcome(Result.FAILURE, str(exc))
    if action.get("sleep") is not None:
        await asyncio.sleep(float(action["sleep"].get("seconds") or 0))
        return Outcome(Result.SUCCESS)
    return Outcome(
        Result.FAILURE, "the probe or handler names no action (exec, httpGet, tcpSocket, grpc or sleep)"
    )


# ---------------------------------------------------------------------------- probe workers


class Kind(enum.StrEnum):
    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: Obj) -> ProbeSettings:
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


Action = Callable[[Obj, float], Awaitable[Outcome]]  # (probe spec, timeout) -> outcome


class ContainerProbes:
    """The probes of one running container.

    ``ready`` and ``started`` are the container's status fields; ``restart_reason`` is set
    (and probing stops) once liveness or startup has failed ``failureThreshold`` times.
    ``on_change`` is called whenever one of them changes; ``on_event(type, reason, message)``
    reports Unhealthy and ProbeWarning events.
    """

    def __init__(
        self,
        container: Obj,
        *,
        started_at: float,
        action: Action,
        on_change: Callable[[], None],
        on_event: Callable[[str, str, str], None],
    ) -> None:
        self._container = container
        self._started_at = started_at
        self._action = action
        self._on_change = on_change
        self._on_event = on_event
        self.ready = container.get("readinessProbe") is None
        self.started = container.get("startupProbe") is None
        self.restart_reason = ""
        self._started_event = asyncio.Event()
        if self.started:
            self._started_event.set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for kind, key in (
            (Kind.STARTUP, "startupProbe"),
            (Kind.LIVENESS, "livenessProbe"),
            (Kind.READINESS, "readinessProbe"),
        ):
            probe = self._container.get(key)
            if probe is not None:
                self._tasks.append(
                    asyncio.create_task(
                        self._run(kind, probe), name=f"probe {kind} {self._container.get('name')}"
                    )
                )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _set(self, *, ready: bool | None = None, started: bool | None = None, restart: str = "") -> None:
        changed = False
        if ready is not None and ready != self.ready:
            self.ready, changed = ready, True
        if started is not None and started != self.started:
            self.started, changed = started, True
            if started:
                self._started_event.set()
        if restart and not self.restart_reason:
            self.restart_reason, changed = restart, True
        if changed:
            self._on_change()

    async def _run(self, kind: Kind, probe: Obj) -> None:
        settings = ProbeSettings.of(probe)
        if kind is not Kind.STARTUP:
            await self._started_event.wait()
        delay = self._started_at + settings.initial_delay - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        last: bool | None = None
        run = 0
        while True:
            outcome = await self._action(probe, settings.timeout)
            if outcome.result is Result.FAILURE:
                self._on_event("Warning", "Unhealthy", f"{kind} probe failed: {outcome.output}")
            elif outcome.result is Result.WARNING:
                self._on_event("Warning", "ProbeWarning", f"{kind} probe warning: {outcome.output}")
            passed = outcome.passed
            run = run + 1 if passed == last else 1
            last = passed
            threshold = settings.success_threshold if passed else settings.failure_threshold
            if run >= threshold:
                if kind is Kind.READINESS:
                    self._set(ready=passed)
                elif kind is Kind.STARTUP:
                    if passed:
                        self._set(started=True)
                        return
                    self._set(
                        restart=f"Container {self._container.get('name')} failed startup probe, will be restarted"
                    )
                    return
                elif not passed:
                    self._set(
                        restart=f"Container {self._container.get('name')} failed liveness probe, will be restarted"
                    )
                    return
            await asyncio.sleep(settings.period)
