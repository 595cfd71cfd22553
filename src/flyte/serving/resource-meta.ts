// The resource meta the bridge hands a Flyte caller for an execution it created, which Flyte stores and sends back
// with every GetTask and DeleteTask: the execution's id, and the Flyte types of the task's outputs. Flyte's
// GetTask carries no template, so the output types travel here: they decide whether 3 goes back as an integer or a
// float. JSON, so that an operator can read it in Flyte's records.
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { LiteralTypeSchema, type LiteralType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { isExecutionId } from "../../coordination/names.js";

export interface BridgeResourceMeta {
  execution: string;
  outputs: Record<string, LiteralType>;
}

/** Larger than any meta the bridge writes; anything bigger is not one of ours. */
const MAX_META_BYTES = 64 * 1024;

export function encodeResourceMeta(meta: BridgeResourceMeta): Uint8Array {
  const outputs = Object.fromEntries(Object.entries(meta.outputs).map(([name, type]) => [name, toJson(LiteralTypeSchema, type)]));
  return new TextEncoder().encode(JSON.stringify({ execution: meta.execution, outputs }));
}

export function decodeResourceMeta(bytes: Uint8Array): BridgeResourceMeta {
  const refuse = (why: string) => new ConnectError(`resource_meta is not one this bridge gave: ${why}`, Code.InvalidArgument);
  if (bytes.length === 0) throw refuse("it is empty");
  if (bytes.length > MAX_META_BYTES) throw refuse(`it is ${bytes.length} bytes long`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw refuse("it is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw refuse("it is not a JSON object");
  const { execution, outputs = {} } = parsed as { execution?: unknown; outputs?: unknown };
  if (typeof execution !== "string" || !isExecutionId(execution)) throw refuse("it names no execution");
  if (typeof outputs !== "object" || outputs === null || Array.isArray(outputs)) throw refuse("its outputs are not an object");
  const types: Record<string, LiteralType> = {};
  for (const [name, type] of Object.entries(outputs)) {
    try {
      types[name] = fromJson(LiteralTypeSchema, type as JsonValue);
    } catch {
      throw refuse(`the type of output ${JSON.stringify(name.slice(0, 80))} is not a LiteralType`);
    }
  }
  return { execution, outputs: types };
}
