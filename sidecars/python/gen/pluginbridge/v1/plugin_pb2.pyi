import datetime

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pluginbridge.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PluginKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLUGIN_KIND_UNSPECIFIED: _ClassVar[PluginKind]
    PLUGIN_KIND_ASYNC: _ClassVar[PluginKind]
    PLUGIN_KIND_SYNC: _ClassVar[PluginKind]
    PLUGIN_KIND_CORE: _ClassVar[PluginKind]

class PluginProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLUGIN_PROTOCOL_UNSPECIFIED: _ClassVar[PluginProtocol]
    PLUGIN_PROTOCOL_FLYTE_AGENT: _ClassVar[PluginProtocol]
PLUGIN_KIND_UNSPECIFIED: PluginKind
PLUGIN_KIND_ASYNC: PluginKind
PLUGIN_KIND_SYNC: PluginKind
PLUGIN_KIND_CORE: PluginKind
PLUGIN_PROTOCOL_UNSPECIFIED: PluginProtocol
PLUGIN_PROTOCOL_FLYTE_AGENT: PluginProtocol

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("plugin",)
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    plugin: PluginDescriptor
    def __init__(self, plugin: _Optional[_Union[PluginDescriptor, _Mapping]] = ...) -> None: ...

class PluginDescriptor(_message.Message):
    __slots__ = ("name", "version", "task_types", "kind", "properties", "specification", "default_for_unclaimed_types")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    SPECIFICATION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FOR_UNCLAIMED_TYPES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    task_types: _containers.RepeatedCompositeFieldContainer[SupportedTaskType]
    kind: PluginKind
    properties: PluginProperties
    specification: PluginSpecification
    default_for_unclaimed_types: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., task_types: _Optional[_Iterable[_Union[SupportedTaskType, _Mapping]]] = ..., kind: _Optional[_Union[PluginKind, str]] = ..., properties: _Optional[_Union[PluginProperties, _Mapping]] = ..., specification: _Optional[_Union[PluginSpecification, _Mapping]] = ..., default_for_unclaimed_types: _Optional[bool] = ...) -> None: ...

class SupportedTaskType(_message.Message):
    __slots__ = ("type", "version", "min_version")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    type: str
    version: int
    min_version: int
    def __init__(self, type: _Optional[str] = ..., version: _Optional[int] = ..., min_version: _Optional[int] = ...) -> None: ...

class PluginProperties(_message.Message):
    __slots__ = ("resync_interval", "create_timeout", "get_timeout", "delete_timeout", "do_timeout", "max_system_failures", "handle_timeout", "abort_timeout", "finalize_timeout", "read_limit", "write_limit", "quota")
    RESYNC_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    GET_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DO_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_SYSTEM_FAILURES_FIELD_NUMBER: _ClassVar[int]
    HANDLE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ABORT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    FINALIZE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    READ_LIMIT_FIELD_NUMBER: _ClassVar[int]
    WRITE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    resync_interval: _duration_pb2.Duration
    create_timeout: _duration_pb2.Duration
    get_timeout: _duration_pb2.Duration
    delete_timeout: _duration_pb2.Duration
    do_timeout: _duration_pb2.Duration
    max_system_failures: int
    handle_timeout: _duration_pb2.Duration
    abort_timeout: _duration_pb2.Duration
    finalize_timeout: _duration_pb2.Duration
    read_limit: RateLimit
    write_limit: RateLimit
    quota: ResourceQuota
    def __init__(self, resync_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., create_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., get_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., delete_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., do_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_system_failures: _Optional[int] = ..., handle_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., abort_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., finalize_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., read_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., write_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., quota: _Optional[_Union[ResourceQuota, _Mapping]] = ...) -> None: ...

class ResourceQuota(_message.Message):
    __slots__ = ("total", "per_namespace")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PER_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    total: int
    per_namespace: int
    def __init__(self, total: _Optional[int] = ..., per_namespace: _Optional[int] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("qps", "burst")
    QPS_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    qps: float
    burst: int
    def __init__(self, qps: _Optional[float] = ..., burst: _Optional[int] = ...) -> None: ...

class PluginSpecification(_message.Message):
    __slots__ = ("file_descriptor_set", "message_name")
    FILE_DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    file_descriptor_set: _descriptor_pb2.FileDescriptorSet
    message_name: str
    def __init__(self, file_descriptor_set: _Optional[_Union[_descriptor_pb2.FileDescriptorSet, _Mapping]] = ..., message_name: _Optional[str] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ...) -> None: ...

class CreateResponse(_message.Message):
    __slots__ = ("resource_meta",)
    RESOURCE_META_FIELD_NUMBER: _ClassVar[int]
    resource_meta: bytes
    def __init__(self, resource_meta: _Optional[bytes] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("context", "resource_meta")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_META_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    resource_meta: bytes
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ..., resource_meta: _Optional[bytes] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("phase_info", "outputs")
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    def __init__(self, phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("context", "resource_meta")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_META_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    resource_meta: bytes
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ..., resource_meta: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DoRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ...) -> None: ...

class DoResponse(_message.Message):
    __slots__ = ("phase_info", "outputs")
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    def __init__(self, phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PluginState(_message.Message):
    __slots__ = ("version", "data")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    version: int
    data: bytes
    def __init__(self, version: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class HandleRequest(_message.Message):
    __slots__ = ("context", "state")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    state: PluginState
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ..., state: _Optional[_Union[PluginState, _Mapping]] = ...) -> None: ...

class HandleResponse(_message.Message):
    __slots__ = ("phase_info", "state", "outputs")
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    phase_info: _task_pb2.PhaseInfo
    state: PluginState
    outputs: _struct_pb2.Struct
    def __init__(self, phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., state: _Optional[_Union[PluginState, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AbortRequest(_message.Message):
    __slots__ = ("context", "state", "reason")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    state: PluginState
    reason: str
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ..., state: _Optional[_Union[PluginState, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class AbortResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FinalizeRequest(_message.Message):
    __slots__ = ("context", "state")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    context: _task_pb2.TaskContext
    state: PluginState
    def __init__(self, context: _Optional[_Union[_task_pb2.TaskContext, _Mapping]] = ..., state: _Optional[_Union[PluginState, _Mapping]] = ...) -> None: ...

class FinalizeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PluginInstance(_message.Message):
    __slots__ = ("instance_id", "endpoint", "descriptor", "started_at", "heartbeat_at", "draining", "protocol")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    endpoint: str
    descriptor: PluginDescriptor
    started_at: _timestamp_pb2.Timestamp
    heartbeat_at: _timestamp_pb2.Timestamp
    draining: bool
    protocol: PluginProtocol
    def __init__(self, instance_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., descriptor: _Optional[_Union[PluginDescriptor, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., draining: _Optional[bool] = ..., protocol: _Optional[_Union[PluginProtocol, str]] = ...) -> None: ...
