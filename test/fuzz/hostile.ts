// Structured hostile inputs, built for any request message from its schema: messages of exactly the read limit
// and just over it, google.protobuf.Struct nested 100, 1,000 and 10,000 deep (binary and JSON), strings of
// megabytes, maps of 100,000 keys, invalid UTF-8 in string fields, numbers out of range, unknown groups nested
// deep, and lists of 100,000 elements. Each is placed at a field path the schema has, by appending the field to a
// valid message (protobuf merges a repeated embedded message into the one already there).
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { Random } from "./random.js";
import { concat, lengthDelimited, stringField, tag, varint, varintField, WireType } from "./protowire.js";
import { INVALID_UTF8 } from "./mutate.js";

export const MiB = 1024 * 1024;

/** A chain of fields from the top message down to one leaf field. */
export type FieldPath = readonly DescField[];

/** Every field reachable within `maxDepth` messages (no message type twice on one path, so recursion stops). */
export function fieldPaths(desc: DescMessage, maxDepth = 4, prefix: FieldPath = [], seen: ReadonlySet<string> = new Set()): FieldPath[] {
  const out: FieldPath[] = [];
  for (const field of desc.fields) {
    const path = [...prefix, field];
    out.push(path);
    if (field.fieldKind === "message" && path.length < maxDepth && !seen.has(field.message.typeName) && !isWellKnown(field.message)) {
      out.push(...fieldPaths(field.message, maxDepth, path, new Set([...seen, desc.typeName])));
    }
  }
  return out;
}

function isWellKnown(desc: DescMessage): boolean {
  return desc.typeName.startsWith("google.protobuf.");
}

const leaf = (path: FieldPath): DescField => path[path.length - 1]!;

/** Appends `leafBytes` (the leaf field, tag included) to `seed`, wrapped in each parent field of the path. */
export function binaryAt(seed: Uint8Array, path: FieldPath, leafBytes: Uint8Array): Uint8Array {
  let wrapped = leafBytes;
  for (let i = path.length - 2; i >= 0; i--) wrapped = lengthDelimited(path[i]!.number, wrapped);
  return concat([seed, wrapped]);
}

/** `seedJson` with the value at the path replaced by `rawValue` (JSON text, spliced in without parsing it). */
export function jsonAt(seedJson: string, path: FieldPath, rawValue: string): string {
  const root = JSON.parse(seedJson) as Record<string, unknown>;
  const placeholder = "\u0000fuzz-placeholder\u0000";
  let at = root;
  for (const field of path.slice(0, -1)) {
    const next = at[field.jsonName];
    at = (next && typeof next === "object" && !Array.isArray(next) ? next : (at[field.jsonName] = {})) as Record<string, unknown>;
  }
  at[leaf(path).jsonName] = placeholder;
  return JSON.stringify(root).replace(JSON.stringify(placeholder), () => rawValue);
}

function varintLength(value: number): number {
  return varint(value).length;
}

/**
 * A google.protobuf.Struct nested `depth` deep: {"a": {"a": ...}} through struct_value, or through list_value
 * ({"a": [[[...]]]}). Written front to back with lengths computed first: rebuilding it inside out would copy
 * O(depth²) bytes.
 */
export function deepStructBinary(depth: number, through: "struct" | "list"): Uint8Array {
  // Innermost first: the length of each level's Struct, then its Value, then its map entry.
  const structLengths: number[] = [0];
  const valueLengths: number[] = [];
  const entryLengths: number[] = [];
  for (let level = 0; level < depth; level++) {
    const inner = structLengths[level]!;
    // Value { struct_value = 5 } or Value { list_value = 6 { values = 1 { struct_value = 5 } } }
    const structValue = 1 + varintLength(inner) + inner;
    const value = through === "struct" ? structValue : 1 + varintLength(1 + varintLength(structValue) + structValue) + 1 + varintLength(structValue) + structValue;
    const entry = 3 + 1 + varintLength(value) + value; // key "a" (3 bytes), then the value field
    valueLengths.push(value);
    entryLengths.push(entry);
    structLengths.push(1 + varintLength(entry) + entry);
  }
  const parts: Uint8Array[] = [];
  for (let level = depth - 1; level >= 0; level--) {
    const inner = structLengths[level]!;
    const structValue = 1 + varintLength(inner) + inner;
    parts.push(concat([tag(1, WireType.bytes), varint(entryLengths[level]!), Uint8Array.of(0x0a, 0x01, 0x61), tag(2, WireType.bytes), varint(valueLengths[level]!)]));
    if (through === "list") {
      parts.push(concat([tag(6, WireType.bytes), varint(1 + varintLength(structValue) + structValue), tag(1, WireType.bytes), varint(structValue)]));
    }
    parts.push(concat([tag(5, WireType.bytes), varint(inner)]));
  }
  return concat(parts);
}

export function deepStructJson(depth: number, through: "struct" | "list"): string {
  return through === "struct" ? `${'{"a":'.repeat(depth)}{}${"}".repeat(depth)}` : `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`;
}

