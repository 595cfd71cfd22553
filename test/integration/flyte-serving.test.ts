// The host speaks Flyte (issue 8, point 1): a client built on Flyte's published Python packages (flyteidl, and
// flyteidl2 for the connector protocol) calls the bridge's own port and runs bridge plugins written in Go (the
// `batch` example, async; the Go conformance plugin, sync) to SUCCESS. A TypeScript client on the generated
// flyteidl code checks what a Python client cannot easily send: literals the bridge does not map, resource meta it
// did not give, a CreateTask propeller repeats. Real nats-server, host, Go sidecars and Python processes.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CreateTaskRequestSchema } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { TaskExecution_Phase as FlytePhase } from "@plugin-bridge/protocol/flyteidl/core/execution_pb.js";
import { AgentMetadataService, AsyncAgentService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KITS } from "../helpers/kits.js";
import { projectRoot, run, startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";
import { waitForPlugin } from "../helpers/clients.js";

const execFileAsync = promisify(execFile);
const flytePython = path.join(projectRoot, ".tools", "flyte-venv", "bin", "python");
const buildDir = path.join(projectRoot, ".tools", "build");
const work = tempDir("flyte-serving");
const GO_KIT = KITS.find((kit) => kit.language === "go")!;

let nats: TestNats;
let host: TestHost;
const sidecars: RunningProcess[] = [];

interface ClientAnswer {
  phase?: string;
  message?: string;
  outputs?: Record<string, unknown>;
  resource_meta?: string;
  agents?: Array<{ name: string; is_sync: boolean; task_categories: Array<{ name: string; version: number }> }>;
  connectors?: Array<{ name: string; task_categories: Array<{ name: string; version: number }> }>;
  error?: { code: string; details: string };
}

/** test/flyte/flyte_client.py against the host's port: one JSON line, whatever the exit code. */
async function flyteClient(protocol: "v1" | "v2", ...args: string[]): Promise<ClientAnswer> {
  const endpoint = `127.0.0.1:${host.port}`;
  const client = path.join(projectRoot, "test", "flyte", "flyte_client.py");
  const { stdout } = await execFileAsync(flytePython, [client, "--endpoint", endpoint, "--protocol", protocol, "--timeout", "30", ...args], { timeout: 60_000 }).catch(
    (error: { stdout?: string; stderr?: string }) => {
      if (!error.stdout) throw new Error(`flyte_client.py failed: ${error.stderr ?? String(error)}`);
      return { stdout: error.stdout };
    },
  );
  return JSON.parse(stdout) as ClientAnswer;
}

const grpc = () => createGrpcTransport({ baseUrl: host.url });

beforeAll(async () => {
  mkdirSync(buildDir, { recursive: true });
  await Promise.all([
    execFileAsync("go", ["build", "-o", path.join(buildDir, "batch"), "./examples/batch"], { cwd: path.join(projectRoot, "sidecars", "go") }),
    GO_KIT.prepare(),
  ]);
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecars.push(
    run(path.join(buildDir, "batch"), [], { PLUGIN_BRIDGE_NATS_URL: nats.url, BATCH_JOBS_DIR: path.join(work, "jobs") }),
    GO_KIT.start({ PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_KIND: "sync", CONFORMANCE_AUDIT_FILE: path.join(work, "audit.log") }),
  );
  await waitForPlugin(host.url, "batch");
  await waitForPlugin(host.url, "conformance-sync-go");
}, 240_000);

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
});

describe("flyteidl's agent protocol, from the published flyteidl Python package", () => {
  it("lists every plugin as an agent with its task categories", async () => {
    const { agents } = await flyteClient("v1", "list");
    expect(agents).toEqual(expect.arrayContaining([
      { name: "batch", is_sync: false, task_categories: [{ name: "batch", version: 1 }] },
      { name: "conformance-sync-go", is_sync: true, task_categories: [{ name: "conformance-sync-go", version: 1 }] },
    ]));
  });

  it("runs the Go batch plugin to SUCCEEDED: CreateTask, GetTask until it ends, outputs as literals", async () => {
    const answer = await flyteClient("v1", "run", "--type", "batch", "--version", "1", "--custom", JSON.stringify({ command: "echo", args: ["hello from flyte"] }));
    expect(answer).toMatchObject({ phase: "SUCCEEDED", outputs: { exitCode: 0, logTail: "hello from flyte\n" } });
  });

  it("reports a failing task as FAILED with the plugin's message", async () => {
    const answer = await flyteClient("v1", "run", "--type", "batch", "--version", "1", "--custom", JSON.stringify({ command: "false" }));
    expect(answer.phase).toBe("FAILED");
    expect(answer.message).toMatch(/exit/i);
  });

  it("runs a sync plugin through ExecuteTaskSync, inputs as literals", async () => {
    const answer = await flyteClient("v1", "run", "--sync", "--type", "conformance-sync-go", "--version", "1", "--custom", JSON.stringify({ echo: "synced" }), "--inputs", JSON.stringify({ name: "flyte", n: 3 }));
    expect(answer).toMatchObject({ phase: "SUCCEEDED", outputs: { echo: "synced", language: "go" } });
  });

  it("refuses a task type nobody serves with NOT_FOUND", async () => {
    const answer = await flyteClient("v1", "run", "--type", "no-such-type", "--version", "1");
    expect(answer.error).toMatchObject({ code: "NOT_FOUND" });
  });
});

