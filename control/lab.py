"""The lab's life cycle on one machine: its data directory, its settings, and the
background processes that `kubelab up` starts and `kubelab down` stops.

Everything about a lab is in its data directory, so two labs with different data
directories (and ports) run side by side and a lab resumes from its directory alone::

    <data-dir>/lab.json          settings chosen at `up` (port, bind address, store, log level)
    <data-dir>/kubeconfig        admin kubeconfig, self-contained (certificates embedded)
    <data-dir>/pki/              CA, serving and client certificates, SA signing key, front-proxy CA
    <data-dir>/kubeconfigs/      one kubeconfig per component, each its own user
    <data-dir>/<name>.pid        pid of a running lab process ("server", later node agents)
    <data-dir>/logs/<name>.log   that process's stdout and stderr
    <data-dir>/state.db          the SQLite store (written by the API server)

A process's pidfile is also its lock: the process holds an exclusive ``flock`` on it for
its whole life and writes its pid into it. "Is it running?" is therefore "is the lock
held?", which a stale pidfile left by a crash (the kernel drops the lock with the
process) or a recycled pid cannot fool, and a second server on the same directory
refuses to start. Stopping uses a pidfd, so the signal reaches the process that held
the lock and never a stranger that inherited its pid.

The process table is the set of pidfiles: `down` stops every process that holds one,
the server last, so node agents added later are stopped without changing this module.

Add-ons (``addons/<name>/manifest.yaml``) are not processes of the lab but pods in it:
`up` applies their manifests through the API and waits for their Deployments (the last
section below).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import http.client
import ipaddress
import os
import re
import select
import signal
import socket
import ssl
import sys
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import yaml

from control.apiserver.options import APIServerOptions
from control.pki import (
    LEAF_VALIDITY,
    LabPKI,
    PKIFiles,
    ensure_client_certificate,
    ensure_lab_pki,
    issue_client_certificate,
    load_ca,
    write_file_atomically,
)

DATA_DIR_ENV = "KUBELAB_DATA_DIR"
DEFAULT_DATA_DIR = ".kubelab"
SERVER = "server"
CONTROLLERS = "controllers"
LOG_LEVELS = ("debug", "info", "warning", "error")
# kubeconfig names, as `kubectl config get-contexts` shows them.
KUBECONFIG_CLUSTER = "kubelab"
KUBECONFIG_USER = "kubelab-admin"
KUBECONFIG_CONTEXT = "kubelab"
# How long a process may take to die after SIGKILL before we give up waiting.
KILL_WAIT_SECONDS = 10.0
LOG_TAIL_LINES = 20


class LabError(Exception):
    """A lab operation failed; the message says what went wrong and how to fix it."""


class PortUnavailableError(LabError):
    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class AlreadyRunningError(LabError):
    def __init__(self, *, name: str, pid: int | None, pid_file: Path) -> None:
        super().__init__(
            f"a kubelab {name} is already running on this data directory (pid {pid or 'unknown'}, "
            f"pidfile {pid_file}); stop it with `kubelab down --data-dir {pid_file.parent}`"
        )
        self.pid = pid


class StartError(LabError):
    """A process started in the background did not become ready (and is no longer running).

    ``log_lines`` are the last lines it wrote to ``log_file`` in this attempt.
    """

    def __init__(self, message: str, *, log_file: Path, log_lines: list[str]) -> None:
        super().__init__(message)
        self.log_file = log_file
        self.log_lines = log_lines


class SettingsError(LabError):
    """lab.json exists but cannot be used."""


# --- settings and layout ------------------------------------------------------------------


def validate_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range: use 1-65535 (ports below 1024 need root)")
    return value


def validate_bind_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address: use an IPv4 address such as 127.0.0.1") from exc
    if address.version != 4:
        raise ValueError(f"{value} is IPv6: the lab listens on IPv4 only (e.g. 127.0.0.1 or 0.0.0.0)")
    return value


def validate_store_url(value: str) -> str:
    """Check a ``--store`` URL exactly as the server will parse it (``control.store.open_store``:
    sqlite://, sqlite:///abs/path.db, etcd://host:port[,...], etcd+https://...), so `up`
    refuses a bad one before starting anything. Nothing is opened."""
    from control.store import open_store  # the storage stack loads only when a URL is checked

    open_store(value, data_dir=Path("."))
    return value


MAX_NODES = 254  # node N is 127.100.0.N


def validate_node_count(value: int) -> int:
    if not 0 <= value <= MAX_NODES:
        raise ValueError(f"{value} nodes: choose 0 to {MAX_NODES} (node N gets the IP 127.100.0.N)")
    return value


def node_name(index: int) -> str:
    return f"node-{index}"


def node_ip(index: int) -> str:
    """The address plan: node N is 127.100.0.N."""
    return f"127.100.0.{index}"


def validate_log_level(value: str) -> str:
    if value not in LOG_LEVELS:
        raise ValueError(f"log level {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What `up` was asked for; remembered in lab.json so later commands need no flags."""

    api_port: int = 6443
    bind_address: str = "127.0.0.1"
    store_url: str = "sqlite://"
    log_level: str = "info"
    nodes: int = 1

    def __post_init__(self) -> None:
        validate_port(self.api_port)
        validate_node_count(self.nodes)
        validate_bind_address(self.bind_address)
        # The store URL is checked by `prepare` (and the --store flag), not on every load:
        # that needs the storage stack, which `status` and `down` have no use for.
        validate_log_level(self.log_level)

    @property
    def client_address(self) -> str:
        """Where clients on this machine dial: the bind address, or loopback for 0.0.0.0."""
        return "127.0.0.1" if ipaddress.ip_address(self.bind_address).is_unspecified else self.bind_address

    @property
    def server_url(self) -> str:
        return f"https://{self.client_address}:{self.api_port}"


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of one lab; ``data_dir`` is absolute so the paths survive a chdir."""

    data_dir: Path

    @classmethod
    def resolve(cls, data_dir: str | Path | None) -> Layout:
        """The flag if given, else $KUBELAB_DATA_DIR, else ./.kubelab."""
        chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        return cls(Path(chosen).expanduser().absolute())

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "lab.json"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def pki(self) -> PKIFiles:
        return PKIFiles(self.data_dir / "pki")

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def component_kubeconfig(self, name: str) -> Path:
        return self.data_dir / "kubeconfigs" / f"{name}.kubeconfig"

    def pid_file(self, name: str) -> Path:
        return self.data_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"


def load_settings(layout: Layout) -> Settings | None:
    """The remembered settings, or None for a data directory `up` has not prepared."""
    try:
        raw = layout.settings_file.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Settings(**orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise SettingsError(
            f"{layout.settings_file} is unreadable ({exc}); fix it, or delete it and run "
            "`kubelab up` with the flags you want"
        ) from exc


def resolve_settings(
    layout: Layout,
    *,
    api_port: int | None = None,
    bind_address: str | None = None,
    store_url: str | None = None,
    log_level: str | None = None,
    nodes: int | None = None,
) -> Settings:
    """Flags given now win, then what lab.json remembers, then the defaults."""
    base = load_settings(layout) or Settings()
    overrides = {
        "api_port": api_port,
        "bind_address": bind_address,
        "store_url": store_url,
        "log_level": log_level,
        "nodes": nodes,
    }
    return Settings(
        **{**asdict(base), **{key: value for key, value in overrides.items() if value is not None}}
    )


def save_settings(layout: Layout, settings: Settings) -> None:
    write_file_atomically(
        layout.settings_file, orjson.dumps(asdict(settings), option=orjson.OPT_INDENT_2) + b"\n", mode=0o644
    )


# --- preparing a data directory -----------------------------------------------------------


# kubeadm's --authorization-mode: the Node authorizer for kubelets, RBAC for everyone else.
AUTHORIZATION_MODES = ("Node", "RBAC")


def server_options(layout: Layout, settings: Settings) -> APIServerOptions:
    """The API server as kubeadm configures one: x509 clients of the lab CA, ServiceAccount
    tokens signed with the lab's key (sa.key signs, sa.pub verifies), Node and RBAC
    authorization, and the front proxy's client certificate and CA for API aggregation (the
    allowed names and headers are kubeadm's, the options' defaults)."""
    pki = layout.pki
    return APIServerOptions(
        data_dir=layout.data_dir,
        bind_address=settings.bind_address,
        port=settings.api_port,
        store_url=settings.store_url,
        tls_cert_file=pki.apiserver_cert,
        tls_key_file=pki.apiserver_key,
        client_ca_file=pki.ca_cert,
        advertise_address=settings.client_address,
        service_account_signing_key_file=pki.service_account_key,
        service_account_key_files=(pki.service_account_public_key,),
        authorization_modes=AUTHORIZATION_MODES,
        proxy_client_cert_file=pki.front_proxy_client_cert,
        proxy_client_key_file=pki.front_proxy_client_key,
        requestheader_client_ca_file=pki.front_proxy_ca_cert,
    )


def serving_addresses(options: APIServerOptions) -> list[str]:
    """IP SANs of the serving certificate: loopback, the `kubernetes` Service IP, and
    the advertise and bind addresses (a wildcard bind names no address)."""
    service_ip = ipaddress.ip_network(options.service_cidr).network_address + 1
    addresses = ["127.0.0.1", str(service_ip), options.advertise_address]
    if not ipaddress.ip_address(options.bind_address).is_unspecified:
        addresses.append(options.bind_address)
    return list(dict.fromkeys(addresses))


def prepare(layout: Layout, settings: Settings) -> LabPKI:
    """Make the data directory ready for a server with ``settings``: PKI, kubeconfig,
    lab.json. Idempotent; on an existing directory it reuses what is still right."""
    try:
        validate_store_url(settings.store_url)
    except ValueError as exc:
        raise SettingsError(f"{exc} (choose the store with --store)") from exc
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    pki = ensure_lab_pki(files=layout.pki, ip_addresses=serving_addresses(server_options(layout, settings)))
    write_kubeconfig(
        path=layout.kubeconfig,
        server_url=settings.server_url,
        ca_file=pki.files.ca_cert,
        cert_file=pki.files.admin_cert,
        key_file=pki.files.admin_key,
    )
    for component, user in COMPONENT_USERS.items():
        component_kubeconfig(layout, settings, pki, name=component, user=user)
    for index in range(1, settings.nodes + 1):
        name = node_name(index)
        component_kubeconfig(
            layout, settings, pki, name=name, user=f"system:node:{name}", groups=("system:nodes",)
        )
    save_settings(layout, settings)
    return pki


# The lab components' own users, as upstream names them; each gets a client certificate and
# a kubeconfig under <data-dir>/kubeconfigs/<name>.kubeconfig, and the API server's bootstrap
# RBAC policy grants each its least privilege (system:kube-controller-manager,
# system:kube-scheduler, system:node-proxier). Every node agent's service proxy runs as the
# one `system:kube-proxy`, as kube-proxy shares one identity on every upstream node; the
# kubelets are `system:node:<name>` each (made per node in `prepare`).
PROXY = "kube-proxy"
COMPONENT_USERS = {
    "controller-manager": "system:kube-controller-manager",
    "scheduler": "system:kube-scheduler",
    PROXY: "system:kube-proxy",
}


def component_kubeconfig(
    layout: Layout, settings: Settings, pki: LabPKI, *, name: str, user: str, groups: tuple[str, ...] = ()
) -> Path:
    """A client certificate (CN=user, O=groups) and a kubeconfig for one lab component."""
    cert_file = layout.pki.directory / f"{name}.crt"
    key_file = layout.pki.directory / f"{name}.key"
    ensure_client_certificate(ca=pki.ca, cert_file=cert_file, key_file=key_file, user=user, groups=groups)
    path = layout.component_kubeconfig(name)
    write_kubeconfig(
        path=path,
        server_url=settings.server_url,
        ca_file=pki.files.ca_cert,
        cert_file=cert_file,
        key_file=key_file,
        user=user,
    )
    return path


def render_kubeconfig(
    *,
    server_url: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str = KUBECONFIG_USER,
    context: str = KUBECONFIG_CONTEXT,
) -> bytes:
    """A self-contained kubeconfig (every credential embedded as base64 data)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": KUBECONFIG_CLUSTER,
                "cluster": {"server": server_url, "certificate-authority-data": b64encode(ca_pem).decode()},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64encode(cert_pem).decode(),
                    "client-key-data": b64encode(key_pem).decode(),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": KUBECONFIG_CLUSTER, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False).encode()


