from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplicaState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLICA_STATE_UNSPECIFIED: _ClassVar[ReplicaState]
    REPLICA_STATE_STARTING: _ClassVar[ReplicaState]
    REPLICA_STATE_SERVING: _ClassVar[ReplicaState]
    REPLICA_STATE_BACKING_OFF: _ClassVar[ReplicaState]
    REPLICA_STATE_GAVE_UP: _ClassVar[ReplicaState]
    REPLICA_STATE_STOPPED: _ClassVar[ReplicaState]
REPLICA_STATE_UNSPECIFIED: ReplicaState
REPLICA_STATE_STARTING: ReplicaState
REPLICA_STATE_SERVING: ReplicaState
REPLICA_STATE_BACKING_OFF: ReplicaState
REPLICA_STATE_GAVE_UP: ReplicaState
REPLICA_STATE_STOPPED: ReplicaState

class ListSidecarsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSidecarsResponse(_message.Message):
    __slots__ = ("sidecars",)
    SIDECARS_FIELD_NUMBER: _ClassVar[int]
    sidecars: _containers.RepeatedCompositeFieldContainer[SupervisedSidecar]
    def __init__(self, sidecars: _Optional[_Iterable[_Union[SupervisedSidecar, _Mapping]]] = ...) -> None: ...

class UpgradeSidecarRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpgradeSidecarResponse(_message.Message):
    __slots__ = ("sidecar", "retired")
    SIDECAR_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    sidecar: SupervisedSidecar
    retired: _containers.RepeatedCompositeFieldContainer[SupervisedReplica]
    def __init__(self, sidecar: _Optional[_Union[SupervisedSidecar, _Mapping]] = ..., retired: _Optional[_Iterable[_Union[SupervisedReplica, _Mapping]]] = ...) -> None: ...

class SupervisedSidecar(_message.Message):
    __slots__ = ("name", "command", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    command: _containers.RepeatedScalarFieldContainer[str]
    replicas: _containers.RepeatedCompositeFieldContainer[SupervisedReplica]
    def __init__(self, name: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., replicas: _Optional[_Iterable[_Union[SupervisedReplica, _Mapping]]] = ...) -> None: ...

class SupervisedReplica(_message.Message):
    __slots__ = ("instance_id", "endpoint", "state", "pid", "restarts", "last_exit")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    endpoint: str
    state: ReplicaState
    pid: int
    restarts: int
    last_exit: str
    def __init__(self, instance_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., state: _Optional[_Union[ReplicaState, str]] = ..., pid: _Optional[int] = ..., restarts: _Optional[int] = ..., last_exit: _Optional[str] = ...) -> None: ...
