"""A Plugin Specification described for people: what to write in ``template.custom``.

Fields are listed by their proto3 JSON name (the name ``custom`` uses; the proto name follows when it differs),
with their type, ``repeated`` and ``map<K, V>``, and a note on the JSON form wherever it is not the obvious one
(64-bit integers, bytes, the well-known types). Every message and enum the specification reaches is described
after it, once. Leading comments are shown when the descriptor set carries source info; descriptor sets built
from generated code (as the kits announce them) usually do not, so nothing here depends on them.
"""

from __future__ import annotations

from collections import deque
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}

# proto3 JSON writes 64-bit integers as strings (a double cannot hold them) and bytes as base64.
_SCALAR_JSON = {
    **{kind: "a number or a decimal string" for kind in (
        FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_SINT64,
    )},
    FieldDescriptor.TYPE_BYTES: "a base64 string",
}

_WRAPPERS = ("DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue",
             "StringValue", "BytesValue")

# The well-known types have JSON forms of their own and are not expanded like the plugin's messages.
_WELL_KNOWN_JSON = {
    "google.protobuf.Duration": 'a string of seconds such as "1.5s"',
    "google.protobuf.Timestamp": 'an RFC 3339 string such as "2024-05-01T12:00:00Z"',
    "google.protobuf.Struct": "any JSON object",
    "google.protobuf.Value": "any JSON value",
    "google.protobuf.ListValue": "a JSON array",
    "google.protobuf.FieldMask": 'a string of comma-separated field paths such as "a.b,c"',
    "google.protobuf.Any": 'an object with "@type" and the message\'s fields',
    "google.protobuf.Empty": "{}",
    **{f"google.protobuf.{name}": "the plain value, or null" for name in _WRAPPERS},
}

# Field numbers inside descriptor.proto, as SourceCodeInfo paths use them.
_FILE_MESSAGES, _FILE_ENUMS = 4, 5
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES = 2

#: A comment's owner: ("message" | "enum", full name) or ("field" | "value", parent's full name + "." + name).
_CommentKey = Tuple[str, str]


