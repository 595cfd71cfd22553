// A sidecar started before NATS serves gRPC at once, waits for NATS, and announces itself once it is up.
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { credentials, status } from "@grpc/grpc-js";
import { createGrpcClient } from "@plugin-bridge/kit";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { AsyncPluginService, PluginMetadataService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { eventually, examplesMain, grpcError, openBucket, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

describe("a sidecar started before NATS", () => {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let nats: NatsServerProcess | undefined;
  let sidecar: Sidecar | undefined;

  afterAll(async () => {
    await sidecar?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  it("serves, refuses Create until NATS is up, then announces itself", async () => {
    dir = await tempDir("late");
    const port = await freePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    sidecar = await startSidecar(examplesMain.sensor, { natsUrl, socketDir: dir.path, instanceId: "sensor-late" });

    const metadata = createGrpcClient(PluginMetadataService, sidecar.endpoint, credentials.createInsecure());
    const plugin = createGrpcClient(AsyncPluginService, sidecar.endpoint, credentials.createInsecure());
    try {
      expect((await metadata.describe({})).plugin?.name).toBe("sensor");
      // Without the idempotency store a Create could run twice: the kit refuses it and the host retries.
      const refused = await grpcError(plugin.create({ context: taskContext("late-1", { path: "/tmp/x" }) }));
      expect(refused.code).toBe(status.UNAVAILABLE);

      nats = await startNatsServer({ dataDir: path.join(dir.path, "nats"), port });
      const { nc, kv } = await eventually(
        "the sidecar to create pb_plugins",
        () => openBucket(natsUrl, "pb_plugins").catch(() => undefined),
        150,
        100,
      );
      try {
        const announcement = await eventually(
          "the announcement",
          async () => {
            const entry = await kv.get("sensor.sensor-late");
            return entry?.operation === "PUT" ? fromBinary(PluginAnnouncementSchema, entry.value) : undefined;
          },
          150,
          100,
        );
        expect(announcement.instance?.endpoint).toBe(sidecar.endpoint);
        const bucket = await kv.status();
        expect(bucket.ttl).toBe(15_000);
        expect(bucket.markerTTL).toBe(5_000);
        expect(bucket.history).toBe(1);
      } finally {
        await nc.close();
      }
      const created = await eventually("Create to work", () =>
        plugin.create({ context: taskContext("late-2", { path: "/tmp/x" }) }).catch(() => undefined),
      );
      expect(JSON.parse(Buffer.from(created.resourceMeta).toString())).toMatchObject({ path: "/tmp/x" });
    } finally {
      metadata.close();
      plugin.close();
    }
  });
});
