"""Where a ``custom`` fails its Plugin Specification, named the way the host names it.

The host (``src/registry/specifications.ts``) answers ``template.custom.<path>: <problem>``, the path spelt with
the keys as submitted, ``[i]`` for list items and ``["key"]`` for map entries. The SDK checks with proto3 JSON
rules (``json_format.ParseDict``, unknown fields rejected) and finds the path the same way: json_format says what
failed but not where from the top, so each key is decoded alone and the search descends into the one that fails.
Keeping the host's form means a caller sees the same path whichever side refused.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

#: What ParseDict raises for JSON that does not fit the message (ParseError, or a conversion error it lets out).
_DECODE_ERRORS = (json_format.ParseError, ValueError, TypeError)


def custom_problem(
    spec: Descriptor, custom: Optional[Mapping[str, Any]], path: str = "template.custom"
) -> Optional[str]:
    """``"<path>: <problem>"`` when ``custom`` does not parse as ``spec``, else None."""
    json_value: Mapping[str, Any] = custom if custom is not None else {}
    try:
        _decode(spec, json_value)
        return None
    except _DECODE_ERRORS as error:
        return _locate(spec, json_value, path) or f"{path}: {_text(error)}"


def _decode(spec: Descriptor, json_value: Any) -> None:
    json_format.ParseDict(json_value, message_factory.GetMessageClass(spec)(), ignore_unknown_fields=False)


def _text(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


def _field_for_key(spec: Descriptor, key: str) -> Optional[FieldDescriptor]:
    # proto3 JSON accepts the JSON name and the proto field name alike.
    for field in spec.fields:
        if field.json_name == key or field.name == key:
            return field
    return None


def _locate(spec: Descriptor, json_value: Any, path: str) -> Optional[str]:
    """The first key of ``json_value`` that does not decode, with the deepest path that can be named."""
    # A well-known type has its own JSON form (a Duration is a string): it is reported as a whole.
    if not isinstance(json_value, Mapping) or spec.full_name.startswith("google.protobuf."):
        return None
    for key, value in json_value.items():
        field = _field_for_key(spec, key)
        field_path = f"{path}.{key}"
        if field is None:
            return f'{field_path}: {spec.full_name} has no field "{key}"'
        try:
            _decode(spec, {key: value})
        except _DECODE_ERRORS as error:
            return _descend(field, value, field_path) or f"{field_path}: {_text(error)}"
    return None


def _descend(field: FieldDescriptor, value: Any, path: str) -> Optional[str]:
    """The failing spot inside a message-typed field's value: a nested message, a list item or a map value."""
    sub = field.message_type
    if sub is None:
        return None
    if sub.GetOptions().map_entry:
        values: Optional[Descriptor] = sub.fields_by_name["value"].message_type
        if values is None or not isinstance(value, Mapping):
            return None
        for key, item in value.items():
            found = _locate(values, item, f"{path}[{json.dumps(key, ensure_ascii=False)}]")
            if found:
                return found
        return None
    if field.is_repeated:
        if not isinstance(value, list):
            return None
        for index, item in enumerate(value):
            found = _locate(sub, item, f"{path}[{index}]")
            if found:
                return found
        return None
    return _locate(sub, value, path)
