"""The SDK carries the application's trace context to the host: a small TaskService of the test's own (a real
grpcio server on a loopback port) records the metadata of each call BridgeClient makes."""

from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pluginbridge.v1 import task_service_pb2

from helpers import RecordingTaskService, recording_host
from plugin_bridge.sdk import BridgeClient


@pytest.fixture()
def host() -> Iterator[Tuple[str, RecordingTaskService]]:
    with recording_host() as served:
        yield served


@pytest.fixture()
def w3c_propagator() -> Iterator[None]:
    """The application's propagator: W3C trace context and baggage (put back as it was afterwards)."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    try:
        yield
    finally:
        propagate.set_global_textmap(before)


def values(metadata: List[Tuple[str, str]], key: str) -> List[str]:
    return [value for name, value in metadata if name == key]


def parents(metadata: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """The (trace id, span id) of each ``traceparent``; its flags are the sampler's business."""
    return [tuple(value.split("-")[1:3]) for value in values(metadata, "traceparent")]  # type: ignore[misc]


def ids(span: trace.Span) -> Tuple[str, str]:
    return f"{span.get_span_context().trace_id:032x}", f"{span.get_span_context().span_id:016x}"


def test_every_call_carries_the_active_span(host: Tuple[str, RecordingTaskService], w3c_propagator: None) -> None:
    base_url, service = host
    # A provider of the application's, not made global: the SDK reads only the current context.
    tracer = TracerProvider().get_tracer("the-application")
    with BridgeClient(base_url, metadata=[("x-team", "data"), ("traceparent", "00-stale")]) as client:
        with tracer.start_as_current_span("submit-report") as span:
            token = context.attach(baggage.set_baggage("tenant", "acme"))
            try:
                client.get("exec-1", timeout=5)
                assert [event.execution_id for event in client.watch("exec-1", timeout=5)] == ["exec-1"]
            finally:
                context.detach(token)
    assert [method for method, _ in service.calls] == ["GetTask", "WatchTask"]
    for _, metadata in service.calls:
        # The client's own metadata stays, except the entry the propagator replaces: one parent only.
        assert parents(metadata) == [ids(span)]
        assert values(metadata, "x-team") == ["data"]
        assert values(metadata, "baggage") == ["tenant=acme"]


def test_no_trace_context_without_an_active_span(host: Tuple[str, RecordingTaskService], w3c_propagator: None) -> None:
    base_url, service = host
    assert not trace.get_current_span().get_span_context().is_valid
    with BridgeClient(base_url, metadata=[("x-team", "data")]) as client:
        client.get("exec-2", timeout=5)
        # raw is the same channel: its calls would carry an active span too; here there is none.
        client.raw["GetTask"](task_service_pb2.GetTaskRequest(id="exec-3"), timeout=5)
    assert len(service.calls) == 2
    for _, metadata in service.calls:
        assert values(metadata, "traceparent") == []
        assert values(metadata, "baggage") == []
    assert values(service.calls[0][1], "x-team") == ["data"]


def test_raw_calls_carry_the_active_span(host: Tuple[str, RecordingTaskService], w3c_propagator: None) -> None:
    base_url, service = host
    tracer = TracerProvider().get_tracer("the-application")
    with BridgeClient(base_url) as client, tracer.start_as_current_span("raw") as span:
        client.raw["GetTask"](task_service_pb2.GetTaskRequest(id="exec-4"), timeout=5)
    [(_, metadata)] = service.calls
    assert parents(metadata) == [ids(span)]

