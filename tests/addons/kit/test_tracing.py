"""OpenTelemetry only when OTEL_* asks for it."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from addons.kit.tracing import configure_tracing, span, tracing_enabled


def test_tracing_follows_the_environment() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing_enabled(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert configure_tracing("demo", environ={}) is None


def test_spans_are_exported_when_on_and_free_when_off() -> None:
    with span(None, "nothing") as current:
        assert current is None
    exporter = InMemorySpanExporter()
    tracing = configure_tracing("demo", environ={"OTEL_TRACES_EXPORTER": "console"}, exporter=exporter)
    assert tracing is not None
    with span(tracing, "work", items=3) as current:
        assert current is not None and current.is_recording()
    tracing.shutdown()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "work" and finished.attributes == {"items": 3}
    assert finished.resource.attributes["service.name"] == "demo"
