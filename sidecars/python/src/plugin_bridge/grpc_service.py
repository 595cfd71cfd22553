"""Bridges generated protobuf service descriptors to grpcio, for servers and clients.

protoc's Python output has no gRPC stubs here (the kit ships only ``*_pb2`` modules), so method handlers and
channel methods are built from ``<file>_pb2.DESCRIPTOR.services_by_name[...]``: the method paths, the message
classes and the streaming flags all come from the descriptor, never written by hand.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Type

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from .errors import PluginError, status_message, status_of
from .log import KitLogger
from .tracing import NOT_TRACED, ServerSpans

#: Called when a plugin call starts; raises PluginError to refuse it (draining), else returns the release
#: function to call when the call's work is over.
CallGate = Callable[[], Callable[[], None]]


def message_classes(method: MethodDescriptor) -> tuple[Type[Message], Type[Message]]:
    """The request and response classes of a method (the generated classes when their module is imported)."""
    return (
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )


class UndecodableRequest:
    """What a request that does not parse as its method's message reaches the handler as. grpc.aio answers
    UNKNOWN when a ``request_deserializer`` raises; the handler answers INTERNAL instead, as gRPC's status code
    table has it ("Error parsing request proto") and the other kits' gRPC libraries do
    (:func:`refuse_undecodable`)."""

    def __init__(self, message: str) -> None:
        self.message = message


def request_decoder(request_cls: Type[Message]) -> Callable[[bytes], Any]:
    """A ``request_deserializer`` for ``request_cls`` that never raises: what does not parse comes out as an
    :class:`UndecodableRequest`."""
    type_name = request_cls.DESCRIPTOR.full_name
    # What protobuf's parser puts before the reason, which would only say the type twice.
    parser_prefix = f"Error parsing message with type '{type_name}': "

    def decode(data: bytes) -> Any:
        try:
            return request_cls.FromString(data)
        except Exception as error:  # noqa: BLE001 - DecodeError, and whatever else the parser raises
            reason = status_message(str(error).removeprefix(parser_prefix))
            return UndecodableRequest(f"the request is not a valid {type_name}: {reason}")

    return decode


async def refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> None:
    """Answers INTERNAL (and so raises) when ``request`` did not decode."""
    if isinstance(request, UndecodableRequest):
        await context.abort(grpc.StatusCode.INTERNAL, request.message)


def method_path(method: MethodDescriptor) -> str:
    """``/package.Service/Method``, the HTTP/2 path gRPC uses."""
    return f"/{method.containing_service.full_name}/{method.name}"


class CallInfo:
    """What a handler knows of its call beyond the request: cancellation and deadline."""

    def __init__(self, cancelled: asyncio.Event, deadline: Optional[float]) -> None:
        self.cancelled = cancelled
        self.deadline = deadline


Handler = Callable[[Any, CallInfo], Awaitable[Message]]


def _deadline_of(context: grpc.aio.ServicerContext) -> Optional[float]:
    remaining = context.time_remaining()
    return None if remaining is None else time.time() + remaining


def _cancelled_status(context: grpc.aio.ServicerContext) -> tuple[grpc.StatusCode, str]:
    """What the caller of a call cancelled under the kit sees: its deadline passed, or it went away."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    return grpc.StatusCode.CANCELLED, "cancelled"


def _unary_handler(
    method: MethodDescriptor,
    handler: Handler,
    gate: Optional[CallGate],
    log: Optional[KitLogger],
    spans: Optional[ServerSpans],
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    name = method.name

    async def serve_call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        # Bytes that are no request have nothing to trace.
        await refuse_undecodable(request, context)
        # Started first, so a call refused before the plugin's method runs (draining, a bad `custom`) has its span.
        span = spans.start(method, request, context.invocation_metadata()) if spans else NOT_TRACED
        # The plugin's work runs in a task of its own, shielded from the RPC: when the caller cancels or its
        # deadline passes, grpcio cancels this coroutine, and the work sees `cancelled` set instead of being
        # torn down mid-step (like an AbortSignal in the TS kit). It stays counted as in flight until it ends.
        try:
            release = gate() if gate else (lambda: None)
        except PluginError as error:
            span.failed(error.code, error.message)
            await context.abort(error.code, error.message)
            raise  # unreachable: abort raises
        cancelled = asyncio.Event()
        # The task copies the current context as it is created: with the span current, the plugin's own spans
        # nest under it.
        with span.current():
            work = asyncio.ensure_future(handler(request, CallInfo(cancelled, _deadline_of(context))))

        def finished(task: asyncio.Future[Any]) -> None:
            release()
            if not task.cancelled() and task.exception() is not None and cancelled.is_set():
                # Nobody waits for the answer any more; say what happened instead of losing it.
                if log:
                    log.debug("call ended after its caller left", method=name, error=str(task.exception()))

        work.add_done_callback(finished)
        try:
            response = await asyncio.shield(work)
        except asyncio.CancelledError:
            cancelled.set()
            span.failed(*_cancelled_status(context))
            raise
        except grpc.aio.AbortError:
            raise
        except BaseException as error:  # noqa: BLE001 - every failure becomes a status, the server keeps going
            code, message = status_of(error)
            if code == grpc.StatusCode.INTERNAL and log:
                log.error("call failed", method=name, error=message, exc_info=error)
            # A PluginError is the answer chosen; anything else is a crash, recorded on the span.
            span.failed(code, message, None if isinstance(error, PluginError) else error)
            await context.abort(code, message)
        span.answered(response)
        return response

    return serve_call


def service_handler(
    service: ServiceDescriptor,
    implementation: Mapping[str, Handler],
    gate: Optional[CallGate] = None,
    log: Optional[KitLogger] = None,
    spans: Optional[ServerSpans] = None,
) -> grpc.GenericRpcHandler:
    """A grpcio (asyncio) generic handler for ``service`` whose unary methods call ``implementation[name]``;
    with ``spans``, each call is traced. A request that does not decode is INTERNAL."""
    handlers: Dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise ValueError(f"{service.full_name}/{method.name}: only unary methods are served by the kit")
        handler = implementation.get(method.name)
        if handler is None:
            raise ValueError(f"{service.full_name}/{method.name} has no implementation")
        request_cls, response_cls = message_classes(method)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _unary_handler(method, handler, gate, log, spans),
            request_deserializer=request_decoder(request_cls),
            response_serializer=response_cls.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def client_method(channel: Any, method: MethodDescriptor) -> Any:
    """A callable for ``method`` on a grpcio channel (sync or aio): unary-unary or unary-stream."""
    request_cls, response_cls = message_classes(method)
    if method.client_streaming:
        raise ValueError(f"{method.full_name}: client streaming is not supported")
    factory = channel.unary_stream if method.server_streaming else channel.unary_unary
    return factory(
        method_path(method),
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )


def client_methods(channel: Any, service: ServiceDescriptor) -> Dict[str, Any]:
    """Every method of ``service`` on ``channel``, by method name (``"CreateTask"`` ...)."""
    return {method.name: client_method(channel, method) for method in service.methods}
