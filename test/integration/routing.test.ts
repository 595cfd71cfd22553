// Routing by task type and version through a host, with real plugin processes: several versions of one plugin
// live at once, each reachable by its type version; a version nobody serves exactly goes to the newest plugin that
// accepts it; task types nobody claims go to the default plugin; a claimed type at an unserved version does not.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually, registryClient, taskClient } from "../helpers/clients.js";
import { startHost, startTestNats, startTypeScriptSidecar, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

let nats: TestNats;
let host: TestHost;
const sidecars = new Map<string, RunningProcess>();

function startPlugin(id: string, env: Record<string, string>): void {
  sidecars.set(id, startTypeScriptSidecar("test/fixtures/versioned.ts", nats.url, { PLUGIN_BRIDGE_INSTANCE_ID: id, ...env }));
}

async function instances(): Promise<string[]> {
  const { plugins } = await registryClient(host.url).listPlugins({});
  return plugins.flatMap((plugin) => plugin.instances.map((instance) => instance.instanceId)).sort();
}

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  // One plugin, two versions live at once: 1.x serves type version 1; 2.x serves 2 and also accepts 1.
  startPlugin("sql-v1", { VERSIONED_NAME: "sql", VERSIONED_PLUGIN_VERSION: "1.4.0", VERSIONED_TASK_TYPES: '[{"type":"sql","version":1}]' });
  startPlugin("sql-v2", { VERSIONED_NAME: "sql", VERSIONED_PLUGIN_VERSION: "2.0.0", VERSIONED_TASK_TYPES: '[{"type":"sql","version":2,"minVersion":1}]' });
  // A newer plugin version that accepts 3 and 4 only.
  startPlugin("sql-v4", { VERSIONED_NAME: "sql", VERSIONED_PLUGIN_VERSION: "4.0.0", VERSIONED_TASK_TYPES: '[{"type":"sql","version":4,"minVersion":3}]' });
  startPlugin("fallback", { VERSIONED_NAME: "fallback", VERSIONED_DEFAULT: "1", VERSIONED_TASK_TYPES: '[{"type":"fallback","version":1}]' });
  await eventually("every plugin routed", async () => ((await instances()).length === 4 ? true : undefined), 600, 100);
});

afterAll(async () => {
  await Promise.all([...sidecars.values()].map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
});

async function run(type: string, typeVersion: number): Promise<TaskEvent> {
  let last: TaskEvent | undefined;
  for await (const { event } of taskClient(host.url).executeTask({ template: { type, typeVersion, custom: {} } })) last = event ?? last;
  expect(last?.phaseInfo?.phase).toBe(Phase.SUCCESS);
  return last!;
}

const refusal = (type: string, typeVersion: number) =>
  taskClient(host.url).createTask({ template: { type, typeVersion, custom: {} } }).then(() => undefined, (e: unknown) => ConnectError.from(e));

describe("routing", () => {
  it("reaches each live version of a plugin by its type version", async () => {
    expect((await run("sql", 1)).outputs).toMatchObject({ plugin: "sql", pluginVersion: "1.4.0" });
    expect((await run("sql", 2)).outputs).toMatchObject({ plugin: "sql", pluginVersion: "2.0.0" });
    expect((await run("sql", 4)).outputs).toMatchObject({ plugin: "sql", pluginVersion: "4.0.0" });
    const { plugin } = await registryClient(host.url).getPlugin({ name: "sql" });
    expect(plugin?.instances.map((instance) => instance.descriptor?.version)).toEqual(["1.4.0", "2.0.0", "4.0.0"]);
  });

  it("sends a version nobody serves exactly to the newest plugin whose range holds it", async () => {
    expect((await run("sql", 3)).outputs).toMatchObject({ pluginVersion: "4.0.0", typeVersion: 3 });
  });

  it("sends task types nobody claims to the default plugin, but not a claimed type at an unserved version", async () => {
    expect((await run("never-declared", 7)).outputs).toMatchObject({ plugin: "fallback", type: "never-declared", typeVersion: 7 });
    const error = await refusal("sql", 9);
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toContain('task type "sql" has no live plugin for type_version 9');
  });

  it("falls back to the newest compatible version when the exact one leaves", async () => {
    await sidecars.get("sql-v1")!.stop();
    await eventually("sql-v1 gone", async () => (!(await instances()).includes("sql-v1") ? true : undefined), 600, 100);
    expect((await run("sql", 1)).outputs).toMatchObject({ pluginVersion: "2.0.0", typeVersion: 1 });
  });
});
