from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Behavior(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BEHAVIOR_UNSPECIFIED: _ClassVar[Behavior]
    BEHAVIOR_OK: _ClassVar[Behavior]
    BEHAVIOR_HANG: _ClassVar[Behavior]
    BEHAVIOR_CRASH: _ClassVar[Behavior]
    BEHAVIOR_USER_ERROR: _ClassVar[Behavior]
    BEHAVIOR_RETRYABLE: _ClassVar[Behavior]
    BEHAVIOR_PERMANENT: _ClassVar[Behavior]
BEHAVIOR_UNSPECIFIED: Behavior
BEHAVIOR_OK: Behavior
BEHAVIOR_HANG: Behavior
BEHAVIOR_CRASH: Behavior
BEHAVIOR_USER_ERROR: Behavior
BEHAVIOR_RETRYABLE: Behavior
BEHAVIOR_PERMANENT: Behavior

class Script(_message.Message):
    __slots__ = ("create", "get", "delete", "do", "polls", "wait_for_file", "message", "echo", "create_delay_ms", "output_bytes", "handle", "abort", "finalize", "push_after_ms")
    CREATE_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    DO_FIELD_NUMBER: _ClassVar[int]
    POLLS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_FILE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ECHO_FIELD_NUMBER: _ClassVar[int]
    CREATE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    FINALIZE_FIELD_NUMBER: _ClassVar[int]
    PUSH_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    create: Behavior
    get: Behavior
    delete: Behavior
    do: Behavior
    polls: int
    wait_for_file: str
    message: str
    echo: str
    create_delay_ms: int
    output_bytes: int
    handle: Behavior
    abort: Behavior
    finalize: Behavior
    push_after_ms: int
    def __init__(self, create: _Optional[_Union[Behavior, str]] = ..., get: _Optional[_Union[Behavior, str]] = ..., delete: _Optional[_Union[Behavior, str]] = ..., do: _Optional[_Union[Behavior, str]] = ..., polls: _Optional[int] = ..., wait_for_file: _Optional[str] = ..., message: _Optional[str] = ..., echo: _Optional[str] = ..., create_delay_ms: _Optional[int] = ..., output_bytes: _Optional[int] = ..., handle: _Optional[_Union[Behavior, str]] = ..., abort: _Optional[_Union[Behavior, str]] = ..., finalize: _Optional[_Union[Behavior, str]] = ..., push_after_ms: _Optional[int] = ...) -> None: ...
