# JSON <-> Flyte literal conversion for flyte_client.py (Flyte interop tests, issue 8). Works for both IDL
# generations: flyteidl (v1, flyteidl.core.*) and flyteidl2 (flyteidl2.core.*) have the same Literal / Scalar /
# Primitive / LiteralMap / LiteralType shapes, so every function takes the generated module(s) to build with.
#
# JSON -> literal: int -> primitive.integer, float -> primitive.float_value, bool -> primitive.boolean,
#   str -> primitive.string_value, null -> scalar.none_type, list -> collection, object -> map.
# JSON -> LiteralType (for the template's interface): the same mapping onto simple / collection_type / map_value_type;
#   list elements and map values must agree on one type (ints mixed with floats count as float).
# literal -> JSON: the inverse, plus datetime (ISO 8601 string), duration (seconds, float), generic Struct (object),
#   and, marked so a test can see it, binary scalars ({"$binary": {"tag", "base64"}}: flytekit's msgpack encoding of
#   dicts and dataclasses) and anything else ({"$literal": <oneof name>}).
import base64
from typing import Any, Dict, Iterable, Optional

from google.protobuf import json_format

# flyteidl.core.SimpleType numbers (identical in flyteidl2.core).
NONE, INTEGER, FLOAT, STRING, BOOLEAN = 0, 1, 2, 3, 4


def to_literal(value: Any, literals_pb2: Any) -> Any:
    L = literals_pb2
    if value is None:
        return L.Literal(scalar=L.Scalar(none_type=L.Void()))
    if isinstance(value, bool):  # before int: bool is an int in Python
        return L.Literal(scalar=L.Scalar(primitive=L.Primitive(boolean=value)))
    if isinstance(value, int):
        return L.Literal(scalar=L.Scalar(primitive=L.Primitive(integer=value)))
    if isinstance(value, float):
        return L.Literal(scalar=L.Scalar(primitive=L.Primitive(float_value=value)))
    if isinstance(value, str):
        return L.Literal(scalar=L.Scalar(primitive=L.Primitive(string_value=value)))
    if isinstance(value, list):
        return L.Literal(collection=L.LiteralCollection(literals=[to_literal(v, L) for v in value]))
    if isinstance(value, dict):
        return L.Literal(map=L.LiteralMap(literals={str(k): to_literal(v, L) for k, v in value.items()}))
    raise TypeError(f"no Flyte literal for JSON value {value!r}")


def to_literal_map(values: Dict[str, Any], literals_pb2: Any) -> Any:
    return literals_pb2.LiteralMap(literals={k: to_literal(v, literals_pb2) for k, v in values.items()})


def literal_type(value: Any, types_pb2: Any) -> Any:
    T = types_pb2
    if value is None:
        return T.LiteralType(simple=NONE)
    if isinstance(value, bool):
        return T.LiteralType(simple=BOOLEAN)
    if isinstance(value, int):
        return T.LiteralType(simple=INTEGER)
    if isinstance(value, float):
        return T.LiteralType(simple=FLOAT)
    if isinstance(value, str):
        return T.LiteralType(simple=STRING)
    if isinstance(value, list):
        return T.LiteralType(collection_type=_common_type(value, T))
    if isinstance(value, dict):
        return T.LiteralType(map_value_type=_common_type(value.values(), T))
    raise TypeError(f"no Flyte literal type for JSON value {value!r}")


def _common_type(values: Iterable[Any], T: Any) -> Any:
    types = [literal_type(v, T) for v in values]
    if not types:
        return T.LiteralType(simple=NONE)
    if all(t.HasField("simple") and t.simple in (INTEGER, FLOAT) for t in types):
        return T.LiteralType(simple=FLOAT if any(t.simple == FLOAT for t in types) else INTEGER)
    if any(t != types[0] for t in types):
        raise TypeError("list elements / map values of different types have no single Flyte type")
    return types[0]


def to_json(literal: Any) -> Any:
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return [to_json(v) for v in literal.collection.literals]
    if kind == "map":
        return literal_map_to_json(literal.map)
    if kind == "scalar":
        return _scalar_to_json(literal.scalar)
    return {"$literal": kind}


def _scalar_to_json(scalar: Any) -> Any:
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        p = scalar.primitive
        which = p.WhichOneof("value")
        if which == "datetime":
            return p.datetime.ToDatetime().isoformat() + "Z"
        if which == "duration":
            return p.duration.ToTimedelta().total_seconds()
        return getattr(p, which) if which else None
    if kind == "none_type":
        return None
    if kind == "generic":
        return json_format.MessageToDict(scalar.generic)
    if kind == "binary":
        return {"$binary": {"tag": scalar.binary.tag, "base64": base64.b64encode(scalar.binary.value).decode()}}
    return {"$literal": f"scalar.{kind}"}


def literal_map_to_json(literal_map: Optional[Any]) -> Dict[str, Any]:
    if literal_map is None:
        return {}
    return {k: to_json(literal_map.literals[k]) for k in sorted(literal_map.literals)}


def named_literals_to_json(named: Iterable[Any]) -> Dict[str, Any]:
    """flyteidl2.task.Inputs / Outputs: repeated NamedLiteral{name, value} instead of a map."""
    return {n.name: to_json(n.value) for n in sorted(named, key=lambda n: n.name)}
