"""Carries the application's trace context to the host: every call the SDK makes gets the current context
written into its gRPC metadata by the global OpenTelemetry propagator (W3C ``traceparent``, ``tracestate`` and
``baggage`` by default), so the host's spans of the task join the caller's trace.

The SDK is a library inside someone's application: it never installs a tracer provider or a propagator. Without
an OpenTelemetry setup in the application there is no active span, and nothing is added.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import grpc
from opentelemetry import propagate


class _CallDetails(
    NamedTuple(
        "_CallDetails",
        [
            ("method", str),
            ("timeout", Optional[float]),
            ("metadata", Optional[Sequence[Tuple[str, Any]]]),
            ("credentials", Optional[grpc.CallCredentials]),
            ("wait_for_ready", Optional[bool]),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails with new metadata: grpcio gives interceptors the fields, not a constructor."""


def with_trace_context(metadata: Optional[Sequence[Tuple[str, Any]]]) -> Optional[Sequence[Tuple[str, Any]]]:
    """``metadata`` plus the current trace context; an entry of the caller's with a key the propagator writes is
    replaced, so a call never carries two parents."""
    carrier: Dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return metadata
    # gRPC metadata keys must be lowercase; a propagator may write them otherwise.
    injected = [(key.lower(), value) for key, value in carrier.items()]
    written = {key for key, _ in injected}
    return [(key, value) for key, value in (metadata or ()) if key not in written] + injected


class TraceContextInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the current trace context to each unary and server-streaming call on the channel it intercepts."""

    @staticmethod
    def _details(details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            with_trace_context(details.metadata),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)
