"""How plugin failures become gRPC statuses.

The host reads the status code to decide whose fault a failed call is: INTERNAL, UNAVAILABLE and
DEADLINE_EXCEEDED are system failures it retries; INVALID_ARGUMENT, FAILED_PRECONDITION and the like are user
errors that fail the task with the message. Raise :class:`PluginError` to choose the code; any other exception
becomes INTERNAL with its message.
"""

from __future__ import annotations

import grpc

#: The gRPC status codes, re-exported so plugins need not import grpc: ``GrpcStatus.INVALID_ARGUMENT``.
GrpcStatus = grpc.StatusCode


class PluginError(Exception):
    """Raised by a plugin (or the kit) to answer a call with a chosen gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"PluginError({self.code.name}, {self.message!r})"


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The code and message a call answers with for ``error``: PluginError keeps its code, the rest is INTERNAL."""
    if isinstance(error, PluginError):
        return error.code, error.message
    message = str(error)
    return grpc.StatusCode.INTERNAL, message or type(error).__name__
