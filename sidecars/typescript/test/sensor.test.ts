// The sensor example as a real sidecar process against a real nats-server: Describe, health, announcement,
// spec validation, and the RUNNING -> SUCCESS / DeadlinePassed lifecycle.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { credentials, status } from "@grpc/grpc-js";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { createGrpcClient, ServingStatus, type PromiseClient, type MethodsOf } from "@plugin-bridge/kit";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import {
  AsyncPluginService,
  PluginKind,
  PluginMetadataService,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { eventually, examplesMain, grpcError, openBucket, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

describe("sensor example sidecar", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let sidecar: Sidecar;
  let plugin: PromiseClient<MethodsOf<typeof AsyncPluginService>>;
  let metadata: PromiseClient<MethodsOf<typeof PluginMetadataService>>;
  let health: PromiseClient<MethodsOf<typeof Health>>;
  let nc: NatsConnection;
  let plugins: KV;

  beforeAll(async () => {
    dir = await tempDir("sensor");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    sidecar = await startSidecar(examplesMain.sensor, { natsUrl: nats.url, socketDir: dir.path, instanceId: "sensor-a" });
    const insecure = credentials.createInsecure();
    plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, insecure);
    metadata = createGrpcClient(PluginMetadataService, sidecar.endpoint, insecure);
    health = createGrpcClient(Health, sidecar.endpoint, insecure);
    ({ nc, kv: plugins } = await eventually("pb_plugins bucket", () => openBucket(nats.url, "pb_plugins").catch(() => undefined)));
  });

  afterAll(async () => {
    plugin?.close();
    metadata?.close();
    health?.close();
    await nc?.close();
    await sidecar?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  it("describes itself with a FileDescriptorSet a registry can load", async () => {
    const { plugin: descriptor } = await metadata.describe({});
    expect(descriptor?.name).toBe("sensor");
    expect(descriptor?.kind).toBe(PluginKind.ASYNC);
    expect(descriptor?.taskTypes).toEqual([expect.objectContaining({ type: "sensor", version: 1 })]);
    expect(descriptor?.properties?.resyncInterval?.seconds).toBe(1n);
    const specification = descriptor?.specification;
    expect(specification?.messageName).toBe("pluginbridge.plugins.sensor.v1.FileSensor");
    const registry = createFileRegistry(specification!.fileDescriptorSet!);
    const message = registry.getMessage(specification!.messageName);
    expect(message?.fields.map((field) => field.name)).toEqual(["path", "deadline"]);
    // The well-known import travels with it, before the file that imports it.
    const files = specification!.fileDescriptorSet!.file.map((file) => file.name);
    expect(files.indexOf("google/protobuf/duration.proto")).toBeLessThan(files.indexOf("pluginbridge/plugins/sensor/v1/sensor.proto"));
  });

  it("reports SERVING for the server and each service, NOT_FOUND for others", async () => {
    for (const service of ["", "pluginbridge.v1.PluginMetadataService", "pluginbridge.v1.AsyncPluginService", "grpc.health.v1.Health"]) {
      expect((await health.check({ service })).status).toBe(ServingStatus.SERVING);
    }
    expect((await grpcError(health.check({ service: "pluginbridge.v1.SyncPluginService" }))).code).toBe(status.NOT_FOUND);
    const controller = new AbortController();
    for await (const response of health.watch({ service: "" }, { signal: controller.signal })) {
      expect(response.status).toBe(ServingStatus.SERVING);
      break;
    }
  });

  it("announces itself in pb_plugins and refreshes the heartbeat", async () => {
    const read = async () => {
      const entry = await plugins.get("sensor.sensor-a");
      return entry?.operation === "PUT" ? fromBinary(PluginAnnouncementSchema, entry.value) : undefined;
    };
    const first = await eventually("the announcement", read);
    expect(first.ttlSeconds).toBe(10);
    expect(first.instance?.endpoint).toBe(sidecar.endpoint);
    expect(first.instance?.instanceId).toBe("sensor-a");
    expect(first.instance?.draining).toBe(false);
    expect(first.instance?.descriptor?.name).toBe("sensor");
    const firstBeat = timestampMs(first.instance!.heartbeatAt!);
    const later = await eventually(
      "a later heartbeat",
      async () => {
        const next = await read();
        return next && timestampMs(next.instance!.heartbeatAt!) > firstBeat ? next : undefined;
      },
      150,
      100,
    );
    expect(timestampMs(later.instance!.startedAt!)).toBe(timestampMs(first.instance!.startedAt!));
  });

  it("rejects a custom that does not fit FileSensor with INVALID_ARGUMENT naming the field", async () => {
    const wrongType = await grpcError(plugin.create({ context: taskContext("bad-1", { path: 42 }) }));
    expect(wrongType.code).toBe(status.INVALID_ARGUMENT);
    expect(wrongType.details).toContain("template.custom.path");
    const badDuration = await grpcError(plugin.create({ context: taskContext("bad-2", { path: "/x", deadline: "soon" }) }));
    expect(badDuration.code).toBe(status.INVALID_ARGUMENT);
    expect(badDuration.details).toContain("template.custom.deadline");
    const unknown = await grpcError(plugin.create({ context: taskContext("bad-3", { path: "/x", colour: "red" }) }));
    expect(unknown.code).toBe(status.INVALID_ARGUMENT);
    expect(unknown.details).toContain("template.custom.colour");
    const relative = await grpcError(plugin.create({ context: taskContext("bad-4", { path: "relative/file" }) }));
    expect(relative.code).toBe(status.INVALID_ARGUMENT);
    expect(relative.details).toContain("template.custom.path");
  });

  it("runs until the file appears, then succeeds with its size", async () => {
    const target = path.join(dir.path, "appears.txt");
    const context = taskContext("wait-1", { path: target, deadline: "600s" });
    const { resourceMeta } = await plugin.create({ context });
    const running = await plugin.get({ context, resourceMeta });
    expect(running.phaseInfo?.phase).toBe(Phase.RUNNING);
    await writeFile(target, "hello");
    const done = await plugin.get({ context, resourceMeta });
    expect(done.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(done.outputs).toMatchObject({ path: target, size: 5 });
    expect(typeof done.outputs?.modifiedAt).toBe("string");
    await plugin.delete({ context, resourceMeta });
  });

  it("fails permanently with DeadlinePassed once the deadline is behind it", async () => {
    const context = taskContext("late-1", { path: path.join(dir.path, "never.txt"), deadline: "0s" });
    const { resourceMeta } = await plugin.create({ context });
    const response = await plugin.get({ context, resourceMeta });
    expect(response.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(response.phaseInfo?.error?.code).toBe("DeadlinePassed");
  });
});
