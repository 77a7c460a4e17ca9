"""A container's environment, and ``$(VAR)`` expansion, exactly as the kubelet builds them.

Order and precedence follow ``makeEnvironmentVariables``: ``envFrom`` sources in order
(later ones win; ``prefix`` prepended), then ``env`` in order — a literal ``value`` is
expanded against the variables defined so far and the service variables, a ``valueFrom``
is resolved (``fieldRef``, ``resourceFieldRef``, ``configMapKeyRef``, ``secretKeyRef``) —
and finally the service variables not already set. Service variables are those of the
``kubernetes`` Service in ``default`` (always) and, when ``enableServiceLinks`` is true, of
every Service with a cluster IP in the pod's namespace (``<NAME>_SERVICE_HOST``,
``<NAME>_SERVICE_PORT``, Docker-link ``<NAME>_PORT_<port>_<PROTO>...``).

A missing ConfigMap/Secret or key that is not ``optional`` is a :class:`EnvError` — the
container then waits with reason ``CreateContainerConfigError`` and that message, as
upstream.

Expansion (``third_party/forked/golang/expansion``): ``$(NAME)`` becomes the variable's
value, or stays ``$(NAME)`` verbatim when undefined; ``$$`` is an escaped ``$``; any other
``$`` is kept. The one deviation: upstream works on bytes and would mangle a non-ASCII
character right after a ``$``; here it is kept intact.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

from control.resources.validation import InvalidQuantityError, Quantity

Obj = dict[str, Any]
ObjectLookup = Callable[[str, str], Obj | None]  # (namespace, name) -> object or None if absent
MASTER_SERVICES = ("kubernetes",)


class EnvError(Exception):
    """The environment cannot be built (upstream: CreateContainerConfigError)."""


# ---------------------------------------------------------------------------- expansion


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Expand ``$(VAR)`` references in ``text`` with upstream's rules (see the module doc)."""
    if "$" not in text:
        return text
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    length = len(text)
    while cursor < length:
        if text[cursor] == "$" and cursor + 1 < length:
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == "$":
                out.append("$")
                advance = 1
            elif following == "(":
                closer = text.find(")", cursor + 2)
                if closer < 0:
                    out.append("$(")
                    advance = 1
                else:
                    out.append(mapping(text[cursor + 2 : closer]))
                    advance = closer - cursor
            else:
                out.append("$" + following)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """Look a name up in each context in turn; an unknown name expands to itself, ``$(NAME)``."""

    def lookup(name: str) -> str:
        for context in contexts:
            value = context.get(name)
            if value is not None:
                return value
        return f"$({name})"

    return lookup


# ---------------------------------------------------------------------------- services


def _env_name(name: str) -> str:
    value = name.replace(".", "_").replace("-", "_").upper()
    return "_" + value if value[:1].isdigit() else value


