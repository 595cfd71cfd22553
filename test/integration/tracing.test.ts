// One trace follows a task from the SDK through the host into the sidecar and back, for every kit: the test is an
// application with OpenTelemetry set up, submitting through the TypeScript SDK inside its own span; the host and
// the sidecars (real processes, each kit's reference plugin) export over OTLP/gRPC to a receiver process. The spans
// must chain: SDK span -> host CreateTask (SERVER) -> host plugin call (CLIENT) -> the kit's span (SERVER), for
// every step, with the contract's names and attributes, and failures marked as errors.
import path from "node:path";
import { context, propagation, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBridgeClient, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { create } from "@bufbuild/protobuf";
import { Phase, TaskTemplateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { eventually } from "../helpers/eventually.js";
import { waitForPlugin } from "../helpers/clients.js";
import { KITS } from "../helpers/kits.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.js";
import { startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

const work = tempDir("tracing");
const spansFile = path.join(work, "spans.jsonl");
let receiver: OtlpReceiver;
let nats: TestNats;
let host: TestHost;
const sidecars: RunningProcess[] = [];
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })] });
let sdk: BridgeClient;

beforeAll(async () => {
  receiver = await startOtlpReceiver(spansFile);
  // Short batch delays so the spans arrive within the test; everything else as an operator would set it.
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_INSECURE: "true", OTEL_BSP_SCHEDULE_DELAY: "200" };
  await Promise.all(KITS.map((kit) => kit.prepare()));
  nats = await startTestNats();
  host = await startHost(nats.url, {}, otel);
  for (const kit of KITS) sidecars.push(kit.start({ ...otel, PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_RESYNC_MS: "100" }));
  const typescript = KITS.find((kit) => kit.language === "typescript")!;
  sidecars.push(typescript.start({ ...otel, PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_KIND: "sync" }));
  await Promise.all([...KITS.map((kit) => `conformance-${kit.language}`), "conformance-sync-typescript"].map((name) => waitForPlugin(host.url, name)));

  // The test is the SDK's application: it set up OpenTelemetry, the SDK only carries the active context.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  sdk = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
}, 240_000);

afterAll(async () => {
  trace.disable();
  propagation.disable();
  context.disable();
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
  await receiver?.stop();
});

/** Runs `work` inside a fresh application span; returns what it returned and the span's ids. */
async function inSpan<T>(name: string, work: () => Promise<T>): Promise<{ value: T; traceId: string; spanId: string }> {
  return await trace.getTracer("tracing-test").startActiveSpan(name, async (span: Span) => {
    try {
      const { traceId, spanId } = span.spanContext();
      return { value: await work(), traceId, spanId };
    } finally {
      span.end();
    }
  });
}

/**
 * The spans of one trace once `ready` holds for them and the host's side of every kit span has arrived too:
 * each process exports its own batches (every 200 ms here), so one side may come before the other.
 */
async function traceOf(traceId: string, ready: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  return await eventually(`the spans of trace ${traceId}`, () => {
    const spans = receiver.spans().filter((span) => span.traceId === traceId);
    const ids = new Set(spans.map((span) => span.spanId));
    const complete = spans.every((span) => span.service === "plugin-bridge" || ids.has(span.parentSpanId));
    const api = spans.some((span) => span.service === "plugin-bridge" && span.kind === SERVER);
    return ready(spans) && complete && api ? spans : undefined;
  }, 300, 100);
}

const named = (spans: ReceivedSpan[], name: string, kind: number, service?: string): ReceivedSpan[] =>
  spans.filter((span) => span.name === name && span.kind === kind && (service === undefined || span.service === service));

