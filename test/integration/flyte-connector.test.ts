// A Flyte connector as a plugin (issue 8): test/flyte/bridge_connectors.py, written with flytekit's connector base
// classes and served by flytekit's own `pyflyte serve connector` (test/flyte/serve_connector.py keeps it on
// loopback), runs as a sidecar the real host supervises from its config file (`protocol: flyte-agent`). The host
// announces its agents, translates every plugin call into Flyte's agent protocol, and gives it the machinery any
// plugin gets: tasks submitted from the TypeScript, Python and Go SDKs run on it, fail, abort and refuse as the
// bridge's rules say, and each attempt's Create reaches the connector once, however often it is made.
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { create, fromBinary, type JsonObject } from "@bufbuild/protobuf";
import { Kvm, type KV } from "@nats-io/kv";
import { createClient } from "@connectrpc/connect";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createBridgeClient, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { KvIdempotencyStore } from "@plugin-bridge/kit";
import { ExecutionRecordSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { AsyncPluginService, PluginKind, PluginProtocol, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase, TaskContextSchema, TaskTemplateSchema, type TaskTemplate } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { SidecarService } from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlyteAgentCalls } from "../../src/flyte/driving/agent-calls.js";
import { createLogger } from "../../src/log.js";
import { PluginClients } from "../../src/registry/plugin-client.js";
import { eventually, transport } from "../helpers/clients.js";
import { projectRoot, startHost, startTestNats, tempDir, type TestHost, type TestNats } from "../helpers/processes.js";

const execFileAsync = promisify(execFile);

/** Made by scripts/setup.sh (test/flyte/requirements.txt): real flytekit. CI has it, so its absence is a failure. */
const flytePython = path.join(projectRoot, ".tools", "flyte-venv", "bin", "python");
const kitPython = path.join(projectRoot, ".tools", "venv", "bin", "python");
const ASYNC = "bridge-echo-connector";
const SYNC = "bridge-echo-sync-connector";

let nats: TestNats;
let nc: NatsConnection;
let host: TestHost;
let client: BridgeClient;
let work: string;
let auditFile: string;
let goRunTask: string;

const template = (type: string, custom: JsonObject): TaskTemplate => create(TaskTemplateSchema, { type, typeVersion: 0, custom });
/** The connector's calls so far, as "<method> <job id>" lines. */
const audit = (): string[] => (existsSync(auditFile) ? readFileSync(auditFile, "utf8").split("\n").filter(Boolean) : []);
const creates = (): number => audit().filter((line) => line.startsWith("create ")).length;

async function runWithEvents(task: TaskTemplate, inputs: JsonObject = {}): Promise<{ final: TaskEvent; events: TaskEvent[] }> {
  const events: TaskEvent[] = [];
  const final = await client.run(task, { inputs, onEvent: (event) => events.push(event) });
  return { final, events };
}

async function liveInstance(plugin: string): Promise<PluginInstance> {
  const { plugins } = await client.registry.listPlugins({});
  const instance = plugins.find((candidate) => candidate.name === plugin)?.instances[0];
  if (!instance) throw new Error(`${plugin} is not routed`);
  return instance;
}

beforeAll(async () => {
  if (!existsSync(flytePython)) throw new Error(`${flytePython} is missing: run scripts/setup.sh (it installs test/flyte/requirements.txt)`);
  work = tempDir("flyte-connector");
  auditFile = path.join(work, "audit.log");
  goRunTask = path.join(work, "run-task");
  const configFile = path.join(work, "host.yaml");
  writeFileSync(configFile, JSON.stringify({
    sidecars: [{
      name: "flyte-echo",
      protocol: "flyte-agent",
      command: flytePython,
      args: ["test/flyte/serve_connector.py", "--port", "{port}", "--modules", "bridge_connectors"],
      workingDir: projectRoot,
      env: { BRIDGE_CONNECTOR_AUDIT: auditFile },
      version: "1.16.31",
      outputPrefix: `file://${work}/outputs/`,
      properties: { resyncIntervalMs: 200, maxSystemFailures: 2 },
      startTimeoutMs: 60_000,
    }],
  }));
  // The Go SDK's run-task CLI builds while NATS, the host and flytekit start.
  const building = execFileAsync("go", ["build", "-o", goRunTask, "./cmd/run-task"], { cwd: path.join(projectRoot, "sidecars", "go") });
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  host = await startHost(nats.url, { config: configFile });
  client = createBridgeClient({ baseUrl: host.url, protocol: "grpc" });
  await eventually("the connector's agents routed", async () => {
    const { plugins } = await client.registry.listPlugins({});
    return [ASYNC, SYNC].every((name) => plugins.some((plugin) => plugin.name === name)) ? true : undefined;
  }, 600, 100);
  await building;
}, 180_000);

