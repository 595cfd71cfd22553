// `plugin-bridge upgrade SIDECAR` and `plugin-bridge sidecars ls` through the real binary, against a host that
// supervises a sidecar from its config file: the upgrade takes the sidecar's entry as the file reads now, starts the
// new replicas, routes to them, drains and stops the old ones while a task runs across it; an upgrade whose new
// replicas never serve leaves the old ones serving; unknown names, a broken file and a bad name are refused.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { runCli, type CliResult } from "../helpers/cli.js";
import { eventually, registryClient, taskClient, waitForPlugin } from "../helpers/clients.js";
import { projectRoot, startHost, startTestNats, tempDir, type TestHost, type TestNats } from "../helpers/processes.js";

const work = tempDir("upgrade-command");
const configFile = path.join(work, "plugin-bridge.yaml");
const goFile = path.join(work, "go");
let nats: TestNats;
let host: TestHost;

/** The reference plugin, 2 replicas; `command` replaces its command line (a release that cannot start). */
function writeConfig(release: string, command?: string[]): void {
  const [program, ...args] = command ?? [process.execPath, "--import", "tsx", "sidecars/typescript/conformance/main.ts"];
  writeFileSync(configFile, [
    "sidecars:",
    "  - name: reference",
    `    command: ${JSON.stringify(program)}`,
    `    args: ${JSON.stringify(args)}`,
    `    workingDir: ${JSON.stringify(projectRoot)}`,
    "    replicas: 2",
    "    startTimeoutMs: 20000",
    `    env: { CONFORMANCE_RESYNC_MS: "200", RELEASE: ${release} }`,
    "",
  ].join("\n"));
}

const cli = (...args: string[]): Promise<CliResult> => runCli(host.url, args, 180_000);

interface ListedSidecar {
  name: string;
  command: string[];
  replicas: Array<{ instanceId: string; state: string; pid?: number; restarts?: number }>;
}

async function sidecars(): Promise<ListedSidecar[]> {
  const listed = await cli("sidecars", "ls", "--json");
  expect(listed.code).toBe(0);
  return listed.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line) as ListedSidecar);
}

async function routedInstances(): Promise<string[]> {
  const { plugins } = await registryClient(host.url).listPlugins({ taskType: "conformance-typescript" });
  return plugins.flatMap((plugin) => plugin.instances.filter((instance) => !instance.draining).map((instance) => instance.instanceId)).sort();
}

beforeAll(async () => {
  nats = await startTestNats();
  writeConfig("v1");
  host = await startHost(nats.url, { config: configFile });
  await waitForPlugin(host.url, "conformance-typescript", 2);
});

afterAll(async () => {
  await host?.stop();
  await nats?.stop();
});

describe("plugin-bridge sidecars ls and upgrade", () => {
  it("list the supervised replicas, and plugins ls shows their state and restarts", async () => {
    // Routed once announced; SERVING for the supervisor once its health probe has seen it, a moment later.
    await eventually("both replicas serving", async () => ((await sidecars())[0]?.replicas.every((replica) => replica.state === "REPLICA_STATE_SERVING") ? true : undefined));
    const [reference] = await sidecars();
    expect(reference?.name).toBe("reference");
    expect(reference?.command.slice(-1)).toEqual(["sidecars/typescript/conformance/main.ts"]);
    expect(reference?.replicas.map((replica) => replica.state)).toEqual(["REPLICA_STATE_SERVING", "REPLICA_STATE_SERVING"]);
    expect(reference?.replicas.every((replica) => (replica.pid ?? 0) > 0)).toBe(true);
    const table = await cli("sidecars", "ls");
    expect(table.stdout).toMatch(/^SIDECAR\s+INSTANCE\s+ENDPOINT\s+STATE\s+PID\s+RESTARTS\s+LAST EXIT/);
    expect(table.stdout).toMatch(/reference\s+reference-1-\w+\s+unix:\S+\s+serving\s+\d+\s+0/);
    const plugins = await cli("plugins", "ls");
    expect(plugins.stdout).toMatch(/STATE\s+HEARTBEAT\s+RESTARTS/);
    expect(plugins.stdout).toMatch(/reference-1-\w+\s+unix:\S+\s+conformance-typescript@1\s+serving\s+\d+s ago\s+0/);
  });

  it("upgrades to the file's new entry: new replicas first, the old drained, a task across it ends SUCCESS", { timeout: 240_000 }, async () => {
    const before = await routedInstances();
    const client = taskClient(host.url);
    const { execution } = await client.createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: { waitForFile: goFile } } });
    writeConfig("v2");
    const upgraded = await cli("upgrade", "reference");
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(upgraded.stderr).toContain("upgrading reference: new replicas first");
    expect(upgraded.stdout).toMatch(/^upgraded reference: /);
    expect(upgraded.stdout).toMatch(/new\s+reference\s+reference-1-\w+\s+\S+\s+serving/);
    expect(upgraded.stdout).toMatch(/old\s+reference\s+reference-1-\w+\s+\S+\s+stopped/);
    const after = await routedInstances();
    expect(after).toHaveLength(2);
    expect(after.some((id) => before.includes(id))).toBe(false);
    expect((await sidecars())[0]?.replicas.map((replica) => replica.instanceId).sort()).toEqual(after);
    // The execution created its work on an old replica; the new ones carry it to the end.
    writeFileSync(goFile, "go");
    let last: Phase | undefined;
    for await (const { event } of client.watchTask({ id: execution!.id })) last = event?.phaseInfo?.phase ?? last;
    expect(last).toBe(Phase.SUCCESS);
  });

  it("keeps the old replicas serving when the new ones never serve", { timeout: 240_000 }, async () => {
    const before = await routedInstances();
    writeConfig("broken", [process.execPath, "-e", "process.exit(3)"]);
    const failed = await cli("upgrade", "reference");
    expect(failed.code).toBe(5);
    expect(failed.stderr).toMatch(/FailedPrecondition: sidecar "reference" not upgraded, the old replicas keep serving: reference-1-\w+ gave-up \(crashed \d+ times/);
    expect(failed.stderr).toContain("exit code 3");
    expect(await routedInstances()).toEqual(before);
    expect((await sidecars())[0]?.replicas.map((replica) => replica.state)).toEqual(["REPLICA_STATE_SERVING", "REPLICA_STATE_SERVING"]);
    const { execution } = await taskClient(host.url).createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: {} } });
    let last: Phase | undefined;
    for await (const { event } of taskClient(host.url).watchTask({ id: execution!.id })) last = event?.phaseInfo?.phase ?? last;
    expect(last).toBe(Phase.SUCCESS);
  });

  it("refuses an unknown sidecar, a file that does not load and a bad name, changing nothing", async () => {
    const before = await routedInstances();
    const unknown = await cli("upgrade", "nobody");
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toContain('NotFound: no supervised sidecar is named "nobody" (supervised: reference)');
    writeFileSync(configFile, "sidecars:\n  - name: reference\n    command: node\n    replicas: many\n");
    const broken = await cli("upgrade", "reference");
    expect(broken.code).toBe(5);
    expect(broken.stderr).toMatch(/FailedPrecondition: the configuration does not load: .*sidecars\[0\]\.replicas/);
    const bad = await cli("upgrade", "../etc");
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain("InvalidArgument");
    const usage = await cli("upgrade");
    expect(usage.code).toBe(2);
    expect(await routedInstances()).toEqual(before);
  });
});
