"""The Corefile: CoreDNS's configuration syntax, for the directives coredns_lite implements.

One server block, for the root zone, on one port::

    .:53 {
        errors
        bind {$POD_IP}
        health {$POD_IP}:8080 { lameduck 5s }
        ready {$POD_IP}:8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        prometheus {$POD_IP}:9153
        forward . /etc/resolv.conf { max_concurrent 1000 }
        cache 30
        loop
        reload
    }

Tokens are separated by white space; ``#`` starts a comment; ``"..."`` quotes; ``{$NAME}`` is
replaced by the environment variable (empty when unset), as in CoreDNS. A directive's arguments
end with the line; a ``{`` on that line opens its properties, one per line, up to ``}``.

Anything not understood — an unknown directive or property, a missing or malformed argument, a
second server block — is a :class:`SetupError` at start-up (or reload, which then keeps the
running configuration) whose message names the file, line and keyword, as CoreDNS's ``setup``
functions do. Nothing is silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from addons.coredns_lite.answers import KubernetesOptions, Name, PodMode
from addons.coredns_lite.cache import DEFAULT_CAPACITY, DEFAULT_MIN_TTL, CacheOptions
from addons.coredns_lite.forward import (
    DEFAULT_MAX_CONCURRENT,
    Policy,
    Upstream,
    UpstreamConfigError,
    parse_upstream,
    upstreams_from_resolv_conf,
)

DEFAULT_PORT = 53
DEFAULT_HEALTH_PORT = 8080
DEFAULT_READY_PORT = 8181
DEFAULT_METRICS_PORT = 9153
DEFAULT_RELOAD_INTERVAL = 30.0
MAX_TTL = 3600


class SetupError(Exception):
    """The Corefile cannot be used; the message names where and which keyword."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int


@dataclass(frozen=True)
class ForwardOptions:
    upstreams: tuple[Upstream, ...]
    policy: Policy = Policy.RANDOM
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    force_tcp: bool = False


@dataclass(frozen=True)
class Config:
    port: int = DEFAULT_PORT
    bind: tuple[str, ...] = ("0.0.0.0",)
    kubernetes: KubernetesOptions | None = None
    forward: ForwardOptions | None = None
    cache: CacheOptions | None = None
    health: Address | None = None
    lameduck: float = 0.0
    ready: Address | None = None
    prometheus: Address | None = None
    reload: float | None = None
    loop: bool = False
    plugins: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Token:
    text: str
    line: int


@dataclass
class _Directive:
    name: str
    args: list[str]
    line: int
    block: list[_Directive] | None = None


_ENV = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def _substitute(text: str, environ: Mapping[str, str]) -> str:
    return _ENV.sub(lambda match: environ.get(match.group(1), ""), text)


def _tokenize(text: str, where: str) -> list[_Token]:
    tokens: list[_Token] = []
    for number, line in enumerate(text.splitlines(), start=1):
        i = 0
        while i < len(line):
            char = line[i]
            if char.isspace():
                i += 1
            elif char == "#":
                break
            elif char == '"':
                end = line.find('"', i + 1)
                if end < 0:
                    raise SetupError(f"{where}:{number}: unterminated quote")
                tokens.append(_Token(line[i + 1 : end], number))
                i = end + 1
            else:
                start = i
                while i < len(line) and not line[i].isspace() and line[i] != "#":
                    i += 1
                tokens.append(_Token(line[start:i], number))
    return tokens


def _parse_block(tokens: list[_Token], position: int, where: str) -> tuple[list[_Directive], int]:
    """Directives from ``position`` up to the matching ``}``; the position after it."""
    directives: list[_Directive] = []
    while position < len(tokens):
        token = tokens[position]
        if token.text == "}":
            return directives, position + 1
        if token.text == "{":
            raise SetupError(f"{where}:{token.line}: unexpected '{{'")
        directive = _Directive(token.text, [], token.line)
        position += 1
        while (
            position < len(tokens)
            and tokens[position].line == token.line
            and tokens[position].text not in ("{", "}")
        ):
            directive.args.append(tokens[position].text)
            position += 1
        if position < len(tokens) and tokens[position].text == "{" and tokens[position].line == token.line:
            directive.block, position = _parse_block(tokens, position + 1, where)
        directives.append(directive)
    raise SetupError(
        f"{where}: missing '}}' to close the block opened before line {tokens[-1].line if tokens else 0}"
    )


def _fail(where: str, directive: _Directive, message: str) -> SetupError:
    return SetupError(f"{where}:{directive.line}: {directive.name}: {message}")


def parse_duration(text: str) -> float:
    """Go's duration syntax, as far as configs use it: ``5s``, ``100ms``, ``1m30s``, ``2h``."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    position = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * units[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5s, 100ms, 1m)")
    return total


def _address(text: str, *, default_port: int, what: str) -> Address:
    """``[host]:port``, ``host:port``, ``:port`` or ``host`` → Address (host "" = every address)."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _int(rest.removeprefix(":"), what=what, low=0, high=65535)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _int(port_text, what=what, low=0, high=65535)
    if host in ("", "localhost"):
        host = "" if host == "" else "127.0.0.1"
    else:
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise ValueError(f"{what}: {host!r} is not an IP address") from exc
    return Address(host, port)


