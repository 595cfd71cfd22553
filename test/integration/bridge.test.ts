// A sync and an async task to SUCCESS through real processes: nats-server, a host, and the example sidecars,
// called with the generated client over gRPC, Connect (binary and JSON), gRPC-Web, and with curl and JSON.
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { PROTOCOLS, eventually, registryClient, taskClient, waitForPlugin } from "../helpers/clients.js";
import {
  startHost,
  startTestNats,
  startTypeScriptSidecar,
  tempDir,
  type RunningProcess,
  type TestHost,
  type TestNats,
} from "../helpers/processes.js";

const run = promisify(execFile);

let nats: TestNats;
let host: TestHost;
let sidecars: RunningProcess[] = [];
let target: Server;
let targetUrl: string;
const sensorDir = tempDir("sensor");

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecars = [
    startTypeScriptSidecar("sidecars/typescript/examples/http/main.ts", nats.url),
    startTypeScriptSidecar("sidecars/typescript/examples/sensor/main.ts", nats.url),
  ];
  target = createServer((request, response) => {
    if (request.url === "/missing") {
      response.writeHead(404).end("no such thing");
      return;
    }
    response.writeHead(200, { "content-type": "text/plain" }).end(`hello from ${request.method} ${request.url}`);
  });
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  const address = target.address();
  targetUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  await waitForPlugin(host.url, "http");
  await waitForPlugin(host.url, "sensor");
});

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
  await new Promise((resolve) => target?.close(resolve));
});

const httpTemplate = (url: string) => ({ type: "http", typeVersion: 1, custom: { url, method: "GET" } });
const sensorTemplate = (file: string) => ({ type: "sensor", typeVersion: 1, custom: { path: file, deadline: "120s" } });

async function collect(stream: AsyncIterable<{ event?: TaskEvent }>): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  for await (const message of stream) if (message.event) events.push(message.event);
  return events;
}

describe.each(PROTOCOLS)("over %s", (protocol) => {
  it("runs a sync http task to SUCCESS with ExecuteTask", async () => {
    const client = taskClient(host.url, protocol);
    const events = await collect(client.executeTask({ template: httpTemplate(`${targetUrl}/${protocol}`) }));
    const last = events.at(-1)!;
    expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.SUCCESS]);
    expect(events.map((e) => e.sequence)).toEqual([1n, 2n]);
    expect(last.outputs).toMatchObject({ status: 200, body: `hello from GET /${protocol}` });
  });

  it("runs an async sensor task through Create, Gets and SUCCESS, watched with WatchTask", async () => {
    const client = taskClient(host.url, protocol);
    const file = path.join(sensorDir, `${protocol}.ready`);
    const { execution, created } = await client.createTask({ template: sensorTemplate(file) });
    expect(created).toBe(true);
    const id = execution!.id;
    await eventually("the sensor execution to run", async () => {
      const { execution: current } = await client.getTask({ id });
      return current?.phaseInfo?.phase === Phase.RUNNING ? true : undefined;
    });
    writeFileSync(file, "ready");
    const events = await collect(client.watchTask({ id }));
    expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCESS]);
    expect(events.at(-1)!.outputs).toMatchObject({ path: file, size: 5 });
    const replay = await collect(client.watchTask({ id, fromSequence: 3n }));
    expect(replay.map((e) => e.sequence)).toEqual([3n, 4n]);
  });
});

describe("ExecuteTask", () => {
  it("keeps following a task that stays quiet longer than the live subscription waits", async () => {
    // ExecuteTask follows a new execution through a plain subscription and hands over to the stream after 5 s
    // without an event: the file appears after 7 s, so the SUCCESS comes through the hand-over.
    const file = path.join(sensorDir, "quiet.ready");
    const creator = setTimeout(() => writeFileSync(file, "late"), 7_000);
    try {
      const events = await collect(taskClient(host.url).executeTask({ template: sensorTemplate(file) }));
      expect(events.map((e) => e.sequence)).toEqual([1n, 2n, 3n, 4n]);
      expect(events.at(-1)?.phaseInfo?.phase).toBe(Phase.SUCCESS);
    } finally {
      clearTimeout(creator);
    }
  });
});

describe("with curl and JSON", () => {
  async function curl(method: string, body: unknown): Promise<any> {
    const { stdout } = await run("curl", [
      "-sS", "-H", "Content-Type: application/json", "-d", JSON.stringify(body),
      `${host.url}/pluginbridge.v1.TaskService/${method}`,
    ]);
    return JSON.parse(stdout);
  }

  it("runs a sync and an async task to SUCCESS", async () => {
    const file = path.join(sensorDir, "curl.ready");
    mkdirSync(sensorDir, { recursive: true });
    const sync = await curl("CreateTask", { template: httpTemplate(`${targetUrl}/curl`) });
    const async = await curl("CreateTask", { template: sensorTemplate(file) });
    expect(sync.created).toBe(true);
    writeFileSync(file, "x");
    for (const id of [sync.execution.id, async.execution.id]) {
      const done = await eventually("the curl execution to succeed", async () => {
        const { execution } = await curl("GetTask", { id });
        return execution.phaseInfo.phase === "PHASE_SUCCESS" ? execution : undefined;
      });
      expect(done.outputs).toBeDefined();
    }
  });
});

describe("the registry", () => {
  it("lists the live plugins with their specification", async () => {
    const { plugins } = await registryClient(host.url).listPlugins({});
    expect(plugins.map((p) => p.name)).toEqual(expect.arrayContaining(["http", "sensor"]));
    const { plugin } = await registryClient(host.url).getPlugin({ name: "sensor" });
    expect(plugin?.instances[0]?.descriptor?.specification?.messageName).toBe("pluginbridge.plugins.sensor.v1.FileSensor");
  });

  it("answers a 404 from the target as a permanent failure with the status in the error", async () => {
    const events = await collect(taskClient(host.url).executeTask({ template: httpTemplate(`${targetUrl}/missing`) }));
    const last = events.at(-1)!;
    expect(last.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(last.phaseInfo?.error?.code).toContain("404");
  });
});
