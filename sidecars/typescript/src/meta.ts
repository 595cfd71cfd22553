// Resource meta is opaque bytes to the host; the kit lets a plugin return a JSON value instead and hands the
// parsed value back on Get and Delete, so most plugins never touch bytes.
import { status } from "@grpc/grpc-js";
import { PluginError } from "./errors.js";
import type { ResourceMetaEncoding } from "./plugin.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes what `create` returned. A mismatch with the declared encoding is the plugin's bug: INTERNAL. */
export function encodeResourceMeta(encoding: ResourceMetaEncoding, value: unknown): Uint8Array {
  if (encoding === "bytes") {
    if (!(value instanceof Uint8Array)) {
      throw new PluginError(status.INTERNAL, "create must return a Uint8Array when resourceMeta is \"bytes\"");
    }
    return value;
  }
  if (value instanceof Uint8Array) {
    throw new PluginError(
      status.INTERNAL,
      "create returned a Uint8Array; declare resourceMeta: \"bytes\" to pass bytes through untouched",
    );
  }
  if (value === undefined) return new Uint8Array();
  const text = JSON.stringify(value);
  if (text === undefined) throw new PluginError(status.INTERNAL, "create returned a value JSON cannot encode");
  return encoder.encode(text);
}

/** Decodes the `resource_meta` the host passed back. Bytes the kit did not write are the caller's fault. */
export function decodeResourceMeta(encoding: ResourceMetaEncoding, bytes: Uint8Array): unknown {
  if (encoding === "bytes") return bytes;
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new PluginError(
      status.INVALID_ARGUMENT,
      `resource_meta is not the JSON this plugin's create returned: ${(error as Error).message}`,
    );
  }
}
