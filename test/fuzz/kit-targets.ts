// The sidecar-facing RPCs of each kit's reference plugin, called directly (as the host would, but with anything
// in the bytes): Describe, the Async (Create, Get, Delete), Sync (Do) and Core (Handle, Abort, Finalize) plugin
// services, and health. Seeds carry a valid TaskContext for the instance's own task type; a case sometimes calls a
// service the instance does not serve (UNIMPLEMENTED). Each kit's gRPC library answers a message it cannot decode
// with INTERNAL and its own words, as gRPC's status code table has it; any other INTERNAL is the kit's.
import { create, fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import { Health, HealthCheckRequestSchema } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import {
  AbortRequestSchema,
  AsyncPluginService,
  CorePluginService,
  CreateRequestSchema,
  CreateResponseSchema,
  DeleteRequestSchema,
  DescribeRequestSchema,
  DoRequestSchema,
  FinalizeRequestSchema,
  GetRequestSchema,
  HandleRequestSchema,
  PluginMetadataService,
  SyncPluginService,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { Kind } from "./environment.js";
import type { CodeName } from "./oracle.js";
import { envelope, type MethodTarget } from "./rpc-cases.js";
import { http2Call, type Http2Pool } from "./wire.js";

/**
 * How each kit's gRPC server words the INTERNAL it answers to a message it cannot decode, as gRPC's status code
 * table has it: grpc-js (TypeScript) and grpc-go (Go) in their own words, the Python kit in its own (grpc.aio would
 * answer UNKNOWN). Only these INTERNALs are allowed; the kit must answer every message that does decode with a
 * code of its own.
 */
export const LIBRARY_PARSE_INTERNAL: Record<string, RegExp> = {
  typescript: /^Error deserializing request/,
  python: /^the request is not a valid /,
  go: /^grpc: failed to unmarshal the received message/,
};

/**
 * How each library words the INTERNAL it answers to a request that breaks gRPC itself: a length prefix that
 * promises more than the stream carries, no message for a unary call, a grpc-timeout or grpc-encoding it cannot
 * parse, an HTTP method other than POST.
 */
export const LIBRARY_PROTOCOL_INTERNAL: Record<string, RegExp> = {
  typescript: /grpc-timeout|encoding/i,
  python: /^Error parsing '|encoding/i,
  go: /unexpected EOF|cardinality violation|encoding|malformed|unexpected payload format/i,
};

const KIT_CODES: CodeName[] = ["NOT_FOUND", "FAILED_PRECONDITION", "UNIMPLEMENTED"];

function method(service: { methods: ReadonlyArray<{ name: string }> }, name: string): MethodTarget["method"] {
  const found = service.methods.find((m) => m.name === name);
  if (!found) throw new Error(`no method ${name}`);
  return found as unknown as MethodTarget["method"];
}

/**
 * The methods a kit's instance of `kind` serves (weighted up) and those it does not (rarely called), with seeds for
 * its task type. `resourceMeta` is what a real Create of that instance answered (async only).
 */
export function kitMethods(kind: Kind, type: string, resourceMeta: Uint8Array): MethodTarget[] {
  const context = (id: string) => ({
    executionId: { id, attempt: 1 },
    template: { type, typeVersion: 1, custom: { echo: "fuzz é ✓" } as never },
    inputs: { x: 1 } as never,
    metadata: { namespace: "default", labels: { a: "b" } },
  });
  const state = { version: 1, data: new TextEncoder().encode("1") };
  const served = (service: Kind | "any", weight: number) => (service === "any" || service === kind ? weight : 0.15);
  const target = (service: Parameters<typeof method>[0], name: string, seeds: Message[], kindOf: Kind | "any", weight: number): MethodTarget => ({
    method: method(service, name),
    seeds,
    codes: KIT_CODES,
    weight: served(kindOf, weight),
  });
  return [
    target(PluginMetadataService, "Describe", [create(DescribeRequestSchema, {})], "any", 0.5),
    target(Health, "Check", [create(HealthCheckRequestSchema, {}), create(HealthCheckRequestSchema, { service: "pluginbridge.v1.PluginMetadataService" })], "any", 0.5),
    target(Health, "Watch", [create(HealthCheckRequestSchema, {})], "any", 0.2),
    target(AsyncPluginService, "Create", [create(CreateRequestSchema, { context: context("fuzz-kit-create") })], "async", 3),
    target(AsyncPluginService, "Get", [create(GetRequestSchema, { context: context("fuzz-kit-create"), resourceMeta })], "async", 3),
    target(AsyncPluginService, "Delete", [create(DeleteRequestSchema, { context: context("fuzz-kit-create"), resourceMeta })], "async", 2),
    target(SyncPluginService, "Do", [create(DoRequestSchema, { context: context("fuzz-kit-do") })], "sync", 4),
    target(CorePluginService, "Handle", [create(HandleRequestSchema, { context: context("fuzz-kit-core"), state }), create(HandleRequestSchema, { context: context("fuzz-kit-core") })], "core", 3),
    target(CorePluginService, "Abort", [create(AbortRequestSchema, { context: context("fuzz-kit-core"), state, reason: "fuzz" })], "core", 2),
    target(CorePluginService, "Finalize", [create(FinalizeRequestSchema, { context: context("fuzz-kit-core"), state })], "core", 2),
  ];
}

/** The resource meta a real Create of an async instance answers: the seed of its Get and Delete. */
export async function createdResourceMeta(pool: Http2Pool, type: string): Promise<Uint8Array> {
  const request = toBinary(CreateRequestSchema, create(CreateRequestSchema, {
    context: { executionId: { id: "fuzz-kit-create", attempt: 1 }, template: { type, typeVersion: 1, custom: { echo: "fuzz é ✓" } as never } },
  }));
  const answer = await http2Call(pool.session(), {
    path: "/pluginbridge.v1.AsyncPluginService/Create",
    headers: { "content-type": "application/grpc", te: "trailers" },
    body: envelope(0, request),
    deadlineMs: 30_000,
  });
  if (answer.trailers["grpc-status"] !== "0") throw new Error(`a valid Create of ${type} failed: ${JSON.stringify(answer.trailers)}`);
  return Uint8Array.from(fromBinary(CreateResponseSchema, answer.body.subarray(5)).resourceMeta);
}
