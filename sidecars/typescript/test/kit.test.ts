// Unit tests of the kit's pure parts: spec decoding, descriptors, keys, resource meta, core plugin state,
// endpoints, phases and the in-process half of Create and Finalize idempotency.
import { createFileRegistry } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import {
  decodeSpecification,
  encodeResourceMeta,
  decodeResourceMeta,
  fileDescriptorSetFor,
  CREATE_CALL,
  FINALIZE_CALL,
  IdempotentCalls,
  isPluginError,
  kvKey,
  createKey,
  finalizeKey,
  MemoryIdempotencyStore,
  parseEndpoint,
  phasePermanentFailure,
  phaseSuccess,
  pluginDescriptor,
  defineSyncPlugin,
  defineCorePlugin,
  createLogger,
  jsonState,
  readJsonState,
  readTextState,
  textState,
  phaseRunning,
} from "@plugin-bridge/kit";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { PluginKind } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { describe, expect, it } from "vitest";

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("decodeSpecification", () => {
  it("decodes proto3 JSON into the typed message", () => {
    const spec = decodeSpecification(HttpRequestSchema, { url: "http://x", timeout: "1.5s", successStatuses: [200] });
    expect(spec.url).toBe("http://x");
    expect(spec.timeout?.seconds).toBe(1n);
    expect(spec.successStatuses).toEqual([200]);
  });

  it("names the offending field under template.custom", () => {
    for (const [custom, field] of [
      [{ url: 1 }, "template.custom.url"],
      [{ timeout: "abc" }, "template.custom.timeout"],
      [{ max_body_bytes: -1 }, "template.custom.max_body_bytes"],
      [{ nope: true }, "template.custom.nope"],
    ] as const) {
      const error = thrown(() => decodeSpecification(HttpRequestSchema, custom));
      expect(isPluginError(error) && error.code).toBe(status.INVALID_ARGUMENT);
      expect((error as Error).message).toContain(field);
    }
  });
});

describe("descriptors", () => {
  it("holds the spec's file after its dependencies, loadable by createFileRegistry", () => {
    const set = fileDescriptorSetFor(HttpRequestSchema);
    expect(set.file.map((file) => file.name)).toEqual([
      "google/protobuf/duration.proto",
      "pluginbridge/plugins/http/v1/http.proto",
    ]);
    expect(createFileRegistry(set).getMessage("pluginbridge.plugins.http.v1.HttpRequest")).toBeDefined();
  });

  it("describes a declared plugin", () => {
    const plugin = defineSyncPlugin({
      name: "demo",
      version: "1.2.3",
      taskTypes: [{ type: "demo", version: 2 }],
      specification: HttpRequestSchema,
      properties: { doTimeout: 1_500, maxSystemFailures: 3 },
      do: () => phaseSuccess(),
    });
    const descriptor = pluginDescriptor(plugin);
    expect(descriptor.kind).toBe(PluginKind.SYNC);
    expect(descriptor.properties?.doTimeout).toMatchObject({ seconds: 1n, nanos: 500_000_000 });
    expect(descriptor.properties?.maxSystemFailures).toBe(3);
    expect(descriptor.specification?.messageName).toBe("pluginbridge.plugins.http.v1.HttpRequest");
  });

  it("describes version ranges and the default flag, and refuses a range past its version", () => {
    const declare = (minVersion: number) =>
      defineSyncPlugin({
        name: "ranged",
        version: "2.0.0",
        taskTypes: [{ type: "ranged", version: 3, minVersion }, { type: "other", version: 0 }],
        defaultForUnclaimedTypes: true,
        specification: HttpRequestSchema,
        do: () => phaseSuccess(),
      });
    const descriptor = pluginDescriptor(declare(1));
    expect(descriptor.defaultForUnclaimedTypes).toBe(true);
    expect(descriptor.taskTypes.map((t) => [t.type, t.version, t.minVersion])).toEqual([["ranged", 3, 1], ["other", 0, undefined]]);
    expect(() => declare(4)).toThrow("plugin ranged: task type ranged has minVersion 4, not 0…3");
  });

  it("describes rate limits and a quota, and refuses a limit without a rate", () => {
    const declare = (writeLimit: { qps: number; burst?: number }) =>
      defineSyncPlugin({
        name: "limited",
        version: "1.0.0",
        taskTypes: [{ type: "limited", version: 1 }],
        specification: HttpRequestSchema,
        properties: { readLimit: { qps: 5 }, writeLimit, quota: { total: 4, perNamespace: 1 } },
        do: () => phaseSuccess(),
      });
    const properties = pluginDescriptor(declare({ qps: 0.5, burst: 3 })).properties;
    expect([properties?.readLimit?.qps, properties?.readLimit?.burst]).toEqual([5, 0]);
    expect([properties?.writeLimit?.qps, properties?.writeLimit?.burst]).toEqual([0.5, 3]);
    expect([properties?.quota?.total, properties?.quota?.perNamespace]).toEqual([4, 1]);
    expect(() => declare({ qps: 0 })).toThrow("plugin limited: properties.writeLimit needs qps > 0 and a whole burst ≥ 0");
  });

  it("describes a core plugin with its Handle, Abort and Finalize deadlines", () => {
    const plugin = defineCorePlugin({
      name: "demo-core",
      version: "1.0.0",
      taskTypes: [{ type: "demo-core", version: 1 }],
      specification: HttpRequestSchema,
      properties: { handleTimeout: 2_000, abortTimeout: 250, finalizeTimeout: 61_000 },
      handle: () => phaseRunning(),
      abort: () => undefined,
      finalize: () => undefined,
    });
    const properties = pluginDescriptor(plugin).properties;
    expect(pluginDescriptor(plugin).kind).toBe(PluginKind.CORE);
    expect(properties?.handleTimeout).toMatchObject({ seconds: 2n, nanos: 0 });
    expect(properties?.abortTimeout).toMatchObject({ seconds: 0n, nanos: 250_000_000 });
    expect(properties?.finalizeTimeout).toMatchObject({ seconds: 61n, nanos: 0 });
    // Unset stays unset, so the host applies its own defaults.
    expect(properties?.doTimeout).toBeUndefined();
  });

  it("refuses a bad declaration when it is made", () => {
    expect(() =>
      defineSyncPlugin({ name: "a.b", version: "1", taskTypes: [{ type: "t", version: 1 }], specification: HttpRequestSchema, do: () => phaseSuccess() }),
    ).toThrow(/plugin name/);
    expect(() =>
      defineSyncPlugin({ name: "a", version: "1", taskTypes: [], specification: HttpRequestSchema, do: () => phaseSuccess() }),
    ).toThrow(/taskTypes/);
  });
});

