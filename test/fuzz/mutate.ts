// Mutations of valid messages: blind byte edits (flip, truncate, extend, duplicate, insert), edits that know the
// protobuf wire format (duplicate or drop a field, change its wire type, make its length lie, bury it in unknown
// fields) and edits of JSON (wrong types, numbers out of range, broken escapes, broken syntax). Each returns new
// bytes and a short name of what it did, so a failure says how its input was made.
import { Random } from "./random.js";
import { concat, lengthDelimited, overlongVarint, tag, varint, WireType, wireFields } from "./protowire.js";

export interface Mutated {
  bytes: Uint8Array;
  /** What was done, in order: "flip(3)+dup-field(2)". */
  how: string;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12, 0x1a, 0x22, 0x0f, 0x0c, 0xc0, 0xed];

type ByteMutator = (bytes: Uint8Array, random: Random) => Mutated;

const byteMutators: ReadonlyArray<readonly [number, ByteMutator]> = [
  [4, (bytes, random) => {
    const out = bytes.slice();
    const flips = random.range(1, 8);
    for (let i = 0; i < flips && out.length > 0; i++) out[random.int(out.length)]! ^= 1 << random.int(8);
    return { bytes: out, how: `flip(${flips})` };
  }],
  [3, (bytes, random) => {
    const out = bytes.slice();
    const count = random.range(1, 4);
    for (let i = 0; i < count && out.length > 0; i++) out[random.int(out.length)] = random.pick(INTERESTING_BYTES);
    return { bytes: out, how: `set-byte(${count})` };
  }],
  [3, (bytes, random) => {
    const at = random.int(bytes.length + 1);
    return { bytes: bytes.slice(0, at), how: `truncate(${at})` };
  }],
  [2, (bytes, random) => {
    const extra = random.bytes(random.range(1, 64));
    return { bytes: concat([bytes, extra]), how: `extend(${extra.length})` };
  }],
  [2, (bytes, random) => {
    const at = random.int(bytes.length + 1);
    const extra = random.bytes(random.range(1, 16));
    return { bytes: concat([bytes.subarray(0, at), extra, bytes.subarray(at)]), how: `insert(${at},${extra.length})` };
  }],
  [2, (bytes, random) => {
    const from = random.int(bytes.length + 1);
    const to = Math.min(bytes.length, from + random.range(1, 16));
    return { bytes: concat([bytes.subarray(0, from), bytes.subarray(to)]), how: `delete(${from},${to - from})` };
  }],
  [2, (bytes, random) => {
    const from = random.int(bytes.length + 1);
    const to = Math.min(bytes.length, from + random.range(1, 32));
    const times = random.range(1, 8);
    const slice = bytes.subarray(from, to);
    return { bytes: concat([bytes.subarray(0, to), ...Array.from({ length: times }, () => slice), bytes.subarray(to)]), how: `repeat(${from},${to - from}x${times})` };
  }],
];

type WireMutator = (bytes: Uint8Array, random: Random) => Mutated | undefined;

