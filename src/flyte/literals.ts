// Flyte's literals (flyteidl.core.Literal, LiteralMap) to and from the bridge's inputs and outputs (JSON values in
// a google.protobuf.Struct). What maps: primitives (integer, float, string, boolean, datetime and duration as their
// protobuf JSON strings), none, collections, maps, generic structs, unions (their value), and the MessagePack
// binaries flytekit writes for dicts and dataclasses. Anything else (blobs, schemas, structured datasets, errors,
// offloaded literals) is refused with a LiteralError that names the literal's kind and where it was: a plugin gets
// JSON, so a literal that is a reference to data elsewhere has no faithful JSON form.
//
// From JSON, a LiteralType (a Flyte interface's, when the caller gave one) decides: 3 is an integer or a float, a
// string may be a datetime. Without one, the value decides (literalTypeOf).
import { create, fromJson, toJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { DurationSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { decode as decodeMessagePack } from "@msgpack/msgpack";
import {
  LiteralMapSchema,
  LiteralSchema,
  type Literal,
  type LiteralMap,
  type Primitive,
  type PrimitiveSchema,
  type Scalar,
  type ScalarSchema,
} from "@plugin-bridge/protocol/flyteidl/core/literals_pb.js";
import { LiteralTypeSchema, SimpleType, type LiteralType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";

export class LiteralError extends Error {}

/** The tag flytekit gives MessagePack binaries (dicts, dataclasses, Pydantic models). */
const MESSAGEPACK_TAG = "msgpack";
/** Nesting beyond this is refused rather than followed: literals come from callers. */
const MAX_DEPTH = 100;

function refuse(path: string, problem: string): LiteralError {
  return new LiteralError(`${path}: ${problem}`);
}

/** A LiteralMap as a JSON object (absent: empty). */
export function literalMapToJson(map: LiteralMap | undefined, path: string): JsonObject {
  const out: JsonObject = {};
  for (const [name, literal] of Object.entries(map?.literals ?? {})) out[name] = literalToJson(literal, `${path}.${name}`);
  return out;
}

export function literalToJson(literal: Literal, path: string, depth = 0): JsonValue {
  if (depth > MAX_DEPTH) throw refuse(path, `nests deeper than ${MAX_DEPTH} levels`);
  const value = literal.value;
  switch (value.case) {
    case "scalar":
      return scalarToJson(value.value, path, depth);
    case "collection":
      return value.value.literals.map((item, index) => literalToJson(item, `${path}[${index}]`, depth + 1));
    case "map": {
      const out: JsonObject = {};
      for (const [key, item] of Object.entries(value.value.literals)) out[key] = literalToJson(item, `${path}.${key}`, depth + 1);
      return out;
    }
    case "offloadedMetadata":
      throw refuse(path, "an offloaded literal (its value is stored elsewhere) has no JSON form here");
    case undefined:
      throw refuse(path, "the literal holds no value");
  }
}

function scalarToJson(scalar: Scalar, path: string, depth: number): JsonValue {
  const value = scalar.value;
  switch (value.case) {
    case "primitive":
      return primitiveToJson(value.value, path);
    case "noneType":
      return null;
    case "generic":
      return value.value;
    case "union":
      if (!value.value.value) throw refuse(path, "the union holds no value");
      return literalToJson(value.value.value, path, depth + 1);
    case "binary":
      if (value.value.tag !== MESSAGEPACK_TAG) throw refuse(path, `a binary literal tagged ${JSON.stringify(value.value.tag)} is not supported (only "${MESSAGEPACK_TAG}")`);
      return messagePackToJson(value.value.value, path);
    case "blob":
    case "schema":
    case "structuredDataset":
    case "error":
      throw refuse(path, `a ${kindName(value.case)} literal is not supported: the bridge maps primitives, collections, maps and generic structs`);
    case undefined:
      throw refuse(path, "the scalar holds no value");
  }
}

function kindName(kind: "blob" | "schema" | "structuredDataset" | "error"): string {
  return kind === "structuredDataset" ? "structured dataset" : kind;
}

function primitiveToJson(primitive: Primitive, path: string): JsonValue {
  const value = primitive.value;
  switch (value.case) {
    case "integer":
      if (value.value > BigInt(Number.MAX_SAFE_INTEGER) || value.value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw refuse(path, `the integer ${value.value} does not fit a JSON number exactly`);
      }
      return Number(value.value);
    case "floatValue":
      if (!Number.isFinite(value.value)) throw refuse(path, `${value.value} is not a number JSON can hold`);
      return value.value;
    case "stringValue":
      return value.value;
    case "boolean":
      return value.value;
    case "datetime":
      return toJson(TimestampSchema, value.value);
    case "duration":
      return toJson(DurationSchema, value.value);
    case undefined:
      throw refuse(path, "the primitive holds no value");
  }
}

function messagePackToJson(bytes: Uint8Array, path: string): JsonValue {
  let decoded: unknown;
  try {
    decoded = decodeMessagePack(bytes);
  } catch (error) {
    throw refuse(path, `the MessagePack binary does not decode: ${(error as Error).message}`);
  }
  return asJson(decoded, path, 0);
}

/** A decoded MessagePack value as JSON: string keys, finite numbers, no bytes or extension types. */
function asJson(value: unknown, path: string, depth: number): JsonValue {
  if (depth > MAX_DEPTH) throw refuse(path, `nests deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw refuse(path, `${value} is not a number JSON can hold`);
    return value;
  }
  if (typeof value === "bigint") {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw refuse(path, `the integer ${value} does not fit a JSON number exactly`);
    return Number(value);
  }
  if (Array.isArray(value)) return value.map((item, index) => asJson(item, `${path}[${index}]`, depth + 1));
  if (value instanceof Map) {
    const out: JsonObject = {};
    for (const [key, item] of value) {
      if (typeof key !== "string") throw refuse(path, "a MessagePack map with keys that are not strings has no JSON form");
      out[key] = asJson(item, `${path}.${key}`, depth + 1);
    }
    return out;
  }
  if (typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) out[key] = asJson(item, `${path}.${key}`, depth + 1);
    return out;
  }
  throw refuse(path, "MessagePack bytes or extension values have no JSON form");
}

/** A JSON object as a LiteralMap; `types` (a Flyte interface's variables) decides each value's literal where given. */
export function jsonToLiteralMap(values: JsonObject | undefined, types: Readonly<Record<string, LiteralType | undefined>>, path: string): LiteralMap {
  const literals: Record<string, Literal> = {};
  for (const [name, value] of Object.entries(values ?? {})) literals[name] = jsonToLiteral(value, types[name], `${path}.${name}`);
  return create(LiteralMapSchema, { literals });
}

export function jsonToLiteral(value: JsonValue, type: LiteralType | undefined, path: string, depth = 0): Literal {
  if (depth > MAX_DEPTH) throw refuse(path, `nests deeper than ${MAX_DEPTH} levels`);
  const expected = type ?? literalTypeOf(value, path);
  const kind = expected.type;
  switch (kind.case) {
    case "simple":
      return simpleLiteral(value, kind.value, path);
    case "collectionType":
      if (!Array.isArray(value)) throw mismatch(path, value, "a list");
      return create(LiteralSchema, {
        value: { case: "collection", value: { literals: value.map((item, index) => jsonToLiteral(item, kind.value, `${path}[${index}]`, depth + 1)) } },
      });
    case "mapValueType": {
      if (!isObject(value)) throw mismatch(path, value, "an object");
      const literals: Record<string, Literal> = {};
      for (const [key, item] of Object.entries(value)) literals[key] = jsonToLiteral(item, kind.value, `${path}.${key}`, depth + 1);
      return create(LiteralSchema, { value: { case: "map", value: { literals } } });
    }
    case "unionType": {
      for (const variant of kind.value.variants) {
        let inner: Literal;
        try {
          inner = jsonToLiteral(value, variant, path, depth + 1);
        } catch (error) {
          if (error instanceof LiteralError) continue;
          throw error;
        }
        return scalar({ case: "union", value: { value: inner, type: variant } });
      }
      throw refuse(path, `${describe(value)} matches none of the union's ${kind.value.variants.length} types`);
    }
    case "enumType":
      if (typeof value !== "string" || !kind.value.values.includes(value)) throw refuse(path, `${describe(value)} is not one of the enum's values`);
      return primitive({ case: "stringValue", value });
    case "schema":
    case "blob":
    case "structuredDatasetType":
      throw refuse(path, `the interface types it as a ${kind.case === "structuredDatasetType" ? "structured dataset" : kind.case}, which the bridge does not map`);
    case undefined:
      throw refuse(path, "the interface gives it no type");
  }
}

function simpleLiteral(value: JsonValue, type: SimpleType, path: string): Literal {
  switch (type) {
    case SimpleType.NONE:
      if (value !== null) throw mismatch(path, value, "null");
      return scalar({ case: "noneType", value: {} });
    case SimpleType.INTEGER:
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw mismatch(path, value, "an integer");
      return primitive({ case: "integer", value: BigInt(value) });
    case SimpleType.FLOAT:
      if (typeof value !== "number") throw mismatch(path, value, "a number");
      return primitive({ case: "floatValue", value });
    case SimpleType.STRING:
      if (typeof value !== "string") throw mismatch(path, value, "a string");
      return primitive({ case: "stringValue", value });
    case SimpleType.BOOLEAN:
      if (typeof value !== "boolean") throw mismatch(path, value, "a boolean");
      return primitive({ case: "boolean", value });
    case SimpleType.DATETIME:
      return primitive({ case: "datetime", value: parsed(() => fromJson(TimestampSchema, value), path, value, "an RFC 3339 time") });
    case SimpleType.DURATION:
      return primitive({ case: "duration", value: parsed(() => fromJson(DurationSchema, value), path, value, 'a duration such as "1.5s"') });
    case SimpleType.STRUCT:
      if (!isObject(value)) throw mismatch(path, value, "an object");
      return scalar({ case: "generic", value });
    default:
      throw refuse(path, `the interface types it as ${SimpleType[type] ?? type}, which the bridge does not map`);
  }
}

/**
 * The literal type a JSON value maps to without an interface: integral numbers are integers. `path` names the value
 * in the LiteralError of a list whose elements have no one type.
 */
export function literalTypeOf(value: JsonValue, path = "value"): LiteralType {
  if (value === null) return simpleType(SimpleType.NONE);
  if (typeof value === "boolean") return simpleType(SimpleType.BOOLEAN);
  if (typeof value === "number") return simpleType(Number.isSafeInteger(value) ? SimpleType.INTEGER : SimpleType.FLOAT);
  if (typeof value === "string") return simpleType(SimpleType.STRING);
  if (Array.isArray(value)) return create(LiteralTypeSchema, { type: { case: "collectionType", value: elementType(value, path) } });
  return simpleType(SimpleType.STRUCT);
}

/** One type for every element: integers and floats together are floats; other mixes, and an empty list, need the interface. */
function elementType(values: JsonValue[], path: string): LiteralType {
  const types = values.map((value, index) => literalTypeOf(value, `${path}[${index}]`));
  const simple = new Set(types.map((type) => (type.type.case === "simple" ? type.type.value : undefined)));
  if (types.length > 0 && simple.size === 1 && !simple.has(undefined)) return types[0]!;
  if (simple.size === 2 && simple.has(SimpleType.INTEGER) && simple.has(SimpleType.FLOAT)) return simpleType(SimpleType.FLOAT);
  if (types.length > 0 && types.every((type) => type.type.case === "collectionType")) return types[0]!;
  throw refuse(path, `a list of ${types.length === 0 ? "nothing" : "mixed values"} needs a type from the task's interface`);
}

export function simpleType(type: SimpleType): LiteralType {
  return create(LiteralTypeSchema, { type: { case: "simple", value: type } });
}

function scalar(value: MessageInitShape<typeof ScalarSchema>["value"]): Literal {
  return create(LiteralSchema, { value: { case: "scalar", value: { value } } });
}

function primitive(value: MessageInitShape<typeof PrimitiveSchema>["value"]): Literal {
  return scalar({ case: "primitive", value: { value } });
}

function parsed<T>(parse: () => T, path: string, value: JsonValue, what: string): T {
  try {
    return parse();
  } catch {
    throw mismatch(path, value, what);
  }
}

function isObject(value: JsonValue): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function describe(value: JsonValue): string {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function mismatch(path: string, value: JsonValue, expected: string): LiteralError {
  return refuse(path, `${describe(value)} is not ${expected}, as the interface types it`);
}
