// Resource quotas through a host and a real plugin process: executions over the plugin's quota wait in
// WAITING_FOR_RESOURCES and go on when a token frees; at no time do more than the quota hold the plugin, in total
// or per namespace; every token comes back, including ones whose holders vanished; an abort while waiting holds
// nothing.
import { readFileSync } from "node:fs";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuotaHoldersSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { QuotaStore } from "../../src/coordination/quota-store.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startTestNats, startTypeScriptSidecar, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const auditFile = path.join(tempDir("quotas"), "audit.log");
const PLUGIN = "quota-plugin";
let nats: TestNats;
let nc: NatsConnection;
let quotas: QuotaStore;
const hosts: TestHost[] = [];
let sidecar: RunningProcess;

beforeAll(async () => {
  nats = await startTestNats();
  // Two hosts: the quota must hold across them.
  hosts.push(await startHost(nats.url), await startHost(nats.url));
  sidecar = startTypeScriptSidecar("test/fixtures/quota.ts", nats.url, { QUOTA_AUDIT_FILE: auditFile });
  await waitForPlugin(hosts[0]!.url, PLUGIN);
  await waitForPlugin(hosts[1]!.url, PLUGIN);
  nc = await connect({ servers: nats.url });
  quotas = new QuotaStore(await new Kvm(nc).open("pb_quotas"));
});

afterAll(async () => {
  await sidecar?.stop();
  await Promise.all(hosts.map((host) => host.stop()));
  await nc?.close();
  await nats?.stop();
});

const template = { type: PLUGIN, typeVersion: 1, custom: {} };

async function events(id: string): Promise<TaskEvent[]> {
  const all: TaskEvent[] = [];
  for await (const { event } of taskClient(hosts[0]!.url).watchTask({ id })) if (event) all.push(event);
  return all;
}

async function submit(namespace: string, host = 0): Promise<string> {
  return (await taskClient(hosts[host]!.url).createTask({ template, metadata: { namespace } })).execution!.id;
}

/** [execution, namespace, from, to] of every execution that ran, from the plugin's audit. */
function holdings(): Array<[string, string, number, number]> {
  const lines = readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((line) => line.split(" "));
  const ends = new Map(lines.filter(([call]) => call === "end").map(([, id, at]) => [id!, Number(at)]));
  return lines.filter(([call]) => call === "create").map(([, id, namespace, at]) => [id!, namespace!, Number(at), ends.get(id!) ?? Infinity]);
}

/** A token is given back right after the final write, a moment after the final event a watcher sees. */
async function noTokenHeld(): Promise<void> {
  await eventually("every token given back", async () => (Object.keys((await quotas.read(PLUGIN)).holders.holders).length === 0 ? true : undefined));
}

/** The most intervals that overlap at any instant. */
function mostAtOnce(intervals: Array<[number, number]>): number {
  const points = intervals.flatMap(([from, to]) => [[from, 1], [to, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, change] of points) most = Math.max(most, (now += change));
  return most;
}

describe("resource quotas", () => {
  it("hold in total and per namespace across hosts, make the rest wait, and give every token back", async () => {
    const namespaces = ["a", "a", "a", "b", "b", "c"];
    const ids = await Promise.all(namespaces.map((namespace, index) => submit(namespace, index % 2)));
    const all = await Promise.all(ids.map(events));
    expect(all.map((list) => list.at(-1)?.phaseInfo?.phase)).toEqual(Array(6).fill(Phase.SUCCESS));
    expect(all.some((list) => list.some((event) => event.phaseInfo?.phase === Phase.WAITING_FOR_RESOURCES))).toBe(true);

    const held = holdings().filter(([id]) => ids.includes(id));
    expect(held).toHaveLength(6);
    expect(mostAtOnce(held.map(([, , from, to]) => [from, to]))).toBeLessThanOrEqual(2);
    for (const namespace of ["a", "b", "c"]) {
      expect(mostAtOnce(held.filter(([, ns]) => ns === namespace).map(([, , from, to]) => [from, to]))).toBeLessThanOrEqual(1);
    }
    await noTokenHeld();
  });

  it("reclaims tokens whose holders ended or never existed", async () => {
    // Two holders that are not running executions fill the quota, as a host that died before releasing would.
    const { revision } = await quotas.read(PLUGIN);
    const holders = create(QuotaHoldersSchema, {
      holders: {
        "gone-1": { namespace: "x", allocatedAt: timestampFromDate(new Date()) },
        "gone-2": { namespace: "y", allocatedAt: timestampFromDate(new Date()) },
      },
    });
    await quotas.write(PLUGIN, holders, revision);
    expect(toBinary(QuotaHoldersSchema, (await quotas.read(PLUGIN)).holders).length).toBeGreaterThan(0);
    const id = await submit("d");
    expect((await events(id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    await noTokenHeld();
  });

  it("an execution aborted while it waits ends ABORTED and holds no token", async () => {
    const first = await submit("e");
    await eventually("the first to hold a token", async () => ((await quotas.read(PLUGIN)).holders.holders[first] ? true : undefined));
    const waiting = await submit("e");
    await eventually("the second to wait", async () => {
      const { execution } = await taskClient(hosts[0]!.url).getTask({ id: waiting });
      return execution?.phaseInfo?.phase === Phase.WAITING_FOR_RESOURCES ? true : undefined;
    });
    const { execution } = await taskClient(hosts[0]!.url).abortTask({ id: waiting, reason: "not needed" });
    expect(execution?.phaseInfo?.phase).toBe(Phase.ABORTED);
    expect((await events(first)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    await noTokenHeld();
    expect(holdings().some(([id]) => id === waiting)).toBe(false);
  });
});
