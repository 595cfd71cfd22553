"""Builds a TaskTemplate from a typed Plugin Specification message, after flytekit's ``get_custom``: the SDK
user fills a generated message, and ``custom`` becomes its proto3 JSON form in a Struct, which is exactly what
the host validates and the plugin decodes."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from pluginbridge.v1 import task_pb2


def spec_to_struct(spec: Message) -> struct_pb2.Struct:
    """The message as proto3 JSON (camelCase names, defaults omitted) in a Struct."""
    custom = struct_pb2.Struct()
    custom.update(json_format.MessageToDict(spec))
    return custom


def task_template(spec: Message, type: str, version: int = 1, **extras: Any) -> task_pb2.TaskTemplate:  # noqa: A002
    """A TaskTemplate for task ``type`` at ``version`` with ``custom`` taken from ``spec``.

    ``extras`` are further TaskTemplate fields: ``id``, ``interface``, ``metadata`` (a TaskMetadata), ``secrets``
    and ``config``, given as messages or as the keyword arguments the generated constructor accepts.
    """
    if not isinstance(spec, Message):
        raise TypeError("spec must be a generated protobuf message, such as SqlQuery(...)")
    if "custom" in extras or "type" in extras or "type_version" in extras:
        raise TypeError("custom, type and type_version come from the spec, type and version arguments")
    return task_pb2.TaskTemplate(type=type, type_version=version, custom=spec_to_struct(spec), **extras)
