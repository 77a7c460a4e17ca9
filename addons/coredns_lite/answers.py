"""The record rules: what the cluster zones answer, as the DNS specification and CoreDNS say.

This is CoreDNS's ``plugin/kubernetes`` (``kubernetes.go``, ``parse.go``, ``reverse.go``,
``ns.go``, ``handler.go``) and the ``plugin/backend_lookup.go`` helpers it calls, ported rule for
rule, over the :class:`~addons.coredns_lite.backend.Backend` interface. Kubernetes DNS schema
1.1.0 (kubernetes/dns ``docs/specification.md``):

- ``<svc>.<ns>.svc.<zone>``: A/AAAA of the ClusterIPs; for headless Services one A/AAAA per ready
  endpoint; ExternalName Services a CNAME (chased through the upstream, or inside the zone).
- ``<host>.<svc>.<ns>.svc.<zone>``: the endpoint whose hostname is ``host`` — its ``hostname``,
  else the pod name (``endpoint_pod_names``), else its IP with dashes (IPv6: ``:`` → ``-``, a
  trailing ``-`` gets a ``0``). This works for ClusterIP Services' endpoints too, as in CoreDNS.
- SRV on ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` (or on the Service name: every port) —
  priority 0, weight ``floor(100 / N)`` for N entries, the target's A/AAAA in the additional
  section; unnamed ports only appear in the Service-name form.
- PTR for ClusterIPs (first match wins) and then for ready endpoint IPs (their hostname records).
- ``dns-version.<zone>`` TXT ``1.1.0`` (TTL 28800); the zone's SOA and NS (``ns.dns.<zone>``,
  or the kube-dns Service when this server's address is one of its endpoints).
- Pods: ``a-b-c-d.<ns>.pod.<zone>`` when ``pods insecure`` (any well-formed IP) or ``pods verified``
  (a pod with that IP exists in that namespace); ``disabled`` (the default) answers NXDOMAIN.
- Negative answers: a name that does not exist is NXDOMAIN, a name that exists without the asked
  type is NODATA (NOERROR, no answers), both with the zone's SOA in the authority section (added
  per query by the handler, since its serial moves). Before the first sync a name error is
  SERVFAIL. With ``fallthrough``, name errors (never NODATA) in the chosen zones go to the
  forwarder. AXFR/IXFR are REFUSED. CoreDNS has no wildcard queries any more; neither do we:
  ``*`` is an ordinary label and matches nothing.

CoreDNS quirks kept on purpose, because clients of real clusters see them: SOA for a name below
the apex is NODATA even when the name does not exist; TXT on ``<ns>.svc.<zone>`` is NXDOMAIN while
A on it is NODATA; A on ``dns-version.<zone>`` is NXDOMAIN; names below an ExternalName Service
are NXDOMAIN; pod names ignore labels left of the pod label.

:meth:`Rules.resolve` returns an :class:`Outcome`: records as dnslib RRs (the handler turns them
into a reusable wire template), the rcode, and the *tags* of the objects the answer depends on,
so a change to one Service forgets only the names built from it.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from dnslib import AAAA as AAAA_RD
from dnslib import CNAME as CNAME_RD
from dnslib import NS as NS_RD
from dnslib import PTR as PTR_RD
from dnslib import RR, DNSLabel
from dnslib import SOA as SOA_RD
from dnslib import SRV as SRV_RD
from dnslib import TXT as TXT_RD
from dnslib import A as A_RD

from addons.coredns_lite import wire
from addons.coredns_lite.backend import EXTERNAL_NAME, NO_PORT, Address, Backend, Tag

DNS_SCHEMA_VERSION = "1.1.0"
DNS_VERSION_TTL = 28800
MAX_CNAME_CHAIN = 10
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400

Name = tuple[str, ...]  # lowercase labels, leftmost first, no root label


class PodMode(enum.StrEnum):
    DISABLED = "disabled"
    INSECURE = "insecure"
    VERIFIED = "verified"


@dataclass(frozen=True)
class KubernetesOptions:
    """The ``kubernetes`` stanza of the Corefile (see ``setup``)."""

    zones: tuple[Name, ...] = (("cluster", "local"),)
    ttl: int = 5
    pods: PodMode = PodMode.DISABLED
    endpoint_pod_names: bool = False
    namespaces: frozenset[str] = frozenset()
    fallthrough: tuple[Name, ...] | None = None  # None: off; (): every zone
    ignore_empty_service: bool = False
    noendpoints: bool = False
    labels: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    startup_timeout: float = 5.0

    @property
    def primary_zone(self) -> Name:
        """The first zone that is not a reverse zone (what PTR targets are built in)."""
        for zone in self.zones:
            if not _is_reverse(zone):
                return zone
        return self.zones[0]


class NameError_(Exception):
    """The name does not exist (CoreDNS's errNoItems / errNsNotExposed / errInvalidRequest)."""


@dataclass(slots=True)
class Entry:
    """One backend answer (CoreDNS's ``msg.Service``): a host (IP or name) and where it lives."""

    host: str
    target: Name
    ttl: int
    port: int = NO_PORT
    text: str | None = None


@dataclass(slots=True)
class Chase:
    """An ExternalName target outside our zones: resolve ``target`` upstream, then answer
    ``prefix`` (the CNAME chain leading to it) followed by the upstream's answers; if the upstream
    lookup fails the whole chain is dropped (CoreDNS's ``A()``).
    """

    target: Name
    qtype: int
    prefix: list[RR]


@dataclass(slots=True)
class Outcome:
    rcode: int = wire.NOERROR
    answer: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    zone: Name = ()
    negative: bool = False  # NXDOMAIN, NODATA or SERVFAIL: the zone's SOA goes in the authority section
    fallthrough: bool = False  # hand the query to the forwarder instead
    refused: bool = False
    chase: Chase | None = None
    cacheable: bool = True
    tags: list[Tag] = field(default_factory=list)


@dataclass(slots=True)
class _Request:
    """CoreDNS's recordRequest: the parts of a name below the zone."""

    port: str = ""
    protocol: str = ""
    endpoint: str = ""
    service: str = ""
    namespace: str = ""
    pod_or_svc: str = ""


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def _parse_request(below: Sequence[str]) -> _Request:
    """parse.go: ``[[_port._proto.]|[endpoint.]]service.namespace.(svc|pod)``; a name error when the
    name cannot be a cluster name.
    """
    r = _Request()
    if not below or tuple(below) in (("svc",), ("pod",)):
        return r
    last = len(below) - 1
    r.pod_or_svc = below[last]
    if r.pod_or_svc not in ("pod", "svc"):
        raise NameError_
    last -= 1
    if last < 0:
        return r
    r.namespace = below[last]
    last -= 1
    if last < 0:
        return r
    r.service = below[last]
    last -= 1
    if last < 0:
        return r
    if last == 0:
        r.endpoint = below[0]
    elif last == 1:
        r.protocol = _strip_underscore(below[1])
        r.port = _strip_underscore(below[0])
    else:
        raise NameError_
    return r


@functools.lru_cache(maxsize=65536)
def _host_type(host: str) -> int:
    """A, AAAA or CNAME: what kind of host an entry holds (msg.Service.HostType)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return wire.CNAME
    if address.version == 4 or (address.ipv4_mapped is not None):
        return wire.A
    return wire.AAAA


def _canonical_ip(host: str) -> str:
    address = ipaddress.ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _split_name(text: str) -> Name:
    return tuple(label for label in text.lower().rstrip(".").split(".") if label)


def _label(name: Name) -> DNSLabel:
    return DNSLabel([label.encode("latin-1") for label in name])


def _is_subdomain(name: Name, zone: Name) -> bool:
    return len(name) >= len(zone) and name[len(name) - len(zone) :] == zone


def _is_reverse(name: Name) -> bool:
    return len(name) >= 2 and name[-1] == "arpa" and name[-2] in ("in-addr", "ip6")


def endpoint_hostname(address: Address, *, pod_names: bool) -> str:
    """The label an endpoint answers to (CoreDNS's endpointHostname)."""
    if address.hostname:
        return address.hostname
    if pod_names and address.target_name:
        return address.target_name
    if "." in address.ip:
        return address.ip.replace(".", "-")
    if ":" in address.ip:
        name = address.ip.replace(":", "-")
        return name + "0" if name.endswith("-") else name
    return ""


def address_from_reverse(name: Name) -> str:
    """dnsutil.ExtractAddressFromReverse: the IP a full reverse name stands for, else ""."""
    if _is_subdomain(name, ("in-addr", "arpa")):
        parts = list(reversed(name[:-2]))
        try:
            address = ipaddress.ip_address(".".join(parts))
        except ValueError:
            return ""
        return str(address) if address.version == 4 else ""
    if _is_subdomain(name, ("ip6", "arpa")):
        nibbles = list(reversed(name[:-2]))
        groups = ["".join(nibbles[i * 4 : i * 4 + 4]) for i in range(len(nibbles) // 4)]
        try:
            address = ipaddress.ip_address(":".join(groups))
        except ValueError:
            return ""
        return _canonical_ip(str(address))
    return ""


class Rules:
    """The kubernetes plugin's answers for ``options.zones`` from ``backend``."""

    def __init__(
        self, *, options: KubernetesOptions, backend: Backend, local_ips: Sequence[str] = ()
    ) -> None:
        self.options = options
        self.backend = backend
        self.local_ips = tuple(local_ips)
        self._zones = sorted(options.zones, key=len, reverse=True)
        # The zones as lowercase wire-name suffixes: a name not ending in one is in no zone.
        self.zone_suffixes = tuple(
            b"".join(bytes((len(label),)) + label.encode("latin-1") for label in zone) + b"\x00"
            for zone in options.zones
        )

    # --- entry point ------------------------------------------------------------------------------

    def match_zone(self, name: Name) -> Name | None:
        for zone in self._zones:
            if _is_subdomain(name, zone):
                return zone
        return None

    def resolve(self, name: Name, qtype: int) -> Outcome | None:
        """The answer for ``name``/``qtype``, or None when no cluster zone holds the name."""
        zone = self.match_zone(name)
        if zone is None:
            return None
        outcome = Outcome(zone=zone, tags=self._tags(name, zone))
        if name[:2] == ("ns", "dns"):
            outcome.cacheable = False  # the NS addresses follow the endpoints of this very server
        records: list[RR] = []
        extra: list[RR] = []
        try:
            if qtype in (wire.A, wire.AAAA):
                records, outcome.chase = self._address(name, zone, qtype, [], outcome)
            elif qtype == wire.TXT:
                records = self._txt(name, zone)
            elif qtype == wire.CNAME:
                records = self._cname(name, zone)
            elif qtype == wire.PTR:
                records = self._ptr(name, zone, outcome)
            elif qtype == wire.MX:
                self._services(name, zone, qtype)
            elif qtype == wire.SRV:
                records, extra = self._srv(name, zone)
            elif qtype == wire.SOA:
                outcome.cacheable = False  # the serial moves with every change
                if name == zone:
                    records = [self.soa(zone)]
            elif qtype in (wire.AXFR, wire.IXFR):
                outcome.refused = True
                outcome.rcode = wire.REFUSED
                return outcome
            elif qtype == wire.NS and name == zone:
                outcome.cacheable = False
                records, extra = self._ns(name, zone)
            else:
                # Another type: an A lookup tells NODATA from NXDOMAIN (CoreDNS's "fake" lookup).
                self._address(name, zone, wire.A, [], outcome)
        except NameError_:
            if self._falls_through(name):
                outcome.fallthrough = True
                return outcome
            outcome.negative = True
            outcome.rcode = wire.NXDOMAIN if self.backend.has_synced() else wire.SERVFAIL
            return outcome
        if not records and outcome.chase is None:
            outcome.negative = True
            return outcome
        outcome.answer = records
        outcome.additional = extra
        return outcome

    def quick_name_error(self, name: Name, zone: Name) -> bool:
        """Whether an A/AAAA query for ``name`` is certainly NXDOMAIN: the common misses (unknown
        Services and namespaces, names that cannot be cluster names), decided with two lookups
        before the full rules run. False means "ask :meth:`resolve`", never "it exists".
        """
        if self.options.fallthrough is not None or _is_reverse(zone) or not self.backend.has_synced():
            return False
        below = name[: len(name) - len(zone)]
        count = len(below)
        if not count:
            return False
        last = below[-1]
        if last == "svc":
            if count == 1:
                return False
            if not self._namespace_exposed(below[-2]):
                return True
            if count == 2:
                return False
            return count > 5 or self.backend.service(below[-2], below[-3]) is None
        if last == "pod":
            return False
        return below != ("ns", "dns")

    def soa(self, zone: Name) -> RR:
        """The zone's SOA (plugin.SOA): TTL min(ttl, 300), serial = time of the last change."""
        ttl = self.options.ttl
        return RR(
            _label(zone),
            wire.SOA,
            ttl=min(ttl, 300),
            rdata=SOA_RD(
                _label(("ns", "dns", *zone)),
                _label(("hostmaster", *zone)),
                (self.backend.modified() & 0xFFFFFFFF, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl),
            ),
        )

    # --- helpers ----------------------------------------------------------------------------------

    def _falls_through(self, name: Name) -> bool:
        zones = self.options.fallthrough
        if zones is None:
            return False
        return not zones or any(_is_subdomain(name, zone) for zone in zones)

    def _tags(self, name: Name, zone: Name) -> list[Tag]:
        """The objects an answer for ``name`` can depend on (see the backend's change tags)."""
        below = name[: len(name) - len(zone)]
        if _is_reverse(name):
            ip = address_from_reverse(name)
            return [("ip", ip)] if ip else []
        if len(below) >= 2 and below[-1] in ("svc", "pod"):
            tags: list[Tag] = [("ns", below[-2])]
            if len(below) >= 3:
                if below[-1] == "svc":
                    tags.append(("svc", below[-2], below[-3]))
                else:
                    pod = below[-3]
                    ip = (
                        pod.replace("-", ".")
                        if pod.count("-") == 3 and "--" not in pod
                        else pod.replace("-", ":")
                    )
                    tags.append(("ip", ip))
            return tags
        return []

    def _namespace_exposed(self, namespace: str) -> bool:
        allowed = self.options.namespaces
        if allowed and namespace not in allowed:
            return False
        return self.backend.namespace_exists(namespace)

    # --- Records (kubernetes.go) ------------------------------------------------------------------

    def _records(self, name: Name, zone: Name) -> list[Entry]:
        r = _parse_request(name[: len(name) - len(zone)])
        if not r.pod_or_svc:
            return []
        if _is_reverse(name):
            raise NameError_
        if not self._namespace_exposed(r.namespace):
            raise NameError_
        if r.pod_or_svc == "pod":
            return self._find_pods(r, zone)
        return self._find_services(r, zone)

    def _find_pods(self, r: _Request, zone: Name) -> list[Entry]:
        mode = self.options.pods
        if mode is PodMode.DISABLED:
            raise NameError_
        pod_name = r.service
        if not pod_name:
            return []
        if pod_name.count("-") == 3 and "--" not in pod_name:
            ip = pod_name.replace("-", ".")
        else:
            ip = pod_name.replace("-", ":")
        target = (pod_name, r.namespace, "pod", *zone)
        if mode is PodMode.INSECURE:
            if _host_type(ip) == wire.CNAME:
                raise NameError_
            return [Entry(host=_canonical_ip(ip), target=target, ttl=self.options.ttl)]
        entries = [
            Entry(host=ip, target=target, ttl=self.options.ttl)
            for pod in self.backend.pods_by_ip(ip)
            if pod.ip == ip and pod.namespace == r.namespace
        ]
        if not entries:
            raise NameError_
        return entries

    def _find_services(self, r: _Request, zone: Name) -> list[Entry]:
        if not r.service:
            return []
        ttl = self.options.ttl
        found = False
        entries: list[Entry] = []
        svc = self.backend.service(r.namespace, r.service)
        if svc is None:
            raise NameError_
        base = (svc.name, svc.namespace, "svc", *zone)
        if (
            self.options.ignore_empty_service
            and svc.type != EXTERNAL_NAME
            and not svc.headless
            and not any(eps.addresses for eps in self.backend.endpoints(svc.namespace, svc.name))
        ):
            raise NameError_
        if svc.type == EXTERNAL_NAME:
            if r.endpoint or r.port or r.protocol:
                raise NameError_
            if _host_type(svc.external_name) != wire.CNAME:
                raise NameError_
            return [Entry(host=svc.external_name, target=base, ttl=ttl)]
        if svc.headless or r.endpoint:
            if self.options.noendpoints:
                raise NameError_  # CoreDNS without its endpoints watch: no endpoint records at all
            pod_names = self.options.endpoint_pod_names
            for eps in self.backend.endpoints(svc.namespace, svc.name):
                for address in eps.addresses:
                    hostname = endpoint_hostname(address, pod_names=pod_names)
                    if r.endpoint and r.endpoint != hostname.lower():
                        continue
                    for port in eps.ports:
                        if not _match_port(r, port.name, port.protocol):
                            continue
                        found = True
                        entries.append(
                            Entry(host=address.ip, port=port.port, target=(hostname, *base), ttl=ttl)
                        )
            if not found:
                raise NameError_
            return entries
        for port in svc.ports:
            if not _match_port(r, port.name, port.protocol):
                continue
            found = True
            entries.extend(
                Entry(host=ip, port=port.port, target=base, ttl=ttl) for ip in svc.cluster_ips if ip
            )
        if not found:
            raise NameError_
        return entries

    # --- Services (per query type) ----------------------------------------------------------------

    def _services(self, name: Name, zone: Name, qtype: int) -> list[Entry]:
        if qtype == wire.TXT:
            if name[: len(name) - len(zone)] == ("dns-version",):
                return [Entry(host="", target=name, ttl=DNS_VERSION_TTL, text=DNS_SCHEMA_VERSION)]
            try:
                found = self._records(name, zone)
            except NameError_:
                found = []
            if found:
                return []
            raise NameError_
        if name == ("ns", "dns", *zone):
            return [
                Entry(host=ip, target=name, ttl=self.options.ttl)
                for _, ip in self._ns_addresses(zone)
                if _host_type(ip) == qtype
            ]
        entries = self._records(name, zone)
        if qtype != wire.SRV:
            return entries
        return [entry for entry in entries if _host_type(entry.host) != wire.CNAME]

    def _ns_addresses(self, zone: Name) -> list[tuple[Name, str]]:
        """ns.go's nsAddrs: the Service(s) whose endpoints are this server, else ns.dns.<zone>."""
        names: list[tuple[Name, str]] = []
        found = False
        for local_ip in self.local_ips:
            for eps in self.backend.endpoints_by_ip(local_ip):
                found = True
                svc = self.backend.service(eps.namespace, eps.service)
                if svc is None:
                    continue
                svc_name = (svc.name, svc.namespace, "svc", *zone)
                if svc.headless:
                    names.extend(
                        ((endpoint_hostname(a, pod_names=self.options.endpoint_pod_names), *svc_name), a.ip)
                        for a in eps.addresses
                    )
                else:
                    names.extend((svc_name, ip) for ip in svc.cluster_ips if ip)
        if not found:
            names = [(("ns", "dns", *zone), ip) for ip in self.local_ips]
        return names

    # --- per type (backend_lookup.go) -------------------------------------------------------------

    def _address(
        self, name: Name, zone: Name, qtype: int, previous: list[RR], outcome: Outcome
    ) -> tuple[list[RR], Chase | None]:
        entries = self._services(name, zone, qtype)
        records: list[RR] = []
        chase: Chase | None = None
        seen: set[str] = set()
        for entry in entries:
            kind = _host_type(entry.host)
            if kind == wire.CNAME:
                target = _split_name(entry.host)
                if target == name or len(previous) > MAX_CNAME_CHAIN:
                    continue
                cname = RR(_label(name), wire.CNAME, ttl=entry.ttl, rdata=CNAME_RD(_label(target)))
                if any(str(rr.rdata.label).lower() == str(cname.rdata.label).lower() for rr in previous):
                    continue
                outcome.cacheable = False  # depends on the target too
                if _is_subdomain(target, zone):
                    try:
                        more, inner = self._address(target, zone, qtype, [*previous, cname], outcome)
                    except NameError_:
                        continue
                    if inner is not None:
                        inner.prefix = [cname, *inner.prefix]
                        chase = inner
                    elif more:
                        records += [cname, *more]
                    continue
                chase = Chase(target=target, qtype=qtype, prefix=[cname])
                continue
            if kind != qtype or entry.host in seen:
                continue
            seen.add(entry.host)
            rdata = A_RD(_canonical_ip(entry.host)) if kind == wire.A else AAAA_RD(entry.host)
            records.append(RR(_label(name), kind, ttl=entry.ttl, rdata=rdata))
        return records, chase

    def _txt(self, name: Name, zone: Name) -> list[RR]:
        return [
            RR(_label(name), wire.TXT, ttl=entry.ttl, rdata=TXT_RD(entry.text))
            for entry in self._services(name, zone, wire.TXT)
            if entry.text is not None
        ]

    def _cname(self, name: Name, zone: Name) -> list[RR]:
        entries = self._services(name, zone, wire.CNAME)
        if entries and _host_type(entries[0].host) == wire.CNAME:
            target = _split_name(entries[0].host)
            return [RR(_label(name), wire.CNAME, ttl=entries[0].ttl, rdata=CNAME_RD(_label(target)))]
        return []

    def _srv(self, name: Name, zone: Name) -> tuple[list[RR], list[RR]]:
        entries = self._services(name, zone, wire.SRV)
        records: list[RR] = []
        extra: list[RR] = []
        # Every entry has priority 0 and weight 100 (CoreDNS's defaults): weight = floor(100 / N).
        total = 100.0 * len(entries)
        weight = max(math.floor(100.0 / total * 100.0), 1) if entries else 0
        seen_srv: set[tuple[Name, int]] = set()
        seen_address: set[tuple[Name, str]] = set()
        for entry in entries:
            if entry.port == NO_PORT:
                continue
            kind = _host_type(entry.host)
            if (entry.target, entry.port) not in seen_srv:
                seen_srv.add((entry.target, entry.port))
                records.append(
                    RR(
                        _label(name),
                        wire.SRV,
                        ttl=entry.ttl,
                        rdata=SRV_RD(0, weight, entry.port, _label(entry.target)),
                    )
                )
            if (entry.target, entry.host) not in seen_address:
                seen_address.add((entry.target, entry.host))
                rdata = A_RD(_canonical_ip(entry.host)) if kind == wire.A else AAAA_RD(entry.host)
                extra.append(RR(_label(entry.target), kind, ttl=entry.ttl, rdata=rdata))
        return records, extra

    def _ptr(self, name: Name, zone: Name, outcome: Outcome) -> list[RR]:
        ip = address_from_reverse(name)
        if not ip:
            self._records(name, zone)  # only its name error matters: PTR needs a name, not an IP
            return []
        targets = self._reverse(ip)
        if not targets:
            raise NameError_
        seen: set[Name] = set()
        records = []
        for target in targets:
            if target not in seen:
                seen.add(target)
                records.append(RR(_label(name), wire.PTR, ttl=self.options.ttl, rdata=PTR_RD(_label(target))))
        return records

    def _reverse(self, ip: str) -> list[Name]:
        """reverse.go's serviceRecordForIP: a ClusterIP wins, else the endpoints with that IP."""
        zone = self.options.primary_zone
        allowed = self.options.namespaces
        for svc in self.backend.services_by_ip(ip):
            if allowed and svc.namespace not in allowed:
                continue
            return [(svc.name, svc.namespace, "svc", *zone)]
        targets = []
        for eps in self.backend.endpoints_by_ip(ip):
            if allowed and eps.namespace not in allowed:
                continue
            for address in eps.addresses:
                if address.ip == ip:
                    hostname = endpoint_hostname(address, pod_names=self.options.endpoint_pod_names)
                    targets.append((hostname, eps.service, eps.namespace, "svc", *zone))
        return targets

    def _ns(self, name: Name, zone: Name) -> tuple[list[RR], list[RR]]:
        records: list[RR] = []
        extra: list[RR] = []
        seen: set[Name] = set()
        for target, ip in self._ns_addresses(zone):
            kind = _host_type(ip)
            rdata = A_RD(_canonical_ip(ip)) if kind == wire.A else AAAA_RD(ip)
            extra.append(RR(_label(target), kind, ttl=self.options.ttl, rdata=rdata))
            if target not in seen:
                seen.add(target)
                records.append(RR(_label(name), wire.NS, ttl=self.options.ttl, rdata=NS_RD(_label(target))))
        return records, extra


def _match_port(r: _Request, name: str, protocol: str) -> bool:
    return (not r.port or r.port == name.lower()) and (not r.protocol or r.protocol == protocol.lower())