/** Unknown groups nested `depth` deep, closed properly: parsers that skip unknown fields recursively meet them. */
export function deepGroups(depth: number): Uint8Array {
  return concat([...Array.from({ length: depth }, () => tag(15_000, WireType.groupStart)), ...Array.from({ length: depth }, () => tag(15_000, WireType.groupEnd))]);
}

/** A message of exactly `size` bytes: the seed plus an unknown bytes field of the right length. */
export function binaryOfSize(seed: Uint8Array, size: number): Uint8Array {
  const header = (length: number): number => tag(18_999, WireType.bytes).length + varintLength(length);
  let padding = Math.max(0, size - seed.length - header(size));
  while (seed.length + header(padding) + padding > size && padding > 0) padding--;
  while (seed.length + header(padding) + padding < size) padding++;
  return concat([seed, tag(18_999, WireType.bytes), varint(padding), new Uint8Array(padding).fill(0x61)]);
}

/** JSON of exactly `size` bytes: the seed and then spaces (JSON allows any amount of whitespace). */
export function jsonOfSize(seedJson: string, size: number): Uint8Array {
  const text = new TextEncoder().encode(seedJson);
  const out = new Uint8Array(Math.max(size, text.length)).fill(0x20);
  out.set(text);
  return out;
}

export interface Hostile {
  bytes: Uint8Array;
  how: string;
  /** Large enough to need a longer deadline. */
  heavy: boolean;
}

const pathsOf = new Map<string, FieldPath[]>();

/** Paths to fields of a kind, by predicate; the hostile input needs one of them. */
function pathsWhere(desc: DescMessage, predicate: (field: DescField) => boolean): FieldPath[] {
  let paths = pathsOf.get(desc.typeName);
  if (!paths) pathsOf.set(desc.typeName, (paths = fieldPaths(desc)));
  return paths.filter((path) => predicate(leaf(path)));
}

const isStruct = (field: DescField): boolean => field.fieldKind === "message" && field.message.typeName === "google.protobuf.Struct";
const isString = (field: DescField): boolean => field.fieldKind === "scalar" && field.scalar === ScalarType.STRING;
const isStringMap = (field: DescField): boolean => field.fieldKind === "map" && field.mapKey === ScalarType.STRING;
const isNumber = (field: DescField): boolean =>
  (field.fieldKind === "scalar" && field.scalar !== ScalarType.STRING && field.scalar !== ScalarType.BYTES && field.scalar !== ScalarType.BOOL) || field.fieldKind === "enum";
const isRepeated = (field: DescField): boolean => field.fieldKind === "list";

/** Builds one input; `heavy` asks for the large variant (megabytes, 10,000 deep), otherwise a light one. */
type Builder = (random: Random, desc: DescMessage, seed: { binary: Uint8Array; json: string }, json: boolean, limit: number, heavy: boolean) => Hostile | undefined;

