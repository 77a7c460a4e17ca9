"""``python -m addons.coredns_lite``: the cluster DNS server.

Flags (each with an environment fallback, for manifests):

- ``--conf PATH`` (``COREDNS_LITE_CONF``, default ``/etc/coredns/Corefile``; ``-conf`` as CoreDNS)
- ``--kubeconfig PATH`` (``COREDNS_LITE_KUBECONFIG``): otherwise the Corefile's ``kubeconfig``,
  else in-cluster, else ``KUBECONFIG`` / ``~/.kube/config``
- ``--workers N`` (``COREDNS_LITE_WORKERS``, default 1): N > 1 runs N SO_REUSEPORT worker
  processes under a supervisor (see ``workers``)
- ``--log-level LEVEL`` (``COREDNS_LITE_LOG_LEVEL``, default ``info``)

Exit status: 0 after a clean stop (SIGTERM/SIGINT), 2 for a bad command line or Corefile (the
message names the keyword), 1 when a listener cannot be bound or the client cannot be configured.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from addons.coredns_lite.instance import COMPONENT, Instance
from addons.coredns_lite.server import ListenError
from addons.coredns_lite.setup import SetupError, load
from addons.coredns_lite.workers import Supervisor, report
from addons.kit.client import ClientSetupError
from addons.kit.heap import configure_heap
from addons.kit.logs import LEVELS, configure_logging
from addons.kit.serving import BindError
from addons.kit.signals import StopSignal, run
from addons.kit.tracing import configure_tracing

log = logging.getLogger("addons.coredns_lite")

DEFAULT_CONF = "/etc/coredns/Corefile"


def parse_args(
    argv: Sequence[str] | None = None, *, environ: dict[str, str] | None = None
) -> argparse.Namespace:
    env = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m addons.coredns_lite", description="kubelab's cluster DNS (CoreDNS-compatible)"
    )
    parser.add_argument(
        "--conf", "-conf", default=env.get("COREDNS_LITE_CONF", DEFAULT_CONF), help="the Corefile"
    )
    parser.add_argument(
        "--kubeconfig", default=env.get("COREDNS_LITE_KUBECONFIG") or None, help="kubeconfig file"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env.get("COREDNS_LITE_WORKERS", "1")),
        help="worker processes (SO_REUSEPORT)",
    )
    parser.add_argument("--log-level", default=env.get("COREDNS_LITE_LOG_LEVEL", "info"), choices=LEVELS)
    parser.add_argument("--report-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    return args


async def serve(args: argparse.Namespace) -> int:
    config, _ = load(args.conf)
    worker = args.report_fd is not None
    with StopSignal() as stop:
        if args.workers > 1 and not worker:
            worker_argv = ["--conf", args.conf, "--workers", "1", "--log-level", args.log_level]
            if args.kubeconfig:
                worker_argv += ["--kubeconfig", args.kubeconfig]
            await Supervisor(config, count=args.workers, worker_argv=worker_argv).run(stop.event)
            return 0
        tracing = configure_tracing(COMPONENT)
        instance = Instance(
            config,
            conf_path=args.conf,
            kubeconfig=args.kubeconfig,
            serve_status=not worker,
            reuse_port=worker,
            tracing=tracing,
        )
        try:
            await instance.start()
            log.info("serving", extra={"servers": instance.metrics.servers})
            if worker:
                await report(
                    args.report_fd,
                    instance_ready=instance.readiness.is_ready,
                    metrics=lambda: instance.metrics,
                    stop=stop.event,
                )
            await stop.wait()
        finally:
            await instance.stop()
            if tracing is not None:
                tracing.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, component=COMPONENT)
    configure_heap()
    try:
        return run(serve(args))
    except SetupError as exc:
        log.error("%s", exc)
        print(f"coredns_lite: {exc}", file=sys.stderr)
        return 2
    except (ListenError, BindError, ClientSetupError) as exc:
        log.error("%s", exc)
        print(f"coredns_lite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
