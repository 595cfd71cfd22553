// SIGTERM drains: the sidecar announces draining, turns NOT_SERVING, refuses new calls with UNAVAILABLE,
// finishes the call in flight, deletes its announcement and exits 0.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { credentials, status } from "@grpc/grpc-js";
import { createGrpcClient, ServingStatus } from "@plugin-bridge/kit";
import { Health } from "@plugin-bridge/protocol/grpc/health/v1/health_pb.js";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { AsyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { eventually, examplesMain, grpcError, openBucket, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

describe("draining on SIGTERM", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let sidecar: Sidecar;

  beforeAll(async () => {
    dir = await tempDir("drain");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    sidecar = await startSidecar(examplesMain.counting, {
      natsUrl: nats.url,
      socketDir: dir.path,
      instanceId: "counting-drain",
      env: { COUNTING_FILE: path.join(dir.path, "creates.log") },
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  it("finishes the call in flight, withdraws its announcement and exits 0", async () => {
    const { nc, kv } = await eventually("pb_plugins", () => openBucket(nats.url, "pb_plugins").catch(() => undefined));
    const plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, credentials.createInsecure());
    const health = createGrpcClient(Health, sidecar.endpoint, credentials.createInsecure());
    const key = "counting.counting-drain";
    try {
      await eventually("the announcement", async () => ((await kv.get(key))?.operation === "PUT" ? true : undefined));

      const gate = path.join(dir.path, "release-get");
      const context = taskContext("drain-1", { path: gate });
      const { resourceMeta } = await plugin.create({ context: taskContext("drain-1", {}) });
      const inFlight = plugin.get({ context, resourceMeta });
      // Signal only once the Get is inside the plugin, held open by the gate.
      await eventually("the Get to reach the plugin", () => (sidecar.logs().includes("get held until") ? true : undefined));
      sidecar.child.kill("SIGTERM");

      await eventually("NOT_SERVING", async () => {
        const response = await health.check({ service: "" });
        return response.status === ServingStatus.NOT_SERVING ? true : undefined;
      });
      const draining = await eventually("draining=true in the announcement", async () => {
        const entry = await kv.get(key);
        const announcement = entry?.operation === "PUT" ? fromBinary(PluginAnnouncementSchema, entry.value) : undefined;
        return announcement?.instance?.draining ? announcement : undefined;
      });
      expect(draining.instance?.endpoint).toBe(sidecar.endpoint);

      const refused = await grpcError(plugin.get({ context: taskContext("drain-2", {}), resourceMeta }));
      expect(refused.code).toBe(status.UNAVAILABLE);
      expect(refused.details).toContain("draining");

      await writeFile(gate, "");
      const finished = await inFlight;
      expect(finished.phaseInfo?.phase).toBe(Phase.SUCCESS);

      expect(await sidecar.exited).toBe(0);
      const entry = await kv.get(key);
      expect(entry === null || entry.operation !== "PUT").toBe(true);
    } finally {
      plugin.close();
      health.close();
      await nc.close();
    }
  });
});
