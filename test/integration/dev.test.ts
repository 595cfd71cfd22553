// `plugin-bridge dev` as a plugin author runs it: its own nats-server, the host and the config's sidecars in one
// command; changing a file in a sidecar's folder restarts that sidecar (new replicas first), and Ctrl-C stops it all.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/coordination/nats-server-process.js";
import { registryClient } from "../helpers/clients.js";
import { eventually } from "../helpers/eventually.js";
import { projectRoot, run, tempDir, type RunningProcess } from "../helpers/processes.js";

const folder = tempDir("dev");
let dev: RunningProcess | undefined;

afterAll(async () => {
  await dev?.stop("SIGINT");
});

async function instances(url: string): Promise<string[]> {
  const { plugins } = await registryClient(url).listPlugins({ taskType: "conformance-typescript" });
  return plugins.flatMap((plugin) => plugin.instances.filter((instance) => !instance.draining).map((instance) => instance.instanceId));
}

describe("plugin-bridge dev", () => {
  it("runs NATS, the host and the sidecars, restarts a sidecar whose files change, and stops on Ctrl-C", async () => {
    const config = path.join(folder, "plugin-bridge.yaml");
    writeFileSync(config, [
      "sidecars:",
      "  - name: reference",
      `    command: ${JSON.stringify(process.execPath)}`,
      // The sidecar runs in the watched folder, outside the project: tsx's loader by its path, not by package name.
      `    args: [--import, ${JSON.stringify(pathToFileURL(path.join(projectRoot, "node_modules/tsx/dist/loader.mjs")).href)}, ${JSON.stringify(path.join(projectRoot, "sidecars/typescript/conformance/main.ts"))}]`,
      "",
    ].join("\n"));
    const port = await freePort();
    dev = run(process.execPath, [
      path.join(projectRoot, "bin", "plugin-bridge.js"), "dev", "--config", config,
      "--listen-port", String(port), "--embedded-nats-port", "0", "--data-dir", path.join(folder, "data"),
    ]);
    const url = `http://127.0.0.1:${port}`;
    await dev.waitFor("watching for changes", 60_000);
    const [first] = await eventually("the sidecar routed", async () => {
      const ids = await instances(url);
      return ids.length === 1 ? ids : undefined;
    }, 600, 100);

    writeFileSync(path.join(folder, "plugin.ts"), "// edited\n");
    await dev.waitFor("sidecar restarted", 60_000);
    const [second] = await eventually("a new instance", async () => {
      const ids = await instances(url);
      return ids.length === 1 && ids[0] !== first ? ids : undefined;
    }, 600, 100);
    expect(second).not.toBe(first);

    expect(await dev.stop("SIGINT")).toBe(0);
    expect(dev.output()).toMatch(/signal received .*signal=SIGINT/);
    expect(dev.output()).toMatch(/SIGTERM received .*sidecar=reference/); // the sidecar drained too
    dev = undefined;
  });
});
