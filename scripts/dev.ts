// The main job on one machine: the host (which starts its own nats-server with JetStream), every example
// sidecar in every language that has a kit, and sample tasks run to completion with their events printed.
// `--exit` stops everything after the samples (CI and tests); otherwise it keeps running until Ctrl-C.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createBridgeClient, createBridgeTransport, taskTemplate } from "@plugin-bridge/kit/sdk";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { BatchJobSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/batch/v1/batch_pb.js";
import { FileSensorSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";
import { SqlQuerySchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sql/v1/sql_pb.js";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    port: { type: "string", default: process.env.PLUGIN_BRIDGE_LISTEN_PORT ?? "8080" },
    "nats-port": { type: "string", default: process.env.PLUGIN_BRIDGE_EMBEDDED_NATS_PORT ?? "4222" },
    "data-dir": { type: "string", default: path.join(root, ".data", "dev") },
  },
});
const dataDir = path.resolve(values["data-dir"]!);
const natsUrl = `nats://127.0.0.1:${values["nats-port"]}`;
const baseUrl = `http://127.0.0.1:${values.port}`;

// Its own build directory: tests build the same programs elsewhere, and two builds must never share an output.
const buildDir = path.join(dataDir, "bin");
const python = path.join(root, ".tools", "venv", "bin", "python");

/** Every example sidecar, by language. A language joins this list when its kit lands. */
const SIDECARS: Array<{ language: string; plugin: string; command: string[]; env?: NodeJS.ProcessEnv }> = [
  { language: "typescript", plugin: "http", command: [process.execPath, "--import", "tsx", "sidecars/typescript/examples/http/main.ts"] },
  { language: "typescript", plugin: "sensor", command: [process.execPath, "--import", "tsx", "sidecars/typescript/examples/sensor/main.ts"] },
  { language: "python", plugin: "sql", command: [python, "-m", "plugin_bridge.examples.sql"] },
  { language: "go", plugin: "batch", command: [path.join(buildDir, "batch")], env: { BATCH_JOBS_DIR: path.join(dataDir, "jobs") } },
];

/** Builds what runs compiled: the Go example. */
async function build(): Promise<void> {
  mkdirSync(buildDir, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const go = spawn("go", ["build", "-o", path.join(buildDir, "batch"), "./examples/batch"], { cwd: path.join(root, "sidecars", "go"), stdio: "inherit" });
    go.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`go build exited with ${code}`))));
  });
}

const bold = (text: string): string => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const say = (text: string): void => void process.stdout.write(`${bold("==>")} ${text}\n`);

const children: ChildProcess[] = [];
function start(label: string, command: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const [file, ...args] = command;
  const child = spawn(file!, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const prefix = (chunk: Buffer): void => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) process.stderr.write(`[${label}] ${line}\n`);
  };
  child.stdout?.on("data", prefix);
  child.stderr?.on("data", prefix);
  children.push(child);
  return child;
}

async function stopAll(): Promise<void> {
  // Sidecars first (they drain), the host last (it stops its nats-server).
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined>, seconds = 60): Promise<T> {
  for (let i = 0; i < seconds * 5; i++) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function show(name: string, event: TaskEvent): void {
  const info = event.phaseInfo;
  const phase = Phase[info?.phase ?? Phase.UNSPECIFIED];
  const detail = info?.error?.message || info?.reason || "";
  process.stdout.write(`    ${name} #${event.sequence} ${phase}${detail ? ` — ${detail}` : ""}\n`);
  if (event.outputs) process.stdout.write(`    ${name} outputs ${JSON.stringify(event.outputs)}\n`);
}

/** A small SQLite database for the sql sample, written with the kit's Python (Node 20 has no SQLite). */
async function sqliteFixture(database: string): Promise<void> {
  const script = [
    "import sqlite3, sys",
    "c = sqlite3.connect(sys.argv[1])",
    "c.execute('CREATE TABLE IF NOT EXISTS fruit (name TEXT PRIMARY KEY, qty INTEGER)')",
    "c.executemany('INSERT OR REPLACE INTO fruit VALUES (?, ?)', [('apple', 1), ('pear', 3), ('fig', 7)])",
    "c.commit()",
  ].join("\n");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, ["-c", script, database], { stdio: "inherit" });
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`creating ${database} failed`))));
  });
}

