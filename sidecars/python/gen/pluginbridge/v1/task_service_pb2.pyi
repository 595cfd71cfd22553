import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pluginbridge.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTaskRequest(_message.Message):
    __slots__ = ("template", "inputs", "metadata", "idempotency_key")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    template: _task_pb2.TaskTemplate
    inputs: _struct_pb2.Struct
    metadata: _task_pb2.TaskExecutionMetadata
    idempotency_key: str
    def __init__(self, template: _Optional[_Union[_task_pb2.TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_task_pb2.TaskExecutionMetadata, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("execution", "created")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    execution: TaskExecution
    created: bool
    def __init__(self, execution: _Optional[_Union[TaskExecution, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: TaskExecution
    def __init__(self, execution: _Optional[_Union[TaskExecution, _Mapping]] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("id", "from_sequence")
    ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    from_sequence: int
    def __init__(self, id: _Optional[str] = ..., from_sequence: _Optional[int] = ...) -> None: ...

class WatchTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class AbortTaskRequest(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AbortTaskResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: TaskExecution
    def __init__(self, execution: _Optional[_Union[TaskExecution, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("namespace", "phases", "page_size", "page_token")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    phases: _containers.RepeatedScalarFieldContainer[_task_pb2.Phase]
    page_size: int
    page_token: str
    def __init__(self, namespace: _Optional[str] = ..., phases: _Optional[_Iterable[_Union[_task_pb2.Phase, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[TaskExecution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[TaskExecution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExecuteTaskRequest(_message.Message):
    __slots__ = ("template", "inputs", "metadata", "idempotency_key")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    template: _task_pb2.TaskTemplate
    inputs: _struct_pb2.Struct
    metadata: _task_pb2.TaskExecutionMetadata
    idempotency_key: str
    def __init__(self, template: _Optional[_Union[_task_pb2.TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_task_pb2.TaskExecutionMetadata, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ExecuteTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class TaskExecution(_message.Message):
    __slots__ = ("id", "attempt", "template", "inputs", "metadata", "phase_info", "outputs", "system_failures", "abort_requested", "created_at", "updated_at", "last_event_sequence")
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ABORT_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    attempt: int
    template: _task_pb2.TaskTemplate
    inputs: _struct_pb2.Struct
    metadata: _task_pb2.TaskExecutionMetadata
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    system_failures: int
    abort_requested: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    last_event_sequence: int
    def __init__(self, id: _Optional[str] = ..., attempt: _Optional[int] = ..., template: _Optional[_Union[_task_pb2.TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_task_pb2.TaskExecutionMetadata, _Mapping]] = ..., phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., system_failures: _Optional[int] = ..., abort_requested: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_event_sequence: _Optional[int] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("execution_id", "sequence", "attempt", "phase_info", "outputs", "namespace")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PHASE_INFO_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    sequence: int
    attempt: int
    phase_info: _task_pb2.PhaseInfo
    outputs: _struct_pb2.Struct
    namespace: str
    def __init__(self, execution_id: _Optional[str] = ..., sequence: _Optional[int] = ..., attempt: _Optional[int] = ..., phase_info: _Optional[_Union[_task_pb2.PhaseInfo, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., namespace: _Optional[str] = ...) -> None: ...