def _int(text: str, *, what: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?\d+", text or ""):
        raise ValueError(f"{what}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what}: {value} is not in {low}..{high}")
    return value


def _zone(text: str) -> Name:
    name = text.lower().removeprefix("dns://").rstrip(".")
    if ":" in name:
        raise ValueError(f"zone {text!r} must not carry a port")
    return tuple(label for label in name.split(".") if label)


def _no_block(where: str, directive: _Directive) -> None:
    if directive.block is not None:
        raise _fail(where, directive, "takes no block")


def _kubernetes(where: str, directive: _Directive) -> KubernetesOptions:
    zones = tuple(_zone(arg) for arg in directive.args) or (("cluster", "local"),)
    if () in zones:
        raise _fail(where, directive, "the root zone cannot be a cluster zone")
    values: dict[str, object] = {"zones": zones}
    for prop in directive.block or ():
        args = prop.args
        try:
            if prop.name == "pods":
                if len(args) != 1 or args[0] not in set(PodMode):
                    raise ValueError("expects one of disabled, insecure, verified")
                values["pods"] = PodMode(args[0])
            elif prop.name == "endpoint_pod_names":
                _expect(args, 0)
                values["endpoint_pod_names"] = True
            elif prop.name == "ttl":
                _expect(args, 1)
                values["ttl"] = _int(args[0], what="ttl", low=0, high=MAX_TTL)
            elif prop.name == "namespaces":
                if not args:
                    raise ValueError("expects at least one namespace")
                values["namespaces"] = frozenset(args)
            elif prop.name == "labels":
                if not args:
                    raise ValueError("expects a label selector")
                values["labels"] = " ".join(args)
            elif prop.name == "fallthrough":
                values["fallthrough"] = tuple(_zone(arg) for arg in args)
            elif prop.name == "ignore":
                if args != ["empty_service"]:
                    raise ValueError("only 'ignore empty_service' exists")
                values["ignore_empty_service"] = True
            elif prop.name == "noendpoints":
                _expect(args, 0)
                values["noendpoints"] = True
            elif prop.name == "kubeconfig":
                if len(args) not in (1, 2):
                    raise ValueError("expects KUBECONFIG [CONTEXT]")
                values["kubeconfig"] = args[0]
                values["context"] = args[1] if len(args) == 2 else None
            elif prop.name == "startup_timeout":
                _expect(args, 1)
                values["startup_timeout"] = parse_duration(args[0])
            else:
                raise ValueError("unknown property")
        except ValueError as exc:
            raise SetupError(f"{where}:{prop.line}: kubernetes: {prop.name}: {exc}") from exc
    return KubernetesOptions(**values)  # type: ignore[arg-type]


def _expect(args: list[str], count: int) -> None:
    if len(args) != count:
        raise ValueError(f"expects {count} argument{'s' if count != 1 else ''}, got {len(args)}")


def _forward(where: str, directive: _Directive) -> ForwardOptions:
    if len(directive.args) < 2:
        raise _fail(where, directive, "expects FROM TO... (e.g. forward . /etc/resolv.conf)")
    if _zone(directive.args[0]) != ():
        raise _fail(where, directive, f"only '.' can be forwarded, not {directive.args[0]!r}")
    upstreams: list[Upstream] = []
    try:
        for target in directive.args[1:]:
            if "/" in target:
                upstreams.extend(upstreams_from_resolv_conf(target))
            else:
                upstreams.append(parse_upstream(target))
    except UpstreamConfigError as exc:
        raise _fail(where, directive, str(exc)) from exc
    values: dict[str, object] = {"upstreams": tuple(upstreams)}
    for prop in directive.block or ():
        try:
            if prop.name == "max_concurrent":
                _expect(prop.args, 1)
                values["max_concurrent"] = _int(prop.args[0], what="max_concurrent", low=1, high=1_000_000)
            elif prop.name == "policy":
                if len(prop.args) != 1 or prop.args[0] not in set(Policy):
                    raise ValueError("expects random, round_robin or sequential")
                values["policy"] = Policy(prop.args[0])
            elif prop.name == "force_tcp":
                _expect(prop.args, 0)
                values["force_tcp"] = True
            else:
                raise ValueError("unknown property")
        except ValueError as exc:
            raise SetupError(f"{where}:{prop.line}: forward: {prop.name}: {exc}") from exc
    return ForwardOptions(**values)  # type: ignore[arg-type]


def _cache(where: str, directive: _Directive) -> CacheOptions:
    values: dict[str, int] = {}
    args = directive.args
    try:
        if args:
            ttl = _int(args[0], what="TTL", low=0, high=86400)
            values["success_ttl"] = ttl
            values["denial_ttl"] = ttl
            for zone in args[1:]:
                if _zone(zone) != ():
                    raise ValueError(f"only the root zone can be cached, not {zone!r}")
    except ValueError as exc:
        raise _fail(where, directive, str(exc)) from exc
    for prop in directive.block or ():
        try:
            if prop.name in ("success", "denial"):
                if not 1 <= len(prop.args) <= 3:
                    raise ValueError("expects CAPACITY [TTL [MINTTL]]")
                values[f"{prop.name}_capacity"] = _int(prop.args[0], what="capacity", low=0, high=10_000_000)
                if len(prop.args) >= 2:
                    values[f"{prop.name}_ttl"] = _int(prop.args[1], what="TTL", low=0, high=86400)
                if len(prop.args) == 3:
                    values[f"{prop.name}_min_ttl"] = _int(prop.args[2], what="MINTTL", low=0, high=86400)
            else:
                raise ValueError("unknown property")
        except ValueError as exc:
            raise SetupError(f"{where}:{prop.line}: cache: {prop.name}: {exc}") from exc
    values.setdefault("success_capacity", DEFAULT_CAPACITY)
    values.setdefault("success_min_ttl", DEFAULT_MIN_TTL)
    return CacheOptions(**values)


def parse_corefile(text: str, *, where: str = "Corefile", environ: Mapping[str, str] | None = None) -> Config:
    """Parse a Corefile into a :class:`Config`, or raise :class:`SetupError`."""
    env = os.environ if environ is None else environ
    tokens = _tokenize(_substitute(text, env), where)
    if not tokens:
        raise SetupError(f"{where}: empty: expected a server block such as '.:53 {{ ... }}'")
    blocks: list[tuple[_Token, list[_Directive]]] = []
    position = 0
    while position < len(tokens):
        key = tokens[position]
        if position + 1 >= len(tokens) or tokens[position + 1].text != "{":
            raise SetupError(f"{where}:{key.line}: expected '{{' after the server block key {key.text!r}")
        body, position = _parse_block(tokens, position + 2, where)
        blocks.append((key, body))
    if len(blocks) != 1:
        raise SetupError(f"{where}:{blocks[1][0].line}: only one server block is supported")
    key, body = blocks[0]
    zone_text, _, port_text = key.text.removeprefix("dns://").partition(":")
    if _zone(zone_text or ".") != ():
        raise SetupError(
            f"{where}:{key.line}: the server block must be for the root zone '.', not {zone_text!r}"
        )
    try:
        port = _int(port_text, what="port", low=0, high=65535) if port_text else DEFAULT_PORT
    except ValueError as exc:
        raise SetupError(f"{where}:{key.line}: server block {key.text!r}: {exc}") from exc

    values: dict[str, object] = {"port": port}
    plugins: list[str] = []
    for directive in body:
        name = directive.name
        if name in plugins:
            raise _fail(where, directive, "can be used only once per server block")
        plugins.append(name)
        try:
            if name == "errors":
                _no_block(where, directive)
            elif name == "bind":
                _no_block(where, directive)
                if not directive.args:
                    raise ValueError("expects at least one address (is the environment variable set?)")
                for host in directive.args:
                    ipaddress.ip_address(host)
                values["bind"] = tuple(directive.args)
            elif name == "health":
                values["health"] = _address(
                    directive.args[0] if directive.args else "",
                    default_port=DEFAULT_HEALTH_PORT,
                    what="health",
                )
                for prop in directive.block or ():
                    if prop.name != "lameduck" or len(prop.args) != 1:
                        raise SetupError(
                            f"{where}:{prop.line}: health: {prop.name}: expected 'lameduck DURATION'"
                        )
                    values["lameduck"] = parse_duration(prop.args[0])
            elif name == "ready":
                _no_block(where, directive)
                values["ready"] = _address(
                    directive.args[0] if directive.args else "", default_port=DEFAULT_READY_PORT, what="ready"
                )
            elif name == "prometheus":
                _no_block(where, directive)
                values["prometheus"] = _address(
                    directive.args[0] if directive.args else "localhost",
                    default_port=DEFAULT_METRICS_PORT,
                    what="prometheus",
                )
            elif name == "kubernetes":
                values["kubernetes"] = _kubernetes(where, directive)
            elif name == "forward":
                values["forward"] = _forward(where, directive)
            elif name == "cache":
                values["cache"] = _cache(where, directive)
            elif name == "loop":
                _no_block(where, directive)
                values["loop"] = True
            elif name == "reload":
                _no_block(where, directive)
                values["reload"] = (
                    parse_duration(directive.args[0]) if directive.args else DEFAULT_RELOAD_INTERVAL
                )
            else:
                raise ValueError("unknown or unsupported directive")
        except ValueError as exc:
            raise _fail(where, directive, str(exc)) from exc
    values["plugins"] = tuple(plugins)
    return Config(**values)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> tuple[Config, bytes]:
    """Read and parse the Corefile at ``path``: the config and the bytes it came from."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_corefile(
        content.decode("utf-8", errors="replace"), where=str(path), environ=environ
    ), content
