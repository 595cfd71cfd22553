import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pluginbridge.v1 import plugin_pb2 as _plugin_pb2
from pluginbridge.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PluginAnnouncement(_message.Message):
    __slots__ = ("instance", "ttl_seconds", "signed_instance", "key_id", "signature")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIGNED_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    instance: _plugin_pb2.PluginInstance
    ttl_seconds: int
    signed_instance: bytes
    key_id: str
    signature: bytes
    def __init__(self, instance: _Optional[_Union[_plugin_pb2.PluginInstance, _Mapping]] = ..., ttl_seconds: _Optional[int] = ..., signed_instance: _Optional[bytes] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class WorkItem(_message.Message):
    __slots__ = ("execution_id", "enqueued_at")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    enqueued_at: _timestamp_pb2.Timestamp
    def __init__(self, execution_id: _Optional[str] = ..., enqueued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExecutionRecord(_message.Message):
    __slots__ = ("id", "template", "inputs", "metadata", "idempotency_key", "request_digest", "attempt", "phase_info", "outputs", "resource_meta", "resource_created", "system_failures", "abort_requested", "abort_reason", "last_event_sequence", "created_at", "updated_at", "attempt_started_at", "last_instance_id", "plugin_state", "pending_end", "pending_outputs", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_META_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_CREATED_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ABORT_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ABORT_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_STATE_FIELD_NUMBER: _ClassVar[int]
    PENDING_END_FIELD_NUMBER: _ClassVar[int]
    PENDING_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    template: _task_pb2.TaskTemplate
    inputs: _struct_pb2.Struct
    metadata: _task_pb2.TaskExecutionMetadata
    idempotency_key: str
    request_digest: str
    attempt: int
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    resource_meta: bytes
    resource_created: bool
    system_failures: int
    abort_requested: bool
    abort_reason: str
    last_event_sequence: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    attempt_started_at: _timestamp_pb2.Timestamp
    last_instance_id: str
    plugin_state: _plugin_pb2.PluginState
    pending_end: _task_pb2.PhaseInfo
    pending_outputs: _struct_pb2.Struct
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., template: _Optional[_Union[_task_pb2.TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_task_pb2.TaskExecutionMetadata, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., request_digest: _Optional[str] = ..., attempt: _Optional[int] = ..., phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., resource_meta: _Optional[bytes] = ..., resource_created: _Optional[bool] = ..., system_failures: _Optional[int] = ..., abort_requested: _Optional[bool] = ..., abort_reason: _Optional[str] = ..., last_event_sequence: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_instance_id: _Optional[str] = ..., plugin_state: _Optional[_Union[_plugin_pb2.PluginState, _Mapping]] = ..., pending_end: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., pending_outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class QuotaHolders(_message.Message):
    __slots__ = ("holders",)
    class HoldersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: QuotaHolder
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[QuotaHolder, _Mapping]] = ...) -> None: ...
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    holders: _containers.MessageMap[str, QuotaHolder]
    def __init__(self, holders: _Optional[_Mapping[str, QuotaHolder]] = ...) -> None: ...

class QuotaHolder(_message.Message):
    __slots__ = ("namespace", "allocated_at")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_AT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    allocated_at: _timestamp_pb2.Timestamp
    def __init__(self, namespace: _Optional[str] = ..., allocated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PushedStatus(_message.Message):
    __slots__ = ("execution_id", "attempt", "instance_id", "phase_info", "outputs")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    attempt: int
    instance_id: str
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    def __init__(self, execution_id: _Optional[str] = ..., attempt: _Optional[int] = ..., instance_id: _Optional[str] = ..., phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
