// A plugin whose application registered its own OpenTelemetry tracer provider, served in-process: the kit installs
// no provider of its own (even with an OTLP endpoint in the environment), completes what the application left out
// (context manager, W3C propagators), and its SERVER spans go to the application's provider. The author's span
// nests under the call's span across awaits; calls refused before the author's method (a bad specification,
// draining) and crashes get their spans too; and the drain leaves the application's provider alone.
// OpenTelemetry's globals are per process: this file registers them and is the only test in its worker.
import path from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import {
  context,
  propagation,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import {
  createGrpcClient,
  defineAsyncPlugin,
  KIT_TRACER_NAME,
  phaseRunning,
  serve,
  type MethodsOf,
  type PromiseClient,
  type ServeHandle,
} from "@plugin-bridge/kit";
import { FileSensorSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";
import { AsyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcError, taskContext, tempDir } from "./helpers.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID = "b7ad6b7169203331";
const authorTracer = () => trace.getTracer("the-author");

/** Lets the test hold a Get inside the plugin while the sidecar drains. */
let enteredGet: () => void = () => undefined;
let releaseGet: () => void = () => undefined;

const plugin = defineAsyncPlugin({
  name: "traced-in-process",
  version: "2.0.0",
  taskTypes: [{ type: "traced-in-process", version: 1 }],
  specification: FileSensorSchema,
  async create(ctx) {
    // Across an await and a timer, as real work would be: the call's span must still be the active one.
    await new Promise((resolve) => setImmediate(resolve));
    if (ctx.spec.path === "/crash") throw new Error("disk on fire");
    authorTracer().startActiveSpan("author work", (span) => span.end());
    return { path: ctx.spec.path };
  },
  async get() {
    enteredGet();
    await new Promise<void>((resolve) => (releaseGet = resolve));
    return phaseRunning("held");
  },
  delete() {},
});

describe("tracing with the application's own provider", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "the-application" }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const savedEndpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let served: ServeHandle;
  let client: PromiseClient<MethodsOf<typeof AsyncPluginService>>;

  const withParent = (): Metadata => {
    const metadata = new Metadata();
    metadata.set("traceparent", `00-${TRACE_ID}-${PARENT_ID}-01`);
    return metadata;
  };
  const kitSpans = (): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((span) => span.instrumentationScope.name === KIT_TRACER_NAME);
  const kitSpanOf = (execution: string): ReadableSpan => {
    const span = kitSpans().find((candidate) => candidate.attributes["pluginbridge.execution_id"] === execution);
    if (!span) throw new Error(`no kit span for ${execution}`);
    return span;
  };

  beforeAll(async () => {
    // Only the provider: the kit must add the context manager and the propagators the application left out.
    trace.setGlobalTracerProvider(provider);
    // An endpoint the kit must not use: the application's provider wins.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9";
    dir = await tempDir("traced-in-process");
    served = await serve(plugin, {
      natsUrl: false,
      endpoint: `unix:${path.join(dir.path, "traced.sock")}`,
      instanceId: "traced-in-process-a",
      handleSignals: false,
    });
    client = createGrpcClient(AsyncPluginService, served.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    if (savedEndpoint === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = savedEndpoint;
    client?.close();
    await served?.stop();
    await provider.shutdown();
    await dir?.remove();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("sends the kit's spans to the application's provider, and nests the author's span under the call's", async () => {
    await client.create({ context: taskContext("nested-1", { path: "/data" }) }, { metadata: withParent() });

    const server = kitSpanOf("nested-1");
    expect(server.name).toBe("pluginbridge.v1.AsyncPluginService/Create");
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(server.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(server.resource.attributes["service.name"]).toBe("the-application");
    expect(server.attributes).toMatchObject({
      "pluginbridge.plugin": "traced-in-process",
      "pluginbridge.plugin_version": "2.0.0",
      "pluginbridge.instance_id": "traced-in-process-a",
      "pluginbridge.attempt": 1,
      "rpc.grpc.status_code": 0,
    });

    const author = exporter.getFinishedSpans().find((span) => span.name === "author work");
    expect(author?.spanContext().traceId).toBe(TRACE_ID);
    expect(author?.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
  });

  it("starts a new trace for a call that brings none", async () => {
    await client.create({ context: taskContext("root-1", { path: "/data" }) });
    const server = kitSpanOf("root-1");
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it("gives a call refused for its specification an ERROR span, and a crash its exception", async () => {
    const refused = await grpcError(
      client.create({ context: taskContext("bad-spec-1", { nope: true }) }, { metadata: withParent() }),
    );
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    const badSpec = kitSpanOf("bad-spec-1");
    expect(badSpec.status).toEqual({ code: SpanStatusCode.ERROR, message: refused.details });
    expect(badSpec.attributes["rpc.grpc.status_code"]).toBe(status.INVALID_ARGUMENT);
    // The kit's own answer, not a crash: no exception.
    expect(badSpec.events).toEqual([]);

    const crashed = await grpcError(client.create({ context: taskContext("crash-1", { path: "/crash" }) }));
    expect(crashed.code).toBe(status.INTERNAL);
    const crash = kitSpanOf("crash-1");
    expect(crash.status).toEqual({ code: SpanStatusCode.ERROR, message: "disk on fire" });
    expect(crash.attributes["rpc.grpc.status_code"]).toBe(status.INTERNAL);
    expect(crash.events.map((event) => [event.name, event.attributes?.["exception.message"]])).toEqual([
      ["exception", "disk on fire"],
    ]);
  });

  it("gives a call refused while draining its span, and leaves the application's provider installed", async () => {
    const entered = new Promise<void>((resolve) => (enteredGet = resolve));
    const held = client.get({ context: taskContext("held-1", {}), resourceMeta: Buffer.from("{}") });
    await entered;
    const drained = served.drain();

    const refused = await grpcError(
      client.get({ context: taskContext("drain-refused-1", {}), resourceMeta: Buffer.from("{}") }),
    );
    expect(refused.code).toBe(status.UNAVAILABLE);
    const span = kitSpanOf("drain-refused-1");
    expect(span.name).toBe("pluginbridge.v1.AsyncPluginService/Get");
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "draining" });
    expect(span.attributes["rpc.grpc.status_code"]).toBe(status.UNAVAILABLE);

    releaseGet();
    expect((await held).phaseInfo?.reason).toBe("held");
    await drained;
    expect(kitSpanOf("held-1").attributes["pluginbridge.phase"]).toBe("PHASE_RUNNING");

    const global = trace.getTracerProvider();
    expect(global instanceof ProxyTracerProvider && global.getDelegate()).toBe(provider);
    authorTracer().startSpan("after the drain").end();
    expect(exporter.getFinishedSpans().map((finished) => finished.name)).toContain("after the drain");
  });
});
