// Rate limits a plugin declares hold for its calls, for each kit's reference plugin (TypeScript, Python, Go): writes
// (Do here; also Create, Delete, Handle, Abort, Finalize) and reads (Get). Counted as the plugin saw the calls: no
// more than burst + qps in any 900 ms (a second of tokens, less the spread of call latencies), which a slow machine
// can only make easier to meet; and the whole run takes about what the rate allows.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { taskClient, waitForPlugin } from "../helpers/clients.js";
import { KITS } from "../helpers/kits.js";
import { startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

describe.each(KITS)("rate limits, $language plugin", (kit) => {
  const syncType = `conformance-sync-${kit.language}`;
  const asyncType = `conformance-${kit.language}`;
  const auditFile = path.join(tempDir(`rate-limits-${kit.language}`), "audit.log");
  let nats: TestNats;
  let host: TestHost;
  const sidecars: RunningProcess[] = [];

  beforeAll(async () => {
    await kit.prepare();
    nats = await startTestNats();
    host = await startHost(nats.url);
    const env = { PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_AUDIT_FILE: auditFile, CONFORMANCE_AUDIT_TIMES: "1" };
    // Writes: a burst of 2, then 4 a second. Reads: a burst of 1, then 5 a second, asked for every 10 ms.
    sidecars.push(kit.start({ ...env, CONFORMANCE_KIND: "sync", CONFORMANCE_WRITE_LIMIT: "4/2" }));
    sidecars.push(kit.start({ ...env, CONFORMANCE_RESYNC_MS: "10", CONFORMANCE_READ_LIMIT: "5/1" }));
    await waitForPlugin(host.url, syncType);
    await waitForPlugin(host.url, asyncType);
  }, 240_000);

  afterAll(async () => {
    await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
    await host?.stop();
    await nats?.stop();
  });

  /** When the plugin did each call of a kind, in epoch ms: the audit line's last field. */
  function calls(name: string): number[] {
    return readFileSync(auditFile, "utf8").split("\n").filter((line) => line.startsWith(`${name} `)).map((line) => Number(line.split(" ")[4]));
  }

  /** The most calls in any window of `ms` milliseconds. */
  function busiest(times: number[], ms: number): number {
    const sorted = [...times].sort((a, b) => a - b);
    let most = 0;
    for (let start = 0, end = 0; start < sorted.length; start++) {
      while (end < sorted.length && sorted[end]! < sorted[start]! + ms) end++;
      most = Math.max(most, end - start);
    }
    return most;
  }

  async function finalOf(id: string): Promise<TaskEvent> {
    let last: TaskEvent | undefined;
    for await (const { event } of taskClient(host.url).watchTask({ id })) last = event ?? last;
    return last!;
  }

  it("hold a plugin's writes to burst + qps in any second, queued or called from ExecuteTask", async () => {
    const client = taskClient(host.url);
    const template = { type: syncType, typeVersion: 1, custom: {} };
    const queued = await Promise.all(Array.from({ length: 8 }, async () => (await client.createTask({ template })).execution!.id));
    const direct = Array.from({ length: 4 }, async () => {
      let last: TaskEvent | undefined;
      for await (const { event } of client.executeTask({ template })) last = event ?? last;
      return last!;
    });
    const finals = [...(await Promise.all(queued.map(finalOf))), ...(await Promise.all(direct))];
    expect(finals.map((event) => event.phaseInfo?.phase)).toEqual(Array(12).fill(Phase.SUCCESS));
    const times = calls("do");
    expect(times).toHaveLength(12);
    expect(times.every(Number.isFinite)).toBe(true);
    // The plugin sees a call a little after the host took its token, and not always equally late (the first call
    // also opens the channel): a 900 ms window of calls seen holds tokens taken within about a second.
    expect(busiest(times, 900)).toBeLessThanOrEqual(2 + 4);
    // 12 calls, 2 at once and then 4 a second: tokens 2.5 s apart from the first to the last, less the first call's
    // extra latency; without the limit they would all come within a few tens of ms.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2_000);
  });

  it("hold a plugin's reads (Get) to burst + qps in any second", async () => {
    const client = taskClient(host.url);
    const template = { type: asyncType, typeVersion: 1, custom: { polls: 3 } };
    const ids = await Promise.all(Array.from({ length: 4 }, async () => (await client.createTask({ template })).execution!.id));
    const finals = await Promise.all(ids.map(finalOf));
    expect(finals.map((event) => event.phaseInfo?.phase)).toEqual(Array(4).fill(Phase.SUCCESS));
    const gets = calls("get");
    expect(gets).toHaveLength(16);
    expect(busiest(gets, 900)).toBeLessThanOrEqual(1 + 5);
    // 16 Gets at 5 a second after a burst of 1: tokens 3 s apart, less the spread of call latencies; without the
    // limit (10 ms resync) well under one second.
    expect(Math.max(...gets) - Math.min(...gets)).toBeGreaterThanOrEqual(2_400);
  });
});