def write_kubeconfig(
    *,
    path: Path,
    server_url: str,
    ca_file: Path,
    cert_file: Path,
    key_file: Path,
    user: str = KUBECONFIG_USER,
) -> None:
    """Write a kubeconfig for the certificate pair; 0600 because it holds a private key."""
    content = render_kubeconfig(
        server_url=server_url,
        ca_pem=ca_file.read_bytes(),
        cert_pem=cert_file.read_bytes(),
        key_pem=key_file.read_bytes(),
        user=user,
    )
    write_file_atomically(path, content, mode=0o600)


def validate_identity_name(value: str) -> str:
    """A user or group name for a client certificate: not empty, no surrounding spaces or
    control characters (the x509 authenticator would hand them on verbatim)."""
    if not value or value != value.strip() or not value.isprintable():
        raise ValueError(
            f"{value!r} is not a usable user or group name: give a non-empty name without spaces around it"
        )
    return value


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_validity(text: str) -> timedelta:
    """A certificate's validity as kubeadm's ``--validity-period`` spells it (Go's duration
    in hours, minutes and seconds: ``8760h``, ``24h``, ``90m``, ``1h30m``); positive."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(
            f"{text!r} is not a duration: use hours, minutes and seconds such as 8760h, 24h or 90m"
        )
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    validity = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if validity <= timedelta(0):
        raise ValueError(f"{text!r}: a certificate must be valid for some time")
    return validity


def user_kubeconfig(
    layout: Layout, *, user: str, groups: tuple[str, ...] = (), validity: timedelta = LEAF_VALIDITY
) -> bytes:
    """A kubeconfig for ``user`` in ``groups`` with a fresh client certificate from the lab CA,
    as ``kubeadm kubeconfig user`` makes one: the lab keeps no copy of its key, and what the
    user may do is up to RBAC (bind a role to the user or a group). Its context is
    ``<user>@kubelab``, so it merges beside the admin's."""
    settings = load_settings(layout)
    if settings is None or not layout.pki.ca_cert.is_file():
        raise LabError(
            f"there is no lab in {layout.data_dir} to issue a kubeconfig from; run `kubelab up` first"
        )
    for name in (user, *groups):
        validate_identity_name(name)
    files = layout.pki
    ca = load_ca(cert_file=files.ca_cert, key_file=files.ca_key)
    cert_pem, key_pem = issue_client_certificate(ca=ca, user=user, groups=groups, validity=validity)
    return render_kubeconfig(
        server_url=settings.server_url,
        ca_pem=files.ca_cert.read_bytes(),
        cert_pem=cert_pem,
        key_pem=key_pem,
        user=user,
        context=f"{user}@{KUBECONFIG_CLUSTER}",
    )