def describe_message(spec: Descriptor, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> str:
    """``spec`` and every message and enum it reaches, as indented text."""
    comments = _comments(files)
    blocks: List[str] = []
    pending: deque[Union[Descriptor, EnumDescriptor]] = deque([spec])
    seen = {spec.full_name}
    while pending:
        item = pending.popleft()
        if isinstance(item, Descriptor):
            blocks.append(_message_block(item, comments))
            for reached in _reached(item):
                if reached.full_name not in seen:
                    seen.add(reached.full_name)
                    pending.append(reached)
        else:
            blocks.append(_enum_block(item, comments))
    return "\n\n".join(blocks)


def _reached(message: Descriptor) -> Iterable[Union[Descriptor, EnumDescriptor]]:
    """The messages and enums ``message``'s fields use, map entries looked through, well-known types left out."""
    for field in message.fields:
        target = _value_field(field)
        kind: Optional[Union[Descriptor, EnumDescriptor]] = target.message_type or target.enum_type
        if kind is not None and not kind.full_name.startswith("google.protobuf."):
            yield kind


def _map_entry(field: FieldDescriptor) -> Optional[Descriptor]:
    entry: Optional[Descriptor] = field.message_type
    return entry if entry is not None and entry.GetOptions().map_entry else None


def _value_field(field: FieldDescriptor) -> FieldDescriptor:
    """For a map field the entry's value field, otherwise the field itself."""
    entry = _map_entry(field)
    return entry.fields_by_name["value"] if entry is not None else field


def _comment_lines(comments: Dict[_CommentKey, str], key: _CommentKey, indent: str) -> List[str]:
    text = comments.get(key)
    if not text:
        return []
    return [f"{indent}// {line.strip()}".rstrip() for line in text.strip("\n").splitlines()]


def _message_block(message: Descriptor, comments: Dict[_CommentKey, str]) -> str:
    lines = _comment_lines(comments, ("message", message.full_name), "")
    lines.append(f"message {message.full_name}")
    # proto3 `optional` is a oneof of one field that protoc adds; only the CopyToProto form tells it from a real one.
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    for field, field_proto in zip(message.fields, proto.field):
        lines.extend(_comment_lines(comments, ("field", f"{message.full_name}.{field.name}"), "  "))
        name = field.json_name if field.json_name == field.name else f"{field.json_name} ({field.name})"
        notes = []
        if field_proto.proto3_optional:
            notes.append("optional")
        elif field.containing_oneof is not None:
            notes.append(f"oneof {field.containing_oneof.name}")
        json_form = _json_form(_value_field(field))
        if json_form:
            notes.append(f"JSON: {json_form}")
        lines.append(f"  {name}: {_type(field)}" + (f"  [{'; '.join(notes)}]" if notes else ""))
    if not message.fields:
        lines.append("  (no fields: {})")
    return "\n".join(lines)


def _enum_block(enum: EnumDescriptor, comments: Dict[_CommentKey, str]) -> str:
    lines = _comment_lines(comments, ("enum", enum.full_name), "")
    lines.append(f"enum {enum.full_name}  [JSON: a value's name, or its number]")
    for value in enum.values:
        lines.extend(_comment_lines(comments, ("value", f"{enum.full_name}.{value.name}"), "  "))
        lines.append(f"  {value.name} = {value.number}")
    return "\n".join(lines)


def _type(field: FieldDescriptor) -> str:
    entry = _map_entry(field)
    if entry is not None:
        return f"map<{_single_type(entry.fields_by_name['key'])}, {_single_type(entry.fields_by_name['value'])}>"
    return f"repeated {_single_type(field)}" if field.is_repeated else _single_type(field)


def _single_type(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return str(field.message_type.full_name)
    if field.enum_type is not None:
        return f"enum {field.enum_type.full_name}"
    return _SCALARS[field.type]


def _json_form(field: FieldDescriptor) -> Optional[str]:
    if field.message_type is not None:
        return _WELL_KNOWN_JSON.get(field.message_type.full_name)
    return _SCALAR_JSON.get(field.type)


def _comments(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> Dict[_CommentKey, str]:
    """Leading comments by owner, from the files' SourceCodeInfo (absent unless the set was built with it)."""
    found: Dict[_CommentKey, str] = {}
    for file in files:
        by_path = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
            if location.leading_comments.strip()
        }
        if not by_path:
            continue
        scope = f"{file.package}." if file.package else ""
        for index, message in enumerate(file.message_type):
            _message_comments(message, scope + message.name, (_FILE_MESSAGES, index), by_path, found)
        for index, enum in enumerate(file.enum_type):
            _enum_comments(enum, scope + enum.name, (_FILE_ENUMS, index), by_path, found)
    return found


def _message_comments(
    message: descriptor_pb2.DescriptorProto,
    full_name: str,
    path: Tuple[int, ...],
    by_path: Dict[Tuple[int, ...], str],
    found: Dict[_CommentKey, str],
) -> None:
    if path in by_path:
        found[("message", full_name)] = by_path[path]
    for index, field in enumerate(message.field):
        text = by_path.get(path + (_MESSAGE_FIELDS, index))
        if text:
            found[("field", f"{full_name}.{field.name}")] = text
    for index, nested in enumerate(message.nested_type):
        _message_comments(nested, f"{full_name}.{nested.name}", path + (_MESSAGE_NESTED, index), by_path, found)
    for index, enum in enumerate(message.enum_type):
        _enum_comments(enum, f"{full_name}.{enum.name}", path + (_MESSAGE_ENUMS, index), by_path, found)


def _enum_comments(
    enum: descriptor_pb2.EnumDescriptorProto,
    full_name: str,
    path: Tuple[int, ...],
    by_path: Dict[Tuple[int, ...], str],
    found: Dict[_CommentKey, str],
) -> None:
    if path in by_path:
        found[("enum", full_name)] = by_path[path]
    for index, value in enumerate(enum.value):
        text = by_path.get(path + (_ENUM_VALUES, index))
        if text:
            found[("value", f"{full_name}.{value.name}")] = text
