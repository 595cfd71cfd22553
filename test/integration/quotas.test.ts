// Resource quotas through two hosts and a real plugin process, for each kit's reference plugin (TypeScript, Python,
// Go) declaring a quota of 2 at once and 1 per namespace: executions over it wait in WAITING_FOR_RESOURCES and go on
// when a token frees; at no time do more than the quota hold the plugin, in total or per namespace; every token
// comes back, including ones whose holders vanished; an abort while waiting holds nothing.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
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
import { KITS } from "../helpers/kits.js";
import { startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

/** Gets that answer RUNNING before the one that ends an execution. */
const POLLS = 2;

describe.each(KITS)("resource quotas, $language plugin", (kit) => {
  const plugin = `conformance-${kit.language}`;
  const auditFile = path.join(tempDir(`quotas-${kit.language}`), "audit.log");
  let nats: TestNats;
  let nc: NatsConnection;
  let quotas: QuotaStore;
  const hosts: TestHost[] = [];
  let sidecar: RunningProcess;

  beforeAll(async () => {
    await kit.prepare();
    nats = await startTestNats();
    // Two hosts: the quota must hold across them.
    hosts.push(await startHost(nats.url), await startHost(nats.url));
    sidecar = kit.start({ PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_AUDIT_FILE: auditFile, CONFORMANCE_RESYNC_MS: "100", CONFORMANCE_QUOTA: "2/1" });
    await waitForPlugin(hosts[0]!.url, plugin);
    await waitForPlugin(hosts[1]!.url, plugin);
    nc = await connect({ servers: nats.url });
    quotas = new QuotaStore(await new Kvm(nc).open("pb_quotas"));
  }, 240_000);

  afterAll(async () => {
    await sidecar?.stop();
    await Promise.all(hosts.map((host) => host.stop()));
    await nc?.close();
    await nats?.stop();
  });

  async function events(id: string): Promise<TaskEvent[]> {
    const all: TaskEvent[] = [];
    for await (const { event } of taskClient(hosts[0]!.url).watchTask({ id })) if (event) all.push(event);
    return all;
  }

  async function submit(namespace: string, host = 0, custom: Record<string, string | number> = { polls: POLLS }): Promise<string> {
    const template = { type: plugin, typeVersion: 1, custom };
    return (await taskClient(hosts[host]!.url).createTask({ template, metadata: { namespace } })).execution!.id;
  }

  /**
   * When each execution held the plugin, as the plugin saw it: from its Create to the Get that ended it, as
   * positions in the audit file. One process appends every line in the order of its calls, and a token frees only
   * after that last Get has answered, so the order of lines is the order of holding.
   */
  function holdings(): Map<string, [number, number]> {
    const lines = existsSync(auditFile) ? readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ")) : [];
    const held = new Map<string, [number, number]>();
    const gets = new Map<string, number>();
    lines.forEach(([call, id], at) => {
      if (call === "create") held.set(id!, [at, Infinity]);
      if (call === "get") {
        gets.set(id!, (gets.get(id!) ?? 0) + 1);
        if (gets.get(id!) === POLLS + 1) held.get(id!)![1] = at;
      }
    });
    return held;
  }

  /** A token is given back right after the final write, a moment after the final event a watcher sees. */
  async function noTokenHeld(): Promise<void> {
    await eventually("every token given back", async () => (Object.keys((await quotas.read(plugin)).holders.holders).length === 0 ? true : undefined));
  }

  /** The most intervals that overlap at any position. */
  function mostAtOnce(intervals: Array<[number, number]>): number {
    const points = intervals.flatMap(([from, to]) => [[from, 1], [to, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let most = 0;
    for (const [, change] of points) most = Math.max(most, (now += change));
    return most;
  }

  it("hold in total and per namespace across hosts, make the rest wait, and give every token back", async () => {
    const namespaces = ["a", "a", "a", "b", "b", "c"];
    const ids = await Promise.all(namespaces.map((namespace, index) => submit(namespace, index % 2)));
    const all = await Promise.all(ids.map(events));
    expect(all.map((list) => list.at(-1)?.phaseInfo?.phase)).toEqual(Array(6).fill(Phase.SUCCESS));
    expect(all.some((list) => list.some((event) => event.phaseInfo?.phase === Phase.WAITING_FOR_RESOURCES))).toBe(true);

    const held = holdings();
    expect(ids.map((id) => held.get(id)?.[1])).toEqual(ids.map(() => expect.any(Number)));
    expect(mostAtOnce(ids.map((id) => held.get(id)!))).toBeLessThanOrEqual(2);
    for (const namespace of ["a", "b", "c"]) {
      expect(mostAtOnce(ids.filter((_, index) => namespaces[index] === namespace).map((id) => held.get(id)!))).toBeLessThanOrEqual(1);
    }
    await noTokenHeld();
  });

  it("reclaims tokens whose holders ended or never existed", async () => {
    // Two holders that are not running executions fill the quota, as a host that died before releasing would.
    const { revision } = await quotas.read(plugin);
    const holders = create(QuotaHoldersSchema, {
      holders: {
        "gone-1": { namespace: "x", allocatedAt: timestampFromDate(new Date()) },
        "gone-2": { namespace: "y", allocatedAt: timestampFromDate(new Date()) },
      },
    });
    await quotas.write(plugin, holders, revision);
    expect(toBinary(QuotaHoldersSchema, (await quotas.read(plugin)).holders).length).toBeGreaterThan(0);
    const id = await submit("d");
    expect((await events(id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    await noTokenHeld();
  });

  it("an execution aborted while it waits ends ABORTED and holds no token", async () => {
    // The first holds its token until the test lets it end, however slow the machine.
    const release = path.join(path.dirname(auditFile), "release");
    const first = await submit("e", 0, { waitForFile: release });
    await eventually("the first to hold a token", async () => ((await quotas.read(plugin)).holders.holders[first] ? true : undefined));
    const waiting = await submit("e");
    await eventually("the second to wait", async () => {
      const { execution } = await taskClient(hosts[0]!.url).getTask({ id: waiting });
      return execution?.phaseInfo?.phase === Phase.WAITING_FOR_RESOURCES ? true : undefined;
    });
    const { execution } = await taskClient(hosts[0]!.url).abortTask({ id: waiting, reason: "not needed" });
    expect(execution?.phaseInfo?.phase).toBe(Phase.ABORTED);
    writeFileSync(release, "");
    expect((await events(first)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    await noTokenHeld();
    expect(holdings().has(waiting)).toBe(false);
  });
});