def service_env(services: Iterable[Obj], *, namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The service variables a pod in ``namespace`` sees (getServiceEnvVarMap + FromServices)."""
    chosen: dict[str, Obj] = {}
    for service in services:
        spec = service.get("spec") or {}
        cluster_ip = spec.get("clusterIP") or ""
        if not cluster_ip or cluster_ip == "None" or not spec.get("ports"):
            continue
        metadata = service.get("metadata") or {}
        name = metadata.get("name", "")
        if metadata.get("namespace") == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif metadata.get("namespace") == namespace and enable_service_links:
            chosen[name] = service
    env: dict[str, str] = {}
    for name, service in chosen.items():
        spec = service["spec"]
        ip = spec["clusterIP"]
        ports = spec["ports"]
        prefix = _env_name(name)
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
        for index, port in enumerate(ports):
            protocol = (port.get("protocol") or "TCP").upper()
            url = f"{protocol.lower()}://{ip}:{port['port']}"
            if index == 0:
                env[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{port['port']}_{protocol}"
            env[port_prefix] = url
            env[f"{port_prefix}_PROTO"] = protocol.lower()
            env[f"{port_prefix}_PORT"] = str(port["port"])
            env[f"{port_prefix}_ADDR"] = ip
    return env


# ---------------------------------------------------------------------------- downward API


def go_quote(value: str) -> str:
    """Go's ``%q``: double quotes, backslash escapes, printable Unicode kept as is."""
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def format_map(values: Mapping[str, str]) -> str:
    """fieldpath.FormatMap: ``key="value"`` lines sorted by key (labels/annotations files)."""
    return "\n".join(f"{key}={go_quote(values[key])}" for key in sorted(values))


def _subscript(field_path: str, prefix: str) -> str | None:
    """``metadata.labels['app']`` -> ``app`` (None when the path is not that form)."""
    if field_path.startswith(prefix + "['") and field_path.endswith("']"):
        return field_path[len(prefix) + 2 : -2]
    return None


def field_value(
    pod: Obj, field_path: str, *, pod_ips: list[str], host_ips: list[str], allow_maps: bool = False
) -> str:
    """The downward API value of ``field_path`` for ``pod`` (env ``fieldRef`` and volume items)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": lambda: metadata.get("name", ""),
        "metadata.namespace": lambda: metadata.get("namespace", ""),
        "metadata.uid": lambda: metadata.get("uid", ""),
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "status.hostIP": lambda: host_ips[0] if host_ips else "",
        "status.hostIPs": lambda: ",".join(host_ips),
        "status.podIP": lambda: pod_ips[0] if pod_ips else "",
        "status.podIPs": lambda: ",".join(pod_ips),
    }
    getter = simple.get(field_path)
    if getter is not None:
        return getter()
    for prefix in ("metadata.labels", "metadata.annotations"):
        key = _subscript(field_path, prefix)
        if key is not None:
            return (metadata.get(prefix.split(".")[1]) or {}).get(key, "")
        if field_path == prefix and allow_maps:
            return format_map(metadata.get(prefix.split(".")[1]) or {})
    raise EnvError(f"unsupported fieldPath: {field_path}")


def _quantity(value: Any) -> Fraction:
    try:
        return Quantity.parse(value).value
    except InvalidQuantityError as exc:
        raise EnvError(f"invalid quantity {value!r}: {exc}") from exc


def resource_value(
    container: Obj, resource: str, *, divisor: Any, node_allocatable: Mapping[str, Any]
) -> str:
    """A ``resourceFieldRef`` value: the container's request or limit divided by ``divisor``,
    rounded up; an unset CPU or memory limit is the node's allocatable, as upstream."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise EnvError(f"Unsupported container resource : {resource}")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if kind == "limits" and (raw is None or _quantity(raw) == 0) and name in ("cpu", "memory"):
        raw = node_allocatable.get(name)
    value = _quantity(raw) if raw is not None else Fraction(0)
    divide_by = _quantity(divisor) if divisor not in (None, "", 0, "0") else Fraction(1)
    if divide_by == 0:
        divide_by = Fraction(1)
    if name == "cpu":
        millis = math.ceil(value * 1000)
        return str(math.ceil(Fraction(millis) / math.ceil(divide_by * 1000)))
    return str(math.ceil(Fraction(math.ceil(value)) / math.ceil(divide_by)))


# ---------------------------------------------------------------------------- the environment


def _container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            if container.get("name") == name:
                return container
    return None


def _secret_text(raw: str) -> str:
    return base64.b64decode(raw).decode(errors="replace")


def build_env(
    *,
    pod: Obj,
    container: Obj,
    pod_ips: list[str],
    host_ips: list[str],
    node_allocatable: Mapping[str, Any],
    services: Iterable[Obj],
    config_map: ObjectLookup,
    secret: ObjectLookup,
) -> dict[str, str]:
    """The container's environment, in the kubelet's order (see the module doc)."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    spec = pod.get("spec") or {}
    services_env = service_env(
        services, namespace=namespace, enable_service_links=spec.get("enableServiceLinks", True) is not False
    )
    config_maps: dict[str, Obj | None] = {}
    secrets: dict[str, Obj | None] = {}

    def lookup(
        cache: dict[str, Obj | None], fetch: ObjectLookup, kind: str, name: str, optional: bool
    ) -> Obj | None:
        if name not in cache:
            cache[name] = fetch(namespace, name)
        found = cache[name]
        if found is None and not optional:
            raise EnvError(f'{kind} "{name}" not found')
        return found

    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            ref = source["configMapRef"]
            found = lookup(
                config_maps, config_map, "configmap", ref.get("name", ""), bool(ref.get("optional"))
            )
            for key, value in ((found or {}).get("data") or {}).items():
                env[prefix + key] = value
        elif source.get("secretRef"):
            ref = source["secretRef"]
            found = lookup(secrets, secret, "secret", ref.get("name", ""), bool(ref.get("optional")))
            for key, value in ((found or {}).get("data") or {}).items():
                env[prefix + key] = _secret_text(value)

    expand_with = mapping_for(env, services_env)
    for variable in container.get("env") or ():
        name = variable.get("name", "")
        value = variable.get("value") or ""
        source = variable.get("valueFrom")
        if value:
            value = expand(value, expand_with)
        elif source:
            if source.get("fieldRef"):
                value = field_value(
                    pod, source["fieldRef"].get("fieldPath", ""), pod_ips=pod_ips, host_ips=host_ips
                )
            elif source.get("resourceFieldRef"):
                ref = source["resourceFieldRef"]
                target = container
                if ref.get("containerName"):
                    target = _container(pod, ref["containerName"]) or {}
                value = resource_value(
                    target,
                    ref.get("resource", ""),
                    divisor=ref.get("divisor"),
                    node_allocatable=node_allocatable,
                )
            elif source.get("configMapKeyRef"):
                ref = source["configMapKeyRef"]
                optional = bool(ref.get("optional"))
                found = lookup(config_maps, config_map, "configmap", ref.get("name", ""), optional)
                if found is None:
                    continue
                data = found.get("data") or {}
                if ref.get("key") not in data:
                    if optional:
                        continue
                    raise EnvError(
                        f"couldn't find key {ref.get('key')} in ConfigMap {namespace}/{ref.get('name')}"
                    )
                value = data[ref["key"]]
            elif source.get("secretKeyRef"):
                ref = source["secretKeyRef"]
                optional = bool(ref.get("optional"))
                found = lookup(secrets, secret, "secret", ref.get("name", ""), optional)
                if found is None:
                    continue
                data = found.get("data") or {}
                if ref.get("key") not in data:
                    if optional:
                        continue
                    raise EnvError(
                        f"couldn't find key {ref.get('key')} in Secret {namespace}/{ref.get('name')}"
                    )
                value = _secret_text(data[ref["key"]])
        env[name] = value

    for key, value in services_env.items():
        env.setdefault(key, value)
    return env


def expand_command(words: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """Expand ``$(VAR)`` in a command or args list against the final environment."""
    lookup = mapping_for(env)
    return [expand(word, lookup) for word in words]
