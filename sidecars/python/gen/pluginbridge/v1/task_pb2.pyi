import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VariableType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VARIABLE_TYPE_UNSPECIFIED: _ClassVar[VariableType]
    VARIABLE_TYPE_STRING: _ClassVar[VariableType]
    VARIABLE_TYPE_INTEGER: _ClassVar[VariableType]
    VARIABLE_TYPE_FLOAT: _ClassVar[VariableType]
    VARIABLE_TYPE_BOOLEAN: _ClassVar[VariableType]
    VARIABLE_TYPE_STRUCT: _ClassVar[VariableType]
    VARIABLE_TYPE_LIST: _ClassVar[VariableType]

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_NOT_READY: _ClassVar[Phase]
    PHASE_WAITING_FOR_RESOURCES: _ClassVar[Phase]
    PHASE_QUEUED: _ClassVar[Phase]
    PHASE_INITIALIZING: _ClassVar[Phase]
    PHASE_RUNNING: _ClassVar[Phase]
    PHASE_SUCCESS: _ClassVar[Phase]
    PHASE_RETRYABLE_FAILURE: _ClassVar[Phase]
    PHASE_PERMANENT_FAILURE: _ClassVar[Phase]
    PHASE_WAITING_FOR_CACHE: _ClassVar[Phase]
    PHASE_ABORTED: _ClassVar[Phase]

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    ERROR_KIND_USER: _ClassVar[ErrorKind]
    ERROR_KIND_SYSTEM: _ClassVar[ErrorKind]
VARIABLE_TYPE_UNSPECIFIED: VariableType
VARIABLE_TYPE_STRING: VariableType
VARIABLE_TYPE_INTEGER: VariableType
VARIABLE_TYPE_FLOAT: VariableType
VARIABLE_TYPE_BOOLEAN: VariableType
VARIABLE_TYPE_STRUCT: VariableType
VARIABLE_TYPE_LIST: VariableType
PHASE_UNSPECIFIED: Phase
PHASE_NOT_READY: Phase
PHASE_WAITING_FOR_RESOURCES: Phase
PHASE_QUEUED: Phase
PHASE_INITIALIZING: Phase
PHASE_RUNNING: Phase
PHASE_SUCCESS: Phase
PHASE_RETRYABLE_FAILURE: Phase
PHASE_PERMANENT_FAILURE: Phase
PHASE_WAITING_FOR_CACHE: Phase
PHASE_ABORTED: Phase
ERROR_KIND_UNSPECIFIED: ErrorKind
ERROR_KIND_USER: ErrorKind
ERROR_KIND_SYSTEM: ErrorKind

class TaskTemplate(_message.Message):
    __slots__ = ("id", "type", "type_version", "custom", "interface", "metadata", "secrets", "config")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    id: TaskIdentifier
    type: str
    type_version: int
    custom: _struct_pb2.Struct
    interface: TypedInterface
    metadata: TaskMetadata
    secrets: _containers.RepeatedCompositeFieldContainer[SecretRequest]
    config: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[_Union[TaskIdentifier, _Mapping]] = ..., type: _Optional[str] = ..., type_version: _Optional[int] = ..., custom: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., interface: _Optional[_Union[TypedInterface, _Mapping]] = ..., metadata: _Optional[_Union[TaskMetadata, _Mapping]] = ..., secrets: _Optional[_Iterable[_Union[SecretRequest, _Mapping]]] = ..., config: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskIdentifier(_message.Message):
    __slots__ = ("project", "domain", "name", "version")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    project: str
    domain: str
    name: str
    version: str
    def __init__(self, project: _Optional[str] = ..., domain: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class TypedInterface(_message.Message):
    __slots__ = ("inputs", "outputs")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Variable
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Variable, _Mapping]] = ...) -> None: ...
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Variable
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Variable, _Mapping]] = ...) -> None: ...
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.MessageMap[str, Variable]
    outputs: _containers.MessageMap[str, Variable]
    def __init__(self, inputs: _Optional[_Mapping[str, Variable]] = ..., outputs: _Optional[_Mapping[str, Variable]] = ...) -> None: ...

class Variable(_message.Message):
    __slots__ = ("type", "description")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    type: VariableType
    description: str
    def __init__(self, type: _Optional[_Union[VariableType, str]] = ..., description: _Optional[str] = ...) -> None: ...

class TaskMetadata(_message.Message):
    __slots__ = ("timeout", "retries", "interruptible")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTIBLE_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    retries: int
    interruptible: bool
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retries: _Optional[int] = ..., interruptible: _Optional[bool] = ...) -> None: ...

class SecretRequest(_message.Message):
    __slots__ = ("group", "key")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    group: str
    key: str
    def __init__(self, group: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class TaskExecutionId(_message.Message):
    __slots__ = ("id", "attempt")
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    id: str
    attempt: int
    def __init__(self, id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class TaskExecutionMetadata(_message.Message):
    __slots__ = ("namespace", "labels", "annotations", "owner", "environment")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    owner: str
    environment: _containers.ScalarMap[str, str]
    def __init__(self, namespace: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., owner: _Optional[str] = ..., environment: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PhaseInfo(_message.Message):
    __slots__ = ("phase", "version", "reason", "occurred_at", "logs", "custom_info", "error")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_INFO_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    phase: Phase
    version: int
    reason: str
    occurred_at: _timestamp_pb2.Timestamp
    logs: _containers.RepeatedCompositeFieldContainer[TaskLog]
    custom_info: _struct_pb2.Struct
    error: ExecutionError
    def __init__(self, phase: _Optional[_Union[Phase, str]] = ..., version: _Optional[int] = ..., reason: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., logs: _Optional[_Iterable[_Union[TaskLog, _Mapping]]] = ..., custom_info: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ...) -> None: ...

class TaskLog(_message.Message):
    __slots__ = ("uri", "name")
    URI_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    uri: str
    name: str
    def __init__(self, uri: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ExecutionError(_message.Message):
    __slots__ = ("code", "message", "kind")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    kind: ErrorKind
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., kind: _Optional[_Union[ErrorKind, str]] = ...) -> None: ...

class TaskContext(_message.Message):
    __slots__ = ("execution_id", "template", "inputs", "metadata", "secrets")
    class SecretsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    execution_id: TaskExecutionId
    template: TaskTemplate
    inputs: _struct_pb2.Struct
    metadata: TaskExecutionMetadata
    secrets: _containers.ScalarMap[str, str]
    def __init__(self, execution_id: _Optional[_Union[TaskExecutionId, _Mapping]] = ..., template: _Optional[_Union[TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[TaskExecutionMetadata, _Mapping]] = ..., secrets: _Optional[_Mapping[str, str]] = ...) -> None: ...
