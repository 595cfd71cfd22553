// The routing table's start against a real plugins bucket: it must return once the entries present at start are
// loaded, not when its fallback time runs out (a host start waited 2 s for that on every start).
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { PluginAnnouncementSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginKind } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNats, type TestNats } from "../../test/helpers/processes.js";
import { PLUGINS_BUCKET_OPTIONS } from "../coordination/layout.js";
import { createLogger } from "../log.js";
import { RoutingTable } from "./routing-table.js";

let nats: TestNats;
let nc: NatsConnection;
const log = createLogger({ level: "error", write: () => {} });
/** Far beyond the test's own timeout: a start that waits for it fails the test. */
const NEVER_MS = 10 * 60_000;

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

function announcement(
  instanceId: string,
  type: string,
  taskTypes: Array<{ type: string; version: number; minVersion?: number }> = [{ type, version: 1 }],
  defaultForUnclaimedTypes = false,
): Uint8Array {
  return toBinary(PluginAnnouncementSchema, create(PluginAnnouncementSchema, {
    ttlSeconds: 60,
    instance: {
      instanceId,
      endpoint: "127.0.0.1:1",
      heartbeatAt: timestampFromDate(new Date()),
      descriptor: { name: type, version: "1.0.0", kind: PluginKind.SYNC, taskTypes, defaultForUnclaimedTypes },
    },
  }));
}

async function bucket(name: string): Promise<KV> {
  return await new Kvm(nc).create(name, PLUGINS_BUCKET_OPTIONS);
}

describe("RoutingTable.start", () => {
  it("returns once the announcements present at start are loaded, deleted keys included", { timeout: 15_000 }, async () => {
    const plugins = await bucket("routing_loaded");
    await plugins.put("a.one", announcement("one", "a"));
    await plugins.put("b.two", announcement("two", "b"));
    await plugins.put("c.three", announcement("three", "c"));
    await plugins.delete("c.three");
    const table = new RoutingTable(log);
    try {
      await table.start(plugins, NEVER_MS);
      expect(table.live().map((instance) => instance.instanceId).sort()).toEqual(["one", "two"]);
    } finally {
      table.stop();
    }
  });

  it("returns at once from an empty bucket and still sees later announcements", { timeout: 15_000 }, async () => {
    const plugins = await bucket("routing_empty");
    const table = new RoutingTable(log);
    try {
      await table.start(plugins, NEVER_MS);
      expect(table.live()).toEqual([]);
      await plugins.put("a.late", announcement("late", "a"));
      for (let i = 0; i < 100 && table.live().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(table.candidates("a", 1).map((instance) => instance.instanceId)).toEqual(["late"]);
    } finally {
      table.stop();
    }
  });
});

describe("RoutingTable.pick", () => {
  it("keeps an execution's calls on its instance while that one accepts the version, though a closer one came", { timeout: 15_000 }, async () => {
    const plugins = await bucket("routing_prefer");
    await plugins.put("t.ranged", announcement("ranged", "t", [{ type: "t", version: 2, minVersion: 1 }]));
    await plugins.put("t.exact", announcement("exact", "t", [{ type: "t", version: 1 }]));
    await plugins.put("d.default", announcement("default", "d", [{ type: "d", version: 1 }], true));
    const table = new RoutingTable(log);
    try {
      await table.start(plugins, NEVER_MS);
      expect(table.pick("t", 1, "e/1")?.instanceId).toBe("exact");
      expect(table.pick("t", 1, "e/1", new Set(), "ranged")?.instanceId).toBe("ranged");
      expect(table.pick("t", 2, "e/1", new Set(), "exact")?.instanceId).toBe("ranged"); // exact does not take version 2
      expect(table.pick("t", 3, "e/1")).toBeUndefined(); // claimed type, unserved version: not the default plugin
      expect(table.pick("unclaimed", 5, "e/1")?.instanceId).toBe("default");
    } finally {
      table.stop();
    }
  });
});

describe("RoutingTable.pick without a preferred instance", () => {
  it("sends an attempt to the same instance every time, spreads attempts evenly, and moves only those of one that left", { timeout: 15_000 }, async () => {
    const plugins = await bucket("routing_rendezvous");
    for (const id of ["a", "b", "c", "d"]) await plugins.put(`p.${id}`, announcement(id, "p"));
    const table = new RoutingTable(log);
    try {
      await table.start(plugins, NEVER_MS);
      const attempts = Array.from({ length: 4_000 }, (_, i) => `execution-${i}/1`);
      const first = attempts.map((affinity) => table.pick("p", 1, affinity)!.instanceId);
      // The same answer again, for every attempt: a retried Create goes where the first one went.
      expect(attempts.map((affinity) => table.pick("p", 1, affinity)!.instanceId)).toEqual(first);
      const share = (id: string): number => first.filter((picked) => picked === id).length / attempts.length;
      for (const id of ["a", "b", "c", "d"]) expect(Math.abs(share(id) - 0.25)).toBeLessThan(0.05);
      // Without "c", only c's attempts move; the others keep their instance.
      const withoutC = attempts.map((affinity) => table.pick("p", 1, affinity, new Set(["c"]))!.instanceId);
      expect(withoutC.filter((picked, i) => first[i] !== "c" && picked !== first[i])).toEqual([]);
      expect(withoutC).not.toContain("c");
    } finally {
      table.stop();
    }
  });
});
