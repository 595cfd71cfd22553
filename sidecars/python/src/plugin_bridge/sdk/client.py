"""The SDK client: submit tasks to a plugin-bridge host, follow them, abort and list them, and check a
template's ``custom`` against its plugin's specification before sending it.

A thin layer over ``pluginbridge.v1.TaskService`` and ``PluginRegistryService`` with grpcio: the host serves gRPC
on its one public port, over h2c (``http://127.0.0.1:8080`` becomes the insecure target ``127.0.0.1:8080``) or
over TLS (``https://``, :mod:`.tls`). Methods are built from the service descriptors (no generated stubs). Every
failure surfaces as :class:`BridgeError` with the gRPC code and the host's message, such as INVALID_ARGUMENT
``template.custom.maxRows: ...`` for a bad specification. Every call carries the application's current trace
context (:mod:`.trace_context`) and, when there is one, the caller's token (:mod:`.api_token`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format, struct_pb2

from pluginbridge.v1 import registry_service_pb2, task_pb2, task_service_pb2

from ..grpc_service import client_methods
from .api_token import bearer, resolve_api_token
from .call_metadata import MetadataInterceptor
from .errors import BridgeError, from_rpc_error
from .specification import Specification, SpecificationCache
from .tls import Pem, channel_credentials
from .trace_context import with_trace_context

TASK_SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
REGISTRY_SERVICE = registry_service_pb2.DESCRIPTOR.services_by_name["PluginRegistryService"]
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "h2c": 80, "https": 443}


def grpc_target(base_url: str) -> str:
    """``http://host:port``, ``https://host:port`` (or a bare ``host:port``) as a grpcio target."""
    if "://" not in base_url:
        return base_url
    parts = urlsplit(base_url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"base URL {base_url!r}: only http:// (gRPC over h2c) and https:// (gRPC over TLS) are supported")
    if not parts.hostname:
        raise ValueError(f"base URL {base_url!r} has no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or _DEFAULT_PORTS[parts.scheme]}"


def uses_tls(base_url: str) -> bool:
    """Whether the host at ``base_url`` is reached over TLS: ``https://`` only (a bare ``host:port`` is h2c)."""
    return base_url.lower().startswith("https://")


def _struct(value: Optional[Mapping[str, Any]]) -> Optional[struct_pb2.Struct]:
    if value is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


class BridgeClient:
    """A client for a plugin-bridge host's TaskService and PluginRegistryService (synchronous; one channel per
    client)."""

    def __init__(
        self,
        base_url: str,
        *,
        metadata: Optional[Sequence[tuple[str, str]]] = None,
        spec_cache_seconds: float = 10.0,
        token: Optional[str] = None,
        ca_file: Optional[Pem] = None,
        cert_file: Optional[Pem] = None,
        key_file: Optional[Pem] = None,
    ) -> None:
        """``spec_cache_seconds``: how long a task type's specification, once fetched, serves :meth:`validate`
        and :meth:`schema` before the host is asked again (0: every time).

        ``token``: sent as ``authorization: Bearer <token>`` on every call; when None, $PLUGIN_BRIDGE_API_TOKEN
        (never $PLUGIN_BRIDGE_TOKEN, a sidecar's); ``""`` sends none.

        ``ca_file``, ``cert_file``, ``key_file`` (a PEM file's path, or the PEM bytes), for an ``https://``
        base URL: the CA bundle to trust instead of the default roots, and the client certificate and its key
        to present for mutual TLS.
        """
        self.target = grpc_target(base_url)
        # Checked before the channel exists, so a refused token leaves nothing open.
        api_token = resolve_api_token(token, os.environ)
        channel_options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if uses_tls(base_url):
            credentials = channel_credentials(ca_file, cert_file, key_file)
            self._channel = grpc.secure_channel(self.target, credentials, options=channel_options)
        elif ca_file is not None or cert_file is not None or key_file is not None:
            # Silently sending in clear text what the caller meant to protect would be worse than failing.
            raise ValueError(f"base URL {base_url!r}: ca_file, cert_file and key_file need an https:// base URL")
        else:
            self._channel = grpc.insecure_channel(self.target, options=channel_options)
        self._metadata = tuple(metadata or ())
        # Intercepted rather than added in each method, so `raw` calls carry them too.
        interceptors = [MetadataInterceptor(with_trace_context)]
        if api_token is not None:
            interceptors.append(MetadataInterceptor(bearer(api_token)))
        intercepted = grpc.intercept_channel(self._channel, *interceptors)
        #: The raw methods by name (``raw["CreateTask"](request)``), for anything not wrapped here.
        self.raw = client_methods(intercepted, TASK_SERVICE)
        self._registry = client_methods(intercepted, REGISTRY_SERVICE)
        self._specifications = SpecificationCache(
            lambda task_type, timeout: self.list_plugins(task_type, timeout=timeout), spec_cache_seconds
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: Optional[float]) -> Any:
        try:
            return method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _stream(self, method: Callable[..., Any], request: Any, timeout: Optional[float]) -> Iterator[Any]:
        call = method(request, timeout=timeout, metadata=self._metadata)
        try:
            for response in call:
                yield response
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
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
        validate: bool = False,
    ) -> task_service_pb2.TaskExecution:
        """Stores a new execution and returns it; answers once the host made it durable.

        ``validate=True`` checks ``custom`` first (:meth:`validate`) and sends nothing when it does not fit.
        """
        if validate:
            self.validate(template, timeout=timeout)
        request = task_service_pb2.CreateTaskRequest(
            template=template, **self._create_fields(inputs, metadata, idempotency_key)
        )
        return self._unary(self.raw["CreateTask"], request, timeout).execution

    def watch(self, id: str, *, from_sequence: int = 0, timeout: Optional[float] = None) -> Iterator[task_service_pb2.TaskEvent]:  # noqa: A002
        """The execution's events: recorded ones first, then new ones; ends after the terminal event."""
        request = task_service_pb2.WatchTaskRequest(id=id, from_sequence=from_sequence)
        for response in self._stream(self.raw["WatchTask"], request, timeout):
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
        validate: bool = False,
    ) -> task_service_pb2.TaskEvent:
        """Submits and follows to the end (ExecuteTask); returns the terminal event.

        ``validate=True`` checks ``custom`` first (:meth:`validate`) and sends nothing when it does not fit.
        """
        if validate:
            self.validate(template, timeout=timeout)
        request = task_service_pb2.ExecuteTaskRequest(
            template=template, **self._create_fields(inputs, metadata, idempotency_key)
        )
        last: Optional[task_service_pb2.TaskEvent] = None
        for response in self._stream(self.raw["ExecuteTask"], request, timeout):
            if not response.HasField("event"):
                continue
            last = response.event
            if on_event:
                on_event(last)
        if last is None:
            raise BridgeError(grpc.StatusCode.UNKNOWN, "the host ended the stream without any event")
        return last

    def get(self, id: str, *, timeout: Optional[float] = 30.0) -> task_service_pb2.TaskExecution:  # noqa: A002
        return self._unary(self.raw["GetTask"], task_service_pb2.GetTaskRequest(id=id), timeout).execution

    def abort(self, id: str, reason: str = "", *, timeout: Optional[float] = 60.0) -> task_service_pb2.TaskExecution:  # noqa: A002
        request = task_service_pb2.AbortTaskRequest(id=id, reason=reason)
        return self._unary(self.raw["AbortTask"], request, timeout).execution

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
        return self._unary(self.raw["ListTasks"], request, timeout)

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

    def list_plugins(
        self, task_type: str = "", *, timeout: Optional[float] = 30.0
    ) -> List[registry_service_pb2.Plugin]:
        """The live plugins with their instances and descriptors; only those serving ``task_type`` when given."""
        request = registry_service_pb2.ListPluginsRequest(task_type=task_type)
        return list(self._unary(self._registry["ListPlugins"], request, timeout).plugins)

    def schema(self, task_type: str, version: int = 1, *, timeout: Optional[float] = 30.0) -> Specification:
        """The specification the host checks ``custom`` against for (``task_type``, ``version``).

        ``str()`` of it describes the fields for people; ``.descriptor`` and ``.message_class`` serve programs.
        NOT_FOUND for a type or version no live plugin serves (the message names the live versions);
        FAILED_PRECONDITION when the plugin's descriptor set does not resolve.
        """
        return self._specifications.get(task_type, version, timeout)

    def validate(self, template: task_pb2.TaskTemplate, *, timeout: Optional[float] = 30.0) -> None:
        """Checks ``template.custom`` as the host's CreateTask would, without creating anything.

        Raises BridgeError INVALID_ARGUMENT ``template.custom.<path>: <problem> (template.custom must parse as
        <message>)``, or the errors of :meth:`schema`. A plugin without a specification takes any ``custom``.
        The host still decides: a plugin replaced within ``spec_cache_seconds`` may check differently.
        """
        if not template.type:
            raise BridgeError(grpc.StatusCode.INVALID_ARGUMENT, "template.type: is required")
        spec = self.schema(template.type, template.type_version, timeout=timeout)
        custom = json_format.MessageToDict(template.custom) if template.HasField("custom") else {}
        problem = spec.problem(custom)
        if problem:
            raise BridgeError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{problem} (template.custom must parse as {spec.message_name})"
            )
