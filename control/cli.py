"""The `kubelab` command: bring a lab up, look at it, take it down.

This module is only the command line: it parses flags, prints what happens and maps
failures to exit codes. What a lab *is* (its data directory, settings, pidfiles,
background processes) lives in :mod:`control.lab`, and the credentials in
:mod:`control.pki`, so tests and later components use them without going through argv.

`kubelab server` is the long-running process (the API server today; the controllers and
the scheduler join it in the same process later). `kubelab up` prepares the data
directory and runs `kubelab server` detached in the background, then waits for it to
answer /readyz. The HTTP machinery is imported only by `server`, so `status`, `down`
and `kubeconfig` start fast.

Exit codes: 0 success, 1 failure (the message says what to do), 2 bad usage, 3 `status`
found no running lab, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from control import lab
from control.apiserver.options import CONTROLLER_MANAGER_SECURE_PORT, SCHEDULER_SECURE_PORT, APIServerOptions
from control.pki import LEAF_VALIDITY, Outcome, PKIError, write_file_atomically

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from control.client.config import ClientConfig
    from control.controllers.metrics_serving import ServingConfig
    from control.healthz import HealthChecks

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

DEFAULT_UP_TIMEOUT = 60.0
DEFAULT_CONTROLLERS_SECURE_PORT = CONTROLLER_MANAGER_SECURE_PORT
DEFAULT_SCHEDULER_SECURE_PORT = SCHEDULER_SECURE_PORT
# Each component's secure-port flag, and its upstream name (in its secure port's user agent).
_SECURE_PORT_FLAGS = {
    "controller-manager": "--controllers-secure-port",
    "scheduler": "--scheduler-secure-port",
}
_UPSTREAM_NAMES = {"controller-manager": "kube-controller-manager", "scheduler": "kube-scheduler"}
DEFAULT_DOWN_TIMEOUT = 30.0

log = logging.getLogger("kubelab")
_T = TypeVar("_T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except (lab.LabError, PKIError) as exc:
        print(f"kubelab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"kubelab {args.command}: error: {exc.strerror or exc}{where}; "
            "check that path and its permissions, or choose another --data-dir",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"kubelab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- commands -----------------------------------------------------------------------------


def _server(args: argparse.Namespace) -> int:
    layout = lab.Layout.resolve(args.data_dir)
    settings = _settings_from_flags(layout, args)
    _configure_logging(settings.log_level)
    components = _components(args.components)
    secure_ports = _secure_ports(args, components=components)
    if "apiserver" not in components:
        return _controllers(layout, components=components, secure_ports=secure_ports)
    try:
        with lab.claim_pidfile(layout.pid_file(lab.SERVER)):
            lab.check_port_free(host=settings.bind_address, port=settings.api_port)
            lab.prepare(layout, settings)
            options = _with_aggregation_flags(lab.server_options(layout, settings), args)
            log.info(
                "API server starting",
                extra={
                    "url": settings.server_url,
                    "store": settings.store_url,
                    "data_dir": str(layout.data_dir),
                    "pid": os.getpid(),
                },
            )
            _run(
                _serve_until_signalled(
                    options,
                    url=settings.server_url,
                    layout=layout,
                    components=components,
                    secure_ports=secure_ports,
                )
            )
    except (lab.LabError, PKIError) as exc:
        log.error(str(exc))
        return EXIT_FAILED
    except Exception:
        log.exception("API server failed")
        return EXIT_FAILED
    log.info("API server stopped")
    return EXIT_OK


def _add_aggregation_flags(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's API aggregation flags, by its names; each left out keeps the lab's value."""
    group = parser.add_argument_group(
        "API aggregation (default: the lab's front-proxy files in DIR/pki and kubeadm's names and headers)"
    )
    group.add_argument(
        "--proxy-client-cert-file",
        type=Path,
        metavar="FILE",
        help="client certificate the API server presents when it proxies a request to an extension API "
        "server; signed by the CA in --requestheader-client-ca-file, which is published in "
        "kube-system/extension-apiserver-authentication for extension servers to verify it",
    )
    group.add_argument(
        "--proxy-client-key-file", type=Path, metavar="FILE", help="the key of --proxy-client-cert-file"
    )
    group.add_argument(
        "--requestheader-client-ca-file",
        type=Path,
        metavar="FILE",
        help="CA bundle that signs the front proxy's client certificates: extension API servers trust the "
        "user named in the headers below only from a client certificate it verifies",
    )
    group.add_argument(
        "--requestheader-allowed-names",
        type=_comma_list,
        metavar="LIST",
        help="client certificate common names allowed to provide users in the headers, comma-separated "
        "(default: front-proxy-client; empty: any certificate the CA verifies)",
    )
    group.add_argument(
        "--requestheader-username-headers",
        type=_comma_list,
        metavar="LIST",
        help="request headers to inspect for the user name, comma-separated (default: X-Remote-User)",
    )
    group.add_argument(
        "--requestheader-group-headers",
        type=_comma_list,
        metavar="LIST",
        help="request headers to inspect for groups, comma-separated (default: X-Remote-Group)",
    )
    group.add_argument(
        "--requestheader-extra-headers-prefix",
        type=_comma_list,
        metavar="LIST",
        help="request header prefixes to inspect for the user's extra fields, comma-separated "
        "(default: X-Remote-Extra-)",
    )


_AGGREGATION_FLAGS = (
    "proxy_client_cert_file",
    "proxy_client_key_file",
    "requestheader_client_ca_file",
    "requestheader_allowed_names",
    "requestheader_username_headers",
    "requestheader_group_headers",
    "requestheader_extra_headers_prefix",
)


