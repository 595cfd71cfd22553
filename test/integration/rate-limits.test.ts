// Rate limits a plugin declares hold for its calls: writes (Do here; also Create, Delete, Handle, Abort, Finalize)
// and reads (Get). Counted as the plugin saw the calls: no more than burst + qps in any 900 ms (a second of tokens,
// less the spread of call latencies), which a slow machine can only make easier to meet; and the whole run takes
// about what the rate allows.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startTestNats, startTypeScriptSidecar, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const auditFile = path.join(tempDir("rate-limits"), "audit.log");
let nats: TestNats;
let host: TestHost;
const sidecars: RunningProcess[] = [];

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecars.push(startTypeScriptSidecar("test/fixtures/limited.ts", nats.url, { LIMITED_AUDIT_FILE: auditFile }));
  sidecars.push(startTypeScriptSidecar("test/fixtures/limited.ts", nats.url, { LIMITED_AUDIT_FILE: auditFile, LIMITED_KIND: "async" }));
  await waitForPlugin(host.url, "limited-sync");
  await waitForPlugin(host.url, "limited-async");
});

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
});

function calls(name: string): number[] {
  return readFileSync(auditFile, "utf8").split("\n").filter((line) => line.startsWith(`${name} `)).map((line) => Number(line.split(" ")[1]));
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

describe("rate limits", () => {
  it("hold a plugin's writes to burst + qps in any second, queued or called from ExecuteTask", async () => {
    const client = taskClient(host.url);
    const queued = await Promise.all(
      Array.from({ length: 8 }, async () => (await client.createTask({ template: { type: "limited-sync", typeVersion: 1, custom: {} } })).execution!.id),
    );
    const direct = Array.from({ length: 4 }, async () => {
      let last: TaskEvent | undefined;
      for await (const { event } of client.executeTask({ template: { type: "limited-sync", typeVersion: 1, custom: {} } })) last = event ?? last;
      return last!;
    });
    const finals = [...(await Promise.all(queued.map(finalOf))), ...(await Promise.all(direct))];
    expect(finals.map((event) => event.phaseInfo?.phase)).toEqual(Array(12).fill(Phase.SUCCESS));
    const times = calls("do");
    expect(times).toHaveLength(12);
    // The plugin sees a call a little after the host took its token, and not always equally late (the first call
    // also opens the channel): a 900 ms window of calls seen holds tokens taken within about a second.
    expect(busiest(times, 900)).toBeLessThanOrEqual(2 + 4);
    // 12 calls, 2 at once and then 4 a second: tokens 2.5 s apart from the first to the last, less the first call's
    // extra latency; without the limit they would all come within a few tens of ms.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2_000);
  });

  it("hold a plugin's reads (Get) to burst + qps in any second", async () => {
    const client = taskClient(host.url);
    const ids = await Promise.all(
      Array.from({ length: 4 }, async () => (await client.createTask({ template: { type: "limited-async", typeVersion: 1, custom: {} } })).execution!.id),
    );
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
