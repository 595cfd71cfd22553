// A live upgrade through a config reload (SIGHUP) with 1,000 async executions in flight: the new replicas start
// and serve, the old ones drain and stop, and every execution ends SUCCESS, none lost, its steps after the switch
// on the new replicas.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { eventually, finalEvent, registryClient, taskClient, waitForPlugin } from "../helpers/clients.js";
import { projectRoot, startHost, startTestNats, tempDir, type TestHost, type TestNats } from "../helpers/processes.js";

const EXECUTIONS = 1_000;
const work = tempDir("upgrade");
const auditFile = path.join(work, "audit.log");
const goFile = path.join(work, "go");
const configFile = path.join(work, "plugin-bridge.yaml");
let nats: TestNats;
let host: TestHost;

/** The reference plugin, 2 replicas, polled every 2 s (1,000 executions at 200 ms would be 5,000 Gets a second). */
function writeConfig(release: string): void {
  writeFileSync(configFile, [
    "sidecars:",
    "  - name: reference",
    `    command: ${JSON.stringify(process.execPath)}`,
    "    args: [--import, tsx, sidecars/typescript/conformance/main.ts]",
    `    workingDir: ${JSON.stringify(projectRoot)}`,
    "    replicas: 2",
    `    env: { CONFORMANCE_AUDIT_FILE: ${JSON.stringify(auditFile)}, CONFORMANCE_RESYNC_MS: "2000", RELEASE: ${release} }`,
    "",
  ].join("\n"));
}

async function instanceIds(): Promise<string[]> {
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

describe("a live upgrade", () => {
  it("keeps 1,000 executions in flight: none failed, none lost, their later steps on the new replicas", { timeout: 240_000 }, async () => {
    const client = taskClient(host.url);
    const ids: string[] = [];
    for (let start = 0; start < EXECUTIONS; start += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, EXECUTIONS - start) }, async () =>
        (await client.createTask({ template: { type: "conformance-typescript", typeVersion: 1, custom: { waitForFile: goFile } } })).execution!.id,
      ));
      ids.push(...batch);
    }
    const audit = (): string[][] => (existsSync(auditFile) ? readFileSync(auditFile, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ")) : []);
    // Every execution created its work on an old replica and was polled there.
    await eventually("every execution polled", () => {
      const polled = new Set(audit().filter(([call]) => call === "get").map(([, id]) => id));
      return ids.every((id) => polled.has(id)) ? true : undefined;
    }, 600, 200);
    const old = await instanceIds();
    expect(old).toHaveLength(2);

    writeConfig("v2");
    host.child.kill("SIGHUP");
    await host.waitFor("configuration reloaded", 120_000);
    const fresh = await instanceIds();
    expect(fresh).toHaveLength(2);
    expect(fresh.some((id) => old.includes(id))).toBe(false);
    const switchedAt = audit().length;

    writeFileSync(goFile, "go");
    // 1,000 watches at once: on a loaded machine some may be cut UNAVAILABLE and resumed, as clients do.
    const phases = await Promise.all(ids.map(async (id) => (await finalEvent(client, id))?.phaseInfo?.phase ?? Phase.UNSPECIFIED));
    expect(phases.filter((phase) => phase !== Phase.SUCCESS)).toEqual([]);
    expect(phases).toHaveLength(EXECUTIONS);

    // Every call after the switch ran on a new replica; every execution had its last Get there.
    const after = audit().slice(switchedAt);
    expect(new Set(after.map(([, , , instance]) => instance))).toEqual(new Set(fresh));
    const finishedOnNew = new Set(after.filter(([call]) => call === "get").map(([, id]) => id));
    expect(ids.filter((id) => !finishedOnNew.has(id))).toEqual([]);
    // One Create each, on the old replicas: the upgrade started no work twice.
    expect(audit().filter(([call]) => call === "create")).toHaveLength(EXECUTIONS);
    expect(host.output()).toContain("sidecar upgraded: old replicas drained and stopped");
  });
});
