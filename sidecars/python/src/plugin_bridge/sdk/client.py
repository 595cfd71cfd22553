"""The SDK client: submit tasks to a plugin-bridge host, follow them, abort and list them.

A thin layer over ``pluginbridge.v1.TaskService`` with grpcio: the host serves gRPC over h2c on its one public
port, so ``http://127.0.0.1:8080`` becomes the insecure target ``127.0.0.1:8080``. Methods are built from the
service descriptor (no generated stubs). Every failure surfaces as :class:`BridgeError` with the gRPC code and
the host's message, such as INVALID_ARGUMENT ``template.custom.maxRows: ...`` for a bad specification.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import grpc
from google.protobuf import struct_pb2

from pluginbridge.v1 import task_pb2, task_service_pb2

from ..grpc_service import client_methods

TASK_SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class BridgeError(Exception):
    """A failed call to the host: ``code`` is the gRPC status code, ``message`` the host's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def grpc_target(base_url: str) -> str:
    """``http://host:port`` (or a bare ``host:port``) as a grpcio target. https is not served by the host."""
    if "://" not in base_url:
        return base_url
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "h2c"):
        raise ValueError(f"base URL {base_url!r}: only http:// (gRPC over h2c) is supported")
    if not parts.hostname:
        raise ValueError(f"base URL {base_url!r} has no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


def _struct(value: Optional[Mapping[str, Any]]) -> Optional[struct_pb2.Struct]:
    if value is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


def _raise(error: grpc.RpcError) -> BridgeError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return BridgeError(code or grpc.StatusCode.UNKNOWN, details or "")


class BridgeClient:
    """A client for a plugin-bridge host's TaskService (synchronous; one channel per client)."""

    def __init__(self, base_url: str, *, metadata: Optional[Sequence[tuple[str, str]]] = None) -> None:
        self.target = grpc_target(base_url)
        self._channel = grpc.insecure_channel(
            self.target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._metadata = tuple(metadata or ())
        #: The raw methods by name (``raw["CreateTask"](request)``), for anything not wrapped here.
        self.raw = client_methods(self._channel, TASK_SERVICE)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unary(self, method: str, request: Any, timeout: Optional[float]) -> Any:
        try:
            return self.raw[method](request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise _raise(error) from None

    def _stream(self, method: str, request: Any, timeout: Optional[float]) -> Iterator[Any]:
        call = self.raw[method](request, timeout=timeout, metadata=self._metadata)
        try:
            for response in call:
                yield response
        except grpc.RpcError as error:
            raise _raise(error) from None
        finally:
            call.cancel()

    @staticmethod
    def _create_fields(
        inputs: Optional[Mapping[str, Any]],
        metadata: Optional[task_pb2.TaskExecutionMetadata],
        idempotency_key: str,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"idempotency_key": idempotency_key}
        if inputs is not None:
            fields["inputs"] = _struct(inputs)
        if metadata is not None:
            fields["metadata"] = metadata
        return fields

    def submit(
        self,
        template: task_pb2.TaskTemplate,
        *,
        inputs: Optional[Mapping[str, Any]] = None,
        metadata: Optional[task_pb2.TaskExecutionMetadata] = None,
        idempotency_key: str = "",
        timeout: Optional[float] = 30.0,
    ) -> task_service_pb2.TaskExecution:
        """Stores a new execution and returns it; answers once the host made it durable."""
        request = task_service_pb2.CreateTaskRequest(
            template=template, **self._create_fields(inputs, metadata, idempotency_key)
        )
        return self._unary("CreateTask", request, timeout).execution

    def watch(self, id: str, *, from_sequence: int = 0, timeout: Optional[float] = None) -> Iterator[task_service_pb2.TaskEvent]:  # noqa: A002
        """The execution's events: recorded ones first, then new ones; ends after the terminal event."""
        request = task_service_pb2.WatchTaskRequest(id=id, from_sequence=from_sequence)
        for response in self._stream("WatchTask", request, timeout):
            if response.HasField("event"):
                yield response.event

    def run(
        self,
        template: task_pb2.TaskTemplate,
        *,
        inputs: Optional[Mapping[str, Any]] = None,
        metadata: Optional[task_pb2.TaskExecutionMetadata] = None,
        idempotency_key: str = "",
        on_event: Optional[Callable[[task_service_pb2.TaskEvent], None]] = None,
        timeout: Optional[float] = None,
    ) -> task_service_pb2.TaskEvent:
        """Submits and follows to the end (ExecuteTask); returns the terminal event."""
        request = task_service_pb2.ExecuteTaskRequest(
            template=template, **self._create_fields(inputs, metadata, idempotency_key)
        )
        last: Optional[task_service_pb2.TaskEvent] = None
        for response in self._stream("ExecuteTask", request, timeout):
            if not response.HasField("event"):
                continue
            last = response.event
            if on_event:
                on_event(last)
        if last is None:
            raise BridgeError(grpc.StatusCode.UNKNOWN, "the host ended the stream without any event")
        return last

    def get(self, id: str, *, timeout: Optional[float] = 30.0) -> task_service_pb2.TaskExecution:  # noqa: A002
        return self._unary("GetTask", task_service_pb2.GetTaskRequest(id=id), timeout).execution

    def abort(self, id: str, reason: str = "", *, timeout: Optional[float] = 60.0) -> task_service_pb2.TaskExecution:  # noqa: A002
        request = task_service_pb2.AbortTaskRequest(id=id, reason=reason)
        return self._unary("AbortTask", request, timeout).execution

    def list(
        self,
        *,
        namespace: str = "",
        phases: Sequence[int] = (),
        page_size: int = 0,
        page_token: str = "",
        timeout: Optional[float] = 30.0,
    ) -> task_service_pb2.ListTasksResponse:
        """One page of executions."""
        request = task_service_pb2.ListTasksRequest(
            namespace=namespace, phases=list(phases), page_size=page_size, page_token=page_token
        )
        return self._unary("ListTasks", request, timeout)

    def list_all(self, *, namespace: str = "", phases: Sequence[int] = (), page_size: int = 0) -> Iterator[task_service_pb2.TaskExecution]:
        """Every execution matching the filter, page after page."""
        token = ""
        while True:
            page = self.list(namespace=namespace, phases=phases, page_size=page_size, page_token=token)
            yield from page.executions
            # A host that repeats a token would loop forever; stop rather than trust it.
            if not page.next_page_token or page.next_page_token == token:
                return
            token = page.next_page_token