describe("flyteidl2's connector protocol, from the published flyteidl2 Python package", () => {
  it("lists connectors and runs the Go batch plugin to SUCCEEDED", async () => {
    const { connectors } = await flyteClient("v2", "list");
    expect(connectors).toEqual(expect.arrayContaining([{ name: "batch", task_categories: [{ name: "batch", version: 1 }] }]));
    const answer = await flyteClient("v2", "run", "--type", "batch", "--version", "1", "--custom", JSON.stringify({ command: "echo", args: ["v2"] }), "--inputs", JSON.stringify({ tags: { a: "b" } }));
    expect(answer).toMatchObject({ phase: "SUCCEEDED", outputs: { exitCode: 0, logTail: "v2\n" } });
  });
});

describe("what Flyte callers get wrong, or repeat", () => {
  const agents = () => createClient(AsyncAgentService, grpc());
  const sleepTemplate = { type: "batch", taskTypeVersion: 1, custom: { command: "sleep", args: ["30"] } };

  it("refuses a literal the bridge does not map, naming its kind and where it is", async () => {
    const request = create(CreateTaskRequestSchema, {
      template: sleepTemplate,
      inputs: { literals: { data: { value: { case: "scalar", value: { value: { case: "blob", value: { uri: "s3://bucket/key" } } } } } } },
    });
    const error = await agents().createTask(request).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toBe("inputs.data: a blob literal is not supported: the bridge maps primitives, collections, maps and generic structs");
  });

  it("refuses resource meta it did not give with INVALID_ARGUMENT, and an unknown agent with NOT_FOUND", async () => {
    for (const resourceMeta of [new Uint8Array(), new TextEncoder().encode("not json"), new TextEncoder().encode('{"execution":"../../etc"}')]) {
      const error = await agents().getTask({ resourceMeta }).then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.rawMessage).toMatch(/^resource_meta is not one this bridge gave/);
    }
    const metadata = createClient(AgentMetadataService, grpc());
    const error = await metadata.getAgent({ name: "x".repeat(5000) }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.NotFound);
    expect(error!.rawMessage.length).toBeLessThan(200);
  });

  it("makes one execution of a task execution propeller creates twice, and DeleteTask aborts it", async () => {
    const taskExecutionId = { nodeExecutionId: { nodeId: "n0", executionId: { project: "p", domain: "development", name: "run-1" } }, retryAttempt: 0 };
    const request = create(CreateTaskRequestSchema, { template: sleepTemplate, taskExecutionMetadata: { taskExecutionId, namespace: "p-development" } });
    const first = await agents().createTask(request);
    const again = await agents().createTask(request);
    expect(new TextDecoder().decode(again.resourceMeta)).toBe(new TextDecoder().decode(first.resourceMeta));
    const retry = await agents().createTask(create(CreateTaskRequestSchema, { template: sleepTemplate, taskExecutionMetadata: { taskExecutionId: { ...taskExecutionId, retryAttempt: 1 } } }));
    expect(new TextDecoder().decode(retry.resourceMeta)).not.toBe(new TextDecoder().decode(first.resourceMeta));

    await agents().deleteTask({ resourceMeta: first.resourceMeta });
    let phase = FlytePhase.UNDEFINED;
    for (let tries = 0; tries < 100 && phase !== FlytePhase.ABORTED; tries++) {
      phase = (await agents().getTask({ resourceMeta: first.resourceMeta })).resource?.phase ?? FlytePhase.UNDEFINED;
      if (phase !== FlytePhase.ABORTED) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(FlytePhase[phase]).toBe("ABORTED");
    // Deleting what has ended is Flyte's cleanup, not an error.
    await agents().deleteTask({ resourceMeta: first.resourceMeta });
    await agents().deleteTask({ resourceMeta: retry.resourceMeta });
  });
});
