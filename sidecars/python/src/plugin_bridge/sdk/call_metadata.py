"""Adds entries to the gRPC metadata of every call on a channel (the trace context, the bearer token), so the
calls made through ``BridgeClient.raw`` carry them as the wrapped methods' calls do."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import grpc

Metadata = Optional[Sequence[Tuple[str, Any]]]


class _CallDetails(
    NamedTuple(
        "_CallDetails",
        [
            ("method", str),
            ("timeout", Optional[float]),
            ("metadata", Metadata),
            ("credentials", Optional[grpc.CallCredentials]),
            ("wait_for_ready", Optional[bool]),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails with new metadata: grpcio gives interceptors the fields, not a constructor."""


def replacing(metadata: Metadata, entries: Sequence[Tuple[str, Any]]) -> Metadata:
    """``metadata`` with ``entries`` added; an entry of ``metadata`` under one of their keys is dropped, so a
    call never carries two values where the host expects one."""
    if not entries:
        return metadata
    written = {key for key, _ in entries}
    return [(key, value) for key, value in (metadata or ()) if key not in written] + list(entries)


class MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Passes the metadata of each unary and server-streaming call through ``add`` before it is sent."""

    def __init__(self, add: Callable[[Metadata], Metadata]) -> None:
        self._add = add

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            self._add(details.metadata),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)
