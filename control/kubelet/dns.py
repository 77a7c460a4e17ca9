"""A pod's name resolution files: ``/etc/resolv.conf`` and ``/etc/hosts``, as the kubelet
writes them (``pkg/kubelet/network/dns`` and ``makeHostsMount``).

``dnsPolicy``: ``ClusterFirst`` (the default) gives the cluster DNS server only, the search
list ``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the host's search domains,
and ``options ndots:5``; a ``hostNetwork`` pod with ``ClusterFirst`` falls back to
``Default``, which is the host's own resolv.conf; ``ClusterFirstWithHostNet`` is
``ClusterFirst`` even on the host network; ``None`` starts empty. ``dnsConfig`` is then
merged in (nameservers and searches appended without duplicates, options overriding by
name) and the limits applied (3 nameservers, 32 search domains of at most 253 characters,
2048 characters in all) — with a Warning event ``DNSConfigForming`` when something had to
be dropped, which the caller records.

``/etc/hosts`` is the Kubernetes-managed file (localhost entries, the pod's IP with its
hostname — fully qualified when the pod has a ``subdomain`` — and ``hostAliases``), or,
for a ``hostNetwork`` pod, the host's file with the aliases appended.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN_LENGTH = 253
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"


class HostFile:
    """One of the host's files (``resolv.conf``, ``hosts``), read again only when it changed:
    every pod sandbox needs both, and a ``stat`` costs less than reading the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._version: tuple[int, int, int, int] | None = None
        self._text = ""

    def text(self) -> str:
        """The file's content; "" when it cannot be read."""
        try:
            info = os.stat(self.path)
            version = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            if version != self._version:
                self._text = self.path.read_text()
                self._version = version
        except OSError:
            self._version, self._text = None, ""
        return self._text


@dataclass(kw_only=True)
class ResolverConfig:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines.extend(f"nameserver {server}" for server in self.nameservers)
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> ResolverConfig:
    """nameserver lines accumulate; the last search and options lines win (upstream's parser)."""
    config = ResolverConfig()
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            config.nameservers.append(fields[1])
        elif fields[0] == "search":
            config.searches = [domain.removesuffix(".") for domain in fields[1:]]
        elif fields[0] == "options":
            config.options = fields[1:]
    return config


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _merge_options(existing: list[str], extra: list[dict[str, Any]]) -> list[str]:
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for option in extra:
        merged[option.get("name", "")] = str(option["value"]) if option.get("value") is not None else ""
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def pod_resolver_config(
    pod: dict[str, Any],
    *,
    cluster_dns: list[str],
    cluster_domain: str,
    host_resolv_conf: str,
) -> tuple[ResolverConfig, list[str]]:
    """The pod's resolver configuration, and the warnings for limits that were exceeded."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    host = parse_resolv_conf(host_resolv_conf)
    if policy == "None":
        config = ResolverConfig()
    elif (policy == "ClusterFirst" and not host_network) or policy == "ClusterFirstWithHostNet":
        if cluster_dns:
            searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
            config = ResolverConfig(
                nameservers=list(cluster_dns),
                searches=_unique(searches + host.searches) if cluster_domain else host.searches,
                options=["ndots:5"],
            )
        else:
            config = host
    else:
        config = host
    dns_config = spec.get("dnsConfig")
    if dns_config:
        config.nameservers = _unique(config.nameservers + list(dns_config.get("nameservers") or []))
        config.searches = _unique(config.searches + list(dns_config.get("searches") or []))
        config.options = _merge_options(config.options, list(dns_config.get("options") or []))
    return _fit_limits(config)


def _fit_limits(config: ResolverConfig) -> tuple[ResolverConfig, list[str]]:
    warnings = []
    if len(config.nameservers) > MAX_NAMESERVERS:
        config.nameservers = config.nameservers[:MAX_NAMESERVERS]
        warnings.append(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line "
            "is: " + " ".join(config.nameservers)
        )
    searches = config.searches
    exceeded = False
    if len(searches) > MAX_SEARCH_PATHS:
        searches = searches[:MAX_SEARCH_PATHS]
        exceeded = True
    kept = [domain for domain in searches if len(domain) <= MAX_DOMAIN_LENGTH]
    exceeded = exceeded or len(kept) != len(searches)
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
        exceeded = True
    config.searches = kept
    if exceeded:
        warnings.append(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "
            + " ".join(kept)
        )
    return config, warnings


def pod_hostname(pod: dict[str, Any], *, cluster_domain: str) -> tuple[str, str]:
    """(hostname, domain) as GeneratePodHostNameAndDomain: ``spec.hostname`` or the pod name,
    at most 63 characters; the domain is ``<subdomain>.<ns>.svc.<cluster domain>`` if any."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    hostname = spec.get("hostname") or metadata.get("name", "")
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
    domain = ""
    if spec.get("subdomain"):
        domain = f"{spec['subdomain']}.{metadata.get('namespace', '')}.svc.{cluster_domain}"
    return hostname, domain


def _aliases(pod: dict[str, Any]) -> str:
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    lines.extend(f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) for alias in aliases)
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict[str, Any], *, pod_ips: list[str], cluster_domain: str, host_hosts: str) -> str:
    if (pod.get("spec") or {}).get("hostNetwork"):
        return MANAGED_HOSTS_HEADER_HOST_NETWORK + host_hosts + _aliases(pod)
    hostname, domain = pod_hostname(pod, cluster_domain=cluster_domain)
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    for ip in pod_ips:
        lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}" if domain else f"{ip}\t{hostname}")
    return MANAGED_HOSTS_HEADER + "\n".join(lines) + "\n" + _aliases(pod)


def resolver_env(config: ResolverConfig) -> dict[str, str]:
    """glibc's environment overrides for a container that cannot have its own resolv.conf
    (no mount namespace): the search list and options. The nameserver cannot be set this way."""
    env = {}
    if config.searches:
        env["LOCALDOMAIN"] = " ".join(config.searches)
    if config.options:
        env["RES_OPTIONS"] = " ".join(config.options)
    return env
