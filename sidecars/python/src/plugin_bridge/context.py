"""Turns the TaskContext of a call into the :class:`PluginContext` a plugin method receives, decoding
``template.custom`` into the plugin's typed specification.

A ``custom`` that does not fit the specification is the submitter's fault: INVALID_ARGUMENT naming
``template.custom`` and the offending field, so the host fails the task with it. Unknown fields are rejected
(the host rejects them too, so a plugin never silently ignores a misspelt option).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Type, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pluginbridge.v1 import task_pb2

from .errors import QUOTED_INPUT_LENGTH, PluginError, quote_input
from .execution_id import EXECUTION_ID_RULE, is_execution_id
from .log import KitLogger
from .plugin import PluginContext, PushFn

M = TypeVar("M", bound=Message)


def _field_for_key(desc: Descriptor, key: str) -> Optional[FieldDescriptor]:
    for field in desc.fields:
        if field.json_name == key or field.name == key:
            return field
    return None


def _unknown_key_step(key: str) -> str:
    """An unknown key as a step of a field path: as it is, or quoted and cut when it is too long to repeat whole."""
    return key if len(key) <= QUOTED_INPUT_LENGTH else quote_input(key)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _locate(cls: Type[Message], desc: Descriptor, json: Dict[str, Any], path: str) -> Optional[str]:
    """The deepest ``path: problem`` whose value fails to decode, found by decoding one key at a time:
    json_format names the field, but not with the full path from the top."""
    for key, value in json.items():
        field = _field_for_key(desc, key)
        field_path = f"{path}.{field.name if field else _unknown_key_step(key)}"
        if field is None:
            return f"{field_path}: unknown field"
        try:
            json_format.ParseDict({key: value}, cls(), ignore_unknown_fields=False)
            continue
        except (json_format.ParseError, ValueError, TypeError) as error:
            inner: Optional[str] = None
            sub = field.message_type
            # Well-known types (Struct, Duration ...) have their own JSON forms: report them as a whole.
            if sub is not None and not _is_map(field) and not sub.full_name.startswith("google.protobuf."):
                sub_cls = _message_class(sub)
                if field.is_repeated and isinstance(value, list):
                    for index, item in enumerate(value):
                        if isinstance(item, dict):
                            inner = _locate(sub_cls, sub, item, f"{field_path}[{index}]")
                            if inner:
                                break
                elif isinstance(value, dict):
                    inner = _locate(sub_cls, sub, value, field_path)
            return inner or f"{field_path}: {_clean(error)}"
    return None


def _message_class(desc: Descriptor) -> Type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(desc)


def _clean(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


def decode_specification(cls: Type[M], custom: Optional[Dict[str, Any]]) -> M:
    """Decodes ``custom`` into ``cls``, or raises INVALID_ARGUMENT naming ``template.custom`` and the field."""
    json = custom if custom is not None else {}
    try:
        return json_format.ParseDict(json, cls(), ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError) as error:
        located = _locate(cls, cls.DESCRIPTOR, json, "template.custom") if isinstance(json, dict) else None
        where = located or f"template.custom: {_clean(error)}"
        raise PluginError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{where} (expected {cls.DESCRIPTOR.full_name})"
        ) from None


def struct_to_dict(message: Any) -> Dict[str, Any]:
    """A google.protobuf.Struct as a plain dict (an unset Struct is {})."""
    return json_format.MessageToDict(message) if message is not None else {}


def build_context(
    spec_cls: Type[M],
    task_context: Optional[task_pb2.TaskContext],
    has_context: bool,
    cancelled: asyncio.Event,
    deadline: Optional[float],
    log: KitLogger,
    instance_id: str,
    push: Optional[PushFn] = None,
) -> PluginContext[M]:
    """The PluginContext of one call. The TaskContext must carry an execution id and attempt a host could have
    given (:mod:`.execution_id`; attempts start at 1) and a template; ``push`` is the sidecar's push, which
    ``ctx.push`` calls with the call's execution id and attempt."""
    if task_context is None or not has_context:
        raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "context is required")
    execution_id = task_context.execution_id.id
    if not execution_id:
        raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "context.execution_id.id is required")
    if not is_execution_id(execution_id):
        raise PluginError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"context.execution_id.id {quote_input(execution_id)} is not an execution id: {EXECUTION_ID_RULE}",
        )
    if task_context.execution_id.attempt < 1:
        raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "context.execution_id.attempt must be at least 1")
    if not task_context.HasField("template"):
        raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "context.template is required")
    template = task_context.template
    custom = struct_to_dict(template.custom) if template.HasField("custom") else {}
    spec = decode_specification(spec_cls, custom)
    return PluginContext(
        spec=spec,
        execution_id=execution_id,
        attempt=task_context.execution_id.attempt,
        template=template,
        inputs=struct_to_dict(task_context.inputs) if task_context.HasField("inputs") else {},
        metadata=task_context.metadata,
        secrets=dict(task_context.secrets),
        cancelled=cancelled,
        deadline=deadline,
        task_context=task_context,
        log=log,
        instance_id=instance_id,
        _push=push,
    )
