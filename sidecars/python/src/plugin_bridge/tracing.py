"""OpenTelemetry traces of plugin calls.

Every call of a plugin operation (AsyncPluginService Create/Get/Delete, SyncPluginService Do, CorePluginService
Handle/Abort/Finalize) is a SERVER span ``<service>/<method>`` of the tracer ``plugin-bridge-kit``, the child of
the trace context the host sends in the call's gRPC metadata (W3C ``traceparent``/``tracestate``, ``baggage``).
It is the current context while the author's method runs, so the author's own spans and auto-instrumented
clients nest under it. Describe and health are not traced: they say nothing about a task.

The kit installs an SDK tracer provider (OTLP over gRPC, batched) only when the standard OTEL_* environment asks
for traces and the application has not installed a provider of its own; with the application's provider the
kit's spans simply go there. Otherwise the API stays a no-op. The span names and attributes are the ones every
kit shares (docs/architecture.md, "Traces").
"""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from pluginbridge.v1 import task_pb2

from .log import KitLogger

TRACER_NAME = "plugin-bridge-kit"
#: How long a drain waits for the last spans to be exported.
SHUTDOWN_TIMEOUT_SECONDS = 5.0

Metadata = Sequence[Tuple[str, Union[str, bytes]]]


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the environment asks the kit for traces: an OTLP endpoint is set, the SDK is not disabled, and the
    traces exporter is OTLP (the only one the kit ships)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter and exporter != "otlp":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def application_has_provider() -> bool:
    """True once something other than the API's default proxy is the global tracer provider: the application
    (or OTEL_PYTHON_TRACER_PROVIDER) chose one, and the kit must use it rather than install its own."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class InstalledTracing:
    """The SDK tracer provider the kit installed; only the kit flushes and shuts it down."""

    def __init__(self, provider: Any, log: KitLogger) -> None:
        self._provider = provider
        self._log = log

    async def shutdown(self) -> None:
        """Exports the spans still queued and stops the provider, waiting at most SHUTDOWN_TIMEOUT_SECONDS.

        The SDK's flush blocks (and ignores its timeout while an export retries against a collector that is
        down), so it runs on a daemon thread that is simply left behind when the time is up: the sidecar still
        exits on time.
        """

        def flush_and_shut_down() -> None:
            self._provider.force_flush(int(SHUTDOWN_TIMEOUT_SECONDS * 1000))
            self._provider.shutdown()

        worker = threading.Thread(target=flush_and_shut_down, name="plugin-bridge-trace-shutdown", daemon=True)
        worker.start()
        await asyncio.to_thread(worker.join, SHUTDOWN_TIMEOUT_SECONDS)
        if worker.is_alive():
            self._log.warning("spans not exported within the shutdown timeout", seconds=SHUTDOWN_TIMEOUT_SECONDS)


def install_tracing(
    plugin_name: str,
    plugin_version: str,
    instance_id: str,
    log: KitLogger,
) -> Optional[InstalledTracing]:
    """Installs the global SDK tracer provider when the environment asks for traces and the application has none;
    returns it, or None when the kit installed nothing.

    The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, insecure, timeout),
    the batch processor OTEL_BSP_*, the sampler OTEL_TRACES_SAMPLER. The global propagator is left alone: the
    API already builds it from OTEL_PROPAGATORS, whose default is W3C trace context and baggage, and an
    application's own choice must win.

    The API lets a process set its global provider once: a second sidecar started in the same process finds the
    first one's provider installed and uses it, and the first one's stop shuts it down for both.
    """
    if not tracing_requested(os.environ) or application_has_provider():
        return None
    # Imported only here: without traces the kit loads the API alone.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the attributes given here win over it.
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or plugin_name,
            "service.version": plugin_version,
            "service.instance.id": instance_id,
        }
    )
    # No exit hook of the SDK's own: its shutdown can outlast any bound while a collector is down; the kit's
    # drain and stop flush within SHUTDOWN_TIMEOUT_SECONDS instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("exporting traces over OTLP", service=resource.attributes.get("service.name"))
    return InstalledTracing(provider, log)


class _MetadataGetter(Getter[Metadata]):
    """Reads gRPC invocation metadata (key, value) pairs for a propagator; binary (``-bin``) values are skipped."""

    def get(self, carrier: Metadata, key: str) -> Optional[List[str]]:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    def keys(self, carrier: Metadata) -> List[str]:
        return [name for name, _ in carrier]


_METADATA_GETTER = _MetadataGetter()


def _status_code_number(code: grpc.StatusCode) -> int:
    """The numeric gRPC status code (``rpc.grpc.status_code``)."""
    return int(code.value[0])


class CallSpan:
    """The span of one plugin call, from its arrival until it is answered."""

    def __init__(self, span: trace.Span, context: Optional[Context]) -> None:
        self._span = span
        self._context = context

    @contextmanager
    def current(self) -> Iterator[None]:
        """Makes the span the current context inside the block (a task created there keeps it)."""
        if self._context is None:
            yield
            return
        token = otel_context.attach(self._context)
        try:
            yield
        finally:
            otel_context.detach(token)

    def answered(self, response: Message) -> None:
        """Ends the span of a call answered OK, with the phase the answer carries (Get, Do, Handle)."""
        if "phase_info" in response.DESCRIPTOR.fields_by_name and response.HasField("phase_info"):  # type: ignore[attr-defined]
            self._span.set_attribute("pluginbridge.phase", task_pb2.Phase.Name(response.phase_info.phase))  # type: ignore[attr-defined]
        self._span.set_attribute("rpc.grpc.status_code", _status_code_number(grpc.StatusCode.OK))
        self._span.end()

    def failed(self, code: grpc.StatusCode, message: str, crash: Optional[BaseException] = None) -> None:
        """Ends the span of a call answered with a gRPC error; ``crash`` is the unexpected exception behind it."""
        self._span.set_attribute("rpc.grpc.status_code", _status_code_number(code))
        if crash is not None:
            self._span.record_exception(crash)
        self._span.set_status(Status(StatusCode.ERROR, message))
        self._span.end()


#: For calls that are not traced (Describe): nothing recorded, the context untouched.
NOT_TRACED = CallSpan(trace.INVALID_SPAN, None)


class ServerSpans:
    """Starts the SERVER span of each plugin call, with the plugin's identity in its attributes."""

    def __init__(self, plugin_name: str, plugin_version: str, instance_id: str) -> None:
        # The global provider's tracer: the kit's own provider, the application's, or the API's no-op.
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._plugin = {
            "pluginbridge.plugin": plugin_name,
            "pluginbridge.plugin_version": plugin_version,
            "pluginbridge.instance_id": instance_id,
        }

    def start(self, method: MethodDescriptor, request: Message, metadata: Optional[Metadata]) -> CallSpan:
        """The span of a call of ``method``, parented by the context in the call's metadata (a new root when
        there is none; never whatever context happens to be current in the server)."""
        service = method.containing_service.full_name
        parent = propagate.extract(metadata or (), context=Context(), getter=_METADATA_GETTER)
        attributes: dict[str, Any] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method.name,
            **self._plugin,
        }
        # Only the execution's identity: the task context also holds inputs and secrets, which stay out of spans.
        if request.HasField("context"):  # type: ignore[attr-defined]
            execution = request.context.execution_id  # type: ignore[attr-defined]
            attributes["pluginbridge.execution_id"] = execution.id
            attributes["pluginbridge.attempt"] = int(execution.attempt)
        span = self._tracer.start_span(
            f"{service}/{method.name}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        return CallSpan(span, trace.set_span_in_context(span, parent))