def check_port_free(*, host: str, port: int) -> None:
    """Raise PortUnavailableError if a server could not listen on host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server's listener does, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise port_unavailable(host=host, port=port, error=exc) from exc


KUBELET_PORT = 10250


def check_node_address_free(index: int) -> None:
    """Node N's kubelet address (127.100.0.N:10250) must be free: the address plan gives it
    to one lab at a time."""
    host = node_ip(index)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, KUBELET_PORT))
        except OSError as exc:
            raise PortUnavailableError(
                f"{host}:{KUBELET_PORT}, the address of {node_name(index)}, is in use (another lab's "
                f"{node_name(index)}?): node addresses are fixed by the address plan, so only one lab at a "
                "time can run nodes; start this one with --nodes 0, or stop the other",
                host=host,
                port=KUBELET_PORT,
            ) from exc


def port_unavailable(*, host: str, port: int, error: OSError) -> PortUnavailableError:
    """The error for a failed bind, saying which flag fixes it."""
    if error.errno == errno.EADDRINUSE:
        message = (
            f"port {port} on {host} is already in use (another kubelab, or a Kubernetes API server?); "
            f"choose another port with --api-port, e.g. --api-port {port + 1 if port < 65535 else 6444}"
        )
    elif error.errno == errno.EACCES:
        message = (
            f"listening on port {port} needs root (or a lower net.ipv4.ip_unprivileged_port_start); "
            "choose a port of 1024 or more with --api-port"
        )
    elif error.errno == errno.EADDRNOTAVAIL:
        message = f"{host} is not an address of this machine; choose another with --bind-address"
    else:
        message = (
            f"cannot listen on {host}:{port}: {error.strerror or error}; check --bind-address and --api-port"
        )
    return PortUnavailableError(message, host=host, port=port)


# --- pidfiles: the process table ----------------------------------------------------------


@contextlib.contextmanager
def claim_pidfile(pid_file: Path, *, name: str = SERVER) -> Iterator[None]:
    """Hold ``pid_file`` for the life of the ``with`` block: lock it, write our pid, and
    remove it on the way out. Raises AlreadyRunningError when another process holds it."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock_pidfile(pid_file, name=name)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        # Unlink while still holding the lock, so a newcomer never locks a file about to vanish.
        pid_file.unlink(missing_ok=True)
        os.close(fd)


