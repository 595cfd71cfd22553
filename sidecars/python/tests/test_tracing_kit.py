"""The kit's spans in process, with the test as the application that installed its own tracer provider (an
in-memory exporter): the author's spans nest under the kit's server span, crashes, refusals and cancellations
end it with their status, and the kit's choice of provider follows the environment. A real grpcio server and
client on a unix socket; the plugins are declared here."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Tuple

import grpc
import pytest
from grpc_health.v1 import health_pb2
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from pluginbridge.conformance.v1.conformance_pb2 import Script
from pluginbridge.v1 import plugin_pb2

from helpers import task_context
from plugin_bridge import (
    AsyncPlugin,
    CorePlugin,
    HandleResult,
    Plugin,
    PluginContext,
    ServeOptions,
    Sidecar,
    TaskType,
    phase_running,
    start,
)
from plugin_bridge.grpc_service import client_methods
from plugin_bridge.plugin_services import ASYNC_SERVICE, CORE_SERVICE, METADATA_SERVICE
from plugin_bridge.tracing import TRACER_NAME, tracing_requested

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN_ID = 0xB7AD6B7169203331
CALLER = [("traceparent", f"00-{TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01")]
author = trace.get_tracer("the-author")


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The test process as an application with its own global provider (set once: the API allows no other)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another test installed a global tracer provider first"
    yield memory


@pytest.fixture()
def spans(exporter: InMemorySpanExporter) -> Callable[[], List[ReadableSpan]]:
    exporter.clear()
    return lambda: list(exporter.get_finished_spans())


class Hold:
    """Lets a test keep a plugin call in flight: ``started`` once it runs, it returns once ``release`` is set or
    the call is cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, ctx: PluginContext[Script]) -> None:
        self.started.set()
        released = asyncio.ensure_future(self.release.wait())
        cancelled = asyncio.ensure_future(ctx.cancelled.wait())
        await asyncio.wait({released, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        cancelled.cancel()


def async_plugin(hold: Optional[Hold] = None) -> AsyncPlugin:
    """Create, per execution id: "crash" raises, "hold" waits for the test, anything else makes two spans of the
    author's, one after an await (the context must survive it), and notes the caller's baggage on the first."""

    async def create(ctx: PluginContext[Script]) -> Dict[str, Any]:
        if ctx.execution_id == "crash":
            raise RuntimeError("the remote system is gone")
        if ctx.execution_id == "hold" and hold:
            await hold(ctx)
        with author.start_as_current_span("author-create") as span:
            span.set_attribute("tenant", str(baggage.get_baggage("tenant")))
            await asyncio.sleep(0)
            with author.start_as_current_span("author-inner"):
                pass
        return {"ok": True}

    async def nothing(*_args: Any) -> None:
        return None

    return AsyncPlugin(
        name="traced-kit",
        version="2.1.0",
        task_types=[TaskType("traced-kit", 1)],
        specification=Script,
        create=create,
        get=lambda _ctx, _meta: phase_running("waiting"),
        delete=nothing,
    )


@asynccontextmanager
async def serving(plugin: Plugin, workdir: Path) -> AsyncIterator[Tuple[Sidecar, grpc.aio.Channel]]:
    options = ServeOptions(nats_url=False, endpoint=f"unix:{workdir / 'traced.sock'}", instance_id="traced-kit-1", handle_signals=False)
    sidecar = await start(plugin, options)
    channel = grpc.aio.insecure_channel(sidecar.endpoint)
    try:
        yield sidecar, channel
    finally:
        await channel.close()
        await sidecar.stop()


def create_request(execution_id: str, custom: Optional[Dict[str, Any]] = None) -> plugin_pb2.CreateRequest:
    return plugin_pb2.CreateRequest(context=task_context(execution_id, custom or {}, task_type="traced-kit"))


def named(found: List[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [span for span in found if span.name == name]
    return span


async def until(predicate: Callable[[], Any], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_the_authors_spans_nest_under_the_server_span_of_the_applications_provider(
    workdir: Path, spans: Callable[[], List[ReadableSpan]], exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment asks for traces, but the application has a provider: the kit uses it and installs none.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = trace.get_tracer_provider()
    async with serving(async_plugin(), workdir) as (_, channel):
        assert trace.get_tracer_provider() is provider
        await client_methods(channel, METADATA_SERVICE)["Describe"](plugin_pb2.DescribeRequest(), timeout=5)
        with_baggage = [*CALLER, ("baggage", "tenant=acme")]
        await client_methods(channel, ASYNC_SERVICE)["Create"](create_request("nested"), timeout=5, metadata=with_baggage)

    found = spans()
    assert sorted(span.name for span in found) == ["author-create", "author-inner", "pluginbridge.v1.AsyncPluginService/Create"]
    server = named(found, "pluginbridge.v1.AsyncPluginService/Create")
    assert server.kind == SpanKind.SERVER
    assert server.instrumentation_scope is not None and server.instrumentation_scope.name == TRACER_NAME
    assert server.parent is not None and server.parent.is_remote
    assert (server.context.trace_id, server.parent.span_id) == (TRACE_ID, CALLER_SPAN_ID)
    assert server.attributes is not None
    assert server.attributes["pluginbridge.plugin"] == "traced-kit"
    assert server.attributes["pluginbridge.plugin_version"] == "2.1.0"
    assert server.attributes["pluginbridge.instance_id"] == "traced-kit-1"
    assert server.attributes["pluginbridge.execution_id"] == "nested"
    assert server.attributes["rpc.grpc.status_code"] == 0
    outer, inner = named(found, "author-create"), named(found, "author-inner")
    assert outer.parent is not None and outer.parent.span_id == server.context.span_id
    assert outer.attributes is not None and outer.attributes["tenant"] == "acme"
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert {span.context.trace_id for span in found} == {TRACE_ID}


async def test_a_crash_is_recorded_on_the_span(workdir: Path, spans: Callable[[], List[ReadableSpan]]) -> None:
    async with serving(async_plugin(), workdir) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client_methods(channel, ASYNC_SERVICE)["Create"](create_request("crash"), timeout=5, metadata=CALLER)
    assert raised.value.code() == grpc.StatusCode.INTERNAL

    [span] = spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "the remote system is gone"
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes is not None and event.attributes["exception.type"] == "RuntimeError"


async def test_calls_refused_before_the_plugin_runs_have_their_spans(
    workdir: Path, spans: Callable[[], List[ReadableSpan]]
) -> None:
    hold = Hold()
    async with serving(async_plugin(hold), workdir) as (sidecar, channel):
        calls = client_methods(channel, ASYNC_SERVICE)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await calls["Create"](create_request("bad", {"polls": "many"}), timeout=5, metadata=CALLER)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A call in flight keeps the drain waiting, so the next call meets a draining sidecar.
        held = asyncio.ensure_future(calls["Create"](create_request("hold"), timeout=10))
        await asyncio.wait_for(hold.started.wait(), 10)
        draining = asyncio.ensure_future(sidecar.drain())
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )

        async def not_serving() -> None:
            while (await check(health_pb2.HealthCheckRequest(service=""), timeout=5)).status == health_pb2.HealthCheckResponse.SERVING:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(not_serving(), 10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await calls["Create"](create_request("late"), timeout=5, metadata=CALLER)
        assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNAVAILABLE, "draining")
        hold.release.set()
        await held
        await asyncio.wait_for(draining, 20)

    by_execution = {span.attributes["pluginbridge.execution_id"]: span for span in spans() if span.attributes and span.name.endswith("/Create")}
    invalid = by_execution["bad"]
    assert invalid.status.status_code == StatusCode.ERROR
    assert invalid.status.description is not None and invalid.status.description.startswith("template.custom.polls")
    assert invalid.attributes is not None and invalid.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    late = by_execution["late"]
    assert (late.status.status_code, late.status.description) == (StatusCode.ERROR, "draining")
    assert late.attributes is not None and late.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert late.parent is not None and late.parent.span_id == CALLER_SPAN_ID
    assert by_execution["hold"].attributes["rpc.grpc.status_code"] == 0  # type: ignore[index]


async def test_a_call_its_caller_cancels_ends_cancelled(workdir: Path, spans: Callable[[], List[ReadableSpan]]) -> None:
    hold = Hold()
    async with serving(async_plugin(hold), workdir) as (_, channel):
        call = client_methods(channel, ASYNC_SERVICE)["Create"](create_request("hold"), metadata=CALLER)
        await asyncio.wait_for(hold.started.wait(), 10)
        call.cancel()
        await until(lambda: any(span.name.endswith("/Create") for span in spans()), "the Create span to end")

    span = named(spans(), "pluginbridge.v1.AsyncPluginService/Create")
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "cancelled")
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


async def test_handle_carries_its_phase(workdir: Path, spans: Callable[[], List[ReadableSpan]]) -> None:
    async def nothing(*_args: Any) -> None:
        return None

    plugin = CorePlugin(
        name="traced-core",
        version="1.0.0",
        task_types=[TaskType("traced-core", 1)],
        specification=Script,
        handle=lambda _ctx, _state: HandleResult(phase_running("working")),
        abort=nothing,
        finalize=nothing,
    )
    async with serving(plugin, workdir) as (_, channel):
        context = task_context("core", {}, attempt=3, task_type="traced-core")
        await client_methods(channel, CORE_SERVICE)["Handle"](plugin_pb2.HandleRequest(context=context), timeout=5)

    [span] = spans()
    assert span.name == "pluginbridge.v1.CorePluginService/Handle"
    assert span.parent is None  # no trace context in the call: a root
    assert span.attributes is not None
    assert (span.attributes["pluginbridge.phase"], span.attributes["pluginbridge.attempt"]) == ("PHASE_RUNNING", 3)
    assert (span.attributes["rpc.service"], span.attributes["rpc.method"]) == ("pluginbridge.v1.CorePluginService", "Handle")


@pytest.mark.parametrize(
    "env, requested",
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
    ],
)
def test_which_environment_asks_for_traces(env: Dict[str, str], requested: bool) -> None:
    assert tracing_requested(env) is requested
