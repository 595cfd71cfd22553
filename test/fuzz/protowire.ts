// Protobuf's wire format at the byte level, for building messages no encoder would write (overlong varints,
// lengths that lie, wrong wire types, nesting 10,000 deep) and for taking valid ones apart field by field.

export const WireType = { varint: 0, fixed64: 1, bytes: 2, groupStart: 3, groupEnd: 4, fixed32: 5 } as const;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A base-128 varint of a non-negative integer up to 2^64 - 1 (bigint for the large ones). */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

/** A varint padded with continuation bytes to `length` bytes: the same value, spelled longer than allowed past 10. */
export function overlongVarint(value: number, length: number): Uint8Array {
  const plain = varint(value);
  const out = new Uint8Array(Math.max(length, plain.length));
  out.set(plain);
  for (let i = 0; i < out.length - 1; i++) out[i]! |= 0x80;
  return out;
}

export function tag(field: number, wireType: number): Uint8Array {
  return varint(field * 8 + wireType);
}

export function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return concat([tag(field, WireType.bytes), varint(payload.length), payload]);
}

export function varintField(field: number, value: number | bigint): Uint8Array {
  return concat([tag(field, WireType.varint), varint(value)]);
}

export function stringField(field: number, text: string): Uint8Array {
  return lengthDelimited(field, new TextEncoder().encode(text));
}

/** One field as it sits in a message: where it starts and ends, and its header. */
export interface WireField {
  field: number;
  wireType: number;
  start: number;
  /** Where the payload starts (after the tag and, for bytes, the length). */
  payloadStart: number;
  end: number;
}

function readVarint(bytes: Uint8Array, offset: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = offset; i < bytes.length && i < offset + 10; i++) {
    value += (bytes[i]! & 0x7f) * scale;
    scale *= 128;
    if ((bytes[i]! & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

/** The top-level fields of a message, as far as they parse; stops quietly at the first thing that does not. */
export function wireFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const header = readVarint(bytes, offset);
    if (!header) break;
    const field = Math.floor(header.value / 8);
    const wireType = header.value % 8;
    let payloadStart = header.next;
    let end: number;
    if (wireType === WireType.varint) {
      const value = readVarint(bytes, payloadStart);
      if (!value) break;
      end = value.next;
    } else if (wireType === WireType.fixed64) end = payloadStart + 8;
    else if (wireType === WireType.fixed32) end = payloadStart + 4;
    else if (wireType === WireType.bytes) {
      const length = readVarint(bytes, payloadStart);
      if (!length) break;
      payloadStart = length.next;
      end = payloadStart + length.value;
    } else break;
    if (end > bytes.length) break;
    fields.push({ field, wireType, start: offset, payloadStart, end });
    offset = end;
  }
  return fields;
}
