// A host killed with SIGKILL while 200 async executions are in flight loses none of them: a new host on the same
// NATS takes over their work items, every execution reaches SUCCESS, and the plugin did exactly one effective
// Create per execution (the kit's idempotency by execution id and attempt absorbs the retried ones).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startReferencePlugin, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

const EXECUTIONS = 200;
let nats: TestNats;
let sidecar: RunningProcess;
const hosts: TestHost[] = [];
const work = tempDir("crash");
const auditFile = path.join(work, "audit.log");
const goFile = path.join(work, "go");

beforeAll(async () => {
  nats = await startTestNats();
  sidecar = startReferencePlugin(nats.url, auditFile, { CONFORMANCE_RESYNC_MS: "1000" });
});

afterAll(async () => {
  await sidecar?.stop();
  await Promise.all(hosts.map((host) => host.stop()));
  await nats?.stop();
});

function auditLines(call: string): string[] {
  if (!existsSync(auditFile)) return [];
  return readFileSync(auditFile, "utf8").split("\n").filter((line) => line.startsWith(`${call} `));
}

it(`keeps all ${EXECUTIONS} in-flight executions across a SIGKILLed host, with one Create each`, { timeout: 240_000 }, async () => {
  const first = await startHost(nats.url, { "ack-wait-ms": "3000" });
  hosts.push(first);
  await waitForPlugin(first.url, "conformance-typescript");
  const client = taskClient(first.url);

  const ids: string[] = [];
  for (let batch = 0; batch < EXECUTIONS; batch += 25) {
    const created = await Promise.all(
      Array.from({ length: Math.min(25, EXECUTIONS - batch) }, () =>
        client.createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: { waitForFile: goFile, createDelayMs: 300 } } }),
      ),
    );
    ids.push(...created.map(({ execution }) => execution!.id));
  }
  expect(new Set(ids).size).toBe(EXECUTIONS);

  // Kill the host while it is busy with Creates (each takes 300 ms in the plugin, 64 run at once): some are
  // stored, some are running in the sidecar and finish after the host is gone, some have not started.
  await eventually("a quarter of the Creates", async () => (auditLines("create").length >= EXECUTIONS / 4 ? true : undefined), 300, 20);
  first.child.kill("SIGKILL");
  await first.exited;
  const createsAtKill = auditLines("create").length;

  const second = await startHost(nats.url, { "ack-wait-ms": "3000" });
  hosts.push(second);
  writeFileSync(goFile, "go");

  const secondClient = taskClient(second.url);
  await eventually("every execution to succeed", async () => {
    const { executions } = await secondClient.listTasks({ phases: [Phase.SUCCESS], pageSize: 1000 });
    return executions.length === EXECUTIONS ? true : undefined;
  }, 600, 250);

  const createsPerExecution = new Map<string, number>();
  for (const line of auditLines("create")) {
    const id = line.split(" ")[1]!;
    createsPerExecution.set(id, (createsPerExecution.get(id) ?? 0) + 1);
  }
  expect([...createsPerExecution.keys()].sort()).toEqual([...ids].sort());
  expect([...createsPerExecution.values()].every((count) => count === 1)).toBe(true);
  // The test only means something if the kill happened with Creates still to do…
  expect(createsAtKill).toBeLessThan(EXECUTIONS);
  // …and if the new host retried Creates the sidecar had already done: the kit answered those from its store.
  expect(sidecar.output()).toContain("Create already done; returning the");
  for (const id of ids.slice(0, 20)) {
    const { execution } = await secondClient.getTask({ id });
    expect(execution?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(execution?.attempt).toBe(1);
  }
});