afterAll(async () => {
  await host?.stop();
  await nc?.close();
  await nats?.stop();
});

describe("a Flyte connector served by flytekit, supervised and driven by the host", () => {
  it("is announced by the host: one plugin per agent the server lists, with the Flyte protocol", async () => {
    const { plugins } = await client.registry.listPlugins({});
    // Every agent by default, flytekit's built-in Sensor and Webhook Connector too.
    expect(plugins.map((plugin) => plugin.name).sort()).toEqual([ASYNC, SYNC, "sensor", "webhook-connector"]);
    const echo = await liveInstance(ASYNC);
    expect(echo.protocol).toBe(PluginProtocol.FLYTE_AGENT);
    expect(echo.instanceId).toMatch(/^flyte-echo-1-[0-9a-f]{6}-bridge-echo-connector$/);
    expect(echo.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(echo.descriptor).toMatchObject({ name: ASYNC, version: "1.16.31", kind: PluginKind.ASYNC, taskTypes: [{ type: "bridge_echo", version: 0 }] });
    expect(echo.descriptor?.properties?.resyncInterval?.nanos).toBe(200_000_000);
    const sync = await liveInstance(SYNC);
    expect(sync.descriptor).toMatchObject({ kind: PluginKind.SYNC, taskTypes: [{ type: "bridge_echo_sync", version: 0 }] });
    // The replica's agents share its endpoint.
    expect(sync.endpoint).toBe(echo.endpoint);
  });

  it("runs an async and a sync task submitted from the TypeScript SDK, outputs as JSON", async () => {
    const before = creates();
    const events: TaskEvent[] = [];
    const final = await client.run(template("bridge_echo", { prefix: "hi", polls: 1 }), {
      inputs: { name: "typescript", numbers: [1, 2, 3], tags: { team: "bridge" } },
      metadata: { namespace: "team-a", labels: { app: "flyte-test" } },
      onEvent: (event) => events.push(event),
    });
    expect(final.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(final.outputs).toEqual({ greeting: "hi typescript", polls: 2, numbers: [1, 2, 3], tags: { team: "bridge" } });
    // The connector read its inputs through the interface the host filled in, as flytekit's TypeEngine does, and was
    // told where the attempt may write and which Flyte execution and retry it is.
    expect(final.phaseInfo?.customInfo).toMatchObject({
      polls: 2,
      inputs_via: "interface",
      created_with: {
        output_prefix: `file://${work}/outputs/${final.executionId}/1`,
        execution: final.executionId,
        retry_attempt: 0,
        namespace: "team-a",
        labels: { app: "flyte-test" },
      },
    });
    expect(events.map((event) => Phase[event.phaseInfo!.phase])).toEqual(["QUEUED", "INITIALIZING", "RUNNING", "SUCCESS"]);
    expect(events[2]!.phaseInfo?.reason).toBe("poll 1");
    expect(creates()).toBe(before + 1);

    const sync = await client.run(template("bridge_echo_sync", { prefix: "hey" }), { inputs: { name: "typescript" } });
    expect(sync.phaseInfo?.phase).toBe(Phase.SUCCESS);
    expect(sync.outputs).toEqual({ greeting: "hey typescript" });
  });

  it("runs them submitted from the Python SDK (run_task)", async () => {
    const runTask = async (type: string, custom: JsonObject, inputs: JsonObject): Promise<TaskEvent> => {
      const { stdout } = await execFileAsync(kitPython, [
        "-m", "plugin_bridge.run_task", "--base-url", host.url, "--type", type, "--type-version", "0",
        "--custom", JSON.stringify(custom), "--inputs", JSON.stringify(inputs),
      ], { cwd: projectRoot });
      return JSON.parse(stdout) as TaskEvent;
    };
    const done = await runTask("bridge_echo", { prefix: "hello", polls: 1 }, { name: "python", numbers: [4, 5] });
    expect(done.phaseInfo?.phase).toBe("PHASE_SUCCESS");
    expect(done.outputs).toEqual({ greeting: "hello python", polls: 2, numbers: [4, 5] });
    const sync = await runTask("bridge_echo_sync", {}, { name: "python" });
    expect(sync.outputs).toEqual({ greeting: "hello python" });
  });

  it("runs them submitted from the Go SDK (run-task)", async () => {
    const runTask = async (type: string, custom: JsonObject, inputs: JsonObject): Promise<TaskEvent> => {
      const { stdout } = await execFileAsync(goRunTask, [
        "--base-url", host.url, "--type", type, "--type-version", "0", "--custom", JSON.stringify(custom), "--inputs", JSON.stringify(inputs), "--quiet",
      ]);
      return JSON.parse(stdout) as TaskEvent;
    };
    const done = await runTask("bridge_echo", { prefix: "hallo", polls: 2 }, { name: "go", tags: { lang: "go" } });
    expect(done.phaseInfo?.phase).toBe("PHASE_SUCCESS");
    expect(done.outputs).toEqual({ greeting: "hallo go", polls: 3, tags: { lang: "go" } });
    const sync = await runTask("bridge_echo_sync", { prefix: "hallo" }, { name: "go" });
    expect(sync.outputs).toEqual({ greeting: "hallo go" });
  });

  it("ends a task the connector fails PERMANENT_FAILURE with the connector's message", async () => {
    const final = await client.run(template("bridge_echo", { fail: "the warehouse is closed" }));
    expect(final.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(final.phaseInfo?.reason).toBe("the warehouse is closed");
    expect(final.phaseInfo?.error).toMatchObject({ code: "TaskFailedWithError", message: "the warehouse is closed", kind: ErrorKind.USER });
  });

  it("counts a connector that raises as system failures, keeping its exception's line, not the traceback", async () => {
    const { final, events } = await runWithEvents(template("bridge_echo", { create_error: "the quota service is down" }));
    // flytekit answers INTERNAL: a system failure, counted (2 allowed), then the attempt fails.
    expect(events.map((event) => event.phaseInfo?.reason).filter((reason) => reason?.startsWith("system failure"))).toHaveLength(2);
    expect(final.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(final.phaseInfo?.error?.code).toBe("SystemFailure");
    expect(final.phaseInfo?.reason).toContain("INTERNAL: failed to create bridge_echo task with error: RuntimeError: the quota service is down");
    expect(final.phaseInfo?.reason).not.toContain("Traceback");
  });

  it("deletes the connector's work when a running task is aborted, and ends ABORTED", async () => {
    const execution = await client.submit(template("bridge_echo", { polls: 100_000 }));
    let jobId = "";
    for await (const event of client.watch(execution.id)) {
      if (event.phaseInfo?.phase !== Phase.RUNNING) continue;
      jobId = String(event.phaseInfo.customInfo?.job_id);
      break;
    }
    expect(jobId).not.toBe("");
    const aborted = await client.abort(execution.id, "not needed any more");
    expect(aborted.phaseInfo?.phase).toBe(Phase.ABORTED);
    expect(aborted.phaseInfo?.reason).toBe("not needed any more");
    expect(audit()).toContain(`delete ${jobId}`);
  });

  it("makes an attempt's Create once, however often and from wherever it is made", async () => {
    // What a second host (its own channels, its own memory) would do when it retries a Create: the host's
    // PluginClients with the same pb_creates bucket.
    const bucket: KV = await new Kvm(nc).open("pb_creates");
    const other = new PluginClients(undefined, (transport) => new FlyteAgentCalls(transport, {
      creates: new KvIdempotencyStore(async () => bucket),
      outputPrefixOf: () => "",
      log: createLogger({ level: "error" }),
    }));
    try {
      const target = await liveInstance(ASYNC);
      const task = template("bridge_echo", { polls: 1 });
      const createFor = async (id: string, attempt: number): Promise<Uint8Array> => {
        const context = create(TaskContextSchema, { executionId: { id, attempt }, template: task, inputs: { name: "again" } });
        return (await other.call(AsyncPluginService.method.create, target, { context }, 10_000)).resourceMeta;
      };

      // An execution the host ran: its Create again, for the same attempt, starts nothing and finds the same meta.
      const done = await client.run(task);
      const stored = fromBinary(ExecutionRecordSchema, (await (await new Kvm(nc).open("pb_executions")).get(done.executionId))!.value);
      const before = creates();
      expect(await createFor(done.executionId, 1)).toEqual(stored.resourceMeta);
      expect(creates()).toBe(before);

      // Three at once and one later for a new attempt: one Create; the next attempt gets its own.
      const metas = await Promise.all([1, 2, 3].map(() => createFor("flyte-once", 1)));
      const later = await createFor("flyte-once", 1);
      expect(new Set([...metas, later].map((meta) => Buffer.from(meta).toString("hex"))).size).toBe(1);
      expect(creates()).toBe(before + 1);
      const second = await createFor("flyte-once", 2);
      expect(Buffer.from(second).equals(Buffer.from(later))).toBe(false);
      expect(creates()).toBe(before + 2);
    } finally {
      other.close();
    }
  });

  it("refuses a literal the bridge does not map, naming it, in outputs and in inputs", async () => {
    const blob = await client.run(template("bridge_echo", { output_blob: "s3://reports/q3.csv" }));
    expect(blob.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(blob.phaseInfo?.error?.code).toBe("UnsupportedOutput");
    expect(blob.phaseInfo?.reason).toContain("outputs.report: a blob literal is not supported");

    const before = creates();
    const empty = await client.run(template("bridge_echo", {}), { inputs: { numbers: [] } });
    expect(empty.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(empty.phaseInfo?.error?.code).toBe("PluginInvalidArgument");
    expect(empty.phaseInfo?.reason).toBe("inputs.numbers: a list of nothing needs a type from the task's interface");
    // Refused before the connector was called.
    expect(creates()).toBe(before);
  });

  it("restarts a connector server that died, withdrawing its agents meanwhile and announcing them again", async () => {
    const sidecars = createClient(SidecarService, transport(host.url, "grpc"));
    const replica = (await sidecars.listSidecars({})).sidecars[0]!.replicas[0]!;
    const before = await liveInstance(ASYNC);
    process.kill(replica.pid, "SIGKILL");
    // Withdrawn as soon as the supervisor sees the exit, not when the heartbeats' TTL runs out.
    await eventually("the agents withdrawn", async () => {
      const { plugins } = await client.registry.listPlugins({});
      return plugins.length === 0 ? true : undefined;
    }, 100, 20);
    const again = await eventually("the agents announced again", async () => await liveInstance(ASYNC), 300, 100);
    expect(again.instanceId).toBe(before.instanceId);
    expect((await sidecars.listSidecars({})).sidecars[0]!.replicas[0]!.restarts).toBe(1);
    const final = await client.run(template("bridge_echo", { polls: 0 }), { inputs: { name: "again" } });
    expect(final.outputs).toMatchObject({ greeting: "hello again" });
  });

  it("withdraws the agents' announcements when the host stops", async () => {
    const plugins = await new Kvm(nc).open("pb_plugins");
    const keys = async (): Promise<string[]> => {
      const found: string[] = [];
      for await (const key of await plugins.keys()) found.push(key);
      return found;
    };
    expect((await keys()).filter((key) => key.startsWith(`${ASYNC}.`))).toHaveLength(1);
    expect(await host.stop()).toBe(0);
    expect(await keys()).toEqual([]);
  });
});
