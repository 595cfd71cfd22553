// What an operator and a tool see of a running host, on its one API port: Prometheus metrics on GET /metrics
// (HTTP/1.1 and h2c) that move with the executions the host runs, and gRPC server reflection (v1 and v1alpha)
// that lets grpc-js, connect clients and `buf curl` discover and call the services without proto files.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import * as http2 from "node:http2";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as v1 from "@plugin-bridge/protocol/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "@plugin-bridge/protocol/grpc/reflection/v1alpha/reflection_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { startNatsServer, type NatsServerProcess } from "../../src/coordination/nats-server-process.js";
import { eventually, taskClient, waitForPlugin } from "../helpers/clients.js";
import { KITS } from "../helpers/kits.js";
import {
  projectRoot,
  startHost,
  startReferencePlugin,
  startTestNats,
  tempDir,
  type RunningProcess,
  type TestHost,
  type TestNats,
} from "../helpers/processes.js";

const ASYNC = "conformance-typescript";
const SYNC = "conformance-sync-typescript";
const QUOTA = "conformance-python";
const LIMITED = "conformance-sync-python";
const python = KITS.find((kit) => kit.language === "python")!;
const auditFile = path.join(tempDir("observability"), "audit.log");

let nats: TestNats;
let host: TestHost;
const sidecars: RunningProcess[] = [];

beforeAll(async () => {
  nats = await startTestNats();
  host = await startHost(nats.url);
  sidecars.push(startReferencePlugin(nats.url, auditFile, { CONFORMANCE_RESYNC_MS: "50" }));
  sidecars.push(startReferencePlugin(nats.url, auditFile, { CONFORMANCE_KIND: "sync" }));
  // The Python kit's reference plugins, one with a quota of 1 per namespace, one with a write limit of 4 a second
  // after a burst of 2.
  sidecars.push(python.start({ PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_RESYNC_MS: "100", CONFORMANCE_QUOTA: "0/1" }));
  sidecars.push(python.start({ PLUGIN_BRIDGE_NATS_URL: nats.url, CONFORMANCE_KIND: "sync", CONFORMANCE_WRITE_LIMIT: "4/2" }));
  await Promise.all([ASYNC, SYNC, QUOTA, LIMITED].map((name) => waitForPlugin(host.url, name)));
});

afterAll(async () => {
  await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
  await host?.stop();
  await nats?.stop();
});

/** Runs a task to its end through ExecuteTask; returns its events. */
async function execute(type: string, custom: Record<string, unknown>, namespace = ""): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  const stream = taskClient(host.url).executeTask({ template: { type, typeVersion: 1, custom: custom as never }, metadata: { namespace } });
  for await (const { event } of stream) if (event) events.push(event);
  return events;
}

const finalPhase = (events: TaskEvent[]): Phase | undefined => events.at(-1)?.phaseInfo?.phase;

/** GET /metrics over HTTP/1.1 (fetch). */
async function scrapeHttp1(url: string): Promise<{ status: number; contentType: string; body: string }> {
  const response = await fetch(`${url}/metrics`);
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", body: await response.text() };
}

/** A request over h2c (prior knowledge), answered in full. */
function requestH2c(url: string, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.once("error", reject);
    const stream = session.request(headers);
    stream.end();
    let status = 0;
    let contentType = "";
    let body = "";
    stream.once("response", (responseHeaders) => {
      status = Number(responseHeaders[":status"]);
      contentType = String(responseHeaders["content-type"] ?? "");
    });
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => (body += chunk));
    stream.once("error", reject);
    stream.once("end", () => {
      session.close();
      resolve({ status, contentType, body });
    });
  });
}