const wireMutators: ReadonlyArray<readonly [number, WireMutator]> = [
  // A field twice: last one wins for scalars, messages merge, repeated fields grow.
  [3, (bytes, random) => {
    const fields = wireFields(bytes);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const copy = bytes.subarray(f.start, f.end);
    return { bytes: concat([bytes, copy]), how: `dup-field(${f.field})` };
  }],
  [2, (bytes, random) => {
    const fields = wireFields(bytes);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    return { bytes: concat([bytes.subarray(0, f.start), bytes.subarray(f.end)]), how: `drop-field(${f.field})` };
  }],
  // The same field number with another wire type and the payload left as it was.
  [3, (bytes, random) => {
    const fields = wireFields(bytes);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const wireType = random.pick([0, 1, 2, 3, 4, 5, 6, 7].filter((w) => w !== f.wireType));
    const rest = f.wireType === WireType.bytes ? bytes.subarray(f.start + tag(f.field, f.wireType).length, f.end) : bytes.subarray(f.payloadStart, f.end);
    return { bytes: concat([bytes.subarray(0, f.start), tag(f.field, wireType), rest, bytes.subarray(f.end)]), how: `wire-type(${f.field}:${f.wireType}->${wireType})` };
  }],
  // A length that says more (or far more) than what follows.
  [3, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.bytes);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const length = random.pick([f.end - f.payloadStart + 1, f.end - f.payloadStart + 1000, 0x7fffffff, 2 ** 32 + 5, 2 ** 62]);
    const header = concat([tag(f.field, WireType.bytes), varint(length)]);
    return { bytes: concat([bytes.subarray(0, f.start), header, bytes.subarray(f.payloadStart)]), how: `long-length(${f.field}:${length})` };
  }],
  // A length that says less: the rest of the payload is read as fields.
  [2, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.bytes && f.end - f.payloadStart > 1);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const length = random.int(f.end - f.payloadStart);
    const header = concat([tag(f.field, WireType.bytes), varint(length)]);
    return { bytes: concat([bytes.subarray(0, f.start), header, bytes.subarray(f.payloadStart)]), how: `short-length(${f.field}:${length})` };
  }],
  // Unknown fields: odd numbers, reserved numbers, groups with and without their end.
  [3, (bytes, random) => {
    const field = random.pick([0, 1, 15, 16, 2047, 19000, 19999, 536870911, 536870912, random.range(1, 10_000)]);
    const wireType = random.int(8);
    const payload = wireType === WireType.bytes ? concat([varint(4), random.bytes(4)]) : wireType === WireType.groupStart ? new Uint8Array() : random.bytes(random.range(0, 10));
    const at = random.pick(wireFields(bytes).map((f) => f.start).concat([bytes.length]));
    return { bytes: concat([bytes.subarray(0, at), tag(field, wireType), payload, bytes.subarray(at)]), how: `unknown-field(${field}:${wireType})` };
  }],
  // A varint spelled with more continuation bytes than the format allows.
  [2, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.varint);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const length = random.pick([10, 11, 12, 20]);
    const value = overlongVarint(random.int(128), length);
    return { bytes: concat([bytes.subarray(0, f.payloadStart), value, bytes.subarray(f.end)]), how: `overlong-varint(${f.field}x${length})` };
  }],
  // A varint field set to extremes: negative int32/int64 (ten bytes), 2^32, 2^63, 2^64-1.
  [3, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.varint);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const value = random.pick([-1n, -2147483649n, 2n ** 31n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 0n]);
    return { bytes: concat([bytes.subarray(0, f.payloadStart), varint(value), bytes.subarray(f.end)]), how: `extreme-varint(${f.field}:${value})` };
  }],
  // Invalid UTF-8 inside a length-delimited field (a string, if the field is one).
  [3, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.bytes);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const bad = random.pick(INVALID_UTF8);
    const payload = concat([bytes.subarray(f.payloadStart, f.end), bad]);
    return { bytes: concat([bytes.subarray(0, f.start), lengthDelimited(f.field, payload), bytes.subarray(f.end)]), how: `bad-utf8(${f.field})` };
  }],
  // Mutate inside a nested message and re-wrap it with a correct length.
  [4, (bytes, random) => {
    const fields = wireFields(bytes).filter((f) => f.wireType === WireType.bytes && f.end > f.payloadStart);
    if (fields.length === 0) return undefined;
    const f = random.pick(fields);
    const inner = mutateBinary(bytes.slice(f.payloadStart, f.end), random, 1);
    return { bytes: concat([bytes.subarray(0, f.start), lengthDelimited(f.field, inner.bytes), bytes.subarray(f.end)]), how: `in(${f.field}:${inner.how})` };
  }],
];

/** Byte sequences that are not UTF-8: a lone continuation, a truncated sequence, an overlong '/', a surrogate, 0xFF. */
export const INVALID_UTF8: readonly Uint8Array[] = [
  Uint8Array.of(0x80),
  Uint8Array.of(0xc3, 0x28),
  Uint8Array.of(0xe2, 0x82),
  Uint8Array.of(0xc0, 0xaf),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xff, 0xfe),
  Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
];

