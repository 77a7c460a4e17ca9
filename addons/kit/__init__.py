"""The add-on kit: what every kubelab add-on needs around its own logic, one module per concern.

An add-on (``addons/<name>``) is a long-running program that watches the API server through
``control.client`` and is deployed as pods. Each one needs the same frame, so it lives here once
and the add-ons reuse it instead of copying it (an add-on imports ``control.client``, this kit and
nothing else of kubelab's):

- ``serving`` — ``/healthz``, ``/readyz`` and ``/metrics`` (a ``CollectorRegistry`` per component)
  on one or several listeners, with :class:`~addons.kit.serving.Readiness` gates;
- ``logs`` — structured JSON log lines on stderr;
- ``signals`` — SIGTERM/SIGINT as an ``asyncio.Event``, and running a main coroutine on uvloop;
- ``reload`` — a config file watched for changes (mtime + inode + content, as ConfigMap volumes
  swap a symlink);
- ``client`` — client configuration, kubeconfig or in-cluster;
- ``informers`` — starting informers and opening a readiness gate after their first sync;
- ``tracing`` — OpenTelemetry spans when ``OTEL_*`` says so, a no-op otherwise.

See ``addons/kit/README.md`` for the pattern an add-on's ``__main__`` follows.
"""