const builders: ReadonlyArray<readonly [number, string, Builder]> = [
  [3, "size", (random, _desc, seed, json, limit, heavy) => {
    if (!heavy) return undefined;
    const size = random.pick([limit - 1, limit, limit + 1, limit + 65_536, 2 * limit]);
    const bytes = json ? jsonOfSize(seed.json, size) : binaryOfSize(seed.binary, size);
    return { bytes, how: `size(${size === limit ? "limit" : size < limit ? "limit-1" : `limit+${size - limit}`})`, heavy: true };
  }],
  [3, "deep-struct", (random, desc, seed, json, _limit, heavy) => {
    const paths = pathsWhere(desc, isStruct);
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    const depth = heavy ? 10_000 : random.pick([100, 1_000]);
    const through = random.pick(["struct", "list"] as const);
    const bytes = json
      ? new TextEncoder().encode(jsonAt(seed.json, path, deepStructJson(depth, through)))
      : binaryAt(seed.binary, path, lengthDelimited(leaf(path).number, deepStructBinary(depth, through)));
    return { bytes, how: `deep-${through}(${path.map((f) => f.name).join(".")},${depth})`, heavy };
  }],
  [1, "deep-groups", (random, _desc, seed, json, _limit, heavy) => {
    if (json) return undefined;
    const depth = heavy ? 10_000 : random.pick([100, 1_000]);
    return { bytes: concat([seed.binary, deepGroups(depth)]), how: `deep-groups(${depth})`, heavy };
  }],
  [2, "huge-string", (random, desc, seed, json, limit, heavy) => {
    const paths = pathsWhere(desc, isString);
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    const length = heavy ? random.pick([MiB, 3 * MiB, limit + 1]) : random.pick([4_096, 65_536]);
    const text = random.chance(0.5) ? "x".repeat(length) : "é".repeat(length / 2);
    const bytes = json
      ? new TextEncoder().encode(jsonAt(seed.json, path, JSON.stringify(text)))
      : binaryAt(seed.binary, path, stringField(leaf(path).number, text));
    return { bytes, how: `huge-string(${path.map((f) => f.name).join(".")},${length})`, heavy };
  }],
  [2, "huge-map", (random, desc, seed, json, _limit, heavy) => {
    const paths = pathsWhere(desc, (field) => isStringMap(field) || isStruct(field));
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    const keys = heavy ? 100_000 : random.pick([100, 1_000]);
    const field = leaf(path);
    let bytes: Uint8Array;
    if (json) {
      const entries = Array.from({ length: keys }, (_, i) => `"k${i}":"v"`).join(",");
      bytes = new TextEncoder().encode(jsonAt(seed.json, path, `{${entries}}`));
    } else if (field.fieldKind === "map") {
      bytes = binaryAt(seed.binary, path, concat(Array.from({ length: keys }, (_, i) => lengthDelimited(field.number, concat([stringField(1, `k${i}`), stringField(2, "v")])))));
    } else {
      // Struct: map<string, Value> fields = 1, each Value a string_value (3).
      const entries = concat(Array.from({ length: keys }, (_, i) => lengthDelimited(1, concat([stringField(1, `k${i}`), lengthDelimited(2, stringField(3, "v"))]))));
      bytes = binaryAt(seed.binary, path, lengthDelimited(field.number, entries));
    }
    return { bytes, how: `huge-map(${path.map((f) => f.name).join(".")},${keys})`, heavy };
  }],
  [3, "bad-utf8", (random, desc, seed, json) => {
    const paths = pathsWhere(desc, (field) => isString(field) || isStringMap(field));
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    const field = leaf(path);
    const bad = random.pick(INVALID_UTF8);
    const text = concat([new TextEncoder().encode("ok"), bad]);
    if (json) {
      const marker = "\u0001";
      const body = new TextEncoder().encode(jsonAt(seed.json, path, field.fieldKind === "map" ? `{"k":"${marker}"}` : `"${marker}"`));
      const at = body.indexOf(1);
      return { bytes: concat([body.subarray(0, at), text, body.subarray(at + 1)]), how: `bad-utf8(${path.map((f) => f.name).join(".")})`, heavy: false };
    }
    const leafBytes = field.fieldKind === "map"
      ? lengthDelimited(field.number, concat([random.chance(0.5) ? lengthDelimited(1, text) : stringField(1, "k"), lengthDelimited(2, text)]))
      : lengthDelimited(field.number, text);
    return { bytes: binaryAt(seed.binary, path, leafBytes), how: `bad-utf8(${path.map((f) => f.name).join(".")})`, heavy: false };
  }],
  [3, "out-of-range", (random, desc, seed, json) => {
    const paths = pathsWhere(desc, isNumber);
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    if (json) {
      const value = random.pick(["-1", "2147483648", "-2147483649", "4294967296", "18446744073709551616", "1e308", "-1e308", "1.5", '"1e3"', '"-0"', "999999"]);
      return { bytes: new TextEncoder().encode(jsonAt(seed.json, path, value)), how: `out-of-range(${path.map((f) => f.name).join(".")}=${value})`, heavy: false };
    }
    const value = random.pick([-1n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 999_999n]);
    return { bytes: binaryAt(seed.binary, path, varintField(leaf(path).number, value)), how: `out-of-range(${path.map((f) => f.name).join(".")}=${value})`, heavy: false };
  }],
  [1, "long-list", (random, desc, seed, json, _limit, heavy) => {
    const paths = pathsWhere(desc, isRepeated);
    if (paths.length === 0) return undefined;
    const path = random.pick(paths);
    const field = leaf(path);
    const count = heavy ? 100_000 : random.pick([1_000, 10_000]);
    let bytes: Uint8Array;
    if (json) {
      const element = field.fieldKind !== "list" ? '""' : field.listKind === "message" ? "{}" : field.listKind === "enum" ? "1" : '""';
      bytes = new TextEncoder().encode(jsonAt(seed.json, path, `[${Array.from({ length: count }, () => element).join(",")}]`));
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      bytes = binaryAt(seed.binary, path, concat(Array.from({ length: count }, () => lengthDelimited(field.number, new Uint8Array()))));
    } else {
      // Packed: one length-delimited run of varints.
      bytes = binaryAt(seed.binary, path, lengthDelimited(field.number, new Uint8Array(count).fill(1)));
    }
    return { bytes, how: `long-list(${path.map((f) => f.name).join(".")},${count})`, heavy };
  }],
];

/**
 * One structured hostile input for a message of type `desc`, large (`heavy`) or light, or undefined when the
 * message has no field it needs.
 */
export function hostileInput(random: Random, desc: DescMessage, seed: { binary: Uint8Array; json: string }, json: boolean, limit: number, heavy: boolean): Hostile | undefined {
  for (let attempt = 0; attempt < 4; attempt++) {
    // Among the large inputs, messages at and just over the read limit matter most: pick them more often.
    const build = random.weighted(builders.map(([weight, name, builder]) => [heavy && name === "size" ? 8 : weight, builder] as const));
    const built = build(random, desc, seed, json, limit, heavy);
    if (built) return built;
  }
  return undefined;
}