/** The value of one series in Prometheus text (exact name and labels, in the registry's label order). */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics on GET /metrics", () => {
  it("count phases, calls and errors per plugin for the tasks the host ran, on HTTP/1.1 and h2c", async () => {
    // Async: Create, Get (RUNNING), Get (SUCCESS); a failing Create; sync through the fast path: one Do.
    expect(finalPhase(await execute(ASYNC, { polls: 1 }))).toBe(Phase.SUCCESS);
    expect(finalPhase(await execute(ASYNC, { create: "BEHAVIOR_USER_ERROR", message: "no" }))).toBe(Phase.PERMANENT_FAILURE);
    expect(finalPhase(await execute(SYNC, {}))).toBe(Phase.SUCCESS);

    const scraped = await scrapeHttp1(host.url);
    expect(scraped.status).toBe(200);
    expect(scraped.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = scraped.body;

    const phases = (plugin: string, phase: string): number | undefined =>
      valueOf(text, `plugin_bridge_execution_phases_total{plugin="${plugin}",phase="${phase}"}`);
    expect(phases(ASYNC, "QUEUED")).toBe(2);
    expect(phases(ASYNC, "INITIALIZING")).toBe(1);
    expect(phases(ASYNC, "RUNNING")).toBe(1);
    expect(phases(ASYNC, "SUCCESS")).toBe(1);
    expect(phases(ASYNC, "PERMANENT_FAILURE")).toBe(1);
    // The fast path stores QUEUED and the outcome at once, and counts both.
    expect(phases(SYNC, "QUEUED")).toBe(1);
    expect(phases(SYNC, "SUCCESS")).toBe(1);

    const calls = (plugin: string, operation: string): number | undefined =>
      valueOf(text, `plugin_bridge_plugin_call_duration_seconds_count{plugin="${plugin}",operation="${operation}"}`);
    expect(calls(ASYNC, "create")).toBe(2);
    expect(calls(ASYNC, "get")).toBe(2);
    expect(calls(SYNC, "do")).toBe(1);
    expect(valueOf(text, `plugin_bridge_plugin_call_duration_seconds_bucket{le="+Inf",plugin="${SYNC}",operation="do"}`)).toBe(1);
    expect(valueOf(text, `plugin_bridge_plugin_call_duration_seconds_sum{plugin="${SYNC}",operation="do"}`)).toBeGreaterThan(0);
    expect(valueOf(text, `plugin_bridge_plugin_call_errors_total{plugin="${ASYNC}",operation="create",code="INVALID_ARGUMENT"}`)).toBe(1);
    expect(text).not.toMatch(/plugin_bridge_plugin_call_errors_total\{[^}]*operation="get"/);

    expect(text).toContain("# HELP plugin_bridge_execution_phases_total Phase changes of executions the host stored");
    expect(text).toContain("# TYPE plugin_bridge_plugin_call_duration_seconds histogram");
    expect(text).toContain("# TYPE plugin_bridge_steps_in_flight gauge");
    expect(valueOf(text, "plugin_bridge_steps_in_flight")).toBeGreaterThanOrEqual(0);
    expect(valueOf(text, "plugin_bridge_nats_reconnects_total")).toBe(0);
    // prom-client's default process metrics, under their usual names.
    expect(valueOf(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_version_info\{/m);
    // No execution id anywhere: labels stay of low cardinality.
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);

    // The same registry over h2c.
    const overH2c = await requestH2c(host.url, { ":method": "GET", ":path": "/metrics" });
    expect(overH2c.status).toBe(200);
    expect(overH2c.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(valueOf(overH2c.body, `plugin_bridge_execution_phases_total{plugin="${SYNC}",phase="SUCCESS"}`)).toBe(1);
    expect(valueOf(overH2c.body, `plugin_bridge_plugin_call_duration_seconds_count{plugin="${ASYNC}",operation="create"}`)).toBe(2);
  });

  it("count quota waits and rate-limit waits per plugin", async () => {
    // One execution per namespace: the second of two in one namespace waits for a token.
    const quota = await Promise.all([execute(QUOTA, { polls: 2 }, "metrics"), execute(QUOTA, { polls: 2 }, "metrics")]);
    expect(quota.map(finalPhase)).toEqual([Phase.SUCCESS, Phase.SUCCESS]);
    // A burst of 2 writes, then 4 a second: five Dos at once wait for tokens.
    const limited = await Promise.all(Array.from({ length: 5 }, () => execute(LIMITED, {})));
    expect(limited.map(finalPhase)).toEqual(Array(5).fill(Phase.SUCCESS));

    const { body } = await scrapeHttp1(host.url);
    const quotaWaits = valueOf(body, `plugin_bridge_quota_waits_total{plugin="${QUOTA}"}`) ?? 0;
    expect(quotaWaits).toBeGreaterThanOrEqual(1);
    expect(valueOf(body, `plugin_bridge_execution_phases_total{plugin="${QUOTA}",phase="WAITING_FOR_RESOURCES"}`)).toBe(quotaWaits);
    expect(valueOf(body, `plugin_bridge_rate_limit_waits_total{plugin="${LIMITED}",kind="write"}`) ?? 0).toBeGreaterThanOrEqual(3);
    expect(body).not.toMatch(/plugin_bridge_rate_limit_waits_total\{plugin="conformance-sync-python",kind="read"\}/);
  });

  it("leave every other request to the RPC handler", async () => {
    // Not GET: the Connect adapter answers, as for any path it does not serve.
    const post = await fetch(`${host.url}/metrics`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(post.status).toBe(404);
    expect((await fetch(`${host.url}/metrics/more`)).status).toBe(404);
    // A query string is still the scrape.
    expect((await fetch(`${host.url}/metrics?format=text`)).status).toBe(200);
  });
});

describe("metrics: NATS reconnects", () => {
  let ownNats: NatsServerProcess | undefined;
  let ownHost: TestHost | undefined;
  const dataDir = tempDir("observability-nats");

  afterAll(async () => {
    await ownHost?.stop();
    await ownNats?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("count the host's reconnects to NATS", async () => {
    ownNats = await startNatsServer({ dataDir });
    const port = ownNats.port;
    ownHost = await startHost(ownNats.url);
    expect(valueOf((await scrapeHttp1(ownHost.url)).body, "plugin_bridge_nats_reconnects_total")).toBe(0);
    // The same server, stopped and started again on its port: the host's connection comes back.
    await ownNats.stop();
    ownNats = await startNatsServer({ dataDir, port });
    const reconnects = await eventually("the host to reconnect", async () => {
      const value = valueOf((await scrapeHttp1(ownHost!.url)).body, "plugin_bridge_nats_reconnects_total") ?? 0;
      return value >= 1 ? value : undefined;
    }, 150, 100);
    expect(reconnects).toBe(1);
  });
});

describe("gRPC server reflection", () => {
  const EXPECTED_SERVICES = [
    "flyteidl.service.AgentMetadataService",
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.SyncAgentService",
    "flyteidl2.connector.AsyncConnectorService",
    "flyteidl2.connector.ConnectorMetadataService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "pluginbridge.v1.PluginRegistryService",
    "pluginbridge.v1.SidecarService",
    "pluginbridge.v1.TaskService",
  ];

  /** One v1 reflection stream over grpc-js: each request gets its response, in order. */
  async function grpcJsReflection(requests: Array<MessageInitShape<typeof v1.ServerReflectionRequestSchema>>): Promise<v1.ServerReflectionResponse[]> {
    const client = new grpc.Client(`127.0.0.1:${host.port}`, grpc.credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        (message: v1.ServerReflectionRequest) => Buffer.from(toBinary(v1.ServerReflectionRequestSchema, message)),
        (bytes: Buffer) => fromBinary(v1.ServerReflectionResponseSchema, bytes),
      );
      const responses: v1.ServerReflectionResponse[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (response: v1.ServerReflectionResponse) => responses.push(response));
        call.once("error", reject);
        call.once("end", resolve);
      });
      for (const request of requests) call.write(create(v1.ServerReflectionRequestSchema, request));
      call.end();
      await done;
      return responses;
    } finally {
      client.close();
    }
  }

  /** The files with each one's imports before it, as a FileDescriptorSet wants them. */
  function importsFirst(all: FileDescriptorProto[]): FileDescriptorProto[] {
    const ordered: FileDescriptorProto[] = [];
    const visit = (file: FileDescriptorProto | undefined): void => {
      if (!file || ordered.includes(file)) return;
      for (const name of file.dependency) visit(all.find((candidate) => candidate.name === name));
      ordered.push(file);
    };
    all.forEach(visit);
    return ordered;
  }

  const files = (response: v1.ServerReflectionResponse | v1alpha.ServerReflectionResponse): FileDescriptorProto[] =>
    response.messageResponse.case === "fileDescriptorResponse"
      ? response.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes))
      : [];

  it("v1 over grpc-js: lists the services and sends a service's file with every file it imports", async () => {
    const [listed, taskFile, healthFile, again, missing] = await grpcJsReflection([
      { messageRequest: { case: "listServices", value: "*" } },
      { host: "example", messageRequest: { case: "fileContainingSymbol", value: "pluginbridge.v1.TaskService" } },
      { messageRequest: { case: "fileByFilename", value: "grpc/health/v1/health.proto" } },
      { messageRequest: { case: "fileContainingSymbol", value: "pluginbridge.v1.TaskService.CreateTask" } },
      { messageRequest: { case: "fileContainingSymbol", value: "pluginbridge.v1.NoSuchService" } },
    ]);

    expect(listed!.messageResponse.case).toBe("listServicesResponse");
    if (listed!.messageResponse.case !== "listServicesResponse") return;
    expect(listed!.messageResponse.value.service.map((service) => service.name)).toEqual(EXPECTED_SERVICES);

    // The file, then every file it imports (transitively), so a client can build the schema from one answer.
    expect(taskFile!.validHost).toBe("example");
    expect(taskFile!.originalRequest?.messageRequest).toEqual({ case: "fileContainingSymbol", value: "pluginbridge.v1.TaskService" });
    const taskFiles = files(taskFile!);
    expect(taskFiles[0]!.name).toBe("pluginbridge/v1/task_service.proto");
    expect(taskFiles.map((file) => file.name)).toEqual(expect.arrayContaining([
      "pluginbridge/v1/task.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/timestamp.proto",
    ]));
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(taskFiles) }));
    const service = registry.getService("pluginbridge.v1.TaskService");
    expect(service?.methods.map((method) => method.name)).toEqual(["CreateTask", "GetTask", "WatchTask", "AbortTask", "ListTasks", "ExecuteTask"]);
    expect(registry.getMessage("pluginbridge.v1.TaskTemplate")?.field.custom?.message?.typeName).toBe("google.protobuf.Struct");

    expect(files(healthFile!).map((file) => file.name)).toEqual(["grpc/health/v1/health.proto"]);
    // Already sent on this stream: only the file asked for, not its imports again.
    expect(files(again!).map((file) => file.name)).toEqual(["pluginbridge/v1/task_service.proto"]);

    expect(missing!.messageResponse).toEqual({
      case: "errorResponse",
      value: expect.objectContaining({ errorCode: grpc.status.NOT_FOUND, errorMessage: expect.stringContaining("NoSuchService") }),
    });
  });

  it("v1alpha over a connect gRPC client: the same answers", async () => {
    const client = createClient(v1alpha.ServerReflection, createGrpcTransport({ baseUrl: host.url }));
    async function* requests() {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "pluginbridge.v1.PluginRegistryService" } };
      yield { messageRequest: { case: "allExtensionNumbersOfType" as const, value: "pluginbridge.v1.TaskTemplate" } };
    }
    const responses: v1alpha.ServerReflectionResponse[] = [];
    for await (const response of client.serverReflectionInfo(requests())) responses.push(response);
    expect(responses).toHaveLength(3);
    const [listed, registryFile, extensions] = responses;
    expect(listed!.messageResponse.case === "listServicesResponse" && listed!.messageResponse.value.service.map((s) => s.name)).toEqual(EXPECTED_SERVICES);
    expect(files(registryFile!)[0]!.name).toBe("pluginbridge/v1/registry_service.proto");
    expect(extensions!.messageResponse).toEqual({
      case: "allExtensionNumbersResponse",
      value: expect.objectContaining({ baseTypeName: "pluginbridge.v1.TaskTemplate", extensionNumber: [] }),
    });
  });

  describe("buf curl, from reflection alone", () => {
    const buf = path.join(projectRoot, "node_modules", ".bin", "buf");
    const run = async (...args: string[]): Promise<string> =>
      (await promisify(execFile)(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { cwd: tempDir("buf-curl"), timeout: 30_000 })).stdout;

    it("lists services and methods (v1, then v1alpha)", async () => {
      const services = (await run("--list-services", host.url)).trim().split("\n");
      expect(services).toEqual(EXPECTED_SERVICES);
      const methods = (await run("--reflect-protocol", "grpc-v1alpha", "--list-methods", host.url)).trim().split("\n");
      // Flyte's: AsyncAgentService 5, SyncAgentService 1, AgentMetadataService 2, AsyncConnectorService 5, ConnectorMetadataService 2.
      expect(methods.filter((method) => method.startsWith("flyteidl"))).toHaveLength(15);
      expect(methods.filter((method) => !method.startsWith("flyteidl")).sort()).toEqual([
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "pluginbridge.v1.PluginRegistryService/GetPlugin",
        "pluginbridge.v1.PluginRegistryService/ListPlugins",
        "pluginbridge.v1.SidecarService/ListSidecars",
        "pluginbridge.v1.SidecarService/UpgradeSidecar",
        "pluginbridge.v1.TaskService/AbortTask",
        "pluginbridge.v1.TaskService/CreateTask",
        "pluginbridge.v1.TaskService/ExecuteTask",
        "pluginbridge.v1.TaskService/GetTask",
        "pluginbridge.v1.TaskService/ListTasks",
        "pluginbridge.v1.TaskService/WatchTask",
      ]);
    });

    it("calls a method with a JSON request it encodes from the reflected schema", async () => {
      const listed = JSON.parse(await run("-d", JSON.stringify({ taskType: SYNC }), `${host.url}/pluginbridge.v1.PluginRegistryService/ListPlugins`));
      expect(listed.plugins.map((plugin: { name: string }) => plugin.name)).toEqual([SYNC]);
      const health = JSON.parse(await run("-d", "{}", `${host.url}/grpc.health.v1.Health/Check`));
      expect(health).toEqual({ status: "SERVING" });
    });
  });
});
