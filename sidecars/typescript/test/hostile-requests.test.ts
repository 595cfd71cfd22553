// Requests no host sends, served in-process against a real nats-server: an execution id too long or odd for a
// NATS name is refused before NATS sees it (a 64 KiB one used to cost the sidecar its connection), a request that
// does not decode is INTERNAL as gRPC's status code table has it ("Error parsing request proto"), and no status
// message repeats more than a bounded, well-formed part of the request.
import path from "node:path";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import {
  createGrpcClient,
  defineAsyncPlugin,
  phaseSuccess,
  PluginError,
  serve,
  toServiceError,
  type MethodsOf,
  type PromiseClient,
  type ServeHandle,
} from "@plugin-bridge/kit";
import { ScriptSchema } from "@plugin-bridge/protocol/pluginbridge/conformance/v1/conformance_pb.js";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { AsyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { grpcError, taskContext, tempDir } from "./helpers.js";

const LONG = "x".repeat(64 * 1024);

const plugin = defineAsyncPlugin({
  name: "hostile",
  version: "0.0.1",
  taskTypes: [{ type: "hostile", version: 1 }],
  specification: ScriptSchema,
  create: (ctx) => ({ execution: ctx.executionId }),
  get(ctx) {
    // A plugin that repeats its input whole in an error, as plugins do.
    if (ctx.spec.message) throw new PluginError(status.FAILED_PRECONDITION, `cannot run ${ctx.spec.message}`);
    return phaseSuccess();
  },
  delete: () => undefined,
});

/** Sends `body` as the request of `method` as it is, without encoding it. */
function rawCall(endpoint: string, method: string, body: Buffer, streaming = false): Promise<ServiceError> {
  const client = new Client(endpoint, credentials.createInsecure());
  const options = { deadline: Date.now() + 5_000 };
  const identity = (bytes: Buffer): Buffer => bytes;
  return new Promise<ServiceError>((resolve, reject) => {
    const settle = (error: ServiceError | null): void => {
      client.close();
      if (error) resolve(error);
      else reject(new Error(`${method} answered OK`));
    };
    if (streaming) {
      const stream = client.makeServerStreamRequest(method, identity, identity, body, new Metadata(), options);
      stream.on("data", () => undefined);
      stream.on("error", settle);
      stream.on("end", () => settle(null));
    } else {
      client.makeUnaryRequest(method, identity, identity, body, new Metadata(), options, (error) => settle(error));
    }
  });
}

describe("requests no host sends", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let served: ServeHandle;
  let asyncClient: PromiseClient<MethodsOf<typeof AsyncPluginService>>;
  let health: PromiseClient<MethodsOf<typeof Health>>;
  // The kit logs to this process's stderr: a lost NATS connection shows there.
  const stderr = vi.spyOn(process.stderr, "write");
  const logged = (text: string) => stderr.mock.calls.filter(([chunk]) => String(chunk).includes(text)).length;

  beforeAll(async () => {
    dir = await tempDir("hostile");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    served = await serve(plugin, {
      natsUrl: nats.url,
      endpoint: `unix:${path.join(dir.path, "hostile.sock")}`,
      instanceId: "hostile-a",
      handleSignals: false,
    });
    await served.announced;
    asyncClient = createGrpcClient(AsyncPluginService, served.endpoint, credentials.createInsecure());
    health = createGrpcClient(Health, served.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    asyncClient?.close();
    health?.close();
    await served?.stop();
    await nats?.stop();
    await dir?.remove();
    stderr.mockRestore();
  });

  it("refuses an execution id a host cannot give before NATS sees it, and keeps its connection", async () => {
    const tooLong = await grpcError(asyncClient.create({ context: taskContext(LONG, {}) }));
    expect(tooLong.code).toBe(status.INVALID_ARGUMENT);
    expect(tooLong.details).toBe(
      `context.execution_id.id "${"x".repeat(80)}"… (65536 characters) is not an execution id: 1 to 64 letters, digits, '-' and '_'`,
    );
    for (const id of ["a.b", "a b", "a*", ">", "exé", "x".repeat(65)]) {
      const refused = await grpcError(asyncClient.create({ context: taskContext(id, {}) }));
      expect(refused.code, id).toBe(status.INVALID_ARGUMENT);
      expect(refused.details, id).toContain("is not an execution id");
    }
    const attemptZero = await grpcError(asyncClient.create({ context: taskContext("e-0", {}, { attempt: 0 }) }));
    expect(attemptZero.code).toBe(status.INVALID_ARGUMENT);
    expect(attemptZero.details).toBe("context.execution_id.attempt must be at least 1");

    // The longest id a host gives goes through, on the connection the sidecar started with.
    const longest = "y".repeat(64);
    const { resourceMeta } = await asyncClient.create({ context: taskContext(longest, {}) }, { deadline: 5_000 });
    expect(JSON.parse(new TextDecoder().decode(resourceMeta))).toEqual({ execution: longest });
    expect(logged("NATS disconnect")).toBe(0);
  });

  it("refuses to push for an execution id a host cannot give, repeating a bounded part of it", () => {
    expect(() => served.push({ executionId: LONG, attempt: 1 }, phaseSuccess())).toThrow(
      `execution id "${"x".repeat(80)}"… (65536 characters) is not one a host gives: 1 to 64 letters, digits, '-' and '_'`,
    );
    expect(() => served.push({ executionId: "x".repeat(65), attempt: 1 }, phaseSuccess())).toThrow("is not one a host gives");
  });

  it("answers INTERNAL to a request that does not decode, on every service, as gRPC's status code table says", async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (const [path, streaming] of [
      ["/pluginbridge.v1.AsyncPluginService/Create", false],
      ["/grpc.health.v1.Health/Check", false],
      ["/grpc.health.v1.Health/Watch", true],
      ["/pluginbridge.v1.PluginMetadataService/Describe", false],
    ] as const) {
      const answer = await rawCall(served.endpoint, path, garbage, streaming);
      expect(answer.code, path).toBe(status.INTERNAL);
      expect(answer.details, path).toMatch(/^Error deserializing request/);
    }
  });

  it("answers a 64 KiB health service name with NOT_FOUND and 80 characters of it", async () => {
    const error = await grpcError(health.check({ service: LONG }, { deadline: 5_000 }));
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.details).toBe(`unknown service "${"x".repeat(80)}"… (65536 characters)`);
  });

  it("names a 64 KiB unknown key in custom by 80 characters of it", async () => {
    const error = await grpcError(
      asyncClient.get({ context: taskContext("e-key", { [LONG]: 1 }), resourceMeta: new Uint8Array() }, { deadline: 5_000 }),
    );
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toBe(
      `template.custom."${"x".repeat(80)}"… (65536 characters): unknown field (expected pluginbridge.conformance.v1.Script)`,
    );
  });

  it("cuts a plugin's own message that repeats a 64 KiB input, and still answers", async () => {
    const resourceMeta = new TextEncoder().encode("{}");
    const error = await grpcError(
      asyncClient.get({ context: taskContext("e-long", { message: LONG }), resourceMeta }, { deadline: 5_000 }),
    );
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toBe(`cannot run ${"x".repeat(2000 - "cannot run ".length)}… (cut from 65547 characters)`);
  });
});

describe("toServiceError", () => {
  it("makes every message well-formed, so grpc-js can percent-encode it", () => {
    const answer = toServiceError(new PluginError(status.INVALID_ARGUMENT, "lone \ud800 and \udc00, pair \ud83d\ude00"));
    expect(answer.details).toBe("lone \ufffd and \ufffd, pair \ud83d\ude00");
    expect(() => encodeURI(answer.details ?? "")).not.toThrow();
    // Cut inside a surrogate pair, the half left over is replaced too.
    const cut = toServiceError(new Error(`${"a".repeat(1999)}\ud83d\ude00`)).details ?? "";
    expect(cut).toBe(`${"a".repeat(1999)}\ufffd… (cut from 2001 characters)`);
    expect(() => encodeURI(cut)).not.toThrow();
  });
});
