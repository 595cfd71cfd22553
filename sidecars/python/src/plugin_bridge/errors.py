"""How plugin failures become gRPC statuses.

The host reads the status code to decide whose fault a failed call is: INTERNAL, UNAVAILABLE and
DEADLINE_EXCEEDED are system failures it retries; INVALID_ARGUMENT, FAILED_PRECONDITION and the like are user
errors that fail the task with the message. Raise :class:`PluginError` to choose the code; any other exception
becomes INTERNAL with its message. Every message is bounded and encodable, however much of the request it
repeats: it travels in a trailer.
"""

from __future__ import annotations

import json

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


#: How many characters of a caller's text a status message repeats.
QUOTED_INPUT_LENGTH = 80


def quote_input(text: str) -> str:
    """A caller's text as a status message may repeat it: JSON-quoted (control characters come out as escapes)
    and cut after 80 characters, followed by ``… (<length> characters)`` when cut, as the host quotes
    (``src/api/error-text.ts``). A 64 KiB id repeated whole would not fit the trailer the message travels in."""
    if len(text) <= QUOTED_INPUT_LENGTH:
        return json.dumps(text, ensure_ascii=False)
    return f"{json.dumps(text[:QUOTED_INPUT_LENGTH], ensure_ascii=False)}… ({len(text)} characters)"


#: The longest status message sent, as the host's. The kit's own messages quote input with :func:`quote_input`;
#: this bounds the rest, where a library or a plugin repeats a value of the request.
MAX_MESSAGE_LENGTH = 2000


def status_message(message: str) -> str:
    """``message`` as it is sent: cut after MAX_MESSAGE_LENGTH characters, and encodable as UTF-8 (a lone
    surrogate, which grpcio cannot send, becomes ``?``)."""
    if len(message) > MAX_MESSAGE_LENGTH:
        message = f"{message[:MAX_MESSAGE_LENGTH]}… (cut from {len(message)} characters)"
    return message.encode("utf-8", "replace").decode("utf-8")


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The code and message a call answers with for ``error``: PluginError keeps its code, the rest is INTERNAL;
    the message bounded by :func:`status_message`."""
    if isinstance(error, PluginError):
        return error.code, status_message(error.message)
    return grpc.StatusCode.INTERNAL, status_message(str(error) or type(error).__name__)
