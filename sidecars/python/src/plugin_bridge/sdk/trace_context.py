"""Carries the application's trace context to the host: every call the SDK makes gets the current context
written into its gRPC metadata by the global OpenTelemetry propagator (W3C ``traceparent``, ``tracestate`` and
``baggage`` by default), so the host's spans of the task join the caller's trace.

The SDK is a library inside someone's application: it never installs a tracer provider or a propagator. Without
an OpenTelemetry setup in the application there is no active span, and nothing is added.
"""

from __future__ import annotations

from typing import Dict

from opentelemetry import propagate

from .call_metadata import Metadata, replacing


def with_trace_context(metadata: Metadata) -> Metadata:
    """``metadata`` plus the current trace context; an entry of the caller's with a key the propagator writes is
    replaced, so a call never carries two parents."""
    carrier: Dict[str, str] = {}
    propagate.inject(carrier)
    # gRPC metadata keys must be lowercase; a propagator may write them otherwise.
    return replacing(metadata, [(key.lower(), value) for key, value in carrier.items()])