/** 1 to `rounds` mutations of protobuf bytes, blind or wire-aware. */
export function mutateBinary(bytes: Uint8Array, random: Random, rounds = 3): Mutated {
  let out = bytes;
  const hows: string[] = [];
  for (let round = random.range(1, rounds); round > 0; round--) {
    const wire = random.chance(0.55) ? random.weighted(wireMutators)(out, random) : undefined;
    const done = wire ?? random.weighted(byteMutators)(out, random);
    out = done.bytes;
    hows.push(done.how);
  }
  return { bytes: out, how: hows.join("+") };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values that are wrong for most fields: other types, numbers no field holds, strings no parser likes. */
function hostileJsonValue(random: Random): { text: string; what: string } {
  return random.pick([
    { text: "null", what: "null" },
    { text: "true", what: "bool" },
    { text: "[]", what: "empty-list" },
    { text: "{}", what: "empty-object" },
    { text: "[1,[2,[3]]]", what: "nested-list" },
    { text: "-1", what: "-1" },
    { text: "2147483648", what: "int32+1" },
    { text: "-2147483649", what: "int32-1" },
    { text: "4294967296", what: "uint32+1" },
    { text: "9223372036854775808", what: "int64+1" },
    { text: '"18446744073709551616"', what: "uint64+1-string" },
    { text: "1e400", what: "1e400" },
    { text: "-0", what: "-0" },
    { text: "1.5", what: "1.5" },
    { text: '"NaN"', what: "NaN" },
    { text: '"Infinity"', what: "Infinity" },
    { text: '"0x10"', what: "hex" },
    { text: '"1e2"', what: "exp-string" },
    { text: '""', what: "empty-string" },
    { text: '"\\ud800"', what: "lone-surrogate" },
    { text: '"\\udc00\\ud800"', what: "reversed-surrogates" },
    { text: '"\\u0000"', what: "nul" },
    { text: '"-99999999999s"', what: "duration-overflow" },
    { text: '"1.0000000001s"', what: "duration-precision" },
    { text: '"9999-12-31T23:59:60Z"', what: "timestamp-leap" },
    { text: '"10000-01-01T00:00:00Z"', what: "timestamp-overflow" },
    { text: '"PHASE_NONSENSE"', what: "unknown-enum" },
    { text: "999", what: "unknown-enum-number" },
    { text: `"${"x".repeat(random.range(200, 5000))}"`, what: "long-string" },
    { text: '"not base64 *"', what: "bad-base64" },
  ]);
}

/** Every path to a value inside a JSON document, to pick one to change. */
function jsonPaths(value: Json, path: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(path);
  if (Array.isArray(value)) value.forEach((item, index) => jsonPaths(item, [...path, index], out));
  else if (value !== null && typeof value === "object") for (const [key, item] of Object.entries(value)) jsonPaths(item, [...path, key], out);
  return out;
}

function replaceAt(value: Json, path: ReadonlyArray<string | number>, replacement: string): string {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return `[${value.map((item, index) => (index === head ? replaceAt(item, rest, replacement) : JSON.stringify(item))).join(",")}]`;
  const object = value as Record<string, Json>;
  return `{${Object.entries(object).map(([key, item]) => `${JSON.stringify(key)}:${key === head ? replaceAt(item, rest, replacement) : JSON.stringify(item)}`).join(",")}}`;
}

const textMutators: ReadonlyArray<readonly [number, (text: string, random: Random) => { text: string; how: string }]> = [
  [2, (text, random) => {
    const at = random.int(text.length + 1);
    return { text: text.slice(0, at), how: `json-truncate(${at})` };
  }],
  [2, (text, random) => {
    const at = random.int(text.length + 1);
    const inserted = random.pick(["{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\u0000", "/*x*/", "\ufeff", "💥"]);
    return { text: text.slice(0, at) + inserted + text.slice(at), how: `json-insert(${at},${JSON.stringify(inserted)})` };
  }],
  [1, (text, random) => {
    const at = random.int(text.length);
    return { text: text.slice(0, at) + text.slice(at + 1), how: `json-delete(${at})` };
  }],
];

/** A JSON mutation: a value replaced (by one of another type or out of range), a key added twice or renamed, or broken text. */
export function mutateJson(text: string, random: Random): { bytes: Uint8Array; how: string } {
  const parsed = JSON.parse(text) as Json;
  const roll = random.int(10);
  if (roll < 5) {
    const path = random.pick(jsonPaths(parsed));
    const value = hostileJsonValue(random);
    return { bytes: new TextEncoder().encode(replaceAt(parsed, path, value.text)), how: `json-set(${path.join(".") || "$"}=${value.what})` };
  }
  if (roll < 6) {
    // A key twice: which one wins is the parser's choice.
    const body = text.trim();
    if (body.startsWith("{") && body.length > 2) {
      const first = Object.keys(parsed as object)[0];
      if (first !== undefined) {
        const duplicate = `${JSON.stringify(first)}:${hostileJsonValue(random).text},`;
        return { bytes: new TextEncoder().encode(`{${duplicate}${body.slice(1)}`), how: `json-dup-key(${first})` };
      }
    }
  }
  if (roll < 7) {
    const keyed = jsonPaths(parsed).filter((p) => p.length > 0 && typeof p[p.length - 1] === "string");
    if (keyed.length > 0) {
      const path = random.pick(keyed);
      const renamed = [...path];
      const key = String(renamed.pop());
      const replacement = random.pick([key.toUpperCase(), `${key}_`, key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), "@type", "unknownField"]);
      const text2 = replaceAt(parsed, renamed, JSON.stringify(renameKey(getAt(parsed, renamed), key, replacement)));
      return { bytes: new TextEncoder().encode(text2), how: `json-rename(${path.join(".")}->${replacement})` };
    }
  }
  if (roll < 8) {
    const raw = new TextEncoder().encode(text);
    const at = random.int(raw.length + 1);
    return { bytes: concat([raw.subarray(0, at), random.pick(INVALID_UTF8), raw.subarray(at)]), how: `json-bad-utf8(${at})` };
  }
  const done = random.weighted(textMutators)(text, random);
  return { bytes: new TextEncoder().encode(done.text), how: done.how };
}

function getAt(value: Json, path: ReadonlyArray<string | number>): Json {
  let at: Json = value;
  for (const step of path) at = (at as Record<string | number, Json>)[step] ?? null;
  return at;
}

function renameKey(value: Json, from: string, to: string): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key === from ? to : key, item]));
}