def _lock_pidfile(pid_file: Path, *, name: str) -> int:
    # `running_pid` probes with a shared lock for a few microseconds; retry briefly so such
    # a probe is never mistaken for a running process.
    deadline = time.monotonic() + 0.5
    while True:
        fd = os.open(pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise AlreadyRunningError(name=name, pid=_read_pid(pid_file), pid_file=pid_file) from None
            time.sleep(0.01)
            continue
        # A holder that was exiting may have unlinked the file we locked: lock the new one.
        try:
            same_file = os.fstat(fd).st_ino == os.stat(pid_file).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            return fd
        os.close(fd)


def running_pid(pid_file: Path) -> int | None:
    """The pid of the live process holding ``pid_file``, or None when nothing holds it."""
    try:
        fd = os.open(pid_file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return None
    finally:
        os.close(fd)
    # The holder writes its pid right after locking; give it a moment if we came in between.
    deadline = time.monotonic() + 0.5
    while (pid := _read_pid(pid_file)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def _read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


@dataclass(frozen=True, kw_only=True)
class RunningProcess:
    name: str
    pid: int


def running_processes(layout: Layout) -> list[RunningProcess]:
    """Every lab process holding its pidfile, the server first (start order)."""
    if not layout.data_dir.is_dir():
        return []
    found = []
    for pid_file in layout.data_dir.glob("*.pid"):
        pid = running_pid(pid_file)
        if pid is not None:
            found.append(RunningProcess(name=pid_file.stem, pid=pid))
    return sorted(found, key=lambda process: (process.name != SERVER, process.name))


@dataclass(frozen=True, kw_only=True)
class StoppedProcess:
    name: str
    pid: int
    killed: bool  # it ignored SIGTERM for the whole grace period and got SIGKILL


def stop_processes(layout: Layout, *, timeout: float) -> list[StoppedProcess]:
    """Stop every running lab process, the server last; remove their pidfiles (stale ones too)."""
    stopped = []
    for process in reversed(running_processes(layout)):
        pid_file = layout.pid_file(process.name)
        killed = terminate(process.pid, timeout=timeout, expected=functools.partial(running_pid, pid_file))
        if killed is not None:
            stopped.append(StoppedProcess(name=process.name, pid=process.pid, killed=killed))
    for pid_file in layout.data_dir.glob("*.pid") if layout.data_dir.is_dir() else ():
        if running_pid(pid_file) is None:
            pid_file.unlink(missing_ok=True)
    return stopped


def terminate(pid: int, *, timeout: float, expected: Callable[[], int | None] | None = None) -> bool | None:
    """SIGTERM ``pid``, SIGKILL it after ``timeout`` seconds, wait until it is gone.

    Returns whether SIGKILL was needed, or None when the process was already gone.
    ``expected`` (returning the pid that should be there, e.g. the pidfile's holder) is
    asked again once the pidfd is open, so a pid recycled in between is never signalled.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        if expected is not None and expected() != pid:
            return None
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        killed = not _wait_for_exit(pidfd, timeout=timeout)
        if killed:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            _wait_for_exit(pidfd, timeout=KILL_WAIT_SECONDS)
    except ProcessLookupError:
        killed = False
    finally:
        os.close(pidfd)
    _reap_if_child(pid)
    return killed


def _wait_for_exit(pidfd: int, *, timeout: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def _reap_if_child(pid: int) -> int | None:
    """Collect our exited child's status (its exit code), or None if it runs or is not ours."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if reaped else None


# --- starting the server in the background ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Spawned:
    """A background process just started; its log so far began at ``log_offset``."""

    name: str
    pid: int
    log_file: Path
    log_offset: int


def server_command(layout: Layout, settings: Settings) -> list[str]:
    """`kubelab server` (the API server alone) with every setting spelled out, run by this
    very interpreter; `controllers_command` runs the rest of the control plane."""
    return [
        sys.executable,
        "-m",
        "control.cli",
        "server",
        "--data-dir",
        str(layout.data_dir),
        "--api-port",
        str(settings.api_port),
        "--bind-address",
        settings.bind_address,
        "--store",
        settings.store_url,
        "--log-level",
        settings.log_level,
        "--components",
        "apiserver",
    ]


def controllers_command(layout: Layout, settings: Settings) -> list[str]:
    """The controller manager and the scheduler in a process of their own: with the API
    server they would share one event loop, and one CPU."""
    return [
        sys.executable,
        "-m",
        "control.cli",
        "server",
        "--data-dir",
        str(layout.data_dir),
        "--log-level",
        settings.log_level,
        "--components",
        "controller-manager,scheduler",
    ]


def node_command(layout: Layout, settings: Settings, index: int) -> list[str]:
    """`kubelab node` for node ``index`` of this lab, run by this very interpreter."""
    return [
        sys.executable,
        "-m",
        "control.cli",
        "node",
        "--data-dir",
        str(layout.data_dir),
        "--name",
        node_name(index),
        "--node-ip",
        node_ip(index),
        "--log-level",
        settings.log_level,
    ]


def _process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def sweep_orphan_containers(layout: Layout) -> int:
    """Kill containers whose node agent is gone (it was SIGKILLed, so nobody stopped them).

    Each container's shim records its own and the container's pid and start time in
    ``state.json``; a pid counts only when its start time still matches, so a recycled
    pid is never hit. Returns how many containers were killed.
    """
    killed = 0
    for state_file in layout.data_dir.glob("nodes/*/pods/*/containers/*/state.json"):
        try:
            state = orjson.loads(state_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        for pid_key, start_key in (("pid", "pid_start"), ("shim_pid", "shim_start")):
            pid, start = state.get(pid_key), state.get(start_key)
            if not isinstance(pid, int) or _process_start_ticks(pid) != start:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pid_key == "pid":
                    os.killpg(pid, signal.SIGKILL)  # the container is its own process group
                    killed += 1
                else:
                    os.kill(pid, signal.SIGKILL)
    return killed


def exit_code(spawned: Spawned) -> int | None:
    """The exit code of a process this process spawned, or None while it runs."""
    return _reap_if_child(spawned.pid)


def admin_ssl_context(layout: Layout) -> ssl.SSLContext:
    """Trusts the lab CA and presents the admin client certificate."""
    context = lab_ssl_context(layout)
    context.load_cert_chain(str(layout.pki.admin_cert), str(layout.pki.admin_key))
    return context


def ready_nodes(*, url: str, context: ssl.SSLContext, since: float = 0.0, timeout: float = 2.0) -> set[str]:
    """Names of the Nodes whose Ready condition is True with a heartbeat at or after
    ``since`` (epoch seconds; a resumed lab's Nodes still show the last run's status);
    empty when the API does not answer."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)
    try:
        connection.request("GET", "/api/v1/nodes")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return set()
    finally:
        connection.close()
    if response.status != 200:
        return set()
    ready = set()
    for node in orjson.loads(body).get("items", []):
        conditions = (node.get("status") or {}).get("conditions") or []
        for condition in conditions:
            if condition.get("type") != "Ready" or condition.get("status") != "True":
                continue
            heartbeat = _epoch_seconds(str(condition.get("lastHeartbeatTime") or ""))
            if heartbeat is not None and heartbeat >= since:
                ready.add(node["metadata"]["name"])
    return ready


def _epoch_seconds(timestamp: str) -> float | None:
    """An RFC 3339 time (``2026-11-25T17:00:00Z``) as epoch seconds; None when unparsable."""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def spawn(*, name: str, argv: list[str], log_file: Path) -> Spawned:
    """Start ``argv`` detached (its own session, stdin from /dev/null, output to ``log_file``)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset = os.fstat(log_fd).st_size
        pid = os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
        os.close(null_fd)
    return Spawned(name=name, pid=pid, log_file=log_file, log_offset=offset)


@dataclass(frozen=True, kw_only=True)
class Readiness:
    ok: bool
    detail: str  # "ok", "HTTP 500: ...", "connection refused", ...


def probe_readyz(*, url: str, context: ssl.SSLContext, timeout: float = 2.0) -> Readiness:
    """GET <url>/readyz once, verifying the server against the lab CA."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read(200).decode(errors="replace").strip()
    except ssl.SSLError as exc:
        return Readiness(ok=False, detail=f"TLS error: {exc.reason or exc}")
    except ConnectionRefusedError:
        return Readiness(ok=False, detail="connection refused")
    except (OSError, http.client.HTTPException) as exc:
        return Readiness(ok=False, detail=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if response.status == 200:
        return Readiness(ok=True, detail=body or "ok")
    return Readiness(ok=False, detail=f"HTTP {response.status}: {body}")


def lab_ssl_context(layout: Layout) -> ssl.SSLContext:
    """A client context that trusts exactly the lab's CA."""
    return ssl.create_default_context(cafile=str(layout.pki.ca_cert))


def wait_until_ready(*, spawned: Spawned, url: str, context: ssl.SSLContext, timeout: float) -> float:
    """Poll /readyz until it answers 200; return the seconds it took.

    If the process exits first or ``timeout`` passes, stop it and raise StartError
    carrying the last lines it logged.
    """
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.05
    try:
        while True:
            exit_code = _reap_if_child(spawned.pid)
            if exit_code is not None:
                raise _start_failure(spawned, f"exited with code {exit_code} before it was ready")
            probe_timeout = min(2.0, max(0.1, deadline - time.monotonic()))
            readiness = probe_readyz(url=url, context=context, timeout=probe_timeout)
            if readiness.ok:
                return time.monotonic() - started
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                terminate(spawned.pid, timeout=5.0)
                reason = (
                    f"did not answer /readyz with 200 within {timeout:g}s (last answer: {readiness.detail})"
                )
                raise _start_failure(spawned, f"{reason}; it has been stopped")
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.5)
    except KeyboardInterrupt:
        # The child is in its own session, so Ctrl-C did not reach it: do not leave it behind.
        terminate(spawned.pid, timeout=5.0)
        raise


def _start_failure(spawned: Spawned, reason: str) -> StartError:
    return StartError(
        f"the kubelab {spawned.name} (pid {spawned.pid}) {reason}",
        log_file=spawned.log_file,
        log_lines=log_tail(spawned.log_file, offset=spawned.log_offset),
    )


def log_tail(log_file: Path, *, offset: int = 0, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines written to ``log_file`` after ``offset``."""
    try:
        with log_file.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]


# --- add-ons ------------------------------------------------------------------------------
#
# `up` deploys each add-on's manifest (addons/<name>/manifest.yaml) once the nodes are Ready,
# as k3s deploys its bundled manifests: every object is created, or replaced when it exists,
# through the API with the admin certificate, so a resumed lab re-applies without harm.
#
# An add-on's pods authenticate the upstream way: ServiceAccount admission gives each pod the
# kube-api-access projected volume, the kubelet writes a TokenRequest token for the pod's
# ServiceAccount into it, and the add-on's client reads it (in-cluster configuration, with
# KUBERNETES_SERVICE_HOST/PORT from the `kubernetes` Service). What the account may do is the
# RBAC its manifest carries, and nothing more.

ADDONS_DIR = Path(__file__).resolve().parent.parent / "addons"
DEFAULT_ADDONS = ("coredns_lite",)


class AddonError(LabError):
    """An add-on could not be deployed or did not become available."""


def available_addons() -> list[str]:
    return sorted(path.parent.name for path in ADDONS_DIR.glob("*/manifest.yaml"))


def validate_addons(names: list[str]) -> list[str]:
    known = available_addons()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown add-on {', '.join(unknown)}: choose from {', '.join(known) or 'none'}")
    return names


def addon_objects(name: str) -> list[dict]:
    """The objects of add-on ``name``'s manifest, as written."""
    manifest = ADDONS_DIR / name / "manifest.yaml"
    try:
        return [document for document in yaml.safe_load_all(manifest.read_text()) if document]
    except (OSError, yaml.YAMLError) as exc:
        raise AddonError(f"cannot read the {name} add-on's manifest {manifest}: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class AppliedObject:
    kind: str
    namespace: str
    name: str
    action: str  # "created" or "configured"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()} {where}{self.name} {self.action}"


async def apply_objects(layout: Layout, objects: list[dict]) -> list[AppliedObject]:
    """Replace each object that exists (with its current resourceVersion), create the others:
    kubectl apply's order, since creating a Service whose clusterIP is taken fails as invalid
    rather than as already existing."""
    from control.client import Discovery, RESTClient, load_kubeconfig
    from control.client.discovery import UnknownKindError
    from control.client.errors import NotFoundError, RequestError

    applied = []
    async with RESTClient(load_kubeconfig(layout.kubeconfig)) as client:
        discovery = Discovery(client)
        for body in objects:
            kind, metadata = body["kind"], body["metadata"]
            namespace = metadata.get("namespace", "")
            try:
                resource = await discovery.resource_for(api_version=body["apiVersion"], kind=kind)
                if resource.namespaced and not namespace:
                    namespace = metadata["namespace"] = "default"
                try:
                    current = await client.get(resource, metadata["name"], namespace=namespace or None)
                except NotFoundError:
                    await client.create(resource, body, namespace=namespace or None)
                    action = "created"
                else:
                    metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
                    await client.replace(resource, body, namespace=namespace or None)
                    action = "configured"
            except (RequestError, UnknownKindError) as exc:
                raise AddonError(
                    f"cannot apply {kind} {namespace + '/' if namespace else ''}{metadata['name']}: {exc}"
                ) from exc
            applied.append(
                AppliedObject(kind=kind, namespace=namespace, name=metadata["name"], action=action)
            )
    return applied


# --- the default StorageClass ----------------------------------------------------------------

# What kind gives out of the box: claims that name no class get this one (DefaultStorageClass
# admission) and are provisioned as directories under <data-dir>/storage by the controller
# manager's local-path provisioner once a pod using them is scheduled.
DEFAULT_STORAGE_CLASS: dict = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "kubelab.dev/local-path",
    "volumeBindingMode": "WaitForFirstConsumer",
    "reclaimPolicy": "Delete",
}


def storage_dir(layout: Layout) -> Path:
    """Where the local-path provisioner keeps the lab's volumes."""
    return layout.data_dir / "storage"


async def ensure_default_storage_class(layout: Layout) -> AppliedObject | None:
    """Create the ``standard`` StorageClass unless it exists; an existing one (perhaps changed by
    its user, say no longer the default) is left as it is. Returns what was created, if anything."""
    from control.client import RESTClient, load_kubeconfig
    from control.client.errors import AlreadyExistsError, NotFoundError, RequestError
    from control.controllers.kinds import STORAGE_CLASSES as classes

    name = DEFAULT_STORAGE_CLASS["metadata"]["name"]
    async with RESTClient(load_kubeconfig(layout.kubeconfig)) as client:
        try:
            await client.get(classes, name)
            return None
        except NotFoundError:
            pass
        except RequestError as exc:
            raise AddonError(f"cannot read StorageClass {name}: {exc}") from exc
        try:
            await client.create(classes, DEFAULT_STORAGE_CLASS)
        except AlreadyExistsError:
            return None
        except RequestError as exc:
            raise AddonError(f"cannot create StorageClass {name}: {exc}") from exc
    return AppliedObject(kind="StorageClass", namespace="", name=name, action="created")


async def wait_for_deployments(
    layout: Layout,
    objects: list[dict],
    *,
    within: float,
    restarted_nodes: frozenset[str] = frozenset(),
    since: float = 0.0,
) -> float:
    """Wait until every Deployment among ``objects`` has all its replicas updated and
    available; return the seconds it took. On timeout, AddonError names the pods that are
    not ready, why, and where their logs are.

    A resumed lab's objects still carry the last run's status, so the pods on
    ``restarted_nodes`` (node agents this `up` started) count only once their Ready condition
    turned True at or after ``since`` (epoch seconds)."""
    from control.client import Resource, RESTClient, load_kubeconfig
    from control.client.errors import RequestError

    deployments_resource = Resource("apps", "v1", "deployments", "Deployment")
    pods_resource = Resource("", "v1", "pods", "Pod")
    started = time.monotonic()
    async with RESTClient(load_kubeconfig(layout.kubeconfig)) as client:
        pending = [body for body in objects if body["kind"] == "Deployment"]
        while pending:
            body = pending[0]
            namespace, name = body["metadata"].get("namespace", "default"), body["metadata"]["name"]
            selector = ",".join(
                f"{key}={value}" for key, value in body["spec"]["selector"]["matchLabels"].items()
            )
            try:
                current = await client.get(deployments_resource, name, namespace=namespace)
                pods = (await client.list(pods_resource, namespace=namespace, label_selector=selector))[
                    "items"
                ]
            except RequestError:
                current, pods = {"metadata": {}}, []
            if _deployment_available(current) and _pods_fresh(
                pods, restarted_nodes=restarted_nodes, since=since
            ):
                pending.pop(0)
                continue
            if time.monotonic() - started >= within:
                raise AddonError(
                    f"deployment {namespace}/{name} was not available within {within:g}s: "
                    + _describe_pods(pods, namespace=namespace, layout=layout)
                )
            await asyncio.sleep(0.2)
    return time.monotonic() - started


def _pods_fresh(pods: list[dict], *, restarted_nodes: frozenset[str], since: float) -> bool:
    """Whether every live pod on a restarted node reports Ready as of this run."""
    for pod in pods:
        if (
            pod["metadata"].get("deletionTimestamp")
            or (pod.get("spec") or {}).get("nodeName") not in restarted_nodes
        ):
            continue
        conditions = (pod.get("status") or {}).get("conditions") or ()
        ready = next((condition for condition in conditions if condition.get("type") == "Ready"), {})
        changed = _epoch_seconds(str(ready.get("lastTransitionTime") or ""))
        if ready.get("status") != "True" or changed is None or changed < since:
            return False
    return True


def _deployment_available(deployment: dict) -> bool:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= replicas
        and status.get("availableReplicas", 0) >= replicas
        and status.get("replicas", 0) == replicas
    )


def _describe_pods(pods: list[dict], *, namespace: str, layout: Layout) -> str:
    if not pods:
        return f"it has no pods; see {layout.log_file(CONTROLLERS)}"
    parts = []
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        reasons = []
        for container in status.get("containerStatuses") or ():
            state = container.get("state") or {}
            waiting = state.get("waiting") or state.get("terminated")
            if waiting:
                reasons.append(waiting.get("reason") or "waiting")
            elif not container.get("ready"):
                reasons.append("not ready")
        node = (pod.get("spec") or {}).get("nodeName")
        where = (
            f" on {node}, see `kubectl -n {namespace} logs {name}` and {layout.log_file(node)}"
            if node
            else " (not scheduled)"
        )
        parts.append(
            f"pod {name} {status.get('phase', 'Pending')} {'/'.join(reasons) or ''}".rstrip() + where
        )
    return "; ".join(parts)