describe.each(KITS)("traces with the $language kit", (kit) => {
  const plugin = `conformance-${kit.language}`;

  it("chain SDK, host and sidecar spans for every step of an async task", async () => {
    const { value: final, traceId, spanId } = await inSpan("submit and follow", () =>
      sdk.run(create(TaskTemplateSchema, { type: plugin, typeVersion: 1, custom: { polls: 1 } })),
    );
    expect(final.phaseInfo?.phase).toBe(Phase.SUCCESS);
    const kitGets = (spans: ReceivedSpan[]) => named(spans, "pluginbridge.v1.AsyncPluginService/Get", SERVER, plugin);
    const spans = await traceOf(traceId, (spans) => kitGets(spans).length === 2 && named(spans, "pluginbridge.v1.AsyncPluginService/Create", SERVER, plugin).length === 1);
    const byId = new Map(spans.map((span) => [span.spanId, span]));

    // The host's API span (the SDK's run is ExecuteTask) is the SDK span's child, and names the execution it created.
    const [api] = named(spans, "pluginbridge.v1.TaskService/ExecuteTask", SERVER, "plugin-bridge");
    expect(api?.parentSpanId).toBe(spanId);
    expect(api?.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "pluginbridge.v1.TaskService", "rpc.method": "ExecuteTask", "rpc.grpc.status_code": 0, "pluginbridge.execution_id": final.executionId });

    // Every plugin call of every step (queued steps, joining the trace through the record): a host CLIENT span
    // under the API span, the kit's SERVER span under it.
    for (const method of ["Create", "Get"]) {
      const kitSpans = named(spans, `pluginbridge.v1.AsyncPluginService/${method}`, SERVER, plugin);
      for (const kitSpan of kitSpans) {
        const call = byId.get(kitSpan.parentSpanId);
        expect(call).toMatchObject({ name: kitSpan.name, kind: CLIENT, service: "plugin-bridge", parentSpanId: api!.spanId });
        expect(call?.attributes).toMatchObject({ "pluginbridge.plugin": plugin, "pluginbridge.execution_id": final.executionId, "pluginbridge.attempt": 1, "rpc.grpc.status_code": 0 });
        expect(kitSpan.attributes).toMatchObject({
          "rpc.system": "grpc",
          "rpc.service": "pluginbridge.v1.AsyncPluginService",
          "rpc.method": method,
          "rpc.grpc.status_code": 0,
          "pluginbridge.plugin": plugin,
          "pluginbridge.execution_id": final.executionId,
          "pluginbridge.attempt": 1,
          "pluginbridge.instance_id": call?.attributes["pluginbridge.instance_id"],
        });
      }
    }
    expect(kitGets(spans).map((span) => span.attributes["pluginbridge.phase"]).sort()).toEqual(["PHASE_RUNNING", "PHASE_SUCCESS"]);
    // Health probes, Describe and reflection are not work: no spans for them anywhere.
    expect(receiver.spans().some((span) => /Health|Describe|Reflection/.test(span.name))).toBe(false);
  });

  it("mark a plugin's refusal as an error on both sides of the call, submitted with CreateTask", async () => {
    const { value: final, traceId } = await inSpan("a task the plugin refuses", async () => {
      const { id } = await sdk.submit(create(TaskTemplateSchema, { type: plugin, typeVersion: 1, custom: { create: "BEHAVIOR_USER_ERROR", message: "no such bucket" } }));
      let last;
      for await (const event of sdk.watch(id)) last = event;
      return last!;
    });
    expect(final.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    const spans = await traceOf(traceId, (spans) => named(spans, "pluginbridge.v1.AsyncPluginService/Create", SERVER, plugin).length === 1);
    const [createTask] = named(spans, "pluginbridge.v1.TaskService/CreateTask", SERVER, "plugin-bridge");
    const [kitSpan] = named(spans, "pluginbridge.v1.AsyncPluginService/Create", SERVER, plugin);
    expect(kitSpan?.status).toMatchObject({ code: STATUS_ERROR, message: expect.stringContaining("no such bucket") });
    expect(kitSpan?.attributes["rpc.grpc.status_code"]).toBe(3);
    const call = spans.find((span) => span.spanId === kitSpan?.parentSpanId);
    expect(call).toMatchObject({ kind: CLIENT, parentSpanId: createTask?.spanId, status: { code: STATUS_ERROR, message: "INVALID_ARGUMENT" } });
    expect(call?.attributes["rpc.grpc.status_code"]).toBe(3);
  });
});

describe("traces of the sync fast path", () => {
  it("put the Do call under ExecuteTask, in the SDK's trace", async () => {
    const plugin = "conformance-sync-typescript";
    const { value: events, traceId, spanId } = await inSpan("execute", async () => {
      const all = [];
      for await (const { event } of sdk.raw.executeTask({ template: { type: plugin, typeVersion: 1, custom: {} } })) if (event) all.push(event);
      return all;
    });
    expect(events.at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    const spans = await traceOf(traceId, (spans) => named(spans, "pluginbridge.v1.SyncPluginService/Do", SERVER, plugin).length === 1);
    const [executeTask] = named(spans, "pluginbridge.v1.TaskService/ExecuteTask", SERVER, "plugin-bridge");
    expect(executeTask?.parentSpanId).toBe(spanId);
    const [call] = named(spans, "pluginbridge.v1.SyncPluginService/Do", CLIENT, "plugin-bridge");
    expect(call?.parentSpanId).toBe(executeTask?.spanId);
    const [kitSpan] = named(spans, "pluginbridge.v1.SyncPluginService/Do", SERVER, plugin);
    expect(kitSpan?.parentSpanId).toBe(call?.spanId);
    expect(kitSpan?.attributes["pluginbridge.phase"]).toBe("PHASE_SUCCESS");
  });
});
