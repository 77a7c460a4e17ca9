"""Several worker processes behind one address (``--workers N``), for more than one core.

Python serves a query on one core at a time, so to use several the supervisor starts N worker
processes (``python -m addons.coredns_lite ... --report-fd FD``). Each is a complete server with
its own informers and prebuilt answers, binding the DNS address with SO_REUSEPORT: the kernel
spreads queries across them. Every worker writes one JSON line per second to its report pipe —
whether it is ready, and a snapshot of its counters — and the supervisor serves the one
``/health``, ``/ready`` and ``/metrics`` for the pod:

- ready when every worker is ready; healthy while every worker runs;
- metrics: the sum of the workers' latest snapshots (plus the final counts of workers that
  exited, so counters never go backwards when one is restarted);
- a worker that exits is started again after a second; SIGTERM is passed on to the workers,
  which stop gracefully (lameduck included), and SIGKILL follows after ``grace`` seconds.

Each informer watch is opened once per worker, so the API server sees N watchers: keep N to the
number of cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from addons.coredns_lite import metrics as metrics_module
from addons.coredns_lite.instance import status_listeners
from addons.coredns_lite.metrics import DNSMetrics
from addons.coredns_lite.setup import Config
from addons.kit.serving import Readiness, StatusServer

log = logging.getLogger(__name__)

REPORT_INTERVAL = 1.0
RESTART_DELAY = 1.0
WORKERS_GATE = "workers"


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    snapshot: dict[str, Any] | None = None
    reader: asyncio.Task[None] | None = None
    restarts: int = 0


class Supervisor:
    """Runs ``count`` workers with ``worker_argv`` (plus ``--report-fd``) and serves their probes."""

    def __init__(
        self, config: Config, *, count: int, worker_argv: Sequence[str], grace: float = 30.0
    ) -> None:
        if count < 2:
            raise ValueError(f"a supervisor needs at least 2 workers, got {count}")
        self.config = config
        self.worker_argv = list(worker_argv)
        self.grace = grace
        self.workers = [_Worker(index) for index in range(count)]
        self.retired = DNSMetrics()
        self.registry = CollectorRegistry()
        metrics_module.register(self.registry, self.merged)
        self.readiness = Readiness()
        self.readiness.add(WORKERS_GATE)
        self.status = StatusServer(
            registry=self.registry, readiness=self.readiness, health_checks=[self._health]
        )
        self._stopping = False
        self._restarts: set[asyncio.Task[None]] = set()

    def merged(self) -> DNSMetrics:
        total = DNSMetrics()
        total.add_snapshot(self.retired.snapshot(), gauges=False)
        for worker in self.workers:
            if worker.snapshot is not None:
                total.add_snapshot(worker.snapshot)
        return total

    def _health(self) -> str | None:
        dead = [str(w.index) for w in self.workers if w.process is None or w.process.poll() is not None]
        return f"workers not running: {', '.join(dead)}" if dead and not self._stopping else None

    def _update_readiness(self) -> None:
        self.readiness.set(WORKERS_GATE, all(worker.ready for worker in self.workers))

    def _spawn(self, worker: _Worker) -> None:
        read_fd, write_fd = os.pipe()
        try:
            worker.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "addons.coredns_lite",
                    *self.worker_argv,
                    "--report-fd",
                    str(write_fd),
                ],
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        worker.ready = False
        worker.reader = asyncio.create_task(
            self._read(worker, read_fd), name=f"worker {worker.index} reports"
        )
        log.info("worker started", extra={"worker": worker.index, "pid": worker.process.pid})

    async def _read(self, worker: _Worker, read_fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                try:
                    report = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                worker.ready = bool(report.get("ready"))
                worker.snapshot = report.get("metrics")
                self._update_readiness()
        finally:
            transport.close()
        # The pipe closed: the worker is gone.
        assert worker.process is not None
        code = await asyncio.to_thread(worker.process.wait)
        if worker.snapshot is not None:
            self.retired.add_snapshot(worker.snapshot, gauges=False)
            worker.snapshot = None
        worker.ready = False
        self._update_readiness()
        if not self._stopping:
            log.error("worker exited; restarting", extra={"worker": worker.index, "code": code})
            worker.restarts += 1
            await asyncio.sleep(RESTART_DELAY)
            if not self._stopping:
                self._spawn(worker)

    async def run(self, stop: asyncio.Event) -> None:
        await self.status.start(status_listeners(self.config))
        try:
            for worker in self.workers:
                self._spawn(worker)
            await stop.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        self.readiness.set(WORKERS_GATE, False)
        running = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), self.grace)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        for worker in self.workers:
            if worker.reader is not None:
                worker.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader
        await self.status.stop()


async def report(fd: int, *, instance_ready: Any, metrics: Any, stop: asyncio.Event) -> None:
    """A worker's side: a JSON line per second on ``fd`` until ``stop``; the pipe closes with us."""
    with os.fdopen(fd, "wb", buffering=0) as pipe:
        while True:
            line = orjson.dumps({"ready": instance_ready(), "metrics": metrics().snapshot()}) + b"\n"
            try:
                pipe.write(line)
            except BrokenPipeError:
                stop.set()  # the supervisor is gone: so are we
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_INTERVAL)
            if stop.is_set():
                return
