// Create runs once per execution attempt: concurrent duplicates in one process share one call, and a retry on
// another process instance finds the stored meta in `pb_creates`. Counted by the fixture plugin in a file.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { credentials } from "@grpc/grpc-js";
import { createGrpcClient, kvKey, type MethodsOf, type PromiseClient } from "@plugin-bridge/kit";
import { AsyncPluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../../src/coordination/nats-server-process.js";
import { eventually, examplesMain, openBucket, startSidecar, taskContext, tempDir, type Sidecar } from "./helpers.js";

describe("idempotent Create", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServerProcess;
  let first: Sidecar;
  let second: Sidecar;
  let clientA: PromiseClient<MethodsOf<typeof AsyncPluginService>>;
  let clientB: PromiseClient<MethodsOf<typeof AsyncPluginService>>;
  let countingFile: string;

  const runs = async (): Promise<string[]> =>
    (await readFile(countingFile, "utf8").catch(() => "")).split("\n").filter(Boolean);

  beforeAll(async () => {
    dir = await tempDir("idem");
    countingFile = path.join(dir.path, "creates.log");
    nats = await startNatsServer({ dataDir: path.join(dir.path, "nats") });
    const env = { COUNTING_FILE: countingFile };
    [first, second] = await Promise.all([
      startSidecar(examplesMain.counting, { natsUrl: nats.url, socketDir: dir.path, instanceId: "counting-a", env }),
      startSidecar(examplesMain.counting, { natsUrl: nats.url, socketDir: dir.path, instanceId: "counting-b", env }),
    ]);
    clientA = createGrpcClient(AsyncPluginService, first.endpoint, credentials.createInsecure());
    clientB = createGrpcClient(AsyncPluginService, second.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    clientA?.close();
    clientB?.close();
    await Promise.all([first?.stop(), second?.stop()]);
    await nats?.stop();
    await dir?.remove();
  });

  it("runs create once for duplicates, in one process and across instances", async () => {
    const gate = path.join(dir.path, "release-create");
    const context = taskContext("exec-1", { path: gate }, { attempt: 1 });
    // Both calls are sent while the first create is held open by the gate file.
    const calls = [clientA.create({ context }), clientA.create({ context })];
    await eventually("the first create to start", async () => ((await runs()).length > 0 ? true : undefined));
    await writeFile(gate, "");
    const [one, two] = await Promise.all(calls);
    expect(Buffer.from(two!.resourceMeta)).toEqual(Buffer.from(one!.resourceMeta));
    expect(JSON.parse(Buffer.from(one!.resourceMeta).toString())).toEqual({
      createdBy: "counting-a",
      execution: "exec-1",
      attempt: 1,
    });

    // A retry that lands on the other instance finds the stored meta and does not create again.
    const retried = await clientB.create({ context });
    expect(Buffer.from(retried.resourceMeta)).toEqual(Buffer.from(one!.resourceMeta));
    expect(await runs()).toEqual(["counting-a exec-1 1"]);

    // The meta is stored under <plugin>.<execution>.<attempt>.
    const { nc, kv } = await openBucket(nats.url, "pb_creates");
    try {
      const entry = await kv.get(kvKey("counting", "exec-1", 1));
      expect(entry?.operation).toBe("PUT");
      expect(Buffer.from(entry!.value)).toEqual(Buffer.from(one!.resourceMeta));
    } finally {
      await nc.close();
    }
  });

  it("runs create again for a new attempt", async () => {
    const before = (await runs()).length;
    const context = taskContext("exec-1", {}, { attempt: 2 });
    const response = await clientB.create({ context });
    expect(JSON.parse(Buffer.from(response.resourceMeta).toString())).toMatchObject({ createdBy: "counting-b", attempt: 2 });
    expect((await runs()).length).toBe(before + 1);
  });
});
