"""OpenTelemetry spans, only when the environment asks for them.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP) or ``OTEL_TRACES_EXPORTER=console``
turns tracing on; otherwise ``tracer()`` returns None and the request path pays nothing.
"""

from __future__ import annotations

import os

from opentelemetry import trace


def configure_tracer(service_name: str) -> trace.Tracer | None:
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if exporter_name == "none" or (not endpoint and exporter_name != "console"):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("kubelab")