describe("kvKey", () => {
  it("keeps safe characters and escapes the rest injectively", () => {
    expect(kvKey("sensor", "run-1_a", 2)).toBe("sensor.run-1_a.2");
    expect(kvKey("p", "a.b/c d")).toBe("p.a=2Eb=2Fc=20d");
    expect(kvKey("p", "a b")).not.toBe(kvKey("p", "a_b"));
    expect(kvKey("p", "")).toBe("p.=");
    expect(kvKey("p", "é")).toBe("p.=C3=A9");
  });

  it("keeps a Finalize's key apart from its attempt's Create key", () => {
    expect(createKey("core", "run.1", 2)).toBe("core.run=2E1.2");
    expect(finalizeKey("core", "run.1", 2)).toBe("core.run=2E1.2.finalize");
  });
});

describe("resource meta", () => {
  it("round-trips JSON values and passes bytes through", () => {
    const meta = { path: "/x", deadline: 5 };
    expect(decodeResourceMeta("json", encodeResourceMeta("json", meta))).toEqual(meta);
    const bytes = new Uint8Array([1, 2, 3]);
    expect(encodeResourceMeta("bytes", bytes)).toBe(bytes);
    expect(decodeResourceMeta("bytes", bytes)).toBe(bytes);
  });

  it("treats a mismatch as the plugin's bug and foreign bytes as the caller's", () => {
    expect((thrown(() => encodeResourceMeta("json", new Uint8Array())) as { code: number }).code).toBe(status.INTERNAL);
    expect((thrown(() => decodeResourceMeta("json", new Uint8Array([0xff]))) as { code: number }).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("core plugin state", () => {
  const code = (run: () => unknown) => (thrown(run) as { code: number }).code;

  it("round-trips text and JSON, and reads no state as undefined", () => {
    expect(textState(1, "3")).toEqual({ version: 1, data: new TextEncoder().encode("3") });
    expect(readTextState(textState(4, "héllo"), 4)).toBe("héllo");
    expect(readJsonState(jsonState(2, { job: "j-1", tries: [1, 2] }), 2)).toEqual({ job: "j-1", tries: [1, 2] });
    expect(readTextState(undefined, 1)).toBeUndefined();
    expect(readJsonState(undefined, 1)).toBeUndefined();
  });

  it("refuses another layout, bytes that are not its encoding, and values JSON cannot hold", () => {
    const error = thrown(() => readTextState(textState(2, "x"), 1));
    expect(isPluginError(error) && error.code).toBe(status.FAILED_PRECONDITION);
    expect((error as Error).message).toBe("unknown state version 2");
    expect(code(() => readTextState({ version: 1, data: new Uint8Array([0xff]) }, 1))).toBe(status.INVALID_ARGUMENT);
    expect(code(() => readJsonState(textState(1, "{"), 1))).toBe(status.INVALID_ARGUMENT);
    expect(code(() => jsonState(1, undefined))).toBe(status.INTERNAL);
  });
});

describe("parseEndpoint", () => {
  it("parses unix sockets and host:port, defaulting to loopback", () => {
    expect(parseEndpoint("unix:/tmp/a.sock")).toEqual({ kind: "unix", path: "/tmp/a.sock" });
    expect(parseEndpoint("unix:///tmp/a.sock")).toEqual({ kind: "unix", path: "/tmp/a.sock" });
    expect(parseEndpoint(":7000")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 7000 });
    expect(parseEndpoint("[::1]:0")).toEqual({ kind: "tcp", host: "::1", port: 0 });
    expect(() => parseEndpoint("nonsense")).toThrow();
  });
});

describe("phase constructors", () => {
  it("build failures with an error code and kind", () => {
    const result = phasePermanentFailure("HttpStatus404", "not found", ErrorKind.USER);
    expect(result.phaseInfo.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(result.phaseInfo.error).toMatchObject({ code: "HttpStatus404", message: "not found", kind: ErrorKind.USER });
  });
});

describe("IdempotentCalls", () => {
  const log = createLogger("test");
  const bytes = (text: string) => new TextEncoder().encode(text);

  it("shares one create among concurrent duplicates and remembers it", async () => {
    const creates = new IdempotentCalls(new MemoryIdempotencyStore(), log, CREATE_CALL);
    let runs = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const create = async () => {
      runs += 1;
      await released;
      return bytes(`meta-${runs}`);
    };
    const signal = new AbortController().signal;
    const calls = [creates.run("k", signal, create), creates.run("k", signal, create)];
    release();
    const [a, b] = await Promise.all(calls);
    expect(a).toEqual(bytes("meta-1"));
    expect(b).toEqual(a);
    expect(await creates.run("k", signal, create)).toEqual(a);
    expect(runs).toBe(1);
  });

  it("answers UNAVAILABLE without running create when the store cannot be read", async () => {
    const store = { get: async () => Promise.reject(new Error("NATS is not connected yet")), putIfAbsent: async (_k: string, m: Uint8Array) => m };
    const creates = new IdempotentCalls(store, log, CREATE_CALL);
    let runs = 0;
    const error = await creates
      .run("k", new AbortController().signal, async () => {
        runs += 1;
        return bytes("x");
      })
      .catch((e: unknown) => e);
    expect((error as { code: number }).code).toBe(status.UNAVAILABLE);
    expect(runs).toBe(0);
  });

  it("aborts the shared create only when every caller has gone", async () => {
    const creates = new IdempotentCalls(new MemoryIdempotencyStore(), log, CREATE_CALL);
    let seen: AbortSignal | undefined;
    const create = (signal: AbortSignal) =>
      new Promise<Uint8Array>((_resolve, reject) => {
        seen = signal;
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    const first = new AbortController();
    const second = new AbortController();
    const calls = [creates.run("k", first.signal, create).catch(() => "first gone"), creates.run("k", second.signal, create).catch(() => "second gone")];
    await new Promise((resolve) => setImmediate(resolve));
    first.abort(new Error("first"));
    await calls[0];
    expect(seen?.aborted).toBe(false);
    second.abort(new Error("second"));
    expect(await Promise.all(calls)).toEqual(["first gone", "second gone"]);
    expect(seen?.aborted).toBe(true);
  });

  it("does not remember a run that failed: the retry runs it again", async () => {
    const finalizes = new IdempotentCalls(new MemoryIdempotencyStore(), log, FINALIZE_CALL);
    const signal = new AbortController().signal;
    let runs = 0;
    const failing = async (): Promise<Uint8Array> => {
      runs += 1;
      throw new Error("release failed");
    };
    await expect(finalizes.run("f", signal, failing)).rejects.toThrow("release failed");
    const succeeding = async () => {
      runs += 1;
      return bytes("finalized");
    };
    expect(await finalizes.run("f", signal, succeeding)).toEqual(bytes("finalized"));
    expect(await finalizes.run("f", signal, succeeding)).toEqual(bytes("finalized"));
    expect(runs).toBe(2);
  });

  it("names the call in the UNAVAILABLE it answers without a store", async () => {
    const store = { get: async () => Promise.reject(new Error("down")), putIfAbsent: async (_k: string, m: Uint8Array) => m };
    const error = await new IdempotentCalls(store, log, FINALIZE_CALL)
      .run("f", new AbortController().signal, async () => bytes("x"))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: status.UNAVAILABLE, message: "finalize idempotency store unavailable: down" });
  });
});
