// The execution engine against real processes: a poll that changes nothing writes nothing, steps spread over
// live instances, a vanished instance's steps go to another, and SIGTERM hands work over without loss.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually, registryClient, taskClient, waitForPlugin } from "../helpers/clients.js";
import { startHost, startReferencePlugin, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

let nats: TestNats;
let host: TestHost;
const spareHosts: TestHost[] = [];
const sidecars = new Map<string, RunningProcess>();
const work = tempDir("engine");
const auditFile = path.join(work, "audit.log");

function startScripted(instanceId: string): RunningProcess {
  const sidecar = startReferencePlugin(nats.url, auditFile, { PLUGIN_BRIDGE_INSTANCE_ID: instanceId });
  sidecars.set(instanceId, sidecar);
  return sidecar;
}

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  startScripted("conformance-a");
  startScripted("conformance-b");
  await waitForPlugin(host.url, "conformance-typescript", 2);
});

afterAll(async () => {
  await Promise.all([...sidecars.values()].map((sidecar) => sidecar.stop()));
  await Promise.all(spareHosts.map((spare) => spare.stop()));
  await host?.stop();
  await nats?.stop();
});

function audit(): string[][] {
  if (!existsSync(auditFile)) return [];
  return readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((line) => line.split(" "));
}

async function events(baseUrl: string, id: string): Promise<TaskEvent[]> {
  const all: TaskEvent[] = [];
  for await (const { event } of taskClient(baseUrl).watchTask({ id })) if (event) all.push(event);
  return all;
}

const reference = (custom: Record<string, string | number>) => ({ template: { type: "conformance-typescript", typeVersion: 1, custom } });

describe("the step", () => {
  it("writes and publishes nothing for a poll whose phase did not change", async () => {
    const { execution } = await taskClient(host.url).createTask(reference({ polls: 10 }));
    const id = execution!.id;
    const all = await events(host.url, id);
    const gets = audit().filter(([call, execution]) => call === "get" && execution === id).length;
    // Ten polls per instance (the fixture counts per process), spread over two instances: at least 11 Gets.
    expect(gets).toBeGreaterThanOrEqual(11);
    // Every record write but the abort mark publishes exactly one event: four events, four writes.
    expect(all.map((event) => event.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCESS]);
    const { execution: done } = await taskClient(host.url).getTask({ id });
    expect(done?.lastEventSequence).toBe(4n);
  });

  it("spreads executions over the live instances", async () => {
    const client = taskClient(host.url);
    const ids = await Promise.all(Array.from({ length: 20 }, async () => (await client.createTask(reference({}))).execution!.id));
    for (const id of ids) expect((await events(host.url, id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    const instances = new Set(audit().filter(([call, execution]) => call === "create" && ids.includes(execution!)).map((fields) => fields[3]));
    expect(instances).toEqual(new Set(["conformance-a", "conformance-b"]));
  });

  it("sends an execution's Gets to the instance that created its remote work", async () => {
    const client = taskClient(host.url);
    const ids = await Promise.all(Array.from({ length: 10 }, async () => (await client.createTask(reference({ polls: 3 }))).execution!.id));
    for (const id of ids) expect((await events(host.url, id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    for (const id of ids) {
      const calls = audit().filter(([, execution]) => execution === id);
      const creator = calls.find(([call]) => call === "create")![3];
      expect(calls.filter(([call]) => call === "get").map((fields) => fields[3])).toEqual(Array(4).fill(creator));
    }
  });

  it("sends the steps of a vanished instance to another one, and drops the instance from the registry", async () => {
    const killed = sidecars.get("conformance-b")!;
    killed.child.kill("SIGKILL");
    await killed.exited;
    const client = taskClient(host.url);
    const ids = await Promise.all(Array.from({ length: 10 }, async () => (await client.createTask(reference({ polls: 1 }))).execution!.id));
    for (const id of ids) expect((await events(host.url, id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    const served = audit().filter(([call, execution]) => call === "create" && ids.includes(execution!)).map((fields) => fields[3]);
    expect(new Set(served)).toEqual(new Set(["conformance-a"]));
    // The announcement stops counting after its ttl (10 s) and the server removes it: bounded wait, 30 s.
    await eventually("conformance-b to leave the registry", async () => {
      const { plugin } = await registryClient(host.url).getPlugin({ name: "conformance-typescript" });
      return plugin?.instances.map((instance) => instance.instanceId).join() === "conformance-a" ? true : undefined;
    }, 150, 200);
  });
});

describe("SIGTERM", () => {
  it("stops the host with exit code 0 and leaves its executions to the next host", async () => {
    const other = await startHost(nats.url);
    spareHosts.push(other); // stopped in afterAll even if this test fails before it takes over
    const client = taskClient(host.url);
    const ids = await Promise.all(Array.from({ length: 10 }, async () => (await client.createTask(reference({ polls: 5 }))).execution!.id));
    expect(await host.stop("SIGTERM")).toBe(0);
    expect(host.output()).toContain("stopped");
    for (const id of ids) expect((await events(other.url, id)).at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    host = other;
  });
});