async function main(): Promise<number> {
  mkdirSync(dataDir, { recursive: true });
  say(`starting the host on ${baseUrl} with its own nats-server on ${natsUrl} (data in ${path.relative(root, dataDir)})`);
  const host = start("host", [
    process.execPath, "bin/plugin-bridge.js", "serve",
    "--listen-port", values.port!, "--embedded-nats-port", values["nats-port"]!, "--data-dir", dataDir,
  ]);
  const hostExit = new Promise<number>((resolve) => host.once("exit", (code) => resolve(code ?? 1)));
  say("building the Go example");
  await build();
  for (const sidecar of SIDECARS) {
    say(`starting the ${sidecar.language} sidecar for ${sidecar.plugin}`);
    start(`${sidecar.language}/${sidecar.plugin}`, sidecar.command, { PLUGIN_BRIDGE_NATS_URL: natsUrl, ...sidecar.env });
  }

  const transport = createBridgeTransport({ baseUrl, protocol: "grpc" });
  const registry = createClient(PluginRegistryService, transport);
  const wanted = new Set(SIDECARS.map((sidecar) => sidecar.plugin));
  await until("every sidecar to announce itself", async () => {
    const { plugins } = await registry.listPlugins({});
    return [...wanted].every((name) => plugins.some((plugin) => plugin.name === name)) ? true : undefined;
  });
  say(`live plugins: ${[...wanted].join(", ")}`);

  const client = createBridgeClient({ baseUrl, protocol: "grpc" });
  say("running a sync task: the http plugin calls the host's own health endpoint");
  const httpDone = await client.run(
    taskTemplate(HttpRequestSchema, { type: "http", version: 1 }, {
      url: `${baseUrl}/grpc.health.v1.Health/Check`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    }),
    { onEvent: (event) => show("http", event) },
  );

  const readyFile = path.join(dataDir, `ready-${Date.now()}`);
  say(`running an async task: the sensor plugin waits for ${path.relative(root, readyFile)}, created in 3 s`);
  const sensorRun = client.run(
    taskTemplate(FileSensorSchema, { type: "sensor", version: 1 }, { path: readyFile, deadline: { seconds: 60n } }),
    { onEvent: (event) => show("sensor", event) },
  );
  const creator = setTimeout(() => writeFileSync(readyFile, "ready\n"), 3_000);
  const sensorDone = await sensorRun.finally(() => clearTimeout(creator));

  const database = path.join(dataDir, "fruit.db");
  await sqliteFixture(database);
  say("running an async task: the Python sql plugin queries a SQLite database in a worker");
  const sqlDone = await client.run(
    taskTemplate(SqlQuerySchema, { type: "sql", version: 1 }, {
      database,
      query: "SELECT name, qty FROM fruit WHERE qty >= :least ORDER BY qty",
      parameters: { least: 2 },
    }),
    { onEvent: (event) => show("sql", event) },
  );

  say("running an async task: the Go batch plugin runs a command as a job in its own process group");
  const batchDone = await client.run(
    taskTemplate(BatchJobSchema, { type: "batch", version: 1 }, { command: "sh", args: ["-c", "echo hello from a batch job; uname -s"] }),
    { onEvent: (event) => show("batch", event) },
  );

  const ok = [httpDone, sensorDone, sqlDone, batchDone].every((done) => done.phaseInfo?.phase === Phase.SUCCESS);
  say(ok ? "all four tasks reached SUCCESS" : "a sample task did not succeed");
  if (values.exit) {
    await stopAll();
    return ok ? 0 : 1;
  }
  say(`everything is up; try:
    curl -sS -H 'Content-Type: application/json' -d '{}' ${baseUrl}/pluginbridge.v1.PluginRegistryService/ListPlugins
    curl -sS -H 'Content-Type: application/json' -d '{"pageSize":10}' ${baseUrl}/pluginbridge.v1.TaskService/ListTasks
  Ctrl-C stops it all.`);
  await hostExit; // until Ctrl-C (handled below) or the host ends by itself
  await stopAll();
  return 0;
}

// Ctrl-C or SIGTERM at any point: stop the sidecars and the host (which stops its nats-server), then leave.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping everything`);
    void stopAll().then(() => process.exit(0));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    process.stderr.write(`dev: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
