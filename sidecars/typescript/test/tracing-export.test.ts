// The kit's traces as an operator sees them: the conformance reference plugin as a real sidecar process, exporting
// over OTLP/gRPC to the test receiver (test/helpers/otlp_receiver.py) because OTEL_EXPORTER_OTLP_ENDPOINT says so.
// Each plugin call is a SERVER span under the traceparent the caller sent, with the shared attributes; a failed
// call is an ERROR span; SIGTERM's drain exports the last spans before the process exits; Describe and health are
// not traced; and a sidecar the environment does not ask to trace exports nothing.
import { randomBytes } from "node:crypto";
import path from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { createGrpcClient, createLogger, startTracing, tracingRequested } from "@plugin-bridge/kit";
import { AsyncPluginService, PluginMetadataService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { ProxyTracerProvider, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { startOtlpReceiver, type OtlpReceiver } from "../../../test/helpers/otlp-receiver.js";
import { examplesMain, grpcError, startSidecar, taskContext, tempDir } from "./helpers.js";

const TYPE = "conformance-typescript";

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

function traceparent(traceId: string, parentSpanId: string): Metadata {
  const metadata = new Metadata();
  metadata.set("traceparent", `00-${traceId}-${parentSpanId}-01`);
  return metadata;
}

describe("a sidecar's spans, exported over OTLP", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let receiver: OtlpReceiver;
  let spansFile: string;

  beforeAll(async () => {
    dir = await tempDir("tracing");
    spansFile = path.join(dir.path, "spans.jsonl");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    receiver = await startOtlpReceiver(spansFile);
  });

  afterAll(async () => {
    await receiver?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  const sidecarWith = (instanceId: string, env: Record<string, string>) =>
    startSidecar(examplesMain.conformance, {
      natsUrl: nats.url,
      socketDir: dir.path,
      instanceId,
      // Nothing from the test's own environment decides whether the sidecar traces.
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
        OTEL_SDK_DISABLED: "",
        OTEL_TRACES_EXPORTER: "",
        OTEL_SERVICE_NAME: "",
        ...env,
      },
    });

  it("exports a SERVER span per plugin call under the caller's context, and the last ones on SIGTERM", async () => {
    const sidecar = await sidecarWith("traced-a", { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}` });
    const plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, credentials.createInsecure());
    const metadataClient = createGrpcClient(PluginMetadataService, sidecar.endpoint, credentials.createInsecure());
    const traceId = hex(16);
    const [createParent, getParent, failParent] = [hex(8), hex(8), hex(8)];
    try {
      const context = taskContext("traced-1", { polls: 1 }, { type: TYPE, attempt: 2 });
      const { resourceMeta } = await plugin.create({ context }, { metadata: traceparent(traceId, createParent) });
      const got = await plugin.get({ context, resourceMeta }, { metadata: traceparent(traceId, getParent) });
      expect(got.phaseInfo?.phase).toBe(Phase.RUNNING);
      const failed = await grpcError(
        plugin.create(
          { context: taskContext("traced-2", { create: "BEHAVIOR_USER_ERROR", message: "no such bucket" }, { type: TYPE }) },
          { metadata: traceparent(traceId, failParent) },
        ),
      );
      expect(failed.code).toBe(status.INVALID_ARGUMENT);
      await metadataClient.describe({}, { metadata: traceparent(traceId, hex(8)) });
    } finally {
      plugin.close();
      metadataClient.close();
    }
    // The batch processor would wait seconds before exporting; the drain exports at once, before exiting.
    expect(await sidecar.stop()).toBe(0);

    const spans = receiver.spans();
    expect(spans.map((span) => span.name).sort()).toEqual([
      "pluginbridge.v1.AsyncPluginService/Create",
      "pluginbridge.v1.AsyncPluginService/Create",
      "pluginbridge.v1.AsyncPluginService/Get",
    ]);
    const byParent = (parent: string) => {
      const span = spans.find((candidate) => candidate.parentSpanId === parent);
      if (!span) throw new Error(`no span under ${parent}: ${JSON.stringify(spans)}`);
      return span;
    };
    const shared = {
      "rpc.system": "grpc",
      "rpc.service": "pluginbridge.v1.AsyncPluginService",
      "pluginbridge.plugin": TYPE,
      "pluginbridge.plugin_version": "1.0.0",
      "pluginbridge.instance_id": "traced-a",
    };

    const create = byParent(createParent);
    expect(create).toMatchObject({ traceId, name: "pluginbridge.v1.AsyncPluginService/Create", kind: 2, service: TYPE });
    expect(create.attributes).toEqual({
      ...shared,
      "rpc.method": "Create",
      "rpc.grpc.status_code": 0,
      "pluginbridge.execution_id": "traced-1",
      "pluginbridge.attempt": 2,
    });
    expect(create.status.code).toBe(0);

    const get = byParent(getParent);
    expect(get).toMatchObject({ traceId, name: "pluginbridge.v1.AsyncPluginService/Get", kind: 2, service: TYPE });
    expect(get.attributes).toEqual({
      ...shared,
      "rpc.method": "Get",
      "rpc.grpc.status_code": 0,
      "pluginbridge.execution_id": "traced-1",
      "pluginbridge.attempt": 2,
      "pluginbridge.phase": "PHASE_RUNNING",
    });

    const fail = byParent(failParent);
    expect(fail).toMatchObject({ traceId, name: "pluginbridge.v1.AsyncPluginService/Create", kind: 2 });
    expect(fail.attributes).toMatchObject({ ...shared, "rpc.grpc.status_code": status.INVALID_ARGUMENT, "pluginbridge.execution_id": "traced-2" });
    // OTLP's STATUS_CODE_ERROR, with the message the call was answered with.
    expect(fail.status).toEqual({ code: 2, message: "no such bucket" });
  });

  it("exports nothing when the environment does not ask for traces", async () => {
    const before = (receiver.spans()).length;
    const endpoint = `http://127.0.0.1:${receiver.port}`;
    const sidecars = await Promise.all([
      sidecarWith("untraced-none", {}),
      sidecarWith("untraced-disabled", { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "true" }),
      sidecarWith("untraced-console", { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: "console" }),
    ]);
    for (const sidecar of sidecars) {
      const plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, credentials.createInsecure());
      try {
        const context = taskContext(`untraced-${sidecar.instanceId}`, {}, { type: TYPE });
        await plugin.create({ context }, { metadata: traceparent(hex(16), hex(8)) });
      } finally {
        plugin.close();
      }
    }
    expect(await Promise.all(sidecars.map((sidecar) => sidecar.stop()))).toEqual([0, 0, 0]);
    for (const sidecar of sidecars) expect(sidecar.logs()).not.toContain("exporting traces");
    expect((receiver.spans()).length).toBe(before);
  });
});

describe("the decision to trace", () => {
  it("follows OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER", () => {
    const endpoint = "http://127.0.0.1:4317";
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: "none" })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "false" })).toBe(true);
  });

  it("installs nothing and observes no call without configuration", async () => {
    const tracing = startTracing({ name: "off", version: "1", instanceId: "off-a" }, createLogger("off"), {});
    expect(tracing.observe).toBeUndefined();
    const global = trace.getTracerProvider();
    expect(global instanceof ProxyTracerProvider && global.getDelegateTracer("probe")).toBeUndefined();
    await tracing.shutdown();
  });
});
