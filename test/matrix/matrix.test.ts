// The language matrix: every SDK (TypeScript, Python, Go, and curl with JSON) runs a task of every plugin
// language (TypeScript `http`, Python `sql`, Go `batch`) to SUCCESS through one host, and checks its outputs.
// Each SDK's cell builds `custom` from the plugin's typed specification, in its own language and process.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForPlugin } from "../helpers/clients.js";
import { eventually } from "../helpers/eventually.js";
import {
  projectRoot,
  run,
  startHost,
  startTestNats,
  startTypeScriptSidecar,
  tempDir,
  type RunningProcess,
  type TestHost,
  type TestNats,
} from "../helpers/processes.js";

const execFileAsync = promisify(execFile);
const python = path.join(projectRoot, ".tools", "venv", "bin", "python");
const buildDir = path.join(projectRoot, ".tools", "build");
const goModule = path.join(projectRoot, "sidecars", "go");

let nats: TestNats;
let host: TestHost;
let target: Server;
let targetUrl = "";
const sidecars: RunningProcess[] = [];
const work = tempDir("matrix");
const database = path.join(work, "matrix.db");

type Json = Record<string, any>;
interface PluginCell {
  plugin: string;
  type: string;
  spec: () => Json;
  check: (outputs: Json) => void;
}

const PLUGINS: PluginCell[] = [
  {
    plugin: "typescript",
    type: "http",
    spec: () => ({ url: `${targetUrl}/matrix`, method: "GET" }),
    check: (outputs) => expect(outputs).toMatchObject({ status: 200, body: "hello matrix" }),
  },
  {
    plugin: "python",
    type: "sql",
    spec: () => ({ database, query: "SELECT name, qty FROM items WHERE qty > :least ORDER BY qty", parameters: { least: 1 } }),
    check: (outputs) => expect(outputs).toMatchObject({ columns: ["name", "qty"], rows: [["pear", 3], ["fig", 7]], rowCount: 2 }),
  },
  {
    plugin: "go",
    type: "batch",
    spec: () => ({ command: "sh", args: ["-c", "echo matrix $((6*7))"] }),
    check: (outputs) => {
      expect(outputs.exitCode ?? 0).toBe(0);
      expect(outputs.logTail).toContain("matrix 42");
    },
  },
];

/** Each SDK runs one task and returns its final event as proto3 JSON. */
const SDKS: Record<string, (type: string, spec: Json) => Promise<Json>> = {
  typescript: async (type, spec) => runTask(process.execPath, ["--import", "tsx", "sidecars/typescript/examples/run-task.ts"], type, spec),
  python: async (type, spec) => runTask(python, ["-m", "plugin_bridge.run_task"], type, spec),
  go: async (type, spec) => runTask(path.join(buildDir, "run-task"), [], type, spec),
  curl: async (type, spec) => {
    const call = async (method: string, body: Json): Promise<Json> => {
      const { stdout } = await execFileAsync("curl", [
        "-sS", "-H", "Content-Type: application/json", "-d", JSON.stringify(body), `${host.url}/pluginbridge.v1.TaskService/${method}`,
      ]);
      return JSON.parse(stdout) as Json;
    };
    const created = await call("CreateTask", { template: { type, typeVersion: 1, custom: spec } });
    const id = created.execution?.id as string;
    if (!id) throw new Error(`CreateTask answered ${JSON.stringify(created)}`);
    const done = await eventually("the curl task to end", async () => {
      const { execution } = await call("GetTask", { id });
      return ["PHASE_SUCCESS", "PHASE_PERMANENT_FAILURE", "PHASE_ABORTED"].includes(execution.phaseInfo?.phase) ? execution : undefined;
    }, 300, 100);
    return { phaseInfo: done.phaseInfo, outputs: done.outputs };
  },
};

async function runTask(command: string, args: string[], type: string, spec: Json): Promise<Json> {
  const { stdout } = await execFileAsync(command, [...args, "--base-url", host.url, "--type", type, "--spec", JSON.stringify(spec)], {
    cwd: projectRoot,
    timeout: 90_000,
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${error.stdout ?? ""}\n${error.stderr ?? ""}`);
  });
  return JSON.parse(stdout) as Json;
}

beforeAll(async () => {
  mkdirSync(buildDir, { recursive: true });
  await Promise.all([
    execFileAsync("go", ["build", "-o", path.join(buildDir, "run-task"), "./cmd/run-task"], { cwd: goModule }),
    execFileAsync("go", ["build", "-o", path.join(buildDir, "batch"), "./examples/batch"], { cwd: goModule }),
    execFileAsync(python, ["-c", `import sqlite3; c = sqlite3.connect(${JSON.stringify(database)}); c.execute("CREATE TABLE items (name TEXT, qty INTEGER)"); c.executemany("INSERT INTO items VALUES (?, ?)", [("apple", 1), ("pear", 3), ("fig", 7)]); c.commit()`]),
  ]);
  target = createServer((_request, response) => response.writeHead(200, { "content-type": "text/plain" }).end("hello matrix"));
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  const address = target.address();
  targetUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  nats = await startTestNats();
  host = await startHost(nats.url);
  const env = { PLUGIN_BRIDGE_NATS_URL: nats.url };
  sidecars.push(
    startTypeScriptSidecar("sidecars/typescript/examples/http/main.ts", nats.url),
    run(python, ["-m", "plugin_bridge.examples.sql"], env),
    run(path.join(buildDir, "batch"), [], { ...env, BATCH_JOBS_DIR: path.join(work, "jobs") }),
  );
  for (const name of ["http", "sql", "batch"]) await waitForPlugin(host.url, name);
}, 300_000);

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
  await new Promise((resolve) => target?.close(resolve));
});

describe.each(Object.keys(SDKS))("the %s SDK", (sdk) => {
  it.each(PLUGINS.map((cell) => [cell.plugin, cell] as const))("runs a %s plugin's task to SUCCESS", async (_plugin, cell) => {
    const final = await SDKS[sdk]!(cell.type, cell.spec());
    expect(final.phaseInfo?.phase, JSON.stringify(final)).toBe("PHASE_SUCCESS");
    cell.check(final.outputs as Json);
  });
});