def _with_aggregation_flags(options: APIServerOptions, args: argparse.Namespace) -> APIServerOptions:
    """``options`` with the aggregation flags given on the command line; a certificate without its
    key (or the other way round) or a file that is not there is a LabError naming the flag."""
    given = {name: getattr(args, name) for name in _AGGREGATION_FLAGS if getattr(args, name) is not None}
    options = dataclasses.replace(options, **given)
    if ("proxy_client_cert_file" in given) != ("proxy_client_key_file" in given) or (
        options.proxy_client_cert_file is None
    ) != (options.proxy_client_key_file is None):
        raise lab.LabError("--proxy-client-cert-file and --proxy-client-key-file must be given together")
    for name in ("proxy_client_cert_file", "proxy_client_key_file", "requestheader_client_ca_file"):
        path = given.get(name)
        if path is not None and not path.is_file():
            raise lab.LabError(f"--{name.replace('_', '-')}: {path} is not a readable file")
    return options


def _comma_list(text: str) -> tuple[str, ...]:
    """A comma-separated flag value, as upstream's string slices: blanks dropped, order kept."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _default_addons() -> list[str]:
    if os.geteuid() == 0:
        return list(lab.DEFAULT_ADDONS)
    _progress(
        "running as a normal user: not deploying the DNS add-on, which binds port 53 (that needs root, or "
        "net.ipv4.ip_unprivileged_port_start=53 and `--addons coredns_lite`)"
    )
    return []


def _up(args: argparse.Namespace) -> int:
    if args.addons is None:
        args.addons = _default_addons()
    layout = lab.Layout.resolve(args.data_dir)
    remembered = lab.load_settings(layout)
    settings = _settings_from_flags(layout, args)
    pid = lab.running_pid(layout.pid_file(lab.SERVER))
    if pid is not None:
        running = remembered or settings
        print(f"kubelab is already running on {running.server_url} (pid {pid}, data dir {layout.data_dir}).")
        if settings != running:
            print(
                "The flags given differ from the running lab's settings and were not applied; "
                f"run `{_suggest(args, layout, 'down')}` first to change them."
            )
        failed = _restart_missing(layout, running, timeout=args.timeout)
        if failed:
            return failed
        _print_next_steps(args, layout)
        return EXIT_OK

    lab.check_port_free(host=settings.bind_address, port=settings.api_port)
    _progress(f"{'resuming the lab' if remembered else 'creating a lab'} in {layout.data_dir}")
    _progress("checking certificates…" if remembered else "generating certificates…")
    pki = lab.prepare(layout, settings)
    _progress(f"  {_describe_outcomes(pki.outcomes)}")
    _progress(f"starting API server on {settings.server_url} (store {settings.store_url})…")
    spawned = lab.spawn(
        name=lab.SERVER, argv=lab.server_command(layout, settings), log_file=layout.log_file(lab.SERVER)
    )
    _progress(f"waiting for /readyz (pid {spawned.pid}, log {spawned.log_file})…")
    try:
        elapsed = lab.wait_until_ready(
            spawned=spawned,
            url=settings.server_url,
            context=lab.lab_ssl_context(layout),
            timeout=args.timeout,
        )
    except lab.StartError as exc:
        lines = [f"kubelab up: error: {exc}."]
        if exc.log_lines:
            lines.append(f"Last lines of {exc.log_file}:")
            lines += [f"    {text}" for line in exc.log_lines for text in _readable_log_line(line)]
        else:
            lines.append(f"It wrote nothing to {exc.log_file}.")
        lines.append(f"To watch it start, run it in the foreground: {_suggest(args, layout, 'server')}")
        print("\n".join(lines), file=sys.stderr)
        return EXIT_FAILED
    _progress(f"API server ready in {elapsed:.1f}s")
    try:
        created = asyncio.run(lab.ensure_default_storage_class(layout))
    except lab.AddonError as exc:
        print(f"kubelab up: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if created is not None:
        _progress(f"  {created} (the default)")
    _start_controllers(layout, settings)
    if settings.nodes:
        since = time.time() - 1.0  # Ready conditions have whole-second resolution
        restarted = frozenset(
            lab.node_name(index)
            for index in range(1, settings.nodes + 1)
            if lab.running_pid(layout.pid_file(lab.node_name(index))) is None
        )
        failed = _start_nodes(layout, settings, timeout=args.timeout)
        if failed:
            return failed
        failed = _deploy_addons(
            layout,
            names=args.addons,
            timeout=args.timeout,
            restarted_nodes=restarted,
            since=since,
        )
        if failed:
            return failed
    elif args.addons:
        _progress(f"no nodes: add-ons {', '.join(args.addons)} not deployed (they run as pods)")
    print(f"kubelab is up on {settings.server_url} (pid {spawned.pid}, data dir {layout.data_dir}).")
    _print_next_steps(args, layout)
    return EXIT_OK


def _start_controllers(layout: lab.Layout, settings: lab.Settings) -> None:
    if lab.running_pid(layout.pid_file(lab.CONTROLLERS)) is None:
        lab.spawn(
            name=lab.CONTROLLERS,
            argv=lab.controllers_command(layout, settings),
            log_file=layout.log_file(lab.CONTROLLERS),
        )
        _progress(
            f"started the controller manager and the scheduler (log {layout.log_file(lab.CONTROLLERS)}; "
            f"health and metrics on https://127.0.0.1:{DEFAULT_CONTROLLERS_SECURE_PORT} for the controller "
            f"manager, https://127.0.0.1:{DEFAULT_SCHEDULER_SECURE_PORT} for the scheduler)"
        )


def _restart_missing(layout: lab.Layout, settings: lab.Settings, *, timeout: float) -> int:
    """On a running lab, start again whatever of it died (controllers, node agents)."""
    _start_controllers(layout, settings)
    if settings.nodes:
        return _start_nodes(layout, settings, timeout=timeout)
    return EXIT_OK


def _start_nodes(layout: lab.Layout, settings: lab.Settings, *, timeout: float) -> int:
    """Spawn the node agents that are not running and wait until every Node is Ready.

    Returns an exit code: 0 when all are Ready, EXIT_FAILED (after saying why) otherwise.
    """
    names = [lab.node_name(index) for index in range(1, settings.nodes + 1)]
    since = time.time() - 1.0  # heartbeats have whole-second resolution
    for index, name in enumerate(names, start=1):
        if lab.running_pid(layout.pid_file(name)) is None:
            # node N's address is fixed by the address plan: a second lab cannot have it too
            lab.check_node_address_free(index)
    starting = [name for name in names if lab.running_pid(layout.pid_file(name)) is None]
    spawned = [
        lab.spawn(name=name, argv=lab.node_command(layout, settings, index), log_file=layout.log_file(name))
        for index, name in enumerate(names, start=1)
        if name in starting
    ]
    if starting:
        _progress(f"starting node agents {', '.join(starting)} (logs in {layout.logs_dir})…")
    context = lab.admin_ssl_context(layout)
    started = time.monotonic()
    ready: set[str] = set()
    while time.monotonic() - started < timeout:
        # A node agent started now must report after it started (the Node still shows the
        # last run's status); one that kept running only has to be Ready.
        ready = lab.ready_nodes(url=settings.server_url, context=context, since=since) | (
            lab.ready_nodes(url=settings.server_url, context=context) - set(starting)
        )
        if ready >= set(names):
            _progress(
                f"{len(names)} node{'s' if len(names) > 1 else ''} Ready in {time.monotonic() - started:.1f}s"
            )
            return EXIT_OK
        if any(lab.exit_code(process) is not None for process in spawned):
            break
        time.sleep(0.1)
    waiting = sorted(set(names) - ready)
    print(
        f"kubelab up: error: node{'s' if len(waiting) > 1 else ''} {', '.join(waiting)} did not become Ready "
        f"within {timeout:g}s; see {', '.join(str(layout.log_file(name)) for name in waiting)}. "
        "The control plane keeps running; `kubelab down` stops everything.",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _deploy_addons(
    layout: lab.Layout,
    *,
    names: list[str],
    timeout: float,
    restarted_nodes: frozenset[str],
    since: float,
) -> int:
    """Apply each add-on's manifest and wait until its Deployments are available (their pods
    on the node agents just started Ready as of ``since``, not as the last run left them).

    Returns an exit code: 0 when every add-on is available, EXIT_FAILED (after saying why) otherwise.
    """
    for name in names:
        objects = lab.addon_objects(name)
        _progress(f"deploying add-on {name} ({len(objects)} objects)…")
        try:
            for applied in asyncio.run(lab.apply_objects(layout, objects)):
                _progress(f"  {applied}")
            elapsed = asyncio.run(
                lab.wait_for_deployments(
                    layout, objects, within=timeout, restarted_nodes=restarted_nodes, since=since
                )
            )
        except lab.AddonError as exc:
            print(
                f"kubelab up: error: add-on {name}: {exc}. The lab keeps running; "
                f"`kubelab up --no-addons` skips add-ons, `kubelab down` stops everything.",
                file=sys.stderr,
            )
            return EXIT_FAILED
        _progress(f"add-on {name} available in {elapsed:.1f}s")
    return EXIT_OK


def _node(args: argparse.Namespace) -> int:
    layout = lab.Layout.resolve(args.data_dir)
    _configure_logging(args.log_level or "info")
    if not all(layout.component_kubeconfig(component).is_file() for component in (args.name, lab.PROXY)):
        raise lab.LabError(
            f"there are no credentials for node {args.name} in {layout.data_dir}; "
            f"`kubelab up --nodes N` creates them for node-1 .. node-N"
        )
    with lab.claim_pidfile(layout.pid_file(args.name), name=args.name):
        log.info("node agent starting", extra={"node": args.name, "ip": args.node_ip, "pid": os.getpid()})
        _run(_node_until_signalled(layout, name=args.name, ip=args.node_ip))
    log.info("node agent stopped", extra={"node": args.name})
    return EXIT_OK


async def _node_until_signalled(layout: lab.Layout, *, name: str, ip: str) -> None:
    """The kubelet (with its HTTP API, as ``system:node:<name>``) and the service proxy (as
    ``system:kube-proxy``) of one node, until a signal."""
    from control.client.config import load_kubeconfig
    from control.kubelet.agent import run_node_agent
    from control.kubelet.server import kubelet_api
    from control.proxy.run import run_proxy

    stop = _stop_on_signals()
    config = load_kubeconfig(layout.component_kubeconfig(name))
    proxy_config = load_kubeconfig(layout.component_kubeconfig(lab.PROXY))
    await asyncio.gather(
        _keep_running(
            "kubelet",
            lambda: run_node_agent(
                config=config,
                node_name=name,
                node_ip=ip,
                data_dir=layout.data_dir / "nodes" / name,
                stop=stop,
                servers=[kubelet_api(pki=layout.pki)],
            ),
            stop,
        ),
        _keep_running(
            "proxy", lambda: run_proxy(config=proxy_config, node_ip=ip, node_name=name, stop=stop), stop
        ),
    )


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM/SIGINT; a second signal exits at once."""
    stop = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second signal: exiting immediately", extra={"signal": signum.name})
            os._exit(EXIT_FAILED)
        log.info("signal received: shutting down", extra={"signal": signum.name})
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def _down(args: argparse.Namespace) -> int:
    layout = lab.Layout.resolve(args.data_dir)
    stopped = lab.stop_processes(layout, timeout=args.timeout)
    orphans = lab.sweep_orphan_containers(layout)
    if orphans:
        print(
            f"killed {orphans} container{'s' if orphans > 1 else ''} left running by a node agent that died"
        )
    if not stopped:
        print(f"nothing is running in {layout.data_dir}")
        return EXIT_OK
    for process in stopped:
        how = f" with SIGKILL: it ignored SIGTERM for {args.timeout:g}s" if process.killed else ""
        print(f"stopped {process.name} (pid {process.pid}){how}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    layout = lab.Layout.resolve(args.data_dir)
    processes = lab.running_processes(layout)
    server = next((process for process in processes if process.name == lab.SERVER), None)
    if server is None:
        if lab.load_settings(layout) is None:
            print(f"kubelab: no lab in {layout.data_dir}; create one with `{_suggest(args, layout, 'up')}`")
        else:
            print(
                f"kubelab: not running (data dir {layout.data_dir}); start it with `{_suggest(args, layout, 'up')}`"
            )
        return EXIT_NOT_RUNNING
    settings = lab.load_settings(layout) or lab.Settings()
    readiness = lab.probe_readyz(url=settings.server_url, context=lab.lab_ssl_context(layout))
    rows = [
        ("state", "running" if readiness.ok else "running, not ready"),
        ("pid", str(server.pid)),
        ("url", settings.server_url),
        ("store", settings.store_url),
        ("readyz", readiness.detail if readiness.ok else f"failed: {readiness.detail}"),
        ("kubeconfig", str(layout.kubeconfig)),
        ("data dir", str(layout.data_dir)),
        ("log", str(layout.log_file(lab.SERVER))),
    ]
    rows += [(process.name, f"running (pid {process.pid})") for process in processes if process is not server]
    width = max(len(name) for name, _ in rows) + 1
    print("\n".join(f"{name + ':':<{width}} {value}" for name, value in rows))
    return EXIT_OK if readiness.ok else EXIT_FAILED


def _kubeconfig(args: argparse.Namespace) -> int:
    layout = lab.Layout.resolve(args.data_dir)
    if not layout.kubeconfig.is_file():
        raise lab.LabError(
            f"there is no kubeconfig in {layout.data_dir}; run `{_suggest(args, layout, 'up')}` first"
        )
    if (args.groups or args.validity_period is not None) and args.user is None:
        print(
            "kubelab kubeconfig: error: --group and --validity-period need --user (the admin kubeconfig is fixed)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.user is None:
        content = layout.kubeconfig.read_bytes()
    else:
        content = lab.user_kubeconfig(
            layout,
            user=args.user,
            groups=tuple(dict.fromkeys(args.groups)),
            validity=args.validity_period or LEAF_VALIDITY,
        )
    if args.output is not None:
        # 0600 from the start: the file holds a private key.
        write_file_atomically(Path(args.output), content, mode=0o600)
        whose = "the admin" if args.user is None else f"user {args.user!r}"
        _progress(f"wrote a kubeconfig for {whose} to {args.output}")
    elif args.print or args.user is not None:
        sys.stdout.buffer.write(content)
    else:
        print(layout.kubeconfig)
    return EXIT_OK


def _smoke(args: argparse.Namespace) -> int:
    """Run a smoke test against a cluster: --kubeconfig, else this lab's kubeconfig when there
    is one, else the kubeconfig loading rules (KUBECONFIG, ~/.kube/config)."""
    from control.client import ConfigError, load_config
    from control.client.errors import RequestError
    from control.smoke.dns import SmokeError, run_dns_smoke

    kubeconfig = args.kubeconfig
    if kubeconfig is None and (args.data_dir is not None or not os.environ.get("KUBECONFIG")):
        lab_kubeconfig = lab.Layout.resolve(args.data_dir).kubeconfig
        if lab_kubeconfig.is_file():
            kubeconfig = str(lab_kubeconfig)
    try:
        config = load_config(kubeconfig=kubeconfig)
    except ConfigError as exc:
        raise lab.LabError(f"{exc}; pass --kubeconfig") from exc
    _progress(f"dns smoke test against {config.server}…")
    try:
        report = asyncio.run(
            run_dns_smoke(
                config,
                kubeconfig=kubeconfig,
                zone=args.zone,
                wait=args.timeout,
                external_name=args.external_name,
                external_answer=args.external_answer,
            )
        )
    except (SmokeError, RequestError) as exc:
        print(f"kubelab smoke dns: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(report.table())
    return EXIT_OK if report.passed else EXIT_FAILED


# --- running the server -------------------------------------------------------------------


CONTROL_PLANE = ("apiserver", "controller-manager", "scheduler")


def _components(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in CONTROL_PLANE]
    if unknown or not chosen:
        raise lab.SettingsError(f"--components {text!r}: choose one or more of {', '.join(CONTROL_PLANE)}")
    return chosen


def _secure_ports(args: argparse.Namespace, *, components: tuple[str, ...]) -> dict[str, int]:
    """The secure port of each of ``components`` that serves one (port 0: none), by component.

    Two components of one process on the same port is a SettingsError naming both flags: the
    second could never listen."""
    given = {"controller-manager": args.controllers_secure_port, "scheduler": args.scheduler_secure_port}
    ports = {component: port for component, port in given.items() if port and component in components}
    if len(set(ports.values())) < len(ports):
        raise lab.SettingsError(
            f"{' and '.join(_SECURE_PORT_FLAGS[component] for component in ports)} are both "
            f"{next(iter(ports.values()))}; each component needs a port of its own (0 for none)"
        )
    return ports


def _controllers(layout: lab.Layout, *, components: tuple[str, ...], secure_ports: Mapping[str, int]) -> int:
    """The controller manager and/or the scheduler without the API server: a process of
    their own (what `up` runs, so they use the second CPU), as clients of the lab's API."""
    try:
        with lab.claim_pidfile(layout.pid_file(lab.CONTROLLERS), name=lab.CONTROLLERS):
            log.info(
                "control-plane components starting", extra={"components": components, "pid": os.getpid()}
            )
            _run(_components_until_signalled(layout, components=components, secure_ports=secure_ports))
    except lab.LabError as exc:
        log.error(str(exc))
        return EXIT_FAILED
    log.info("control-plane components stopped")
    return EXIT_OK


async def _components_until_signalled(
    layout: lab.Layout, *, components: tuple[str, ...], secure_ports: Mapping[str, int]
) -> None:
    stop = _stop_on_signals()
    await asyncio.gather(
        *_start_components(layout, components=components, stop=stop, secure_ports=secure_ports)
    )


async def _serve_until_signalled(
    options: APIServerOptions,
    *,
    url: str,
    layout: lab.Layout,
    components: tuple[str, ...] = CONTROL_PLANE,
    secure_ports: Mapping[str, int] | None = None,
) -> None:
    """The API server, then (once it is ready) the controller manager and the scheduler in
    the same event loop, each as its own API client, until SIGTERM/SIGINT."""
    from control.apiserver.server import serve

    stop = _stop_on_signals()
    ready = asyncio.Event()

    def on_ready() -> None:
        log.info("API server ready", extra={"url": url})
        ready.set()

    tasks = [asyncio.create_task(serve(options, stop=stop, on_ready=on_ready), name="apiserver")]
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({tasks[0], waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if ready.is_set():
        tasks.extend(_start_components(layout, components=components, stop=stop, secure_ports=secure_ports))
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()


def _start_components(
    layout: lab.Layout,
    *,
    components: tuple[str, ...],
    stop: asyncio.Event,
    secure_ports: Mapping[str, int] | None = None,
) -> list[asyncio.Task[None]]:
    """Tasks running ``components`` (controller-manager, scheduler) until ``stop``; each one named in
    ``secure_ports`` also serves its own health and metrics over HTTPS on 127.0.0.1:<port>, as
    kube-controller-manager on 10257 and kube-scheduler on 10259.

    Everything that can fail (options, kubeconfigs, the serving certificate) is done before the
    first task starts, so a failure leaves nothing running."""
    from control.client.config import load_kubeconfig

    ports = {component: port for component, port in (secure_ports or {}).items() if component in components}
    configs = {
        component: load_kubeconfig(layout.component_kubeconfig(component))
        for component in ("controller-manager", "scheduler")
        if component in components
    }
    if ports:
        _ensure_serving_certificate(layout)
    # Each component's start is bound to its own configuration now (functools.partial), not
    # looked up when it (re)starts: a closure over one `config` variable would hand every
    # component the last one loaded.
    started = []
    if "controller-manager" in components:
        from control.controllers.manager import (
            ControllerOptions,
            OptionsError,
            expect_informer_sync,
            run_controller_manager,
        )
        from control.controllers.metrics import install_workqueue_metrics

        try:
            environment = ControllerOptions.from_environment()
        except OptionsError as exc:
            raise lab.LabError(f"controller manager: {exc}") from exc
        # Each controller as its own ServiceAccount, so RBAC holds it to what it does (kubeadm
        # runs kube-controller-manager with --use-service-account-credentials too).
        options = dataclasses.replace(
            environment,
            use_service_account_credentials=True,
            storage_dir=str(lab.storage_dir(layout)),  # the local-path provisioner's volumes
            # the CSR signer signs with the lab CA, which the API server trusts for client certificates
            cluster_signing_cert_file=str(layout.pki.ca_cert),
            cluster_signing_key_file=str(layout.pki.ca_key),
        )
        config = configs["controller-manager"]
        manager_extra: dict[str, Any] = {}
        if "controller-manager" in ports:
            serving = _secure_port(
                layout,
                component="controller-manager",
                port=ports["controller-manager"],
                config=config,
                stop=stop,
            )
            # The controllers build their own queues: the provider is process-wide, the manager's.
            install_workqueue_metrics(serving.registry)
            expect_informer_sync(serving.checks)
            config = serving.config
            manager_extra["health"] = serving.checks
            manager_extra["registry"] = serving.registry
            started.append(serving.task)
        started.append(
            asyncio.create_task(
                _keep_running(
                    "controller-manager",
                    functools.partial(
                        run_controller_manager, config=config, stop=stop, options=options, **manager_extra
                    ),
                    stop,
                ),
                name="controller-manager",
            )
        )
    if "scheduler" in components:
        from control.scheduler.run import expect_handler_sync, run_scheduler

        scheduler_config = configs["scheduler"]
        scheduler_extra: dict[str, Any] = {}
        if "scheduler" in ports:
            serving = _secure_port(
                layout, component="scheduler", port=ports["scheduler"], config=scheduler_config, stop=stop
            )
            expect_handler_sync(serving.checks)
            scheduler_config = serving.config
            scheduler_extra.update(registry=serving.registry, health=serving.checks)
            started.append(serving.task)
        started.append(
            asyncio.create_task(
                _keep_running(
                    "scheduler",
                    functools.partial(run_scheduler, config=scheduler_config, stop=stop, **scheduler_extra),
                    stop,
                ),
                name="scheduler",
            )
        )
    return started


def _ensure_serving_certificate(layout: lab.Layout) -> None:
    """The secure ports' serving certificate (``localhost`` and 127.0.0.1, from the lab CA; one for
    both components, as they serve on the same address)."""
    from control.pki import ensure_controllers_serving_certificate, load_ca

    files = layout.pki
    try:
        ca = load_ca(cert_file=files.ca_cert, key_file=files.ca_key)
        ensure_controllers_serving_certificate(files=files, ca=ca)
    except (PKIError, OSError) as exc:
        raise lab.LabError(f"the secure ports' serving certificate: {exc}") from exc


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Serving:
    """One component's secure port: ``config`` is the component's client configuration with its
    requests counted in ``registry``, which ``task`` serves with ``checks``."""

    config: ClientConfig
    registry: CollectorRegistry
    checks: HealthChecks
    task: asyncio.Task[None]


def _secure_port(
    layout: lab.Layout, *, component: str, port: int, config: ClientConfig, stop: asyncio.Event
) -> _Serving:
    """``component``'s own metrics registry (its REST client requests counted there through its
    client configuration), its health checks, and the task serving both on 127.0.0.1:<port> with
    the certificate :func:`_ensure_serving_certificate` made. Authentication and authorization are
    asked of the API server as the component's own user (upstream lets both the controller manager
    and the scheduler create token and access reviews)."""
    from control.controllers.metrics import component_registry, with_request_metrics
    from control.controllers.metrics_serving import ServingConfig
    from control.healthz import HealthChecks

    files = layout.pki
    registry = component_registry()
    counted = with_request_metrics(config, registry=registry)
    checks = HealthChecks()
    checks.add("shutdown", lambda: "shutting down" if stop.is_set() else None, endpoints=("readyz",))
    serving = ServingConfig(
        port=port,
        cert_file=files.controllers_serving_cert,
        key_file=files.controllers_serving_key,
        client_ca_file=files.ca_cert,
    )
    task = asyncio.create_task(
        _serve_secure_port(
            component=component,
            config=serving,
            client_config=counted,
            checks=checks,
            registry=registry,
            stop=stop,
        ),
        name=f"{component} secure port",
    )
    return _Serving(config=counted, registry=registry, checks=checks, task=task)


async def _serve_secure_port(
    *,
    component: str,
    config: ServingConfig,
    client_config: ClientConfig,
    checks: HealthChecks,
    registry: CollectorRegistry,
    stop: asyncio.Event,
) -> None:
    """Serve until ``stop``; an address already taken is logged and the component runs on without."""
    from control.controllers.metrics_serving import ServingError, serve_until_stopped

    try:
        await serve_until_stopped(
            component=_UPSTREAM_NAMES[component],
            config=config,
            client_config=client_config,
            checks=checks,
            registry=registry,
            stop=stop,
        )
    except ServingError as exc:
        log.error(
            "%s; the %s runs on without health and metrics serving "
            "(choose another port with %s, or 0 for none)",
            exc,
            component,
            _SECURE_PORT_FLAGS[component],
        )


async def _keep_running(
    name: str, start: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    """Run a component until ``stop``; a crash is logged and the component restarted, so it
    never takes the API server in the same process down with it."""
    while not stop.is_set():
        try:
            await start()
        except Exception:
            log.exception("%s failed; restarting in 5 s", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5.0)


# The long-running processes hold large, long-lived object graphs (caches of every pod, watch
# buffers) and allocate many short-lived dicts per request; with CPython's default thresholds
# (700, 10, 10) the collector rescans that graph many times a second under load, which made a
# 10,000-pod Table LIST twice as slow. A larger first generation keeps collections rare (Go's
# GOGC plays the same part for kube-apiserver).
GC_THRESHOLDS = (50_000, 20, 100)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (the `fast` extra), else asyncio's loop, with
    the collector tuned for a long-running server (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


# One JSON object per line; LogRecord's own attributes are not copied as extra fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JSONLogFormatter(logging.Formatter):
    """``{"time", "level", "logger", "msg", ...extra fields, "error"}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES:
                event[key] = value
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return orjson.dumps(event, default=str).decode()


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONLogFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


# --- output helpers -----------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _readable_log_line(line: str) -> list[str]:
    """A JSON log event as `level msg key=value...`, its traceback below; other lines as they are."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [line]
    if not isinstance(event, dict) or "msg" not in event:
        return [line]
    error = event.pop("error", None)
    head = [str(event.pop("level", "")), str(event.pop("msg"))]
    head += [f"{key}={value}" for key, value in event.items() if key not in ("time", "logger")]
    return [" ".join(head), *(f"    {text}" for text in str(error or "").splitlines())]


def _describe_outcomes(outcomes: dict[str, Outcome]) -> str:
    parts = []
    for outcome in (Outcome.CREATED, Outcome.RENEWED, Outcome.REUSED):
        names = [name for name, done in outcomes.items() if done is outcome]
        if names:
            parts.append(f"{outcome.value} {', '.join(names)}")
    return "; ".join(parts)


def _suggest(args: argparse.Namespace, layout: lab.Layout, command: str) -> str:
    """`kubelab <command>` for this same lab, spelled so the user can paste it: the program
    as they invoked it (e.g. .venv/bin/kubelab) unless `kubelab` on PATH is the same, and
    --data-dir when they named one."""
    program = "kubelab"
    invoked = Path(sys.argv[0])
    if invoked.name == "kubelab" and shutil.which("kubelab") != str(invoked.absolute()):
        program = sys.argv[0]
    flag = f" --data-dir {shlex.quote(str(layout.data_dir))}" if args.data_dir is not None else ""
    return f"{shlex.quote(program)} {command}{flag}"


def _print_next_steps(args: argparse.Namespace, layout: lab.Layout) -> None:
    print(
        f"\nkubeconfig: {layout.kubeconfig}\n\n"
        "Next:\n"
        f"  export KUBECONFIG={shlex.quote(str(layout.kubeconfig))}\n"
        "  kubectl get ns\n"
        f"  {_suggest(args, layout, 'status')}\n"
        f"  {_suggest(args, layout, 'down')}"
    )


# --- flags --------------------------------------------------------------------------------


def _settings_from_flags(layout: lab.Layout, args: argparse.Namespace) -> lab.Settings:
    return lab.resolve_settings(
        layout,
        api_port=args.api_port,
        bind_address=args.bind_address,
        store_url=args.store,
        log_level=args.log_level,
        nodes=getattr(args, "nodes", None),
    )


def _port(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (e.g. 6443)")
    return _checked(lab.validate_port, int(text))


def _secure_port_number(text: str) -> int:
    return 0 if text == "0" else _port(text)


def _bind_address(text: str) -> str:
    return _checked(lab.validate_bind_address, text)


def _store(text: str) -> str:
    return _checked(lab.validate_store_url, text)


def _node_count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of nodes")
    return _checked(lab.validate_node_count, int(text))


def _validity(text: str) -> timedelta:
    return _checked(lab.parse_validity, text)


def _identity_name(text: str) -> str:
    return _checked(lab.validate_identity_name, text)


def _addon_list(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    return _checked(lab.validate_addons, names)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _checked(validator: Callable[[_T], _T], value: _T) -> _T:
    """Turn a validator's ValueError into the argparse error that shows its message."""
    try:
        return validator(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_FORMATTER = argparse.RawDescriptionHelpFormatter

_TOP_EPILOG = """\
examples:
  kubelab up                         start a lab in ./.kubelab on https://127.0.0.1:6443
  export KUBECONFIG=$PWD/.kubelab/kubeconfig; kubectl get ns
  kubelab status                     is it running and ready?
  kubelab down                       stop it (`kubelab up` resumes it, objects intact)
  kubelab up --data-dir /tmp/lab2 --api-port 6444    a second lab beside the first

exit codes: 0 ok, 1 failed (the message says why and what to do), 2 bad usage,
3 `status` found no running lab, 130 interrupted.
Run `kubelab <command> --help` for each command's flags."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelab",
        description="A lab-sized, Kubernetes-compatible control plane on one machine, driven with the real kubectl.",
        epilog=_TOP_EPILOG,
        formatter_class=_FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"kubelab {_version()}")
    parser.set_defaults(command=None)

    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"the lab's data directory (default: ${lab.DATA_DIR_ENV} if set, else ./{lab.DEFAULT_DATA_DIR})",
    )
    server_flags = argparse.ArgumentParser(add_help=False)
    server_flags.add_argument(
        "--api-port",
        type=_port,
        metavar="PORT",
        help="port the API server listens on (default: the port this data dir used last, else 6443)",
    )
    server_flags.add_argument(
        "--bind-address",
        type=_bind_address,
        metavar="IP",
        help="IPv4 address to listen on; 0.0.0.0 for every interface "
        "(default: the one this data dir used last, else 127.0.0.1)",
    )
    server_flags.add_argument(
        "--store",
        type=_store,
        metavar="URL",
        help="where objects are kept: sqlite:// (DIR/state.db), sqlite:///abs/path.db, or "
        "etcd://HOST:PORT[,HOST:PORT...] (etcd+https:// for TLS) "
        "(default: the store this data dir used last, else sqlite://)",
    )
    server_flags.add_argument(
        "--log-level",
        choices=lab.LOG_LEVELS,
        help="least severe log events written (default: the level this data dir used last, else info)",
    )

    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    up = commands.add_parser(
        "up",
        parents=[data_dir, server_flags],
        formatter_class=_FORMATTER,
        help="start a lab in the background (or resume one) and wait until it is ready",
        description=(
            "Prepare the data directory (certificates, kubeconfig, lab.json), start `kubelab server` in the\n"
            "background (log in DIR/logs/server.log, pid in DIR/server.pid) and return once GET /readyz\n"
            "answers 200. On an existing data directory the lab resumes with its objects, and flags not\n"
            "given keep the values it used last. If the lab is already running, say so and change nothing."
        ),
        epilog=(
            "examples:\n"
            "  kubelab up\n"
            "  kubelab up --data-dir /tmp/lab2 --api-port 6444\n"
            "  kubelab up --store etcd://127.0.0.1:2379\n"
            "  kubelab up --bind-address 0.0.0.0 --log-level debug"
        ),
    )
    up.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_UP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for /readyz before stopping the server and failing (default: {DEFAULT_UP_TIMEOUT:g})",
    )
    up.add_argument(
        "--nodes",
        type=_node_count,
        default=None,
        metavar="N",
        help="node agents to run: node-1 .. node-N on 127.100.0.1 .. 127.100.0.N "
        "(default: the number this data dir used last, else 1; 0 for a control plane only)",
    )
    addons = up.add_mutually_exclusive_group()
    addons.add_argument(
        "--addons",
        type=_addon_list,
        default=None,
        metavar="LIST",
        help="add-ons to deploy once the nodes are Ready, comma-separated, from addons/<name>/manifest.yaml "
        f"(default: {','.join(lab.DEFAULT_ADDONS)} as root; none as a normal user, since the DNS add-on "
        "binds port 53)",
    )
    addons.add_argument(
        "--no-addons", dest="addons", action="store_const", const=[], help="deploy no add-ons"
    )
    up.set_defaults(command="up", run=_up)

    node = commands.add_parser(
        "node",
        parents=[data_dir],
        formatter_class=_FORMATTER,
        help="run one node agent (kubelet + service proxy) in the foreground",
        description=(
            "Run the node agent of one lab node in the foreground until SIGTERM or Ctrl-C: the kubelet\n"
            "(registers the Node, renews its Lease, runs the pods bound to it as processes, serves its\n"
            "HTTPS API on <node-ip>:10250) and the service proxy (ClusterIPs and NodePorts). Its files\n"
            "are in DIR/nodes/<name>/. `kubelab up --nodes N` runs node-1 .. node-N in the background."
        ),
        epilog="examples:\n  kubelab node --name node-2 --node-ip 127.100.0.2",
    )
    node.add_argument("--name", required=True, help="the Node's name (node-N, with credentials from `up`)")
    node.add_argument("--node-ip", required=True, type=_bind_address, help="the node's IP (127.100.0.N)")
    node.add_argument(
        "--log-level",
        choices=lab.LOG_LEVELS,
        default=None,
        help="debug, info, warning or error (default: info)",
    )
    node.set_defaults(command="node", run=_node)

    server = commands.add_parser(
        "server",
        parents=[data_dir, server_flags],
        formatter_class=_FORMATTER,
        help="run the control plane in the foreground",
        description=(
            "Run the control plane in the foreground until SIGTERM or Ctrl-C (a second signal exits at once):\n"
            "the API server, then the controller manager and the scheduler as its clients (--components).\n"
            "Prepares the data directory as `up` does and holds DIR/server.pid while it runs, so `status`\n"
            "and `down` see it. Logs one JSON object per event to stderr. `up` runs this in the background."
        ),
        epilog=(
            "examples:\n"
            "  kubelab server\n"
            "  kubelab server --data-dir /tmp/lab2 --api-port 6444 --log-level debug\n"
            "  kubelab server --store etcd://127.0.0.1:2379,127.0.0.1:22379"
        ),
    )
    server.add_argument(
        "--components",
        default=",".join(CONTROL_PLANE),
        metavar="LIST",
        help="what this process runs, comma-separated: apiserver, controller-manager, scheduler "
        f"(default: {','.join(CONTROL_PLANE)}); without apiserver the process is a client of the "
        "data dir's running API server (`up` runs apiserver and the other two as two processes)",
    )
    server.add_argument(
        "--controllers-secure-port",
        type=_secure_port_number,
        default=DEFAULT_CONTROLLERS_SECURE_PORT,
        metavar="PORT",
        help="serve the controller manager's /healthz, /livez, /readyz (to anyone) and /metrics (its workqueue "
        "and REST client metrics, to users the API server authorizes) over HTTPS on 127.0.0.1:PORT, as "
        f"kube-controller-manager's --secure-port (default: {DEFAULT_CONTROLLERS_SECURE_PORT}; 0 for none)",
    )
    server.add_argument(
        "--scheduler-secure-port",
        type=_secure_port_number,
        default=DEFAULT_SCHEDULER_SECURE_PORT,
        metavar="PORT",
        help="serve the scheduler's /healthz, /livez, /readyz (to anyone) and /metrics (its scheduling and REST "
        "client metrics, to users the API server authorizes) over HTTPS on 127.0.0.1:PORT, as "
        f"kube-scheduler's --secure-port (default: {DEFAULT_SCHEDULER_SECURE_PORT}; 0 for none)",
    )
    _add_aggregation_flags(server)
    server.set_defaults(command="server", run=_server)

    down = commands.add_parser(
        "down",
        parents=[data_dir],
        formatter_class=_FORMATTER,
        help="stop the lab's processes (the data directory is kept)",
        description=(
            "Send SIGTERM to every process of the lab, wait for it to exit, send SIGKILL after --timeout,\n"
            "and remove the pidfiles. The data directory stays, so `kubelab up` resumes the lab.\n"
            "Running it when nothing runs is fine."
        ),
        epilog="examples:\n  kubelab down\n  kubelab down --data-dir /tmp/lab2 --timeout 5",
    )
    down.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_DOWN_TIMEOUT,
        metavar="SECONDS",
        help=f"grace period after SIGTERM before SIGKILL (default: {DEFAULT_DOWN_TIMEOUT:g})",
    )
    down.set_defaults(command="down", run=_down)

    status = commands.add_parser(
        "status",
        parents=[data_dir],
        formatter_class=_FORMATTER,
        help="say whether the lab runs and answers /readyz",
        description=(
            "Print whether the lab's server runs, its pid, URL, store, the /readyz answer and the\n"
            "kubeconfig path. Exit 0 when running and ready, 1 when running but not ready,\n"
            "3 when not running."
        ),
        epilog="examples:\n  kubelab status\n  kubelab status --data-dir /tmp/lab2 || kubelab up --data-dir /tmp/lab2",
    )
    status.set_defaults(command="status", run=_status)

    smoke = commands.add_parser(
        "smoke",
        parents=[data_dir],
        formatter_class=_FORMATTER,
        help="check a cluster add-on end to end (dns)",
        description=(
            "dns: in a fresh namespace, create a ClusterIP Service, a headless Service over a 2-replica\n"
            "StatefulSet, an ExternalName Service and a client pod; query the kube-system/kube-dns\n"
            "Service's clusterIP for A, SRV, PTR, CNAME, pod hostnames and NXDOMAIN, resolve short names\n"
            "from inside the pod, and an external name forwarded upstream (--external-name; without\n"
            "--external-answer, skipped when this machine cannot resolve it either). Prints a\n"
            "table; exit 0 when nothing failed, 1 otherwise. The namespace is deleted at the end.\n"
            "Works against any cluster with a cluster DNS (run it where the DNS clusterIP is reachable)."
        ),
        epilog=(
            "examples:\n  kubelab smoke dns\n  kubelab smoke dns --kubeconfig ~/.kube/config --zone cluster.local\n"
            "  kubelab smoke dns --external-name www.example.test --external-answer 192.0.2.10"
        ),
    )
    smoke.add_argument("test", choices=["dns"], help="which smoke test")
    smoke.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="the cluster (default: this lab's kubeconfig if there is one, else $KUBECONFIG or ~/.kube/config)",
    )
    smoke.add_argument("--zone", default="cluster.local", help="the cluster domain (default: cluster.local)")
    smoke.add_argument(
        "--external-name",
        default="example.com",
        metavar="NAME",
        help="a name outside the cluster that the cluster DNS must forward upstream (default: example.com)",
    )
    smoke.add_argument(
        "--external-answer",
        metavar="IPV4",
        help="the address --external-name must resolve to; the check then never skips",
    )
    smoke.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the pods, and for each answer to become right (default: 60)",
    )
    smoke.set_defaults(command="smoke", run=_smoke)

    kubeconfig = commands.add_parser(
        "kubeconfig",
        parents=[data_dir],
        formatter_class=_FORMATTER,
        help="print the admin kubeconfig's path, or make a kubeconfig for a user",
        description=(
            "Print the path of the lab's admin kubeconfig (user kubernetes-admin in system:masters;\n"
            "certificates embedded, so the file can be copied anywhere).\n\n"
            "With --user, make a kubeconfig for that user instead, as `kubeadm kubeconfig user` does: a new\n"
            "client certificate from the lab CA (CN = the user, one O per --group), valid for a year (or\n"
            "--validity-period), printed or written to -o FILE (mode 0600). The lab keeps no copy. The user\n"
            "may do only what RBAC grants the user or one of the groups: bind a role first, e.g.\n"
            "  kubectl create rolebinding jane-view --clusterrole=view --user=jane -n default"
        ),
        epilog=(
            "examples:\n"
            "  export KUBECONFIG=$(kubelab kubeconfig)\n"
            "  kubelab kubeconfig --print > ~/.kube/kubelab.yaml\n"
            "  kubelab kubeconfig --user jane -o jane.kubeconfig\n"
            "  kubelab kubeconfig --user ci-bot --group developers --group testers > ci.kubeconfig"
        ),
    )
    kubeconfig.add_argument(
        "--print", action="store_true", help="print the kubeconfig itself instead of its path"
    )
    kubeconfig.add_argument(
        "--user",
        type=_identity_name,
        metavar="NAME",
        help="make a kubeconfig with a new client certificate for user NAME (printed unless -o is given)",
    )
    kubeconfig.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        type=_identity_name,
        metavar="GROUP",
        help="a group of the --user (repeat for several); system:masters makes a superuser",
    )
    kubeconfig.add_argument(
        "--validity-period",
        type=_validity,
        metavar="DURATION",
        help="how long the --user's certificate is valid, in hours/minutes/seconds such as 24h or 90m "
        "(default: 8760h, a year; never beyond the lab CA)",
    )
    kubeconfig.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the kubeconfig to FILE (mode 0600) instead of printing it",
    )
    kubeconfig.set_defaults(command="kubeconfig", run=_kubeconfig)
    return parser


def _version() -> str:
    try:
        return metadata.version("kubelab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
